// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/thread_test.ts in a child process. A module that starts a
// thread at top level without an `isMainThread` guard: the thread imports
// this module to find its target, and must not start another from there.

import { Thread } from "../../mod.ts";

/** The thread's target. */
export function work(): void {
  console.log("worked");
}

const t = new Thread({ target: work, module: import.meta.url });
t.start();
await t.join();
console.log(`exit ${t.exitCode}`);
