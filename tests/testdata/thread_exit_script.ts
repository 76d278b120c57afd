// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/thread_test.ts in a child process:
//   <runtime> thread_exit_script.ts daemon|normal|error
// "daemon"/"normal": starts a thread that sleeps 3 s and then prints
// "thread done"; the main program ends at once. "error": a thread throws.

import process from "node:process";
import { isMainThread, Thread } from "../../mod.ts";

/** Sleeps, then says so. */
export async function sleeper(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  console.log("thread done");
}

/** Throws from a named function. */
export function explode(what: string): never {
  throw new TypeError(`${what} exploded`);
}

if (isMainThread) {
  const mode = process.argv[process.argv.length - 1];
  if (mode === "error") {
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
