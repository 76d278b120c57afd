// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Thread safety (seed 002): two threads each add 1 to a shared counter a
 * million times. Without a lock updates get lost; with one the total is
 * exactly 2,000,000.
 *
 *     deno run -A examples/shared_counter.ts [increments per thread]
 *
 * Python threads share their globals, so the seed's `num += 1` races on a
 * global. Our threads are Web Workers with separate globals: what they
 * share is memory, here a `SharedValue` (Python's `multiprocessing.Value`).
 *
 * Why updates get lost: `counter.value += 1` is two steps, a read and a
 * write. Both threads can read the same value (say 41), both add 1 and both
 * write 42: two increments, one counted. The more the threads run at the
 * same moment, the more increments vanish, and how many changes from run
 * to run. Holding the lock around the read and the write makes the pair
 * indivisible: the other thread waits until the write is done.
 */

import process from "node:process";
import { Barrier, isMainThread, Lock, SharedValue, Thread } from "../mod.ts";

/** The seed's `num += 1` loop, with no lock: updates race and get lost. */
export function addUnlocked(counter: SharedValue<"i">, start: Barrier, n: number): void {
  start.waitSync(); // both threads begin together, so they really overlap
  for (let i = 0; i < n; i++) {
    counter.value += 1; // read, add, write: another thread may write in between
  }
}

/** The fix: the read and the write happen under the lock, so none is lost. */
export function addLocked(counter: SharedValue<"i">, start: Barrier, n: number): void {
  const lock = counter.getLock();
  start.waitSync();
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    counter.value += 1;
    lock.release();
  }
}

/** Runs `target` in two threads over a fresh counter; returns the final count. */
export async function race(
  target: typeof addUnlocked,
  n: number,
  options: { lock: boolean | Lock },
): Promise<number> {
  const counter = new SharedValue("i", 0, options);
  const start = new Barrier(2);
  const threads = [1, 2].map((k) =>
    new Thread({ target, args: [counter, start, n], module: import.meta.url, name: `r${k}` })
  );
  for (const t of threads) t.start();
  for (const t of threads) await t.join();
  return counter.value;
}

if (isMainThread) {
  const arg = Number(process.argv[process.argv.length - 1]);
  const n = Number.isInteger(arg) && arg > 0 ? arg : 1_000_000;
  const expected = 2 * n;

  const unlocked = await race(addUnlocked, n, { lock: false });
  console.log(`expected: ${expected}`);
  console.log(`without a lock: ${unlocked} (${expected - unlocked} updates lost)`);

  const locked = await race(addLocked, n, { lock: new Lock() });
  console.log(`with a Lock: ${locked}`);
}
