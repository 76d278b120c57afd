// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Producers and consumers decoupled by a `Queue` (seed 004): producers make
 * food and put it in the queue, consumers take it out and eat it, neither
 * waiting for the other. A `null` in the queue (Python's `None`) tells a
 * consumer to stop: the main program puts one per consumer after the
 * producers have finished.
 *
 *     deno run -A examples/queue_sentinel.ts
 *
 * The seed sleeps 1–3 s at random; here 10–30 ms.
 */

import { currentProcess, isMainThread, Process, Queue } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function randomInt(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/** Eats what comes out of the queue until it gets `null`. */
export async function consumer(q: Queue<string | null>, name: string): Promise<void> {
  for (;;) {
    const res = await q.get();
    if (res === null) break;
    await sleep(randomInt(10, 30));
    console.log(`${name} ate ${res} (pid ${currentProcess().ident})`);
  }
}

/** Makes three of `food` and puts them in the queue. */
export async function producer(q: Queue<string | null>, name: string, food: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await sleep(randomInt(10, 30));
    const res = `${food}${i}`;
    await q.put(res);
    console.log(`${name} produced ${res}`);
  }
}

if (isMainThread) {
  const q = new Queue<string | null>();
  const producers = [
    new Process({ target: producer, args: [q, "egon", "bun"], module: import.meta.url }),
    new Process({ target: producer, args: [q, "alex", "bone"], module: import.meta.url }),
  ];
  const consumers = [
    new Process({ target: consumer, args: [q, "c1"], module: import.meta.url }),
    new Process({ target: consumer, args: [q, "c2"], module: import.meta.url }),
  ];
  for (const p of [...producers, ...consumers]) p.start();
  for (const p of producers) await p.join();
  // One sentinel per consumer, after everything produced.
  for (let i = 0; i < consumers.length; i++) await q.put(null);
  for (const c of consumers) await c.join();
  console.log("main: all food eaten");
}
