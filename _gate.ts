// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The acquire slow path shared by `Lock`, `RLock` and `Semaphore` (a
 * "gate"), and the words every waiting primitive of `sync.ts` shares: the
 * options of acquires and waits, the scoped handle, and how an acquire ended.
 *
 * Words every gate has at the same indexes of its `Int32Array`:
 *
 * | index     | written by                                  | meaning                                      |
 * |-----------|---------------------------------------------|----------------------------------------------|
 * | `WORD`    | acquirers and releasers (CAS / add)         | the futex word: lock state or permit count   |
 * | `WAITERS` | waiters, `Atomics.add`/`sub` around parking | how many threads are parked (or about to be) |
 * | `STARVER` | one waiter, CAS 0 → its ident               | a waiter that has waited too long            |
 *
 * **No lost wake-up.** A waiter first spins on `WORD` without being counted
 * (a hand-off between running threads then costs no system call), then adds
 * itself to `WAITERS`, re-reads `WORD` and parks only if it did not change.
 * A releaser writes `WORD` first and reads `WAITERS` (or, for locks, a
 * `PARKED` bit that waiters set in `WORD`) after: with sequentially
 * consistent atomics either the waiter sees the release or the releaser
 * sees the waiter and notifies. So `Atomics.notify` runs only when someone
 * sleeps, and it wakes one waiter per lock release or permit. A waiter woken
 * for a release that it then does not use (timed out, aborted) passes the
 * wake-up on.
 *
 * **Starvation.** A waiter that has waited more than `STARVE_MS` records
 * itself in `STARVER` (one at a time); until it is served, other waiting
 * threads may not take the free primitive (a try that does not wait still
 * may, as in Python), and releases wake every parked waiter so that it
 * surely wakes (the futex queue's first waiter may be another one). A
 * starver that died is ignored.
 *
 * **Owner death.** A dead owner changes no word a waiter could park on, so
 * parked waiters wake every `SLICE` ms and ask the gate to `recover`.
 *
 * @module
 */

import { TimeoutError } from "./errors.ts";
import { isIdentAlive, selfIdent } from "./_registry.ts";
import { notify, now, parkAsync, parkSync, SLICE, spin } from "./_wait.ts";
import { checkBlock, checkOptions, checkSignal, checkTimeout } from "./_options.ts";

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
   * (`timeout` is then ignored, as in Python's `multiprocessing`). Anything
   * but a boolean is a `TypeError`.
   * @default {true}
   */
  block?: boolean;
  /**
   * How long to wait, in milliseconds (a finite number ≥ 0).
   * @default {undefined} wait without a time limit
   */
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
  /**
   * How long to wait, in milliseconds (a finite number ≥ 0).
   * @default {undefined} wait without a time limit
   */
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

export const WORD = 0;
export const WAITERS = 1;
export const STARVER = 2;

/** How long a waiter waits before it claims priority (ms). */
export const STARVE_MS = 2;

/** How an acquire ended. */
export const FAILED = 0;
export const TOOK = 1;
export const RECOVERED = 2;
export type AcquireResult = typeof FAILED | typeof TOOK | typeof RECOVERED;

/** Reads `{ block, timeout, signal }`: the wait in ms (0 for `block: false`) and the signal. */
export function acquireOptions(
  options: AcquireOptions | undefined,
  what: string,
): { ms: number; signal?: AbortSignal } {
  const checked = checkOptions<AcquireOptions>(options, what, false, "call ");
  if (checked === undefined) return { ms: Infinity };
  const block = checkBlock(checked.block, what, "call ");
  const ms = checkTimeout(checked.timeout, what);
  const signal = checkSignal(checked.signal, what, "call ");
  // As in Python's multiprocessing (and this library's queues), `block: false` ignores a (valid) timeout.
  return { ms: block ? ms : 0, signal };
}

/** Reads a `timeout` given as a number or as `{ timeout, signal }`. */
export function waitArgs(arg: number | WaitOptions | undefined, what: string): { ms: number; signal?: AbortSignal } {
  if (typeof arg !== "object" || arg === null) return { ms: checkTimeout(arg as number | undefined, what) };
  return { ms: checkTimeout(arg.timeout, what), signal: checkSignal(arg.signal, what, "call ") };
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** What the scoped forms need of a primitive. */
interface Holdable {
  readonly ownerDied: boolean;
  acquire(options?: AcquireOptions): Promise<boolean>;
  acquireSync(options?: AcquireOptions): boolean;
  release(): void;
}

/** `scoped()` of a lock or semaphore: `what` names it in the `TimeoutError` ("the lock"). */
export async function scoped(p: Holdable, what: string, options: AcquireOptions | undefined): Promise<Acquired> {
  if (!(await p.acquire(options))) throw scopeTimeout(what, options);
  return makeAcquired(p);
}

/** `scopedSync()` of a lock or semaphore. */
export function scopedSync(p: Holdable, what: string, options: AcquireOptions | undefined): Acquired {
  if (!p.acquireSync(options)) throw scopeTimeout(what, options);
  return makeAcquired(p);
}

function makeAcquired(p: Holdable): Acquired {
  let held = true;
  const done = () => {
    if (!held) return;
    held = false;
    p.release();
  };
  return {
    ownerDied: p.ownerDied,
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

/** How a lock or semaphore is taken, for the shared slow path. */
export interface Gate {
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

/** Whether a live thread other than `me` is the starver (a dead one is cleared). */
export function otherStarver(cell: Int32Array, me: number): boolean {
  const s = Atomics.load(cell, STARVER);
  if (s === 0 || s === me) return false;
  if (isIdentAlive(s)) return true;
  Atomics.compareExchange(cell, STARVER, s, 0);
  return false;
}

/** Waits up to `ms` (0: one try) for the gate, blocking the thread. */
export function slowSync(g: Gate, ms: number): AcquireResult {
  const cell = g.cell;
  const me = selfIdent();
  const start = now();
  const end = start + ms;
  let starving = false;
  let result: AcquireResult = FAILED;
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
    if (result === FAILED && Atomics.load(cell, WAITERS) > 0) notify(cell, WORD, 1);
  }
}

/** Waits up to `ms` (0: one try) for the gate without blocking the event loop. */
export async function slowAsync(g: Gate, ms: number, signal: AbortSignal | undefined): Promise<AcquireResult> {
  const cell = g.cell;
  const me = selfIdent();
  const start = now();
  const end = start + ms;
  let starving = false;
  let result: AcquireResult = FAILED;
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
