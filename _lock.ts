// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Lock` and `RLock`: one lock word each, taken through the shared slow
 * path of `_gate.ts`.
 *
 * Layout (`Int32Array` over 16 bytes):
 *
 * | index     | written by                         | meaning                                            |
 * |-----------|------------------------------------|----------------------------------------------------|
 * | `WORD`    | acquirers and releasers (CAS)      | `owner | PARKED | STARVING`: the lock word (below) |
 * | `WAITERS` | waiters (see `_gate.ts`)           | parked waiters                                     |
 * | `STARVER` | one waiter (see `_gate.ts`)        | the starving waiter's ident                        |
 * | `COUNT`   | `RLock` only: the owner, plain     | recursion depth                                    |
 *
 * The lock word: bits 0–29 hold the ident of the thread that acquired it
 * (0 when free); `PARKED` says some waiter may sleep, so the release must
 * notify; `STARVING` says a starving waiter has priority, so a free lock
 * reads `STARVING` (not 0) and the one-CAS fast path of other threads
 * fails. Uncontended, acquire is CAS 0 → ident and release CAS ident → 0:
 * two atomic operations. Any other release clears the owner and `PARKED`
 * (keeping `STARVING`) with a CAS loop and notifies when `PARKED` was set.
 * A waiter that finds the owner's thread dead CASes the word over to itself.
 *
 * `COUNT` is read and written only by the owner; the next owner sees it
 * through the release's and the acquire's `Atomics` operations on `WORD`.
 *
 * `Condition` reaches a lock's state only through the static member keyed
 * by {@linkcode lockInternals}, a symbol this module exports and `sync.ts`
 * does not (one object per class, so no instance pays for it).
 *
 * @module
 */

import { registerHandler } from "./_handles.ts";
import { isIdentAlive, selfIdent } from "./_registry.ts";
import { assertCanBlock, notify } from "./_wait.ts";
import {
  type Acquired,
  type AcquireOptions,
  acquireOptions,
  type AcquireResult,
  FAILED,
  type Gate,
  otherStarver,
  RECOVERED,
  scoped,
  scopedSync,
  slowAsync,
  slowSync,
  STARVER,
  throwIfAborted,
  WAITERS,
  WORD,
} from "./_gate.ts";

const LOCK_BYTES = 16;
const OWNER = 0x3fff_ffff;
const PARKED = 1 << 30;
const STARVING = 1 << 31;
const COUNT = 3;

/**
 * Key of the static member of `Lock` and `RLock` that gives `Condition`
 * what it needs of a lock beyond the public API.
 */
export const lockInternals: unique symbol = Symbol("@mpjs/multiprocessing lockInternals");

/** What `Condition` needs of its lock (see {@linkcode lockInternals}). */
export interface LockInternals<L> {
  /** Whether the calling thread holds `lock`. */
  owned(lock: L): boolean;
  /** Leaves `lock` entirely (an `RLock` at any depth); returns the depth to restore. */
  releaseAll(lock: L): number;
  /**
   * Takes `lock` back at `depth`, waiting without blocking. An `RLock` is
   * taken only once it is free, even when this thread holds it: the waiters
   * of a `Condition` in one thread (async tasks) must not all return inside
   * the lock at once through re-entry.
   */
  retake(lock: L, depth: number): Promise<void>;
  /** Takes `lock` back at `depth`, blocking the thread. */
  retakeSync(lock: L, depth: number): void;
}

function lockGate(cell: Int32Array): Gate {
  return {
    cell,
    take(me, eager) {
      const v = Atomics.load(cell, WORD);
      if ((v & OWNER) !== 0) return false;
      const other = (v & STARVING) !== 0 && otherStarver(cell, me);
      if (other && !eager) return false;
      // Taking clears STARVING when we are the starver or it is gone, and
      // keeps it for another live one; keep PARKED while others sleep, so
      // that our release wakes one.
      const next = me | (Atomics.load(cell, WAITERS) > 0 ? PARKED : 0) | (other ? STARVING : 0);
      if (Atomics.compareExchange(cell, WORD, v, next) !== v) return false;
      if ((v & STARVING) !== 0 && !other) Atomics.store(cell, STARVER, 0);
      return true;
    },
    recover(me) {
      const v = Atomics.load(cell, WORD);
      const owner = v & OWNER;
      if (owner === 0 || isIdentAlive(owner)) return false;
      return Atomics.compareExchange(cell, WORD, v, me | (v & (PARKED | STARVING))) === v;
    },
    starve(me) {
      if (Atomics.compareExchange(cell, STARVER, 0, me) !== 0) return false;
      Atomics.or(cell, WORD, STARVING);
      return true;
    },
    unstarve(me) {
      if (Atomics.compareExchange(cell, STARVER, me, 0) !== me) return;
      Atomics.and(cell, WORD, ~STARVING);
      if (Atomics.load(cell, WAITERS) > 0) notify(cell, WORD);
    },
    parkValue(me) {
      for (;;) {
        const v = Atomics.load(cell, WORD);
        const free = (v & OWNER) === 0 && ((v & STARVING) === 0 || !otherStarver(cell, me));
        if (free) return undefined;
        if (v & PARKED) return v;
        if (Atomics.compareExchange(cell, WORD, v, v | PARKED) === v) return v | PARKED;
      }
    },
  };
}

