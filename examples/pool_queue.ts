// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A pool with a queue (seed 002, "使用进程池创建"): one pool task writes ten
 * numbers into a queue, another reads them back. As in the seed, the queue
 * comes from `Manager().Queue()` (Python needs that: a plain
 * `multiprocessing.Queue` cannot be passed to pool tasks). Here the
 * manager's `Queue()` is the plain `Queue`, a handle to shared memory that
 * travels in the task's arguments, so `new Queue()` would do the same.
 *
 *     deno run -A examples/pool_queue.ts
 *
 * The seed's reader sleeps 3 s "to make sure everything is written" and
 * then reads `qsize()` items; here the reader simply takes ten items, each
 * `get` waiting until one is there, so it needs no sleep.
 */

import { isMainThread, Manager, Pool, type Queue } from "../mod.ts";

/** Writes 0 … 9 into the queue. */
export async function write(p: Queue<number>): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await p.put(i);
    console.log(`wrote ${i}`);
  }
}

/** Reads ten items from the queue. */
export async function read(p: Queue<number>): Promise<void> {
  for (let i = 0; i < 10; i++) console.log(`read ${await p.get()}`);
}

if (isMainThread) {
  const po = new Pool({ module: import.meta.url });
  const p = new Manager().Queue<number>();
  po.applyAsync(write, [p]);
  po.applyAsync(read, [p]);
  po.close();
  await po.join();
  console.log("pool closed and joined");
}
