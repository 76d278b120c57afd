// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `join()` (seed 004): the main program waits until the child has finished
 * before it goes on. Python's `os.getpid()` becomes `currentProcess().ident`.
 *
 *     deno run -A examples/process_join.ts
 */

import { currentProcess, isMainThread, Process } from "../mod.ts";

/** Works for a random 100–300 ms. */
export async function task(): Promise<void> {
  const pid = currentProcess().ident;
  console.log(`${pid} is task`);
  await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(Math.random() * 200)));
  console.log(`${pid} is task end`);
}

if (isMainThread) {
  const p = new Process({ target: task, module: import.meta.url });
  p.start();
  await p.join();
  console.log("main");
}