/**
 * Releases a lock word whose fast path (CAS ident → 0) failed: another
 * thread releases, or a waiter is parked, or one is starving.
 *
 * @returns `false` when the lock was not held.
 */
function releaseWord(cell: Int32Array): boolean {
  for (;;) {
    const v = Atomics.load(cell, WORD);
    if ((v & OWNER) === 0) return false;
    if (Atomics.compareExchange(cell, WORD, v, v & STARVING) === v) {
      if (v & PARKED) notify(cell, WORD, v & STARVING ? Infinity : 1);
      return true;
    }
  }
}

/** The ident of the thread holding the lock, 0 when free (a snapshot). */
function ownerOf(cell: Int32Array): number {
  return Atomics.load(cell, WORD) & OWNER;
}

/** `<Name(owner=1…)>` or `<Name(unlocked)>`; `more` adds to the owner's part. */
function describe(name: string, cell: Int32Array, more = ""): string {
  const owner = ownerOf(cell);
  return owner === 0 ? `<${name}(unlocked)>` : `<${name}(owner=${owner}${more})>`;
}

/**
 * Python's `multiprocessing.Lock`: a non-recursive mutual-exclusion lock
 * shared between threads. Any thread may release it (as in Python); a thread
 * that acquires it twice without releasing waits for itself.
 *
 * Scoped use: `using _ = lock.scopedSync()` or
 * `await using _ = await lock.scoped()` holds the lock until the end of the
 * block, even when it throws.
 *
 * If the thread that acquired the lock ends while holding it, the next
 * acquirer gets it and {@linkcode Lock.ownerDied} reads `true`. A lock
 * acquired in one thread and meant to be released by another after the
 * first one ended counts as abandoned too.
 *
 * @example Mutual exclusion in a using block
 * ```ts
 * import { Lock } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const lock = new Lock();
 * {
 *   using _ = lock.scopedSync();
 *   assert.equal(lock.locked(), true);
 *   assert.equal(lock.acquireSync({ block: false }), false);
 * }
 * assert.equal(lock.locked(), false);
 * ```
 */
export class Lock {
  #cell: Int32Array;
  #gate: Gate;
  #ownerDied = false;

  /**
   * For `Condition` only (see `lockInternals`).
   * @ignore
   * @internal
   */
  static readonly [lockInternals]: LockInternals<Lock> = {
    owned: (lock) => ownerOf(lock.#cell) === selfIdent(),
    releaseAll: (lock) => {
      lock.release();
      return 1;
    },
    retake: async (lock) => {
      await lock.acquire();
    },
    retakeSync: (lock) => {
      lock.acquireSync();
    },
  };

  static {
    registerHandler<Lock, SharedArrayBuffer>({
      tag: "Lock",
      canHandle: (v): v is Lock => v instanceof Lock,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => new Lock().#attach(buffer),
    });
  }

  /** Creates an unlocked lock. */
  constructor() {
    this.#cell = new Int32Array(new SharedArrayBuffer(LOCK_BYTES));
    this.#gate = lockGate(this.#cell);
  }

  #attach(buffer: SharedArrayBuffer): this {
    this.#cell = new Int32Array(buffer);
    this.#gate = lockGate(this.#cell);
    return this;
  }

