// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A thread killed while it holds a lock. In Python the lock would stay
 * held for ever and the next `acquire()` would hang; here the next acquirer
 * takes it over and `lock.ownerDied` tells it that the data the lock guards
 * may be half updated.
 *
 *     deno run -A examples/lock_owner_died.ts
 */

import { Event, isMainThread, Lock, SharedArray, Thread } from "../mod.ts";

/**
 * Moves 10 from account 0 to account 1, but stops half-way, holding the
 * lock, to wait for a reply that never comes, until it is killed.
 */
export async function transfer(lock: Lock, accounts: SharedArray<"i">, halfway: Event): Promise<void> {
  lock.acquireSync();
  accounts.set(0, accounts.get(0) - 10);
  halfway.set();
  await new Promise(() => setInterval(() => {}, 1000)); // never gets to credit account 1
}

if (isMainThread) {
  const lock = new Lock();
  const accounts = new SharedArray("i", [100, 100]);
  const halfway = new Event();
  const t = new Thread({ target: transfer, args: [lock, accounts, halfway], module: import.meta.url });
  t.start();
  await halfway.wait();
  console.log(`worker holds the lock: ${lock.locked()}`);
  await t.terminate();
  console.log("worker terminated while holding the lock");

  await lock.acquire(); // does not hang
  console.log(`acquired; previous owner died: ${lock.ownerDied}`);
  if (lock.ownerDied) {
    // Repair: the total must be 200; give back what the dead transfer took.
    const missing = 200 - (accounts.get(0) + accounts.get(1));
    accounts.set(0, accounts.get(0) + missing);
    console.log(`repaired ${missing} lost in the half-done transfer`);
  }
  console.log(`accounts: ${accounts.toArray().join(", ")}`);
  lock.release();
}
