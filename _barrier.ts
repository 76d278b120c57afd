// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Barrier`: `parties` threads wait until all have arrived.
 *
 * Layout (`Int32Array` over 16 bytes):
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
 *
 * @module
 */

import { BrokenBarrierError } from "./errors.ts";
import { registerHandler } from "./_handles.ts";
import { assertCanBlock, notify, now, waitAsync, waitSync } from "./_wait.ts";
import { checkInteger, checkOptions, checkTimeout } from "./_options.ts";
import { throwIfAborted, waitArgs, type WaitOptions } from "./_gate.ts";

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
  /**
   * The default timeout of `wait`, in milliseconds (a finite number ≥ 0).
   * @default {undefined} wait without a time limit
   */
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
  constructor(parties: number, options?: BarrierOptions) {
    checkInteger(parties, "create Barrier", "parties", 1);
    const ms = checkTimeout(checkOptions<BarrierOptions>(options, "create Barrier")?.timeout, "Barrier()");
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
      if (left <= 0) throw this.#timedOut(ms);
      await waitAsync(cell, BARRIER, v, left, signal);
    }
    try {
      for (;;) {
        const v = Atomics.load(cell, BARRIER);
        if (this.#released()) return index;
        const left = end - now();
        if (left <= 0) throw this.#timedOut(ms);
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

  /** Breaks the barrier for a wait whose `ms` ran out: the error that wait throws. */
  #timedOut(ms: number): BrokenBarrierError {
    this.abort();
    return new BrokenBarrierError(
      `Cannot pass the barrier: not all ${this.parties} parties arrived within ${ms} ms (the barrier is now broken)`,
    );
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
      if (left <= 0) throw this.#timedOut(ms);
      assertCanBlock("Barrier.waitSync()");
      waitSync(cell, BARRIER, v, left);
    }
    try {
      for (;;) {
        const v = Atomics.load(cell, BARRIER);
        if (this.#released()) return index;
        const left = end - now();
        if (left <= 0) throw this.#timedOut(ms);
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