  /**
   * Whether the last successful acquire made through this object took the
   * lock over from a thread that ended while holding it (so the data it
   * guards may be half updated). Reset by the next successful acquire.
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /**
   * Acquires the lock, waiting without blocking the event loop.
   *
   * @param options `block`, `timeout` (ms) and `signal`.
   * @returns `true` once acquired; `false` when `timeout` passed or `block`
   *   is `false` and the lock is held. Rejects with `RangeError`/`TypeError`
   *   for bad options and with `signal.reason` when aborted.
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * assert.equal(await lock.acquire(), true);
   * assert.equal(await lock.acquire({ timeout: 10 }), false);
   * lock.release();
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const { ms, signal } = acquireOptions(options, "Lock.acquire()");
    throwIfAborted(signal);
    if (Atomics.compareExchange(this.#cell, WORD, 0, selfIdent()) === 0) {
      this.#ownerDied = false;
      return true;
    }
    return this.#done(await slowAsync(this.#gate, ms, signal));
  }

  /**
   * The blocking twin of {@linkcode Lock.acquire}.
   *
   * @param options `block` and `timeout` (ms).
   * @returns `true` once acquired, `false` on timeout or when not blocking.
   * @throws {RangeError} when `timeout` is invalid (a valid one is ignored with `block: false`).
   * @throws {TypeError} when `options` is not an object or `block` is not a boolean.
   * @throws {Error} on a thread that may not block (a browser's main thread).
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * assert.equal(lock.acquireSync(), true);
   * assert.equal(lock.acquireSync({ block: false }), false);
   * lock.release();
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    const ms = options === undefined ? Infinity : acquireOptions(options, "Lock.acquireSync()").ms;
    if (Atomics.compareExchange(this.#cell, WORD, 0, selfIdent()) === 0) {
      this.#ownerDied = false;
      return true;
    }
    if (ms !== 0) assertCanBlock("Lock.acquireSync()");
    return this.#done(slowSync(this.#gate, ms));
  }

  #done(result: AcquireResult): boolean {
    if (result === FAILED) return false;
    this.#ownerDied = result === RECOVERED;
    return true;
  }

  /**
   * Releases the lock. Any thread may release it.
   *
   * @throws {Error} when the lock is not locked.
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * assert.throws(() => lock.release(), /unlocked lock/);
   * ```
   */
  release(): void {
    const cell = this.#cell;
    if (Atomics.compareExchange(cell, WORD, selfIdent(), 0) === selfIdent()) return;
    if (!releaseWord(cell)) throw new Error("Cannot release an unlocked lock");
  }

