// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Globals are not shared (seed 003): every process has its own memory, so
 * changing a variable in one does not change it in another. `producer(a)`
 * adds 1 to its own copy of `a`; `consumer(a)` still prints 1.
 *
 *     deno run -A examples/process_globals.ts
 *
 * To share data, use a `Queue`, a `Pipe` or a shared value instead.
 */

import { isMainThread, Process } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A module-level variable: each process that imports this module has its own. */
let counter = 0;

/** Adds 1 to its copy of `a` (and to its own copy of `counter`). */
export async function producer(a: number): Promise<void> {
  a += 1;
  counter += 1;
  console.log(`producer: a = ${a}, counter = ${counter}`);
  await sleep(100);
}

/** Waits for the producer, then prints its own `a`. */
export async function consumer(a: number): Promise<void> {
  await sleep(200);
  console.log(a);
}

if (isMainThread) {
  const a = 1;
  const myProducer = new Process({ target: producer, args: [a], module: import.meta.url });
  const myConsumer = new Process({ target: consumer, args: [a], module: import.meta.url });
  myProducer.start();
  myConsumer.start();
  await myProducer.join();
  await myConsumer.join();
  console.log(`main: a = ${a}, counter = ${counter}`);
}
