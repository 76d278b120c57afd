// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The serving side of a cluster pool: takes tasks from the pool's stream and
 * runs them on a local `Pool` of threads (so a worker process is as fast per
 * core as the local pool), then sends each result to its caller and only
 * then acknowledges the task.
 *
 * Invariants:
 * - At most `concurrency` tasks are being run at once (their results may
 *   still be on their way): pull requests ask for the free room only, so a
 *   worker that joins late takes its share at once and nothing waits in a
 *   busy worker's buffer.
 * - A held task is reported in progress every `ackWait / 3` until it is
 *   acknowledged: while this process lives, the server does not hand it to
 *   another worker; once it dies, it does, `ackWait` later.
 * - A task's function is an export of a module named on the command line
 *   (compared as URLs resolved from this process's working directory), or,
 *   only with `allowSource`, source text. Nothing else runs.
 *
 * @module
 */

import type { Msg } from "@nats-io/transport-node";
import { hostname } from "node:os";
import process from "node:process";
import { decode, encode } from "./_codec.ts";
import { RemoteError, type RemoteErrorInit } from "./errors.ts";
import { Pool } from "./pool.ts";
import { moduleUrl } from "./_target.ts";
import { checkOptions, show } from "./_options.ts";
import { cpuCount } from "./_runtime.ts";
import { sleep, unrefTimer } from "./_cluster_names.ts";
import {
  type CancelMessage,
  ensurePoolStream,
  type FnRef,
  POOL_CONSUMER,
  type PoolContext,
  type PoolNames,
  type ResultMessage,
  type TaskMessage,
} from "./_cluster_pool_protocol.ts";

/** How long one pull request waits on the server (ms). */
const PULL_EXPIRES = 5_000;
/** How long a result waits for its caller to answer before it is sent again (ms). */
const RESULT_TRY = 5_000;
/** How long a worker keeps trying to hand a result to a caller that does not answer (ms). */
const RESULT_GIVE_UP = 60_000;

const ACK = new TextEncoder().encode("+ACK");
const NAK = new TextEncoder().encode("-NAK");
const PROGRESS = new TextEncoder().encode("+WPI");
const IDENT = /^[A-Za-z_$][\w$]*$/;

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

/**
 * Options of {@linkcode Cluster.servePool} (and of the worker command's flags).
 *
 * @example
 * ```ts
 * import type { ServePoolOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ServePoolOptions = { modules: ["./tasks.ts"], processes: 4 };
 * assert.equal(options.processes, 4);
 * ```
 */
export interface ServePoolOptions {
  /**
   * The modules whose exports this worker runs: paths relative to the
   * working directory (or absolute), or URLs. A task naming any other
   * module is refused with an error.
   * @default {[]}
   */
  modules?: string[];
  /** The number of threads of the local `Pool` that runs the tasks. @default {cpuCount()} */
  processes?: number;
  /**
   * The most tasks held at once (running, or waiting for a thread); more
   * than `processes` keeps the threads busy while results travel.
   * @default {processes * 2}
   */
  concurrency?: number;
  /**
   * Also run functions shipped as source text. Whoever can publish to the
   * pool's subjects can then run any code on this machine, with this
   * process's rights: give it only on a server whose publishers you trust.
   * @default {false}
   */
  allowSource?: boolean;
  /** Called after each task's result was delivered, for logs. */
  onTask?: (task: { caller: string; id: number; kind: string; ok: boolean }) => void;
}

interface ServeSettings {
  modules: string[];
  processes: number;
  concurrency: number;
  allowSource: boolean;
  onTask?: (task: { caller: string; id: number; kind: string; ok: boolean }) => void;
}

function checkServe(options: ServePoolOptions | undefined): ServeSettings {
  const o = checkOptions<ServePoolOptions>(options, "serve cluster Pool") ?? {};
  const modules = o.modules ?? [];
  if (!Array.isArray(modules) || !modules.every((m) => typeof m === "string" && m.trim() !== "")) {
    throw new TypeError(
      `Cannot serve cluster Pool as 'modules' must be an array of paths or URLs: current value is ${show(modules)}`,
    );
  }
  for (const [key, value] of [["processes", o.processes], ["concurrency", o.concurrency]] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 1)) {
      throw new RangeError(
        `Cannot serve cluster Pool as '${key}' must be a positive integer: current value is ${show(value)}`,
      );
    }
  }
  const processes = o.processes ?? cpuCount();
  return {
    modules,
    processes,
    concurrency: o.concurrency ?? processes * 2,
    allowSource: o.allowSource === true,
    onTask: o.onTask,
  };
}

