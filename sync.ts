// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Synchronization primitives shared between threads: Python's `Lock`,
 * `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition` and
 * `Barrier`, each a few words of a `SharedArrayBuffer` driven by `Atomics`.
 *
 * Every waiting method comes in two forms: a Promise (`acquire`, `wait`)
 * that never blocks the event loop, and a blocking `Sync` twin
 * (`acquireSync`, `waitSync`) for workers and server main threads. Pass a
 * primitive in a `Thread`'s `args` to share it; the worker gets a working
 * copy over the same memory.
 *
 * **Owner death.** A thread that ends (terminated, crashed or returned)
 * while it holds a `Lock`, an `RLock` or a `Semaphore` permit does not wedge
 * the others: the next acquirer takes the primitive over, and its
 * `ownerDied` property reads `true` until its next acquire, so it can repair
 * whatever the dead owner left half done (Python would wait for ever).
 *
 * **Scoped use.** `using _ = lock.scopedSync()` (or
 * `await using _ = await lock.scoped()`) holds a lock, semaphore permit or
 * condition's lock until the end of the block, even when it throws; the
 * scoped forms throw `TimeoutError` when `timeout` passes (a `using`
 * declaration cannot hold "not acquired"). The returned handle's
 * `ownerDied` tells whether that acquire recovered the primitive.
 *
 * **Owner death, details.** Waiters check every 50 ms whether the owner is
 * still alive, so recovery takes at most that long. A permit taken from a
 * `Semaphore` counts as held by the taking thread until that thread
 * releases; the permits of a thread that dies come back once, whatever
 * instruction it stopped at, and recovery never raises the count above the
 * initial value, so permits consumed as signals (`Semaphore(0)` released by
 * another thread) are not handed out again.
 *
 * **Fairness.** Locks and semaphores let a running thread take a free
 * primitive at once (cheap and fast), but a waiter that has waited for more
 * than a few milliseconds marks itself as starving; from then on newcomers
 * stand back until it has been served, so no waiter starves under steady
 * contention.
 *
 * **Where things live.** This module only re-exports; each primitive sits
 * in a private file with its shared-memory layout and correctness argument:
 *
 * | file            | holds                                                                       |
 * |-----------------|-----------------------------------------------------------------------------|
 * | `_gate.ts`      | `AcquireOptions`, `WaitOptions`, `Acquired`; the slow path of every acquire |
 * | `_lock.ts`      | `Lock`, `RLock`                                                             |
 * | `_semaphore.ts` | `Semaphore`, `BoundedSemaphore` (holder records, permit recovery)           |
 * | `_event.ts`     | `Event`                                                                     |
 * | `_condition.ts` | `Condition`, `ConditionLock`                                                |
 * | `_barrier.ts`   | `Barrier`, `BarrierOptions`                                                 |
 *
 * @example Share a lock with a thread
 * ```ts
 * import * as mp from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const lock = new mp.Lock();
 * const t = new mp.Thread({
 *   target: (lock: mp.Lock) => {
 *     lock.acquireSync();
 *     lock.release();
 *   },
 *   args: [lock],
 * });
 * await lock.acquire();
 * t.start();
 * lock.release();
 * await t.join();
 * assert.equal(t.exitCode, 0);
 * assert.equal(lock.locked(), false);
 * ```
 *
 * @module
 */

export type { Acquired, AcquireOptions, WaitOptions } from "./_gate.ts";
export { Lock, RLock } from "./_lock.ts";
export { BoundedSemaphore, Semaphore } from "./_semaphore.ts";
export { Event } from "./_event.ts";
export { Condition, type ConditionLock } from "./_condition.ts";
export { Barrier, type BarrierOptions } from "./_barrier.ts";
