// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * One writer, two readers chained through two queues (seed 002): the writer
 * puts 0–4 in `q1`; reader r1 reads `q1` and passes each item on to `q2`;
 * reader r2 reads `q2`.
 *
 *     deno run -A examples/queue_chain.ts
 *
 * In the seed both readers loop for ever, so the program never ends. Here
 * each stage closes the queue it writes to when it is done: the writer
 * closes `q1`, r1's `for await` then ends and it closes `q2`, and r2's loop
 * ends after the last item.
 */

import { isMainThread, Process, Queue } from "../mod.ts";

/** The writer: puts 0..4, then closes the queue. */
export async function write(q1: Queue<number>): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await q1.put(i);
    console.log(`put ${i}`);
  }
  q1.close();
}

/** Reads `q1`, printing each item and passing it on to `q2` when given. */
export async function read1(r: string, q1: Queue<number>, q2: Queue<number> | null): Promise<void> {
  for await (const a of q1) {
    console.log(`${r} read ${a}`);
    if (q2) await q2.put(a);
  }
  q2?.close();
}

/** Reads `q1`, printing each item. */
export async function read2(r: string, q1: Queue<number>): Promise<void> {
  for await (const a of q1) console.log(`${r} read ${a}`);
}

if (isMainThread) {
  const q1 = new Queue<number>();
  const q2 = new Queue<number>();
  const w = new Process({ target: write, args: [q1], module: import.meta.url });
  const r1 = new Process({ target: read1, args: ["r1", q1, q2], module: import.meta.url });
  const r2 = new Process({ target: read2, args: ["r2", q2], module: import.meta.url });
  w.start();
  await w.join();
  r2.start();
  r1.start();
  await r1.join();
  await r2.join();
}