  /**
   * Whether the lock is held by some thread (a snapshot).
   *
   * @returns `true` when held.
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * assert.equal(lock.locked(), false);
   * ```
   */
  locked(): boolean {
    return ownerOf(this.#cell) !== 0;
  }

  /**
   * Acquires the lock and returns a handle that releases it when disposed:
   * `await using _ = await lock.scoped()`.
   *
   * @param options As for {@linkcode Lock.acquire}.
   * @returns The held lock; rejects with `TimeoutError` when not acquired
   *   in time (or at once with `block: false`).
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * {
   *   await using held = await lock.scoped();
   *   assert.equal(held.ownerDied, false);
   *   assert.equal(lock.locked(), true);
   * }
   * assert.equal(lock.locked(), false);
   * ```
   */
  scoped(options?: AcquireOptions): Promise<Acquired> {
    return scoped(this, "the lock", options);
  }

  /**
   * The blocking twin of {@linkcode Lock.scoped}: `using _ = lock.scopedSync()`.
   *
   * @param options As for {@linkcode Lock.acquireSync}.
   * @returns The held lock.
   * @throws {TimeoutError} when not acquired in time.
   *
   * @example
   * ```ts
   * import { Lock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const lock = new Lock();
   * function critical(): number {
   *   using _ = lock.scopedSync();
   *   return 42;
   * }
   * assert.equal(critical(), 42);
   * assert.equal(lock.locked(), false);
   * ```
   */
  scopedSync(options?: AcquireOptions): Acquired {
    return scopedSync(this, "the lock", options);
  }

  /** `<Lock(owner=1)>` or `<Lock(unlocked)>`. */
  toString(): string {
    return describe("Lock", this.#cell);
  }
}

/**
 * Python's `multiprocessing.RLock`: a lock that the thread holding it may
 * acquire again; it is released when `release()` has been called as many
 * times as `acquire()`. Only the owning thread may release it.
 *
 * Ownership is per thread: async functions running in the same thread share
 * it. An owner that ends while holding it is handled as for
 * {@linkcode Lock}: the next acquirer gets it with `ownerDied` set.
 *
 * @example Re-entering
 * ```ts
 * import { RLock } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const rlock = new RLock();
 * rlock.acquireSync();
 * rlock.acquireSync();
 * rlock.release();
 * assert.equal(rlock.locked(), true);
 * rlock.release();
 * assert.equal(rlock.locked(), false);
 * ```
 */
export class RLock {
  #cell: Int32Array;
  #gate: Gate;
  #ownerDied = false;

  /**
   * For `Condition` only (see `lockInternals`).
   * @ignore
   * @internal
   */
  static readonly [lockInternals]: LockInternals<RLock> = {
    owned: (lock) => ownerOf(lock.#cell) === selfIdent(),
    releaseAll: (lock) => {
      const depth = lock.#cell[COUNT];
      lock.#cell[COUNT] = 1;
      lock.release();
      return depth;
    },
    retake: async (lock, depth) => {
      const result = await slowAsync(lock.#gate, Infinity, undefined);
      lock.#cell[COUNT] = depth;
      lock.#ownerDied = result === RECOVERED;
    },
    retakeSync: (lock, depth) => {
      lock.acquireSync();
      lock.#cell[COUNT] = depth;
    },
  };

  static {
    registerHandler<RLock, SharedArrayBuffer>({
      tag: "RLock",
      canHandle: (v): v is RLock => v instanceof RLock,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => new RLock().#attach(buffer),
    });
  }

  /** Creates an unlocked re-entrant lock. */
  constructor() {
    this.#cell = new Int32Array(new SharedArrayBuffer(LOCK_BYTES));
    this.#gate = lockGate(this.#cell);
  }

  #attach(buffer: SharedArrayBuffer): this {
    this.#cell = new Int32Array(buffer);
    this.#gate = lockGate(this.#cell);
    return this;
  }

  /**
   * Whether the last acquire made through this object that took the lock
   * (not a re-entry) took it over from a thread that ended holding it.
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /**
   * Acquires the lock, or enters it again when this thread holds it.
   *
   * @param options `block`, `timeout` (ms) and `signal`.
   * @returns `true` once held; `false` on timeout / when not blocking.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const rlock = new RLock();
   * assert.equal(await rlock.acquire(), true);
   * assert.equal(await rlock.acquire({ block: false }), true);
   * rlock.release();
   * rlock.release();
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const { ms, signal } = acquireOptions(options, "RLock.acquire()");
    throwIfAborted(signal);
    if (this.#fast()) return true;
    return this.#done(await slowAsync(this.#gate, ms, signal));
  }

  /**
   * The blocking twin of {@linkcode RLock.acquire}.
   *
   * @param options `block` and `timeout` (ms).
   * @returns `true` once held; `false` on timeout / when not blocking.
   * @throws {RangeError} when `timeout` is invalid.
   * @throws {TypeError} when `options` is not an object or `block` is not a boolean.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const rlock = new RLock();
   * assert.equal(rlock.acquireSync({ timeout: 5 }), true);
   * rlock.release();
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    const ms = acquireOptions(options, "RLock.acquireSync()").ms;
    if (this.#fast()) return true;
    if (ms !== 0) assertCanBlock("RLock.acquireSync()");
    return this.#done(slowSync(this.#gate, ms));
  }

  #fast(): boolean {
    const cell = this.#cell;
    const me = selfIdent();
    const v = Atomics.compareExchange(cell, WORD, 0, me);
    if (v === 0) {
      cell[COUNT] = 1;
      this.#ownerDied = false;
      return true;
    }
    if ((v & OWNER) === me) {
      cell[COUNT]++;
      return true;
    }
    return false;
  }

  #done(result: AcquireResult): boolean {
    if (result === FAILED) return false;
    this.#cell[COUNT] = 1;
    this.#ownerDied = result === RECOVERED;
    return true;
  }

  /**
   * Leaves the lock once; frees it when every acquire has been matched.
   *
   * @throws {Error} when the calling thread does not hold the lock.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.throws(() => new RLock().release(), /un-acquired/);
   * ```
   */
  release(): void {
    const cell = this.#cell;
    const me = selfIdent();
    if ((Atomics.load(cell, WORD) & OWNER) !== me) throw new Error("Cannot release an un-acquired lock");
    if (--cell[COUNT] > 0) return;
    if (Atomics.compareExchange(cell, WORD, me, 0) !== me) releaseWord(cell);
  }

  /**
   * Whether some thread holds the lock (a snapshot).
   *
   * @returns `true` when held.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new RLock().locked(), false);
   * ```
   */
  locked(): boolean {
    return ownerOf(this.#cell) !== 0;
  }

  /**
   * Acquires and returns a handle that releases once when disposed
   * (`await using _ = await rlock.scoped()`).
   *
   * @param options As for {@linkcode RLock.acquire}.
   * @returns The held lock; rejects with `TimeoutError` when not acquired in time.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const rlock = new RLock();
   * {
   *   await using _outer = await rlock.scoped();
   *   await using _inner = await rlock.scoped();
   * }
   * assert.equal(rlock.locked(), false);
   * ```
   */
  scoped(options?: AcquireOptions): Promise<Acquired> {
    return scoped(this, "the lock", options);
  }

  /**
   * The blocking twin of {@linkcode RLock.scoped}.
   *
   * @param options As for {@linkcode RLock.acquireSync}.
   * @returns The held lock.
   * @throws {TimeoutError} when not acquired in time.
   *
   * @example
   * ```ts
   * import { RLock } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const rlock = new RLock();
   * {
   *   using _ = rlock.scopedSync();
   *   assert.equal(rlock.locked(), true);
   * }
   * assert.equal(rlock.locked(), false);
   * ```
   */
  scopedSync(options?: AcquireOptions): Acquired {
    return scopedSync(this, "the lock", options);
  }

  /** `<RLock(owner=1, count=2)>` or `<RLock(unlocked)>`. */
  toString(): string {
    return describe("RLock", this.#cell, `, count=${this.#cell[COUNT]}`);
  }
}
