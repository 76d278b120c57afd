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

import { BrokenBarrierError, TimeoutError } from "./errors.ts";
import { pack, registerHandler, unpack } from "./_handles.ts";
import { DEATHS, isIdentAlive, registryCells, selfIdent } from "./_registry.ts";
import { canBlock } from "./_runtime.ts";
import {
  assertCanBlock,
  notify,
  now,
  parkAsync,
  parkSync,
  SEMAPHORE_TAG_SPIN as TAG_SPIN,
  SLICE,
  spin,
  waitAsync,
  waitSync,
} from "./_wait.ts";
import { checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";

// ---------------------------------------------------------------------------
// Options and shared helpers
// ---------------------------------------------------------------------------

/**
 * Options for `acquire` / `acquireSync` of locks and semaphores.
 *
 * @example
 * ```ts
 * import { Lock, type AcquireOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const lock = new Lock();
 * const options: AcquireOptions = { timeout: 10 };
 * assert.equal(await lock.acquire(options), true);
 * assert.equal(await lock.acquire(options), false);
 * lock.release();
 * ```
 */
export interface AcquireOptions {
  /**
   * Wait for the primitive when it is not free. With `false`, return at once
   * (`timeout` is then ignored, as in Python's `multiprocessing`).
   * @default {true}
   */
  block?: boolean;
  /** How long to wait, in milliseconds (a finite number ≥ 0). @default {Infinity} */
  timeout?: number;
  /** Stops the wait: the Promise rejects with `signal.reason`, the primitive is not taken. */
  signal?: AbortSignal;
}

/**
 * Options for the waits of `Event`, `Condition` and `Barrier`.
 *
 * @example
 * ```ts
 * import { Event, type WaitOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const ev = new Event();
 * const options: WaitOptions = { timeout: 10 };
 * assert.equal(await ev.wait(options), false);
 * ```
 */
export interface WaitOptions {
  /** How long to wait, in milliseconds (a finite number ≥ 0). @default {Infinity} */
  timeout?: number;
  /** Stops the wait: the Promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * What the scoped forms (`scoped()`, `scopedSync()`) return: the primitive,
 * held until this object is disposed. Works with `using` and `await using`;
 * disposing twice releases once.
 *
 * @example
 * ```ts
 * import { Lock, type Acquired } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const lock = new Lock();
 * {
 *   using held: Acquired = lock.scopedSync();
 *   assert.equal(held.ownerDied, false);
 *   assert.equal(lock.locked(), true);
 * }
 * assert.equal(lock.locked(), false);
 * ```
 */
export interface Acquired extends Disposable, AsyncDisposable {
  /** Whether this acquire took the primitive over from a thread that died holding it. */
  readonly ownerDied: boolean;
  /** Releases now (what leaving the `using` scope does); later calls do nothing. */
  release(): void;
}

/** How long a waiter waits before it claims priority (ms). */
const STARVE_MS = 2;

/** How an acquire ended. */
const FAILED = 0;
const TOOK = 1;
const RECOVERED = 2;

/** Reads `{ block, timeout, signal }`: the wait in ms (0 for `block: false`) and the signal. */
function acquireOptions(options: AcquireOptions | undefined, what: string): { ms: number; signal?: AbortSignal } {
  const checked = checkOptions<AcquireOptions>(options, what, false, "call ");
  if (checked === undefined) return { ms: Infinity };
  const ms = checkTimeout(checked.timeout, what);
  const signal = checkSignal(checked.signal, what, "call ");
  // As in Python's multiprocessing (and this library's queues), `block: false` ignores a (valid) timeout.
  return { ms: checked.block === false ? 0 : ms, signal };
}

/** Reads a `timeout` given as a number or as `{ timeout, signal }`. */
function waitArgs(arg: number | WaitOptions | undefined, what: string): { ms: number; signal?: AbortSignal } {
  if (typeof arg !== "object" || arg === null) return { ms: checkTimeout(arg as number | undefined, what) };
  return { ms: checkTimeout(arg.timeout, what), signal: checkSignal(arg.signal, what, "call ") };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

function makeAcquired(release: () => void, ownerDied: boolean): Acquired {
  let held = true;
  const done = () => {
    if (!held) return;
    held = false;
    release();
  };
  return {
    ownerDied,
    release: done,
    [Symbol.dispose]: done,
    [Symbol.asyncDispose]: () => {
      done();
      return Promise.resolve();
    },
  };
}

function scopeTimeout(what: string, options: AcquireOptions | undefined): TimeoutError {
  return new TimeoutError(
    options?.block === false
      ? `Cannot enter ${what}: it is held and 'block' is false`
      : `Cannot enter ${what}: not acquired within ${options?.timeout} ms`,
  );
}

// ---------------------------------------------------------------------------
// The acquire slow path shared by Lock, RLock and Semaphore
// ---------------------------------------------------------------------------

/**
 * Words every "gate" (lock, semaphore) has at the same indexes:
 *
 * | index     | written by                                  | meaning                                      |
 * |-----------|---------------------------------------------|----------------------------------------------|
 * | `WORD`    | acquirers and releasers (CAS / add)         | the futex word: lock state or permit count   |
 * | `WAITERS` | waiters, `Atomics.add`/`sub` around parking | how many threads are parked (or about to be) |
 * | `STARVER` | one waiter, CAS 0 → its ident               | a waiter that has waited too long            |
 *
 * A waiter first spins on `WORD` without being counted (a hand-off between
 * running threads then costs no system call), then adds itself to
 * `WAITERS`, re-reads `WORD` and parks only if it did not change. A
 * releaser writes `WORD` first and reads `WAITERS` (or, for locks, a
 * `PARKED` bit that waiters set in `WORD`) after: with sequentially
 * consistent atomics either the waiter sees the release or the releaser sees
 * the waiter and notifies. So `Atomics.notify` runs only when someone sleeps,
 * and it wakes one waiter per lock release or permit.
 *
 * Starvation: a waiter that has waited more than `STARVE_MS` records itself
 * in `STARVER` (one at a time); until it is served, other waiting threads
 * may not take the free primitive (a try that does not wait still may, as
 * in Python), and releases wake every parked waiter so that it
 * surely wakes (the futex queue's first waiter may be another one). A
 * starver that died is ignored.
 */
const WORD = 0;
const WAITERS = 1;
const STARVER = 2;

/** How a lock or semaphore is taken, for the shared slow path. */
interface Gate {
  readonly cell: Int32Array;
  /**
   * Takes the primitive if it is free and no one else is starving. With
   * `eager` (a try that will not wait: `block: false` or `timeout: 0`),
   * Python's rule instead: it fails only when the primitive is taken, so it
   * ignores a starver and waits out another thread's unfinished move.
   */
  take(me: number, eager: boolean): boolean;
  /** Takes it over from a dead owner; true when taken. */
  recover(me: number): boolean;
  /** Marks the caller as the starving waiter; true when it now is. */
  starve(me: number): boolean;
  /** Ends the caller's starving (served or gone) and wakes those who stood back. */
  unstarve(me: number): void;
  /**
   * With the caller counted in `WAITERS`: the value of `WORD` to park on,
   * or `undefined` when the primitive may be free (retry instead).
   */
  parkValue(me: number): number | undefined;
}

/** Whether `ident` is a starver that others must stand back for. */
function otherStarver(cell: Int32Array, me: number): boolean {
  const s = Atomics.load(cell, STARVER);
  if (s === 0 || s === me) return false;
  if (isIdentAlive(s)) return true;
  Atomics.compareExchange(cell, STARVER, s, 0);
  return false;
}

function slowSync(g: Gate, ms: number): number {
  const cell = g.cell;
  const me = selfIdent();
  const start = now();
  const end = start + ms;
  let starving = false;
  let result = FAILED;
  try {
    for (;;) {
      const w = Atomics.load(cell, WORD);
      if (g.take(me, ms === 0)) return result = TOOK;
      if (g.recover(me)) return result = RECOVERED;
      const t = now();
      if (t >= end) return FAILED;
      if (!starving && t - start >= STARVE_MS) starving = g.starve(me);
      if (spin(cell, WORD, w)) continue;
      Atomics.add(cell, WAITERS, 1);
      const v = g.parkValue(me);
      if (v !== undefined) parkSync(cell, WORD, v, Math.max(0, Math.min(end - now(), SLICE)));
      Atomics.sub(cell, WAITERS, 1);
    }
  } finally {
    if (starving) g.unstarve(me);
    // A waiter woken for a release that it then did not use passes the
    // wake-up on, so no parked waiter sleeps beside a free primitive.
    if (result === FAILED && Atomics.load(cell, WAITERS) > 0) notify(cell, WORD, 1);
  }
}

async function slowAsync(g: Gate, ms: number, signal: AbortSignal | undefined): Promise<number> {
  const cell = g.cell;
  const me = selfIdent();
  const start = now();
  const end = start + ms;
  let starving = false;
  let result = FAILED;
  try {
    for (;;) {
      const w = Atomics.load(cell, WORD);
      if (g.take(me, ms === 0)) return result = TOOK;
      if (g.recover(me)) return result = RECOVERED;
      const t = now();
      if (t >= end) return FAILED;
      if (!starving && t - start >= STARVE_MS) starving = g.starve(me);
      if (spin(cell, WORD, w, true)) continue;
      Atomics.add(cell, WAITERS, 1);
      try {
        const v = g.parkValue(me);
        if (v !== undefined) await parkAsync(cell, WORD, v, Math.max(0, Math.min(end - now(), SLICE)), signal);
      } finally {
        Atomics.sub(cell, WAITERS, 1);
      }
    }
  } finally {
    if (starving) g.unstarve(me);
    if (result === FAILED && Atomics.load(cell, WAITERS) > 0) notify(cell, WORD, 1);
  }
}

// ---------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------

/**
 * Layout of a `Lock` or `RLock` (`Int32Array` over 16 bytes):
 *
 * | index     | meaning                                                      |
 * |-----------|--------------------------------------------------------------|
 * | `WORD`    | `owner | PARKED | STARVING`: the lock word (below)           |
 * | `WAITERS` | parked waiters (see the gate table above)                    |
 * | `STARVER` | the starving waiter's ident (see the gate table above)       |
 * | `COUNT`   | `RLock` only: recursion depth, written by the owner only     |
 *
 * The lock word: bits 0–29 hold the ident of the thread that acquired it
 * (0 when free); `PARKED` says some waiter may sleep, so the release must
 * notify; `STARVING` says a starving waiter has priority, so a free lock
 * reads `STARVING` (not 0) and the one-CAS fast path of other threads
 * fails. Uncontended, acquire is CAS 0 → ident and release CAS ident → 0:
 * two atomic operations. Any other release clears the owner and `PARKED`
 * (keeping `STARVING`) with a CAS loop and notifies when `PARKED` was set.
 * A waiter that finds the owner's thread dead CASes the word over to itself.
 */
const LOCK_BYTES = 16;
const OWNER = 0x3fff_ffff;
const PARKED = 1 << 30;
const STARVING = 1 << 31;

/** The shared words of a lock, for `Condition` (set in the classes' static blocks). */
let lockCell: (lock: Lock) => Int32Array;
let rlockCell: (lock: RLock) => Int32Array;
/**
 * Takes an `RLock` only once it is free, even when this thread holds it,
 * and sets its depth: for `Condition.wait`, whose waiters in one thread
 * (async tasks) must not all return inside the lock at once through
 * re-entry.
 */
let rlockRetake: (lock: RLock, depth: number) => Promise<void>;

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

  static {
    registerHandler<Lock, SharedArrayBuffer>({
      tag: "Lock",
      canHandle: (v): v is Lock => v instanceof Lock,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => new Lock().#attach(buffer),
    });
    lockCell = (lock) => lock.#cell;
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

  #done(result: number): boolean {
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
    return (Atomics.load(this.#cell, WORD) & OWNER) !== 0;
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
  async scoped(options?: AcquireOptions): Promise<Acquired> {
    if (!(await this.acquire(options))) throw scopeTimeout("the lock", options);
    return makeAcquired(() => this.release(), this.#ownerDied);
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
    if (!this.acquireSync(options)) throw scopeTimeout("the lock", options);
    return makeAcquired(() => this.release(), this.#ownerDied);
  }

  /** `<Lock(owner=1)>` or `<Lock(unlocked)>`. */
  toString(): string {
    const owner = Atomics.load(this.#cell, WORD) & OWNER;
    return owner === 0 ? "<Lock(unlocked)>" : `<Lock(owner=${owner})>`;
  }
}

// ---------------------------------------------------------------------------
// RLock
// ---------------------------------------------------------------------------

/**
 * Layout of an `RLock`: a `Lock`'s words plus `COUNT` (index 3), the
 * recursion depth, written only by the owner (plain reads and writes under
 * the lock; the next owner sees them through the release's `Atomics` store).
 */
const COUNT = 3;

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

  static {
    registerHandler<RLock, SharedArrayBuffer>({
      tag: "RLock",
      canHandle: (v): v is RLock => v instanceof RLock,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => new RLock().#attach(buffer),
    });
    rlockCell = (lock) => lock.#cell;
    rlockRetake = async (lock, depth) => {
      const result = await slowAsync(lock.#gate, Infinity, undefined);
      lock.#cell[COUNT] = depth;
      lock.#ownerDied = result === RECOVERED;
    };
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

  #done(result: number): boolean {
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
    return (Atomics.load(this.#cell, WORD) & OWNER) !== 0;
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
  async scoped(options?: AcquireOptions): Promise<Acquired> {
    if (!(await this.acquire(options))) throw scopeTimeout("the lock", options);
    return makeAcquired(() => this.release(), this.#ownerDied);
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
    if (!this.acquireSync(options)) throw scopeTimeout("the lock", options);
    return makeAcquired(() => this.release(), this.#ownerDied);
  }

  /** `<RLock(owner=1, count=2)>` or `<RLock(unlocked)>`. */
  toString(): string {
    const owner = Atomics.load(this.#cell, WORD) & OWNER;
    return owner === 0 ? "<RLock(unlocked)>" : `<RLock(owner=${owner}, count=${this.#cell[COUNT]})>`;
  }
}

// ---------------------------------------------------------------------------
// Semaphore and BoundedSemaphore
// ---------------------------------------------------------------------------

/**
 * Layout of a `Semaphore` (`Int32Array`; the words of holder slot `s`,
 * 0…63, start at `slotAt(s)`):
 *
 * | index              | written by                                      | meaning                                     |
 * |--------------------|-------------------------------------------------|---------------------------------------------|
 * | `WORD` (0)         | movers (CAS), the pending move's owner (`and`)  | free permits and the pending move's tag     |
 * | `WAITERS` (1)      | waiters                                         | see the gate table                          |
 * | `STARVER` (2)      | one waiter                                      | see the gate table                          |
 * | `INITIAL` (3)      | constructor                                     | the initial value (the bound, if bounded)   |
 * | `BOUNDED` (4)      | constructor                                     | 1 for a `BoundedSemaphore`                  |
 * | `MOVE_WAITERS` (5) | releasers waiting out a move (`add`/`sub`)      | whether ending a move must ring `MOVE_BELL` |
 * | `MOVE_BELL` (6)    | whoever ends a move while one waits (`add`)     | futex word those releasers park on          |
 * | slot + `ID`        | a thread (CAS 0 → its ident), recoverers (CAS)  | who owns the slot (below)                   |
 * | slot + `STATE`     | the slot's owner (plain), recoverers (`store`)  | `2 * held + toggle` (below)                 |
 * | slot + `DELTA`     | the slot's owner (plain), before its move       | how many permits a `GIVE_N` move gives back |
 *
 * `WORD` holds the value in bits 0–22 (so at most `MAX_VALUE`)
 * and a tag in bits 23–31: 0, or `kind << 30 | toggle << 29 | s << 23` while
 * a move of slot `s` is not known to be recorded in its `STATE`. Kinds:
 * `TAKE` (one permit from the value to `held`), `GIVE` (one back), `GIVE_N`
 * (`DELTA` back).
 *
 * `ID`: 0 free; an ident: the thread that owns the slot, for as long as it
 * lives; `-ident`: that thread is recovering the slot of a dead owner;
 * `ORPHAN`: a dead owner's slot whose permits could not all go back yet.
 *
 * **Holders.** A thread that takes a permit owns a slot; `held` counts the
 * permits it took and has not given back. Its `release(n)` gives back up to
 * `n` of them; the rest of `n`, like a release by a thread holding none,
 * adds new permits. A thread that finds all 64 slots owned by live threads
 * takes without a record.
 *
 * **One word decides.** Moving permits between the value and a `held`
 * touches two words, and a thread may stop between any two instructions.
 * So a move is decided by one compareExchange on `WORD` that changes the
 * value and sets the tag, on an untagged word only: one move pends at a
 * time, and other movers wait out its few instructions. Then the owner
 * writes `STATE` with the new `held` and the tag's toggle, and clears the
 * tag with `Atomics.and` (which also publishes that plain write). Wherever
 * a thread stopped, the words say what happened: no tag of `s`: `held` is
 * exact; a tag of `s` whose toggle `STATE` carries: recorded, only the tag
 * is left to clear; a tag of `s` with the other toggle: the move is in the
 * value and not yet in `held`, and is applied to it. A toggle is enough:
 * the tag stays until its move is recorded, and only the slot's owner (or
 * its recoverer) moves for the slot, one move at a time. Takes by a thread
 * without a slot, and releases of permits nobody holds, change the value
 * with a compareExchange that keeps the tag.
 *
 * **Recovery.** A waiter that finds no permit scans the slots. A slot whose
 * owner is dead (the registry marks a thread dead only once it can run no
 * more, after all its writes) is claimed by one recoverer (CAS `ID` → -its
 * ident); a slot whose recoverer died is claimed again the same way, so
 * recovery may itself stop anywhere. The recoverer completes the slot's
 * pending move, then gives back `b = min(held, INITIAL - value - Σ held of
 * live slots)` permits as a move of that slot (tagged like any other, so a
 * recoverer that stops half way leaves it to the next), and moves the tag
 * straight on to a take of one permit into its own slot with one more
 * compareExchange, so the waiter that did the work gets a permit. It then
 * frees the slot, or marks it `ORPHAN` if permits are left, for later
 * scans. So each of a dead holder's permits comes back at most once (`held`
 * falls by what the move adds), and recovery never raises the value above
 * the initial value (`b` is bounded by the value its compareExchange
 * replaces). The live sum is read slot by slot; a move meanwhile changes
 * `WORD` and fails the compareExchange. The bound keeps permits consumed as
 * signals (taken from a `Semaphore(0)` released by another thread) from
 * being handed out again.
 *
 * A mover descheduled in the middle of its move holds up the others' moves
 * until it runs again; a waiting taker first spins, then parks (woken when
 * the move ends, as `wake` does); a releaser, and a try that does not wait
 * (Python's non-blocking acquire fails only at value 0), park on
 * `MOVE_BELL`.
 *
 * **Fault injection for tests.** A function stored on `globalThis` under
 * `Symbol.for("@mpjs/multiprocessing/sync.semaphoreStep")` before a
 * thread's first acquire is called with the name of each point between two
 * shared-memory writes of a move or a recovery (`"take.cas"`: the value
 * changed, `held` not yet): a test parks the thread there and declares it
 * dead.
 */
const INITIAL = 3;
const BOUNDED = 4;
const MOVE_WAITERS = 5;
const MOVE_BELL = 6;
/** Index of the first holder slot's words (byte 256, see `slotAt`). */
const HOLDERS = 64;
/** Holder slots per semaphore; threads beyond this are not tracked. */
const N_HOLDERS = 64;
const ID = 0;
const STATE = 1;
const DELTA = 2;
const SEM_BYTES = (HOLDERS + 4 * N_HOLDERS) * 4;
const VALUE_BITS = 23;
/** The largest value a semaphore holds (Python's `SEM_VALUE_MAX` is as low as 32,767 on some systems). */
const MAX_VALUE = (1 << VALUE_BITS) - 1;
const TAG = ~MAX_VALUE;
const SLOT_MASK = 63;
const TOGGLE_SHIFT = 29;
const KIND_SHIFT = 30;
const TAKE = 1;
const GIVE = 2;
const GIVE_N = 3;
/** `ID` of a dead owner's slot left holding permits (never a live ident). */
const ORPHAN = 0x7fff_ffff;
const STEP_HOOK = Symbol.for("@mpjs/multiprocessing/sync.semaphoreStep");
type StepHook = (point: string) => void;

/**
 * Index of slot `s`'s words. A slot is 16 bytes and slots 0–15, claimed
 * first, each start a 64-byte line of their own (slot `s` is in line
 * `s % 16`): a thread's record then shares no line with `WORD`, which other
 * threads poll, nor with the first fifteen other holders'.
 */
function slotAt(s: number): number {
  return HOLDERS + 16 * (s & 15) + 4 * (s >>> 4);
}

function moveTag(kind: number, toggle: number, s: number): number {
  return (kind << KIND_SHIFT) | (toggle << TOGGLE_SHIFT) | (s << VALUE_BITS);
}

/** The slot whose move `w` (a tagged word) carries. */
function tagSlot(w: number): number {
  return (w >>> VALUE_BITS) & SLOT_MASK;
}

/** Whether the owner recorded in an `ID` word can act no more (a free slot's 0 is not dead). */
function idDead(id: number): boolean {
  if (id === 0) return false;
  return id === ORPHAN || !isIdentAlive(id > 0 ? id : -id);
}

/**
 * Wakes parked semaphore waiters after permits were added: `n` of them, or
 * all when one is starving (it may not be first in the futex queue).
 */
function wake(cell: Int32Array, n: number): void {
  if (Atomics.load(cell, WAITERS) === 0) return;
  notify(cell, WORD, Atomics.load(cell, STARVER) === 0 ? n : Infinity);
}

/** Clears the tag of a recorded move, then wakes up to `n` waiters if permits are free. */
function endMove(cell: Int32Array, n: number): void {
  if ((Atomics.and(cell, WORD, MAX_VALUE) & MAX_VALUE) > 0) wake(cell, n);
  if (Atomics.load(cell, MOVE_WAITERS) > 0) {
    Atomics.add(cell, MOVE_BELL, 1);
    notify(cell, MOVE_BELL);
  }
}

/**
 * Completes the pending move of slot `s`, if `WORD` carries its tag: the
 * caller owns `s` (as its recoverer). Safe to repeat.
 */
function finishMove(cell: Int32Array, s: number, hook: StepHook | undefined): void {
  const w = Atomics.load(cell, WORD);
  if ((w & TAG) === 0 || tagSlot(w) !== s) return;
  const at = slotAt(s);
  const st = Atomics.load(cell, at + STATE);
  const toggle = (w >>> TOGGLE_SHIFT) & 1;
  if ((st & 1) !== toggle) {
    const kind = w >>> KIND_SHIFT;
    const d = kind === TAKE ? 1 : kind === GIVE ? -1 : -Atomics.load(cell, at + DELTA);
    Atomics.store(cell, at + STATE, (((st >>> 1) + d) << 1) | toggle);
    hook?.("finish.record");
  }
  // Waiters may have parked on the tagged word.
  endMove(cell, Infinity);
}

function checkCount(value: unknown, cls: string, name: string, min: number, max = 0x3fff_ffff): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === 0x3fff_ffff ? `>= ${min}` : `from ${min} to ${max}`;
    throw new RangeError(
      `Cannot ${cls} as '${name}' must be an integer ${range}: current value is ${show(value)}`,
    );
  }
  return value;
}

/**
 * Python's `multiprocessing.Semaphore`: a counter of permits shared between
 * threads. `acquire` takes one (waiting while there are none), `release(n)`
 * gives `n` back; any thread may release. The value is at most 8,388,607.
 *
 * Owner death: permits taken by a thread that ended without giving them back
 * are returned to the semaphore when a waiter finds no permit left (but
 * never so that the value rises above the initial value), and that waiter's
 * `ownerDied` reads `true`. Each permit comes back once, whatever
 * instruction its holder stopped at. Up to 64 live threads at a time are
 * tracked; the permits of a thread beyond that are not recovered if it dies.
 *
 * @example Limiting concurrency
 * ```ts
 * import { Semaphore } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const sem = new Semaphore(2);
 * assert.equal(sem.acquireSync(), true);
 * assert.equal(sem.acquireSync(), true);
 * assert.equal(sem.acquireSync({ block: false }), false);
 * sem.release(2);
 * assert.equal(sem.getValue(), 2);
 * ```
 */
export class Semaphore {
  #cell: Int32Array;
  #gate: Gate;
  #ownerDied = false;
  /** This thread's holder slot: -1 not looked for yet, -2 none was free (untracked until the next scan). */
  #slot = -1;
  #hook: StepHook | undefined;
  /** The death count at the last holder scan. */
  #deaths = -1;
  #scanned = 0;

  static {
    registerHandler<Semaphore, SharedArrayBuffer>({
      tag: "Semaphore",
      canHandle: (v): v is Semaphore => v instanceof Semaphore,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => {
        const bounded = new Int32Array(buffer)[BOUNDED] === 1;
        return (bounded ? new BoundedSemaphore(0) : new Semaphore(0)).#attach(buffer);
      },
    });
  }

  /**
   * Creates a semaphore with `value` free permits.
   *
   * @param value The initial number of permits, an integer from 0 to 8,388,607.
   * @throws {RangeError} when `value` is not such an integer.
   */
  constructor(value: number = 1) {
    checkCount(value, `create ${new.target.name}`, "value", 0, MAX_VALUE);
    this.#cell = new Int32Array(new SharedArrayBuffer(SEM_BYTES));
    this.#cell[WORD] = value;
    this.#cell[INITIAL] = value;
    this.#cell[BOUNDED] = new.target === BoundedSemaphore ? 1 : 0;
    this.#gate = this.#makeGate();
  }

  #attach(buffer: SharedArrayBuffer): this {
    this.#cell = new Int32Array(buffer);
    this.#gate = this.#makeGate();
    return this;
  }

  #makeGate(): Gate {
    const cell = this.#cell;
    return {
      cell,
      take: (me, eager) => {
        if (!eager && otherStarver(cell, me)) return false;
        for (;;) {
          const w = Atomics.load(cell, WORD);
          if ((w & MAX_VALUE) === 0) return false;
          if (this.#take(me, w, eager)) return true;
          // A pending move: wait for it (the slow path watches WORD).
          if (!eager && (w & TAG) !== 0 && this.#slot >= 0) return false;
        }
      },
      recover: (me) => this.#recover(me),
      starve: (me) => Atomics.compareExchange(cell, STARVER, 0, me) === 0,
      unstarve: (me) => {
        // Others stood back, possibly parked beside free permits.
        if (Atomics.compareExchange(cell, STARVER, me, 0) === me) notify(cell, WORD);
      },
      parkValue: (me) => {
        const w = Atomics.load(cell, WORD);
        return (w & MAX_VALUE) > 0 && (w & TAG) === 0 && !otherStarver(cell, me) ? undefined : w;
      },
    };
  }

  /**
   * Whether the last successful acquire through this object got its permit
   * back from a thread that ended holding it.
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /**
   * One try at taking a permit, `w` being `WORD` as just read (value > 0).
   * False when the compareExchange lost, no permit is left, or (for a
   * holder, unless `eager`) another thread's move stays pending. An `eager`
   * take waits that move out as `release` does: the permit it would take
   * is free, so Python's non-blocking acquire would get it.
   */
  #take(me: number, w: number, eager = false): boolean {
    const cell = this.#cell;
    let s = this.#slot;
    if (s === -1) s = this.#claim(me);
    if (s < 0) return Atomics.compareExchange(cell, WORD, w, w - 1) === w;
    // Another thread's move is being recorded, a few instructions: wait it out.
    for (let i = 0; (w & TAG) !== 0; i++) {
      if (i === TAG_SPIN) {
        if (!eager) return false;
        this.#waitMove(w);
        i = 0;
      }
      w = Atomics.load(cell, WORD);
      if ((w & MAX_VALUE) === 0) return false;
    }
    const at = slotAt(s);
    const st = cell[at + STATE];
    const toggle = (st & 1) ^ 1;
    this.#hook?.("take.start");
    if (Atomics.compareExchange(cell, WORD, w, (w - 1) | moveTag(TAKE, toggle, s)) !== w) return false;
    this.#hook?.("take.cas");
    cell[at + STATE] = (((st >>> 1) + 1) << 1) | toggle;
    this.#hook?.("take.record");
    endMove(cell, 1);
    return true;
  }

  /** Finds or claims this thread's holder slot; -2 when every slot is owned by a live thread. */
  #claim(me: number): number {
    const cell = this.#cell;
    this.#hook = (globalThis as Record<symbol, unknown>)[STEP_HOOK] as StepHook | undefined;
    let free = -1;
    for (let s = 0; s < N_HOLDERS; s++) {
      const id = Atomics.load(cell, slotAt(s) + ID);
      if (id === me) return this.#slot = s;
      if (free < 0 && id === 0) free = s;
    }
    for (let s = free; s >= 0 && s < N_HOLDERS; s++) {
      if (Atomics.compareExchange(cell, slotAt(s) + ID, 0, me) === 0) return this.#slot = s;
    }
    // Take over a slot whose owner died holding nothing, with no move pending.
    // Recoverers never write a dead ident back, so the compareExchange cannot
    // succeed on a slot that changed hands meanwhile.
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (id <= 0 || id === ORPHAN || isIdentAlive(id) || Atomics.load(cell, at + STATE) >>> 1 !== 0) continue;
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0 && tagSlot(w) === s) continue;
      if (Atomics.compareExchange(cell, at + ID, id, me) === id) return this.#slot = s;
    }
    return this.#slot = -2;
  }

  /** Gives back permits of dead holders (see the layout), taking one of them; rate-limited. */
  #recover(me: number): boolean {
    const cell = this.#cell;
    const deaths = Atomics.load(registryCells(), DEATHS);
    const t = now();
    if (deaths === this.#deaths && t - this.#scanned < SLICE) return false;
    this.#deaths = deaths;
    this.#scanned = t;
    this.#hook = (globalThis as Record<symbol, unknown>)[STEP_HOOK] as StepHook | undefined;
    if (this.#slot === -2) this.#slot = -1;
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (!idDead(id)) continue;
      const w = Atomics.load(cell, WORD);
      const pending = (w & TAG) !== 0 && tagSlot(w) === s;
      if (!pending && Atomics.load(cell, at + STATE) >>> 1 === 0) continue;
      if (Atomics.compareExchange(cell, at + ID, id, -me) !== id) continue;
      if (this.#recoverSlot(me, s, true)) return true;
    }
    return false;
  }

  /**
   * Recovers slot `s`, which the caller claimed (`ID` = -me) from a dead
   * owner or recoverer: completes its pending move and gives its permits
   * back, as far as the bound allows. With `keep`, takes one of them.
   *
   * @returns Whether it took a permit.
   */
  #recoverSlot(me: number, s: number, keep: boolean): boolean {
    const cell = this.#cell;
    const at = slotAt(s);
    const hook = this.#hook;
    hook?.("recover.claim");
    finishMove(cell, s, hook);
    const mine = keep ? (this.#slot === -1 ? this.#claim(me) : this.#slot) : -2;
    for (;;) {
      const st = Atomics.load(cell, at + STATE);
      const held = st >>> 1;
      if (held === 0) {
        Atomics.store(cell, at + ID, 0);
        return false;
      }
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0) {
        if (this.#finishDead(me, w) || spin(cell, WORD, w)) continue;
        // A live thread's move lasts (it was descheduled): scan again on the next try.
        this.#deaths = -1;
        Atomics.store(cell, at + ID, ORPHAN);
        return false;
      }
      const b = Math.min(held, Atomics.load(cell, INITIAL) - w - this.#liveHeld());
      if (b <= 0) {
        Atomics.store(cell, at + ID, ORPHAN);
        return false;
      }
      const toggle = (st & 1) ^ 1;
      if (b > 1) Atomics.store(cell, at + DELTA, b);
      hook?.("recover.start");
      if (Atomics.compareExchange(cell, WORD, w, (w + b) | moveTag(b === 1 ? GIVE : GIVE_N, toggle, s)) !== w) {
        continue;
      }
      hook?.("recover.cas");
      Atomics.store(cell, at + STATE, ((held - b) << 1) | toggle);
      hook?.("recover.record");
      const took = keep && this.#takeOn(mine);
      endMove(cell, b);
      hook?.("recover.end");
      Atomics.store(cell, at + ID, held - b > 0 ? ORPHAN : 0);
      return took;
    }
  }

  /**
   * With `WORD` carrying the tag of a recorded give-back, takes one permit
   * for the caller: the same compareExchange puts the caller's own take in
   * place of the tag, so no other thread can take the permit first.
   */
  #takeOn(mine: number): boolean {
    const cell = this.#cell;
    for (;;) {
      const x = Atomics.load(cell, WORD);
      const value = x & MAX_VALUE;
      if (value === 0) return false;
      if (mine < 0) {
        if (Atomics.compareExchange(cell, WORD, x, value - 1) === x) return true;
        continue;
      }
      const at = slotAt(mine);
      const st = Atomics.load(cell, at + STATE);
      const toggle = (st & 1) ^ 1;
      if (Atomics.compareExchange(cell, WORD, x, (value - 1) | moveTag(TAKE, toggle, mine)) !== x) continue;
      this.#hook?.("recover.take");
      Atomics.store(cell, at + STATE, (((st >>> 1) + 1) << 1) | toggle);
      this.#hook?.("recover.taken");
      return true;
    }
  }

  /** Permits recorded by the slots of live threads (a snapshot). */
  #liveHeld(): number {
    const cell = this.#cell;
    let sum = 0;
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (id > 0 && id !== ORPHAN && isIdentAlive(id)) sum += Atomics.load(cell, at + STATE) >>> 1;
    }
    return sum;
  }

  /**
   * When the move pending in `w` belongs to a slot whose owner (or
   * recoverer) is dead, recovers that slot.
   *
   * @returns `false` when that owner is alive (its move will end shortly).
   */
  #finishDead(me: number, w: number): boolean {
    const at = slotAt(tagSlot(w)) + ID;
    const id = Atomics.load(this.#cell, at);
    if (!idDead(id)) return false;
    if (Atomics.compareExchange(this.#cell, at, id, -me) === id) this.#recoverSlot(me, tagSlot(w), false);
    return true;
  }

  #done(result: number): boolean {
    if (result === FAILED) return false;
    this.#ownerDied = result === RECOVERED;
    return true;
  }

  #fast(me: number): boolean {
    const cell = this.#cell;
    if (Atomics.load(cell, STARVER) !== 0) return false;
    const w = Atomics.load(cell, WORD);
    if ((w & MAX_VALUE) === 0 || !this.#take(me, w)) return false;
    this.#ownerDied = false;
    return true;
  }

  /**
   * Takes a permit, waiting without blocking the event loop while none is free.
   *
   * @param options `block`, `timeout` (ms) and `signal`.
   * @returns `true` once taken; `false` on timeout or when not blocking.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * setTimeout(() => sem.release(), 10);
   * assert.equal(await sem.acquire(), true);
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const { ms, signal } = acquireOptions(options, `${this.constructor.name}.acquire()`);
    throwIfAborted(signal);
    const me = selfIdent();
    if (this.#fast(me)) return true;
    return this.#done(await slowAsync(this.#gate, ms, signal));
  }

  /**
   * The blocking twin of {@linkcode Semaphore.acquire}.
   *
   * @param options `block` and `timeout` (ms).
   * @returns `true` once taken; `false` on timeout or when not blocking.
   * @throws {RangeError} when `timeout` is invalid.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * assert.equal(sem.acquireSync({ timeout: 10 }), false);
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    const ms = options === undefined ? Infinity : acquireOptions(options, `${this.constructor.name}.acquireSync()`).ms;
    const me = selfIdent();
    if (this.#fast(me)) return true;
    if (ms !== 0) assertCanBlock(`${this.constructor.name}.acquireSync()`);
    return this.#done(slowSync(this.#gate, ms));
  }

  /**
   * Gives back `n` permits, waking as many waiters.
   *
   * @param n How many, an integer from 1 to 8,388,607.
   * @throws {RangeError} when `n` is not such an integer, or when the value
   *   would exceed the initial value (`BoundedSemaphore`) or 8,388,607.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * sem.release(3);
   * assert.equal(sem.getValue(), 3);
   * ```
   */
  release(n: number = 1): void {
    const cell = this.#cell;
    if (n !== 1) checkCount(n, `release ${this.constructor.name}`, "n", 1, MAX_VALUE);
    let s = this.#slot;
    if (s === -1) s = this.#claim(selfIdent());
    const at = s < 0 ? -1 : slotAt(s);
    const st = s < 0 ? 0 : cell[at + STATE];
    const held = st >>> 1;
    if (held === 0) {
      // Permits nobody here holds: new ones. Any pending move stays pending.
      for (;;) {
        const w = Atomics.load(cell, WORD);
        if ((w & MAX_VALUE) + n > this.#bound()) throw this.#tooMany();
        if (Atomics.compareExchange(cell, WORD, w, w + n) === w) break;
      }
      wake(cell, n);
      return;
    }
    const back = n < held ? n : held;
    const toggle = (st & 1) ^ 1;
    const tag = moveTag(back === 1 ? GIVE : GIVE_N, toggle, s);
    if (back > 1) cell[at + DELTA] = back;
    for (;;) {
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0) {
        this.#waitMove(w);
        continue;
      }
      if (w + n > this.#bound()) throw this.#tooMany();
      this.#hook?.("give.start");
      if (Atomics.compareExchange(cell, WORD, w, (w + n) | tag) === w) break;
    }
    this.#hook?.("give.cas");
    cell[at + STATE] = ((held - back) << 1) | toggle;
    this.#hook?.("give.record");
    endMove(cell, n);
  }

  /** The most the value may reach: the initial value if bounded. */
  #bound(): number {
    return this.#cell[BOUNDED] ? this.#cell[INITIAL] : MAX_VALUE;
  }

  #tooMany(): RangeError {
    const name = this.constructor.name;
    return new RangeError(
      this.#cell[BOUNDED]
        ? `Cannot release ${name}: released too many times`
        : `Cannot release ${name}: its value would exceed ${MAX_VALUE}`,
    );
  }

  /**
   * Waits out another thread's pending move (a few instructions, unless that
   * thread was descheduled), or recovers its slot if that thread died.
   */
  #waitMove(w: number): void {
    const cell = this.#cell;
    if (this.#finishDead(selfIdent(), w) || spin(cell, WORD, w)) return;
    const bell = Atomics.load(cell, MOVE_BELL);
    Atomics.add(cell, MOVE_WAITERS, 1);
    if (Atomics.load(cell, WORD) === w) {
      if (canBlock) parkSync(cell, MOVE_BELL, bell, SLICE);
      else spin(cell, WORD, w);
    }
    Atomics.sub(cell, MOVE_WAITERS, 1);
  }

  /**
   * The number of free permits (a snapshot).
   *
   * @returns The current value.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Semaphore(5).getValue(), 5);
   * ```
   */
  getValue(): number {
    return Atomics.load(this.#cell, WORD) & MAX_VALUE;
  }

  /**
   * Takes a permit and returns a handle that gives it back when disposed.
   *
   * @param options As for {@linkcode Semaphore.acquire}.
   * @returns The held permit; rejects with `TimeoutError` when none came in time.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(1);
   * {
   *   await using _ = await sem.scoped();
   *   assert.equal(sem.getValue(), 0);
   * }
   * assert.equal(sem.getValue(), 1);
   * ```
   */
  async scoped(options?: AcquireOptions): Promise<Acquired> {
    if (!(await this.acquire(options))) {
      throw scopeTimeout("the semaphore", options);
    }
    return makeAcquired(() => this.release(), this.#ownerDied);
  }

  /**
   * The blocking twin of {@linkcode Semaphore.scoped}.
   *
   * @param options As for {@linkcode Semaphore.acquireSync}.
   * @returns The held permit.
   * @throws {TimeoutError} when no permit came in time.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(1);
   * {
   *   using _ = sem.scopedSync();
   *   assert.equal(sem.getValue(), 0);
   * }
   * assert.equal(sem.getValue(), 1);
   * ```
   */
  scopedSync(options?: AcquireOptions): Acquired {
    if (!this.acquireSync(options)) {
      throw scopeTimeout("the semaphore", options);
    }
    return makeAcquired(() => this.release(), this.#ownerDied);
  }

  /** `<Semaphore(value=1)>`. */
  toString(): string {
    return `<${this.constructor.name}(value=${this.getValue()})>`;
  }
}

/**
 * Python's `multiprocessing.BoundedSemaphore`: a {@linkcode Semaphore} whose
 * value may not rise above its initial value; releasing more than was taken
 * throws `RangeError` (Python's `ValueError`).
 *
 * @example
 * ```ts
 * import { BoundedSemaphore } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const sem = new BoundedSemaphore(1);
 * sem.acquireSync();
 * sem.release();
 * assert.throws(() => sem.release(), RangeError);
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  /**
   * Creates a bounded semaphore with `value` free permits.
   *
   * @param value The initial (and largest) number of permits, an integer ≥ 0.
   * @throws {RangeError} when `value` is not an integer ≥ 0.
   */
  constructor(value: number = 1) {
    super(value);
  }
}

// ---------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------

/**
 * Layout of an `Event` (`Int32Array` over 8 bytes):
 *
 * | index         | meaning                                                  |
 * |---------------|----------------------------------------------------------|
 * | `EVENT`       | `(generation << 1) | flag`                               |
 * | `EV_WAITERS`  | parked waiters (counted around parking, as for locks)    |
 *
 * `set()` CASes in the flag and a new generation, then notifies every
 * waiter when `EV_WAITERS > 0`; `clear()` clears the flag. A waiter returns
 * `true` when it sees the flag or a generation other than the one it
 * started in (the event was set and cleared again meanwhile), as Python's
 * `Event.wait` does. Waiters spin before they count themselves and park,
 * so a `set()` seen while spinning costs no system call.
 */
const EVENT = 0;
const EV_WAITERS = 1;

/**
 * Python's `multiprocessing.Event`: a flag that threads can wait for.
 *
 * @example
 * ```ts
 * import { Event } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const ev = new Event();
 * setTimeout(() => ev.set(), 10);
 * assert.equal(await ev.wait(), true);
 * assert.equal(ev.isSet(), true);
 * ev.clear();
 * assert.equal(await ev.wait(5), false);
 * ```
 */
export class Event {
  #cell: Int32Array;

  static {
    registerHandler<Event, SharedArrayBuffer>({
      tag: "Event",
      canHandle: (v): v is Event => v instanceof Event,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => {
        const ev = new Event();
        ev.#cell = new Int32Array(buffer);
        return ev;
      },
    });
  }

  /** Creates a cleared event. */
  constructor() {
    this.#cell = new Int32Array(new SharedArrayBuffer(8));
  }

  /**
   * Whether the flag is set.
   *
   * @returns The flag.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Event().isSet(), false);
   * ```
   */
  isSet(): boolean {
    return (Atomics.load(this.#cell, EVENT) & 1) === 1;
  }

  /**
   * Sets the flag and wakes every waiter.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const ev = new Event();
   * ev.set();
   * assert.equal(ev.waitSync(0), true);
   * ```
   */
  set(): void {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (v & 1) return;
      if (Atomics.compareExchange(cell, EVENT, v, ((v >>> 1) + 1) << 1 | 1) === v) break;
    }
    if (Atomics.load(cell, EV_WAITERS) > 0) notify(cell, EVENT);
  }

  /**
   * Clears the flag.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const ev = new Event();
   * ev.set();
   * ev.clear();
   * assert.equal(ev.isSet(), false);
   * ```
   */
  clear(): void {
    Atomics.and(this.#cell, EVENT, ~1);
  }

  /** `true` when the event is or was set since `start` was read. */
  #check(start: number): boolean {
    const v = Atomics.load(this.#cell, EVENT);
    return (v & 1) === 1 || (v >>> 1) !== (start >>> 1);
  }

  /**
   * Waits until the flag is set, without blocking the event loop.
   *
   * @param timeout Milliseconds, or `{ timeout, signal }`; no limit when omitted.
   * @returns `true` when the flag was set, `false` when `timeout` passed.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(await new Event().wait({ timeout: 5 }), false);
   * ```
   */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const { ms, signal } = waitArgs(timeout, "Event.wait()");
    throwIfAborted(signal);
    const cell = this.#cell;
    const start = Atomics.load(cell, EVENT);
    if (start & 1) return true;
    const end = now() + ms;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (this.#check(start)) return true;
      const left = end - now();
      if (left <= 0) return false;
      if (spin(cell, EVENT, v, true)) continue;
      Atomics.add(cell, EV_WAITERS, 1);
      try {
        if (Atomics.load(cell, EVENT) === v) await parkAsync(cell, EVENT, v, left, signal);
      } finally {
        Atomics.sub(cell, EV_WAITERS, 1);
      }
    }
  }

  /**
   * The blocking twin of {@linkcode Event.wait}.
   *
   * @param timeout Milliseconds; no limit when omitted.
   * @returns `true` when the flag was set, `false` when `timeout` passed.
   * @throws {RangeError} when `timeout` is invalid.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Event().waitSync(5), false);
   * ```
   */
  waitSync(timeout?: number | Omit<WaitOptions, "signal">): boolean {
    const { ms } = waitArgs(timeout, "Event.waitSync()");
    const cell = this.#cell;
    const start = Atomics.load(cell, EVENT);
    if (start & 1) return true;
    if (ms === 0) return false;
    assertCanBlock("Event.waitSync()");
    const end = now() + ms;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (this.#check(start)) return true;
      const left = end - now();
      if (left <= 0) return false;
      if (spin(cell, EVENT, v)) continue;
      Atomics.add(cell, EV_WAITERS, 1);
      if (Atomics.load(cell, EVENT) === v) parkSync(cell, EVENT, v, left);
      Atomics.sub(cell, EV_WAITERS, 1);
    }
  }

  /** `<Event(set)>` or `<Event(unset)>`. */
  toString(): string {
    return `<Event(${this.isSet() ? "set" : "unset"})>`;
  }
}

// ---------------------------------------------------------------------------
// Condition
// ---------------------------------------------------------------------------

/**
 * Layout of a `Condition` (besides its lock), an `Int32Array`:
 *
 * | index                 | written by                        | meaning                                  |
 * |-----------------------|-----------------------------------|------------------------------------------|
 * | `TICKETS`             | waiters, lock held                | tickets handed out (FIFO order)          |
 * | `NWAIT`               | waiters / notifiers (add, sub)    | slots in `WAITING` state                 |
 * | `SLOT + 3k` (`STATE`) | see below                         | `FREE`, `WAITING` or `NOTIFIED`          |
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
 */
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

  #owned(): boolean {
    const lock = this.#lock;
    const cell = lock instanceof RLock ? rlockCell(lock) : lockCell(lock);
    return (Atomics.load(cell, WORD) & OWNER) === selfIdent();
  }

  /** Leaves the lock entirely (an `RLock` at any depth); returns the depth to restore. */
  #releaseSave(): number {
    const lock = this.#lock;
    if (!(lock instanceof RLock)) {
      lock.release();
      return 1;
    }
    const cell = rlockCell(lock);
    const depth = cell[COUNT];
    cell[COUNT] = 1;
    lock.release();
    return depth;
  }

  #restore(depth: number): void {
    if (this.#lock instanceof RLock) rlockCell(this.#lock)[COUNT] = depth;
  }

  /** Claims a wait slot (lock held): its `STATE` index. */
  #enter(what: string): number {
    if (!this.#owned()) throw new Error(`Cannot ${what} on an un-acquired lock`);
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
    const depth = this.#releaseSave();
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
      await this.#reacquire(depth);
      if (notified) this.notify(1);
      throw error;
    }
    const notified = this.#leave(at);
    await this.#reacquire(depth);
    return notified;
  }

  async #reacquire(depth: number): Promise<void> {
    const lock = this.#lock;
    if (lock instanceof RLock) await rlockRetake(lock, depth);
    else await lock.acquire();
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
    const depth = this.#releaseSave();
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
      this.#lock.acquireSync();
      this.#restore(depth);
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
    if (n !== Infinity) checkCount(n, "notify Condition", "n", 0);
    if (!this.#owned()) throw new Error("Cannot notify on an un-acquired lock");
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

// ---------------------------------------------------------------------------
// Barrier
// ---------------------------------------------------------------------------

/**
 * Layout of a `Barrier` (`Int32Array`):
 *
 * | index     | meaning                                                        |
 * |-----------|----------------------------------------------------------------|
 * | `BARRIER` | `(count << 2) | phase`: threads inside `wait`, and the phase   |
 * | `PARTIES` | the number of parties (set once)                               |
 * | `TIMEOUT` | the default timeout in ms, or -1 for none (set once)           |
 *
 * Phases follow Python's `threading.Barrier`: `FILLING` (threads arrive;
 * the arriving thread's index is the count before it), `DRAINING` (the
 * last party arrived; waiters leave with their index), `RESETTING` (reset
 * while threads waited; they leave with `BrokenBarrierError`) and `BROKEN`.
 * Arrivals wait while the barrier drains or resets, so the indexes of one
 * generation are 0…parties-1, each once. Every change is one CAS on the
 * word; phase changes notify all waiters.
 */
const BARRIER = 0;
const PARTIES = 1;
const TIMEOUT = 2;
const FILLING = 0;
const DRAINING = 1;
const RESETTING = 2;
const BROKEN = 3;

/**
 * Options for {@linkcode Barrier}.
 *
 * @example
 * ```ts
 * import { Barrier, type BarrierOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: BarrierOptions = { timeout: 1000 };
 * const barrier = new Barrier(1, options);
 * assert.equal(await barrier.wait(), 0);
 * ```
 */
export interface BarrierOptions {
  /** The default timeout of `wait` (ms). @default {Infinity} */
  timeout?: number;
}

/**
 * Python's `multiprocessing.Barrier`: `parties` threads wait until all have
 * arrived, then all go on. A timeout, `abort()` or `reset()` while threads
 * wait breaks the barrier for them (`BrokenBarrierError`).
 *
 * @example
 * ```ts
 * import { Barrier } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const barrier = new Barrier(2);
 * const indexes = await Promise.all([barrier.wait(), barrier.wait()]);
 * assert.deepEqual(indexes.sort(), [0, 1]);
 * ```
 */
export class Barrier {
  #cell: Int32Array;

  static {
    registerHandler<Barrier, SharedArrayBuffer>({
      tag: "Barrier",
      canHandle: (v): v is Barrier => v instanceof Barrier,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => Barrier.#rebuild(buffer),
    });
  }

  static #rebuild(buffer: SharedArrayBuffer): Barrier {
    const b = new Barrier(1);
    b.#cell = new Int32Array(buffer);
    return b;
  }

  /**
   * Creates a barrier for `parties` threads.
   *
   * @param parties How many threads must call `wait`, an integer ≥ 1.
   * @param options The default `timeout` of `wait`.
   * @throws {RangeError} when `parties` is not an integer ≥ 1 or `timeout` is invalid.
   */
  constructor(parties: number, options: BarrierOptions = {}) {
    checkCount(parties, "create Barrier", "parties", 1);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot create Barrier as 'options' must be an object: current value is ${show(options)}`,
      );
    }
    const ms = checkTimeout(options.timeout, "Barrier()");
    this.#cell = new Int32Array(new SharedArrayBuffer(16));
    this.#cell[PARTIES] = parties;
    this.#cell[TIMEOUT] = ms === Infinity ? -1 : Math.min(ms, 0x7fff_ffff);
  }

  /** The number of threads needed to pass the barrier. */
  get parties(): number {
    return this.#cell[PARTIES];
  }

  /** The number of threads waiting now (0 while the barrier drains). */
  get nWaiting(): number {
    const v = Atomics.load(this.#cell, BARRIER);
    return (v & 3) === FILLING ? v >>> 2 : 0;
  }

  /** Whether the barrier is broken (after a timeout or `abort()`). */
  get broken(): boolean {
    return (Atomics.load(this.#cell, BARRIER) & 3) === BROKEN;
  }

  #ms(arg: number | WaitOptions | undefined, what: string): { ms: number; signal?: AbortSignal } {
    const got = waitArgs(arg, what);
    const given = typeof arg === "number" || (typeof arg === "object" && arg?.timeout !== undefined);
    if (!given && this.#cell[TIMEOUT] >= 0) got.ms = this.#cell[TIMEOUT];
    return got;
  }

  /** Updates the word with a CAS loop; notifies all when the phase changed. */
  #phase(to: (v: number) => number): void {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      const next = to(v);
      if (next === v) return;
      if (Atomics.compareExchange(cell, BARRIER, v, next) === v) {
        if ((v & 3) !== (next & 3)) notify(cell, BARRIER);
        return;
      }
    }
  }

  /** Tries to arrive: the index, `-1` to wait for the phase to change, or throws when broken. */
  #arrive(): number {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      const phase = v & 3;
      if (phase === BROKEN) throw new BrokenBarrierError();
      if (phase !== FILLING) return -1;
      const index = v >>> 2;
      const last = index + 1 === cell[PARTIES];
      if (Atomics.compareExchange(cell, BARRIER, v, ((index + 1) << 2) | (last ? DRAINING : FILLING)) === v) {
        if (last) notify(cell, BARRIER);
        return index;
      }
    }
  }

  /** Leaves after the wait: the last one out of a drain or reset re-opens the barrier. */
  #leave(): void {
    this.#phase((v) => {
      const count = (v >>> 2) - 1;
      const phase = v & 3;
      return (count << 2) | (count === 0 && (phase === DRAINING || phase === RESETTING) ? FILLING : phase);
    });
  }

  /** After arriving: `true` when released, `false` to keep waiting; throws when broken. */
  #released(): boolean {
    const phase = Atomics.load(this.#cell, BARRIER) & 3;
    if (phase === FILLING) return false;
    if (phase === DRAINING) return true;
    throw new BrokenBarrierError();
  }

  /**
   * Waits until `parties` threads have called `wait`.
   *
   * @param timeout Milliseconds (the constructor's by default), or
   *   `{ timeout, signal }`.
   * @returns This thread's index, 0…parties-1, distinct within a generation
   *   (unless a wait of that generation was aborted). Rejects with
   *   `BrokenBarrierError` when the barrier is or becomes broken, or reset
   *   while waiting; a timeout breaks it for all (as in Python). An abort
   *   rejects with the signal's reason and takes this wait back, leaving
   *   the barrier as it was (when it already tripped, the others go on).
   *
   * @example
   * ```ts
   * import { Barrier, BrokenBarrierError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const barrier = new Barrier(2);
   * await assert.rejects(barrier.wait(5), BrokenBarrierError);
   * assert.equal(barrier.broken, true);
   * ```
   */
  async wait(timeout?: number | WaitOptions): Promise<number> {
    const { ms, signal } = this.#ms(timeout, "Barrier.wait()");
    throwIfAborted(signal);
    const cell = this.#cell;
    const end = now() + ms;
    let index: number;
    // Wait for a drain or reset to finish before arriving.
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      index = this.#arrive();
      if (index >= 0) break;
      const left = end - now();
      if (left <= 0) {
        this.abort();
        throw new BrokenBarrierError();
      }
      await waitAsync(cell, BARRIER, v, left, signal);
    }
    try {
      for (;;) {
        const v = Atomics.load(cell, BARRIER);
        if (this.#released()) return index;
        const left = end - now();
        if (left <= 0) {
          this.abort();
          throw new BrokenBarrierError();
        }
        try {
          await waitAsync(cell, BARRIER, v, left, signal);
        } catch (error) {
          if (this.#withdraw()) index = -1;
          throw error;
        }
      }
    } finally {
      if (index >= 0) this.#leave();
    }
  }

  /**
   * Takes back an arrival while the barrier still fills (an aborted wait);
   * `false` when it has tripped, reset or broken meanwhile (then leave).
   */
  #withdraw(): boolean {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      if ((v & 3) !== FILLING) return false;
      if (Atomics.compareExchange(cell, BARRIER, v, v - 4) === v) return true;
    }
  }

  /**
   * The blocking twin of {@linkcode Barrier.wait}.
   *
   * @param timeout Milliseconds (the constructor's by default).
   * @returns This thread's index, 0…parties-1.
   * @throws {BrokenBarrierError} when the barrier is or becomes broken.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Barrier(1).waitSync(), 0);
   * ```
   */
  waitSync(timeout?: number | Omit<WaitOptions, "signal">): number {
    const { ms } = this.#ms(timeout, "Barrier.waitSync()");
    const cell = this.#cell;
    const end = now() + ms;
    let index: number;
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      index = this.#arrive();
      if (index >= 0) break;
      const left = end - now();
      if (left <= 0) {
        this.abort();
        throw new BrokenBarrierError();
      }
      assertCanBlock("Barrier.waitSync()");
      waitSync(cell, BARRIER, v, left);
    }
    try {
      for (;;) {
        const v = Atomics.load(cell, BARRIER);
        if (this.#released()) return index;
        const left = end - now();
        if (left <= 0) {
          this.abort();
          throw new BrokenBarrierError();
        }
        assertCanBlock("Barrier.waitSync()");
        waitSync(cell, BARRIER, v, left);
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * Returns the barrier to its initial state. Threads waiting in it get
   * `BrokenBarrierError`.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const barrier = new Barrier(2);
   * barrier.abort();
   * barrier.reset();
   * assert.equal(barrier.broken, false);
   * ```
   */
  reset(): void {
    this.#phase((v) => {
      const count = v >>> 2;
      const phase = v & 3;
      if (count === 0) return 0;
      return (count << 2) | (phase === FILLING || phase === BROKEN ? RESETTING : phase);
    });
  }

  /**
   * Breaks the barrier: current and future waiters get `BrokenBarrierError`
   * until `reset()`.
   *
   * @example
   * ```ts
   * import { Barrier } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const barrier = new Barrier(3);
   * barrier.abort();
   * assert.equal(barrier.broken, true);
   * ```
   */
  abort(): void {
    this.#phase((v) => (v & ~3) | BROKEN);
  }

  /** `<Barrier(parties=2, waiting=0)>`. */
  toString(): string {
    return `<Barrier(parties=${this.parties}, waiting=${this.nWaiting}${this.broken ? ", broken" : ""})>`;
  }
}
