// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The entry of every worker this library starts: waits for the parent's
 * start message, adopts the program-wide registry, finds the target (module
 * export, source text or subclass), runs it with the unpacked arguments, and
 * records how it ended in the thread's status cells before closing.
 *
 * @module
 */

// Only what every thread needs is imported up front: a thread that runs a
// self-contained function with plain arguments then starts without loading
// the library (thread start time is mostly module loading). The public
// modules are loaded before anything is unpacked that may hold a handle, so
// each handle class has registered how it is rebuilt.
import { adoptRegistry, children, importAsTarget, kAdopt, markDead } from "./_registry.ts";
import type { Thread as ThreadType } from "./thread.ts";
import "./_mailbox.ts"; // first: it adopts the mailbox from the start message
import { onExitCall, parentPort, writeStderr } from "./_runtime.ts";
import { adoptStatus, markExiting, stopIfAsked, writeExit } from "./_status.ts";
import type { StartMessage, TargetSpec } from "./_protocol.ts";
import { compile, explainMissingVariable, explainSubclassError, exported, type Fn, importTarget } from "./_target.ts";

const port = parentPort();
let started = false;

port.onMessage((message) => {
  // A stop request reaches a worker that is idle or awaiting here, on its
  // event loop, where no code of the thread is running (`_status.ts`).
  if (message.type === "stop") stopIfAsked();
  if (message.type !== "start" || started) return;
  started = true;
  run(message as StartMessage);
});

async function run(m: StartMessage): Promise<void> {
  adoptRegistry(m.registry, m.ident, m.name);
  adoptStatus(m.status, (code) => port.post({ type: "exit", code }));
  let code = 0;
  let failure: unknown;
  let reported = false;
  const report = (error: unknown) => {
    if (reported) return;
    reported = true;
    writeStderr(`Exception in thread ${m.name}:\n${describe(error)}\n`);
    // Dead first, then DONE: whoever join() wakes must find the thread dead
    // (a lock it still holds is then recoverable at once).
    markDead(m.ident);
    writeExit(m.status, 1, error);
    port.post({ type: "exit", code: 1 });
  };
  port.onFatal(report);
  // process.exit(n) / Deno.exit(n) in the thread's code: its exit code is n
  // (recorded as the parent records the end the runtime reports).
  onExitCall((exitCode) => markExiting(m.status, exitCode));
  try {
    // The registered classes first: the arguments may hold their instances.
    if (m.classes !== undefined && m.classes.length > 0) await Promise.all(m.classes.map((url) => importAsTarget(url)));
    const fn = await resolveTarget(m.target, m.name, m.ident);
    let args = m.args as unknown[];
    if (m.hasHandles) {
      const [, { unpack }] = await Promise.all([import("./mod.ts"), import("./_handles.ts")]);
      args = unpack(m.args, true) as unknown[];
    }
    await fn(...args);
  } catch (error) {
    code = 1;
    failure = m.target.kind === "source"
      ? explainMissingVariable(error, m.target.name)
      : m.target.kind === "subclass"
      ? explainSubclassError(error, m.target.className)
      : error;
  }
  // Asked to stop while the target ran: it ends as stopped, with the code asked for.
  stopIfAsked();
  if (failure !== undefined) {
    report(failure);
  }
  // As a Python process does at exit: join the non-daemon threads it
  // started and stop the daemon ones.
  for (const t of [...children]) if (!t.daemon) await t.join();
  await Promise.all([...children].map((t) => t.terminate()));
  if (!reported) {
    markDead(m.ident);
    writeExit(m.status, code);
    port.post({ type: "exit", code });
  }
  port.close(code);
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

async function resolveTarget(spec: TargetSpec, name: string, ident: number): Promise<Fn> {
  if (spec.kind === "source") return compile(spec.source, spec.name);
  if (spec.kind === "module") return importTarget(spec.module, spec.exportName, importAsTarget);
  const [mod, { Thread }, { unpack }] = await Promise.all([
    importAsTarget(spec.module),
    import("./mod.ts"),
    import("./_handles.ts"),
  ]);
  const cls = exported(mod, spec.className);
  if (typeof cls !== "function" || !(cls.prototype instanceof Thread)) {
    throw new TypeError(
      `Cannot run ${spec.className}: module ${spec.module} does not export a Thread subclass of that name (export class ${spec.className} extends Thread …)`,
    );
  }
  // Build the object with Thread's constructor only (the subclass's
  // constructor may need arguments we do not have), then give it its fields.
  const self = Reflect.construct(Thread, [{ name, [kAdopt]: { ident } }], cls) as ThreadType & Record<string, unknown>;
  Object.assign(self, unpack(spec.fields, spec.hasHandles));
  return () => self.run();
}
