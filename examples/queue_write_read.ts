// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Two processes talking through a `Queue` (seed 000): the parent creates the
 * queue and passes it to a writer, which puts three values, and then to a
 * reader, which reads until the queue is empty.
 *
 *     deno run -A examples/queue_write_read.ts
 *
 * The seed sleeps up to a second between steps; here up to 50 ms. The
 * reader stops when it finds the queue empty, which is safe only because
 * the writer has finished (joined) before the reader starts.
 */

import { isMainThread, Process, Queue } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The writer process: puts "a", "b", "c". */
export async function write(q: Queue<string>): Promise<void> {
  for (const value of ["a", "b", "c"]) {
    console.log(`Put ${value} to queue...`);
    await q.put(value);
    await sleep(Math.random() * 50);
  }
}

/** The reader process: reads until the queue is empty. */
export async function read(q: Queue<string>): Promise<void> {
  while (!q.empty()) {
    const value = await q.get();
    console.log(`Get ${value} from queue.`);
    await sleep(Math.random() * 50);
  }
}

if (isMainThread) {
  // The parent creates the queue and passes it to each child.
  const q = new Queue<string>();
  const pw = new Process({ target: write, args: [q], module: import.meta.url });
  const pr = new Process({ target: read, args: [q], module: import.meta.url });
  pw.start();
  await pw.join(); // wait until the writer is done
  pr.start();
  await pr.join(); // the reader ends once it has emptied the queue
  console.log("");
  console.log("all data written and read");
}