/** One task held by this worker. */
interface Held {
  key: string;
  controller: AbortController;
}

/**
 * A worker of a cluster pool running in this process: made by
 * {@linkcode Cluster.servePool} (the worker command runs one). It takes the
 * pool's tasks while there is room and runs them on a local `Pool` of
 * threads.
 *
 * @example
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   const worker = await c.servePool(`doc_cpw_${Date.now()}`, { processes: 1 });
 *   await worker.stop(); // graceful: finishes the tasks it holds
 *   assert.equal(worker.done, 0);
 * }
 * ```
 */
export class ClusterPoolWorker {
  #ctx: PoolContext;
  #names: PoolNames;
  #settings: ServeSettings;
  #served: Set<string>;
  #pool: Pool;
  #host = hostname();
  #held = new Map<string, Held>();
  #requested = 0;
  /** Tasks taken and not yet acknowledged. */
  #running = 0;
  /** Tasks taken and not yet run: the ones the room is counted in. */
  #busy = 0;
  #stopping = false;
  #idle: (() => void)[] = [];
  #fns = new Map<string, AnyFn>();
  #cancelSub: { unsubscribe(): void } | undefined;
  #done = 0;
  /** Callers that terminated, and `caller:id` of tasks cancelled (see `#onCancel`). */
  #cancelled = new Set<string>();
  #graceful = true;

  /** @internal Made by {@linkcode Cluster.servePool}. */
  constructor(ctx: PoolContext, names: PoolNames, options: ServePoolOptions | undefined) {
    const settings = checkServe(options);
    this.#ctx = ctx;
    this.#names = names;
    this.#settings = settings;
    this.#served = new Set(settings.modules.map((m) => moduleUrl(m, "cluster worker")));
    this.#pool = new Pool({ processes: settings.processes });
  }

  /** The number of tasks this worker has finished. */
  get done(): number {
    return this.#done;
  }

