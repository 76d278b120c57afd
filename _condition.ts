// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Condition`: threads wait, with a lock held, until notified. The lock is
 * a `Lock` or `RLock`, reached beyond its public API only through
 * `lockInternals` (`_lock.ts`).
 *
 * Layout (besides the lock's own words), an `Int32Array`:
 *
 * | index                 | written by                        | meaning                                  |
 * |-----------------------|-----------------------------------|------------------------------------------|
 * | `TICKETS`             | waiters, lock held                | tickets handed out (FIFO order)          |
 * | `NWAIT`               | waiters / notifiers (add, sub)    | slots in `WAITING` state                 |
 * | `SLOT + 3k` (`STATE`) | see below                         | `FREE`, `CLAIMED`, `WAITING`, `NOTIFIED` |
 * | `SLOT + 3k + 1`       | the waiter, before `WAITING`      | the waiter's thread ident                |
 * | `SLOT + 3k + 2`       | the waiter, before `WAITING`      | the waiter's ticket                      |
 *
 * As in CPython, every waiter has its own wake-up word: while holding the
 * lock it claims a free slot (CAS `FREE` → `CLAIMED`, fills ident and
 * ticket, then stores `WAITING`), releases the lock and parks on its slot's
 * `STATE`. `notify(n)` (lock held) picks the `n` waiting slots with the
 * lowest tickets, CASes each `WAITING` → `NOTIFIED` and wakes that one word:
 * exactly `n` waiters wake, oldest first, and a thread that starts waiting
 * later cannot take their wake-up. A waiter whose time is up CASes its slot
 * `WAITING` → `FREE`; if that fails it was notified meanwhile and returns
 * `true`. Slots of waiters whose thread died are freed by the notifier.
 *
 * @module
 */

import { pack, registerHandler, unpack } from "./_handles.ts";
import { isIdentAlive, selfIdent } from "./_registry.ts";
import { assertCanBlock, notify, now, waitAsync, waitSync } from "./_wait.ts";
import { checkInteger, show } from "./_options.ts";
import { type Acquired, type AcquireOptions, throwIfAborted, waitArgs, type WaitOptions } from "./_gate.ts";
import { Lock, type LockInternals, lockInternals, RLock } from "./_lock.ts";

const TICKETS = 0;
const NWAIT = 1;
const SLOT = 4;
/** How many threads (or async waits) can wait on one Condition at once. */
const N_SLOTS = 256;
const FREE = 0;
const WAITING = 1;
const NOTIFIED = 2;
const CLAIMED = 3;
const COND_BYTES = (SLOT + 3 * N_SLOTS) * 4;

/**
 * The locks a `Condition` can use.
 *
 * @example
 * ```ts
 * import { Condition, RLock, type ConditionLock } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const lock: ConditionLock = new RLock();
 * const cond = new Condition(lock);
 * assert.equal(cond.acquireSync(), true);
 * cond.release();
 * ```
 */
export type ConditionLock = Lock | RLock;

/**
 * Python's `multiprocessing.Condition`: lets threads wait, with a lock held,
 * until another thread notifies them. The default lock is an
 * {@linkcode RLock}. Waiters are woken oldest first; up to 256 threads (or
 * async waits) can wait on one condition at once, and one more throws.
 * Async waits in one thread come back from `wait()` one at a time: each
 * takes the lock back only once it is free, also an `RLock` that the same
 * thread holds (its async tasks share the ownership of an `RLock`).
 *
 * @example Producer and consumer
 * ```ts
 * import { Condition } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const cond = new Condition();
 * const items: number[] = [];
 * setTimeout(async () => {
 *   await cond.acquire();
 *   items.push(1);
 *   cond.notify();
 *   cond.release();
 * }, 10);
 * await cond.acquire();
 * assert.equal(await cond.waitFor(() => items.length > 0, 1000), true);
 * cond.release();
 * ```
 */
export class Condition {
  #cell: Int32Array;
  #lock: ConditionLock;
  #internals: LockInternals<ConditionLock>;

  static {
    registerHandler<Condition, { buffer: SharedArrayBuffer; lock: unknown }>({
      tag: "Condition",
      canHandle: (v): v is Condition => v instanceof Condition,
      serialize: (v, path) => ({
        buffer: v.#cell.buffer as SharedArrayBuffer,
        lock: pack(v.#lock, `${path}.lock`).data,
      }),
      deserialize: (data) => Condition.#rebuild(data.buffer, unpack(data.lock, true) as ConditionLock),
    });
  }

  static #rebuild(buffer: SharedArrayBuffer, lock: ConditionLock): Condition {
    const c = new Condition(lock);
    c.#cell = new Int32Array(buffer);
    return c;
  }

  /**
   * Creates a condition variable over `lock`.
   *
   * @param lock The lock to use, a {@linkcode Lock} or {@linkcode RLock}.
   *   @default {new RLock()}
   * @throws {TypeError} when `lock` is not a `Lock` or `RLock`.
   */
  constructor(lock?: ConditionLock) {
    if (lock !== undefined && !(lock instanceof Lock) && !(lock instanceof RLock)) {
      throw new TypeError(
        `Cannot create Condition as 'lock' must be a Lock or an RLock: current value is ${show(lock)}`,
      );
    }
    this.#lock = lock ?? new RLock();
    this.#internals = this.#lock instanceof RLock ? RLock[lockInternals] : Lock[lockInternals];
    this.#cell = new Int32Array(new SharedArrayBuffer(COND_BYTES));
  }

  /**
   * Acquires the underlying lock.
   *
   * @param options As for `Lock.acquire`.
   * @returns `true` once held, `false` on timeout.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * assert.equal(await cond.acquire(), true);
   * cond.release();
   * ```
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /**
   * The blocking twin of {@linkcode Condition.acquire}.
   *
   * @param options As for `Lock.acquireSync`.
   * @returns `true` once held, `false` on timeout.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * assert.equal(cond.acquireSync(), true);
   * cond.release();
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#lock.acquireSync(options);
  }

  /**
   * Releases the underlying lock.
   *
   * @throws {Error} as the lock's `release()` does.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.throws(() => new Condition().release(), Error);
   * ```
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Acquires the lock until the returned handle is disposed
   * (`await using _ = await cond.scoped()`).
   *
   * @param options As for `Lock.acquire`.
   * @returns The held lock; rejects with `TimeoutError` when not acquired in time.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * {
   *   await using _ = await cond.scoped();
   *   cond.notifyAll();
   * }
   * assert.throws(() => cond.notify(), /un-acquired/);
   * ```
   */
  scoped(options?: AcquireOptions): Promise<Acquired> {
    return this.#lock.scoped(options);
  }

  /**
   * The blocking twin of {@linkcode Condition.scoped}.
   *
   * @param options As for `Lock.acquireSync`.
   * @returns The held lock.
   * @throws {TimeoutError} when not acquired in time.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * {
   *   using _ = cond.scopedSync();
   *   assert.equal(cond.waitSync(1), false);
   * }
   * ```
   */
  scopedSync(options?: AcquireOptions): Acquired {
    return this.#lock.scopedSync(options);
  }

  /** Claims a wait slot (lock held): its `STATE` index. */
  #enter(what: string): number {
    if (!this.#internals.owned(this.#lock)) throw new Error(`Cannot ${what} on an un-acquired lock`);
    const cell = this.#cell;
    for (let at = SLOT; at < SLOT + 3 * N_SLOTS; at += 3) {
      if (Atomics.compareExchange(cell, at, FREE, CLAIMED) !== FREE) continue;
      Atomics.store(cell, at + 1, selfIdent());
      Atomics.store(cell, at + 2, Atomics.add(cell, TICKETS, 1));
      Atomics.add(cell, NWAIT, 1);
      Atomics.store(cell, at, WAITING);
      return at;
    }
    throw new Error(`Cannot ${what}: more than ${N_SLOTS} waiters on one Condition`);
  }

  /** Leaves the slot: `true` when it was notified (also when that raced with a timeout). */
  #leave(at: number): boolean {
    const cell = this.#cell;
    if (Atomics.compareExchange(cell, at, WAITING, FREE) === WAITING) {
      Atomics.sub(cell, NWAIT, 1);
      return false;
    }
    Atomics.store(cell, at, FREE); // NOTIFIED: the notifier already counted us out
    return true;
  }

  /**
   * Releases the lock, waits until notified (or `timeout` passes), then
   * re-acquires the lock before returning, as Python's `Condition.wait`.
   *
   * @param timeout Milliseconds, or `{ timeout, signal }`; no limit when omitted.
   * @returns `true` when notified, `false` when `timeout` passed. Rejects
   *   with `Error` when the calling thread does not hold the lock; after an
   *   abort the lock is held again before the Promise rejects.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * await cond.acquire();
   * assert.equal(await cond.wait(5), false);
   * cond.release();
   * ```
   */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const { ms, signal } = waitArgs(timeout, "Condition.wait()");
    throwIfAborted(signal);
    const at = this.#enter("wait");
    const depth = this.#internals.releaseAll(this.#lock);
    const cell = this.#cell;
    const end = now() + ms;
    try {
      for (;;) {
        if (Atomics.load(cell, at) !== WAITING) break;
        const left = end - now();
        if (left <= 0) break;
        await waitAsync(cell, at, WAITING, left, signal);
      }
    } catch (error) {
      // Aborted: leave; a notification that raced with the abort goes to another waiter.
      const notified = this.#leave(at);
      await this.#internals.retake(this.#lock, depth);
      if (notified) this.notify(1);
      throw error;
    }
    const notified = this.#leave(at);
    await this.#internals.retake(this.#lock, depth);
    return notified;
  }

  /**
   * The blocking twin of {@linkcode Condition.wait}.
   *
   * @param timeout Milliseconds; no limit when omitted.
   * @returns `true` when notified, `false` when `timeout` passed.
   * @throws {Error} when the calling thread does not hold the lock.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * cond.acquireSync();
   * assert.equal(cond.waitSync(5), false);
   * cond.release();
   * ```
   */
  waitSync(timeout?: number | Omit<WaitOptions, "signal">): boolean {
    const { ms } = waitArgs(timeout, "Condition.waitSync()");
    assertCanBlock("Condition.waitSync()");
    const at = this.#enter("wait");
    const depth = this.#internals.releaseAll(this.#lock);
    const cell = this.#cell;
    const end = now() + ms;
    let notified = false;
    try {
      for (;;) {
        if (Atomics.load(cell, at) !== WAITING) break;
        const left = end - now();
        if (left <= 0) break;
        waitSync(cell, at, WAITING, left);
      }
      notified = this.#leave(at);
    } finally {
      this.#internals.retakeSync(this.#lock, depth);
    }
    return notified;
  }

  /**
   * Waits until `predicate()` returns a truthy value, as Python's
   * `wait_for`: the predicate runs with the lock held, first before any wait.
   *
   * @param predicate Checked with the lock held (may return a Promise).
   * @param timeout Milliseconds for the whole wait, or `{ timeout, signal }`.
   * @returns The predicate's last result (falsy when time ran out).
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * await cond.acquire();
   * assert.equal(await cond.waitFor(() => 0, 5), 0);
   * cond.release();
   * ```
   */
  async waitFor<T>(predicate: () => T | Promise<T>, timeout?: number | WaitOptions): Promise<T> {
    if (typeof predicate !== "function") {
      throw new TypeError(
        `Cannot call Condition.waitFor() as 'predicate' must be a function: current value is ${show(predicate)}`,
      );
    }
    const { ms, signal } = waitArgs(timeout, "Condition.waitFor()");
    throwIfAborted(signal);
    const end = now() + ms;
    let result = await predicate();
    while (!result) {
      const left = end - now();
      if (left <= 0) break;
      await this.wait({ timeout: left === Infinity ? undefined : left, signal });
      result = await predicate();
    }
    return result;
  }

  /**
   * The blocking twin of {@linkcode Condition.waitFor}.
   *
   * @param predicate Checked with the lock held.
   * @param timeout Milliseconds for the whole wait.
   * @returns The predicate's last result.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * cond.acquireSync();
   * assert.equal(cond.waitForSync(() => "ready"), "ready");
   * cond.release();
   * ```
   */
  waitForSync<T>(predicate: () => T, timeout?: number | Omit<WaitOptions, "signal">): T {
    if (typeof predicate !== "function") {
      throw new TypeError(
        `Cannot call Condition.waitForSync() as 'predicate' must be a function: current value is ${show(predicate)}`,
      );
    }
    const { ms } = waitArgs(timeout, "Condition.waitForSync()");
    const end = now() + ms;
    let result = predicate();
    while (!result) {
      const left = end - now();
      if (left <= 0) break;
      this.waitSync(left === Infinity ? undefined : left);
      result = predicate();
    }
    return result;
  }

  /**
   * Wakes up to `n` waiting threads. The lock must be held.
   *
   * @param n How many, an integer ≥ 0.
   * @throws {Error} when the calling thread does not hold the lock.
   * @throws {RangeError} when `n` is not an integer ≥ 0.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const cond = new Condition();
   * assert.throws(() => cond.notify(), /un-acquired/);
   * ```
   */
  notify(n: number = 1): void {
    if (n !== Infinity) checkInteger(n, "notify Condition", "n", 0);
    if (!this.#internals.owned(this.#lock)) throw new Error("Cannot notify on an un-acquired lock");
    const cell = this.#cell;
    let left = n;
    while (left > 0) {
      const count = Atomics.load(cell, NWAIT);
      if (count <= 0) return;
      // The waiting slots, oldest ticket first (tickets wrap: compare by difference).
      const found: number[] = [];
      for (let at = SLOT; at < SLOT + 3 * N_SLOTS && found.length < count; at += 3) {
        if (Atomics.load(cell, at) !== WAITING) continue;
        const ident = Atomics.load(cell, at + 1);
        if (!isIdentAlive(ident)) {
          // Its thread died while waiting: free the slot.
          if (Atomics.compareExchange(cell, at, WAITING, FREE) === WAITING) Atomics.sub(cell, NWAIT, 1);
          continue;
        }
        found.push(at);
      }
      if (found.length === 0) return;
      if (left < found.length) found.sort((a, b) => (Atomics.load(cell, a + 2) - Atomics.load(cell, b + 2)) | 0);
      let woke = 0;
      for (const at of found) {
        if (woke === left) break;
        // A waiter that timed out meanwhile has freed its slot: the CAS fails, try the next.
        if (Atomics.compareExchange(cell, at, WAITING, NOTIFIED) !== WAITING) continue;
        Atomics.sub(cell, NWAIT, 1);
        notify(cell, at, 1);
        woke++;
      }
      if (woke === found.length || woke === left) return;
      left -= woke;
    }
  }

  /**
   * Wakes every waiting thread. The lock must be held.
   *
   * @throws {Error} when the calling thread does not hold the lock.
   *
   * @example
   * ```ts
   * import { Condition } from "@mpjs/multiprocessing";
   *
   * const cond = new Condition();
   * cond.acquireSync();
   * cond.notifyAll();
   * cond.release();
   * ```
   */
  notifyAll(): void {
    this.notify(Infinity);
  }

  /** `<Condition(<RLock(unlocked)>, 0)>`: the lock and the number of waiters. */
  toString(): string {
    return `<Condition(${this.#lock}, ${Atomics.load(this.#cell, NWAIT)})>`;
  }
}
