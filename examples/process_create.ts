// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Creating processes, method one (seed 004): wrap the work in a function,
 * create a `Process` with `target` and `args`, and `start()` it.
 *
 *     deno run -A examples/process_create.ts
 *
 * `Process` is `Thread` under Python's other name: each runs in its own
 * worker with its own globals, as a Python process has its own memory.
 */

import { currentProcess, isMainThread, Process } from "../mod.ts";

/** Greets `times` times from its own process. */
export async function greet(who: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    console.log(`${currentProcess().name}: hello ${who} (${i})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

if (isMainThread) {
  const p1 = new Process({ target: greet, args: ["Alice", 2], module: import.meta.url, name: "p1" });
  const p2 = new Process({ target: greet, args: ["Bob", 2], module: import.meta.url, name: "p2" });
  p1.start();
  p2.start();
  console.log("main: both processes started");
  await p1.join();
  await p2.join();
  console.log("main: both processes finished");
}