  /** @internal Sets the stream up and starts taking tasks. */
  async start(): Promise<void> {
    await ensurePoolStream(this.#ctx, this.#names, undefined);
    this.#cancelSub = this.#ctx.nc.subscribe(this.#names.cancel, {
      callback: (_e, m) => {
        try {
          this.#onCancel(decode(m.data) as CancelMessage);
        } catch { /* not ours */ }
      },
    });
    await this.#ctx.nc.flush();
    this.#pull();
  }

  /**
   * Stops taking tasks and ends the local pool. With `graceful` (the
   * default) the tasks held are finished and their results delivered
   * first; without, they are handed back to the server at once, for other
   * workers. Idempotent.
   *
   * @param graceful Whether to finish the tasks held. @default {true}
   */
  async stop(graceful = true): Promise<void> {
    this.#stopping = true;
    this.#graceful &&= graceful;
    this.#cancelSub?.unsubscribe();
    if (!graceful) {
      for (const h of this.#held.values()) h.controller.abort(new Error("the worker is stopping"));
    }
    while (this.#running > 0) await new Promise<void>((r) => this.#idle.push(r));
    await this.#pool.terminate();
  }

  #onCancel(m: CancelMessage): void {
    // Remembered for a while: a task cancelled on its way here is skipped when it arrives.
    if (this.#cancelled.size > 10_000) this.#cancelled.clear();
    if (m.ids === "all") this.#cancelled.add(m.caller);
    else for (const id of m.ids) this.#cancelled.add(`${m.caller}:${id}`);
    const prefix = `${m.caller}:`;
    for (const [key, h] of this.#held) {
      if (!key.startsWith(prefix)) continue;
      if (m.ids === "all" || m.ids.includes(Number(key.slice(prefix.length)))) {
        h.controller.abort(new Error("cancelled by the caller"));
      }
    }
  }

  /** Asks the server for as many tasks as there is room for. */
  #pull(): void {
    const want = this.#settings.concurrency - this.#busy - this.#requested;
    if (want <= 0 || this.#stopping || this.#ctx.nc.isClosed()) return;
    const { nc } = this.#ctx;
    this.#requested += want;
    let got = 0;
    let open = true;
    const started = Date.now();
    const finish = () => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      sub.unsubscribe();
      this.#requested -= want - got;
      // A request refused or ended at once (no stream yet, server restarting): wait a little.
      if (got === 0 && Date.now() - started < 200) {
        void sleep(250).then(() => this.#pull());
      } else this.#pull();
    };
    const sub = nc.subscribe(`_INBOX.${crypto.randomUUID().replace(/-/g, "")}`, {
      callback: (_e, m) => {
        if (m.reply) {
          if (!open || this.#stopping) {
            m.respond(NAK);
            return;
          }
          got++;
          this.#requested--;
          void this.#run(m);
          if (got < want) return;
        }
        finish(); // the last message asked for, or a status: 408 (expired), 409 (refused)
      },
    });
    const timer = setTimeout(finish, PULL_EXPIRES + 2_000);
    unrefTimer(timer);
    try {
      nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${this.#names.stream}.${POOL_CONSUMER}`,
        JSON.stringify({ batch: want, expires: PULL_EXPIRES * 1e6 }),
        { reply: sub.getSubject() },
      );
    } catch {
      finish();
    }
  }

  async #run(m: Msg): Promise<void> {
    this.#running++;
    this.#busy++;
    let computing = true;
    const computed = () => {
      if (!computing) return;
      computing = false;
      this.#busy--;
      this.#pull(); // room for the next task while this result travels
    };
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    let key = "";
    try {
      let task: TaskMessage;
      try {
        task = decode(m.data) as TaskMessage;
      } catch {
        m.respond(ACK); // not a task: it would come back for ever
        return;
      }
      if (this.#cancelled.has(task.caller) || this.#cancelled.has(`${task.caller}:${task.id}`)) {
        await this.#ack(m); // its caller no longer waits for it
        return;
      }
      heartbeat = setInterval(() => m.respond(PROGRESS), Math.max(10, (task.ackWait || 30_000) / 3));
      key = `${task.caller}:${task.id}`;
      const controller = new AbortController();
      this.#held.set(key, { key, controller });
      let result: ResultMessage;
      try {
        const value = await this.#execute(task, controller.signal);
        result = { id: task.id, ok: true, value };
      } catch (e) {
        result = { id: task.id, ok: false, error: this.#describe(e) };
      }
      computed();
      if (controller.signal.aborted) {
        if (!this.#graceful) m.respond(NAK); // the worker is stopping: someone else runs it
        else await this.#ack(m); // cancelled: the caller no longer waits for it
        return;
      }
      let bytes: Uint8Array;
      try {
        bytes = encode(result, "result");
      } catch (e) {
        bytes = encode({ id: task.id, ok: false, error: this.#describe(e) } satisfies ResultMessage, "result");
      }
      if (bytes.length > this.#ctx.nc.info!.max_payload - 1024) {
        const e = new RangeError(
          `Cannot send the result of the task: it is ${bytes.length} bytes, more than the server's max_payload (${
            this.#ctx.nc.info!.max_payload
          }); use a smaller chunksize`,
        );
        bytes = encode({ id: task.id, ok: false, error: this.#describe(e) } satisfies ResultMessage, "result");
      }
      const delivered = await this.#deliver(this.#names.resultSubject(task.caller), bytes);
      if (delivered === "failed") {
        if (!this.#ctx.nc.isClosed()) m.respond(NAK); // the caller does not answer: run it again later
        return;
      }
      // "gone": nobody waits for the result any more; the task is dropped.
      await this.#ack(m);
      this.#done++;
      this.#settings.onTask?.({ caller: task.caller, id: task.id, kind: task.kind, ok: result.ok });
    } finally {
      clearInterval(heartbeat);
      if (key) this.#held.delete(key);
      this.#running--;
      if (this.#running === 0) { for (const w of this.#idle.splice(0)) w(); }
      computed();
    }
  }

  /**
   * Sends a result until its caller answers: `"gone"` when nobody listens on
   * its subject for a minute (the caller ended), `"failed"` when it never
   * answers (or the connection closed).
   */
  async #deliver(subject: string, bytes: Uint8Array): Promise<"ok" | "gone" | "failed"> {
    const giveUp = Date.now() + RESULT_GIVE_UP;
    for (let pause = 50;; pause = Math.min(pause * 2, 2_000)) {
      try {
        await this.#ctx.nc.request(subject, bytes, { timeout: RESULT_TRY });
        return "ok";
      } catch (e) {
        if (this.#ctx.nc.isClosed()) return "failed";
        const gone = /no responders|503/i.test(`${(e as Error).message} ${(e as { code?: string }).code}`);
        if (Date.now() > giveUp) return gone ? "gone" : "failed";
        await sleep(pause);
      }
    }
  }

  async #ack(m: Msg): Promise<void> {
    for (let pause = 20; !this.#ctx.nc.isClosed(); pause = Math.min(pause * 2, 1_000)) {
      try {
        await this.#ctx.nc.request(m.reply!, ACK, { timeout: 5_000 });
        return;
      } catch {
        await sleep(pause); // acknowledging twice is harmless
      }
    }
  }

  #describe(e: unknown): RemoteErrorInit {
    const init = RemoteError.describe(e);
    init.fields = { ...init.fields, host: this.#host, pid: process.pid };
    delete init.fields.remoteStack;
    init.stack = `${
      init.stack ?? `${init.name}: ${init.message}`
    }\n    on cluster worker ${this.#host} (pid ${process.pid})`;
    return init;
  }

  async #execute(task: TaskMessage, signal: AbortSignal): Promise<unknown> {
    const fn = this.#resolve(task.fn);
    const data = task.data instanceof Uint8Array ? decode(task.data) : undefined;
    if (!Array.isArray(data)) throw new TypeError("Cannot run the task: its data is not an array");
    switch (task.kind) {
      case "apply":
        return await this.#pool.apply(fn, data, { signal });
      case "map":
        return await this.#pool.map(fn, data, undefined, { signal });
      case "star":
        return await this.#pool.starmap(fn, data as unknown[][], undefined, { signal });
      default:
        throw new TypeError(`Cannot run the task: unknown kind ${JSON.stringify(task.kind)}`);
    }
  }

  /**
   * The function a task names, made so the local pool ships it to its
   * threads as source: for a module export, a stub that imports the module
   * in the thread (once) and calls the export.
   */
  #resolve(ref: FnRef): AnyFn {
    if (ref === null || typeof ref !== "object") throw new TypeError("Cannot run the task: it names no function");
    if ("module" in ref && typeof ref.module === "string") {
      let url: string;
      try {
        url = moduleUrl(ref.module, "cluster worker");
      } catch (e) {
        throw new TypeError(`Cannot run the task: ${(e as Error).message}`);
      }
      if (!this.#served.has(url)) {
        throw new Error(
          `Cannot run ${ref.name} from ${ref.module}: this worker serves only ${
            [...this.#served].join(", ") || "no module"
          } (start it with --module ${ref.module})`,
        );
      }
      if (typeof ref.name !== "string" || !IDENT.test(ref.name)) {
        throw new TypeError(`Cannot run the task: ${JSON.stringify(ref.name)} is not an export name`);
      }
      const key = `m ${url} ${ref.name}`;
      let fn = this.#fns.get(key);
      if (!fn) {
        const k = JSON.stringify(key);
        const u = JSON.stringify(url);
        const n = JSON.stringify(ref.name);
        const source = `function mpjs_${ref.name}(...args) {
  const cache = (globalThis.__mpjsClusterFns ??= new Map());
  const f = cache.get(${k});
  if (f) return f(...args);
  return import(${u}).then((m) => {
    const g = m[${n}];
    if (typeof g !== "function") throw new TypeError("Cannot run " + ${n} + ": " + ${u} + " exports no such function");
    cache.set(${k}, g);
    return g(...args);
  });
}`;
        fn = new Function(`return (${source});`)() as AnyFn;
        this.#fns.set(key, fn);
      }
      return fn;
    }
    if ("source" in ref && typeof ref.source === "string") {
      if (!this.#settings.allowSource) {
        throw new Error(
          `Cannot run ${
            ref.name || "an anonymous function"
          }: this worker runs only exports of the modules it serves; functions shipped as source need a worker started with --allow-source (or give the pool a 'module')`,
        );
      }
      const key = `s ${ref.source}`;
      let fn = this.#fns.get(key);
      if (!fn) {
        fn = (0, eval)(`(${ref.source})`) as AnyFn;
        if (typeof fn !== "function") throw new TypeError("Cannot run the task: its source is not a function");
        if (this.#fns.size > 1_000) this.#fns.clear();
        this.#fns.set(key, fn);
      }
      return fn;
    }
    throw new TypeError("Cannot run the task: it names no function");
  }
}
