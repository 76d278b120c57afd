// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/thread_test.ts in a child process:
//   <runtime> thread_exit_script.ts daemon|normal|error|busy
// "daemon"/"normal": starts a thread that sleeps 3 s and then prints
// "thread done"; the main program ends at once. "error": a thread throws. "busy": two threads that never
// yield are terminated and the program must exit.

import process from "node:process";
import { isMainThread, Thread } from "../../mod.ts";

/** Sleeps, then says so. */
export async function sleeper(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  console.log("thread done");
}

/** Spins for ever, or parks for ever in Atomics.wait. */
export function busy(how: string): void {
  if (how === "wait") Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  for (;;) {
    // never returns
  }
}

/** Throws from a named function. */
export function explode(what: string): never {
  throw new TypeError(`${what} exploded`);
}

if (isMainThread) {
  const mode = process.argv[process.argv.length - 1];
  if (mode === "busy") {
    // A thread that never yields (spinning, or parked in Atomics.wait) is
    // stopped by terminate(), and the program then exits.
    const spin = new Thread({ target: busy, args: ["spin"], module: import.meta.url });
    const park = new Thread({ target: busy, args: ["wait"], module: import.meta.url });
    spin.start();
    park.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await Promise.all([spin.terminate(), park.terminate()]);
    console.log(`terminated ${spin.exitCode} ${park.exitCode}`);
  } else if (mode === "error") {
    const t = new Thread({ target: explode, args: ["the reactor"], module: import.meta.url, name: "Reactor" });
    t.start();
    await t.join();
    console.log(`exitCode ${t.exitCode}`);
  } else {
    const t = new Thread({ target: sleeper, args: [3000], module: import.meta.url, daemon: mode === "daemon" });
    t.start();
    console.log(`main done, daemon=${t.daemon}`);
  }
}
