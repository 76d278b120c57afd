// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Barrier`: `parties` threads wait until all have arrived.
 *
 * Layout (`Int32Array` over 16 bytes):
 *
 * | index     | meaning                                                                  |
 * |-----------|--------------------------------------------------------------------------|
 * | `BARRIER` | `(count << 3) | acting << 2 | phase`: threads inside `wait`, the phase   |
 * | `PARTIES` | the number of parties (set once)                                         |
 * | `TIMEOUT` | the default timeout in ms, or -1 for none (set once)                     |
 * | `HAS_ACTION` | 1 when the barrier has an action (set once)                           |
 *
 * Phases follow Python's `threading.Barrier`: `FILLING` (threads arrive;
 * the arriving thread's index is the count before it), `DRAINING` (the
 * last party arrived; waiters leave with their index), `RESETTING` (reset
 * while threads waited; they leave with `BrokenBarrierError`) and `BROKEN`.
 * Arrivals wait while the barrier drains or resets, so the indexes of one
 * generation are 0…parties-1, each once. Every change is one CAS on the
 * word; phase changes notify all waiters.
 *
 * With an action, the last arrival sets `ACTING` with `DRAINING`: the
 * others stay in `wait` until it has run the action and cleared the bit
 * (or broken the barrier, when the action threw). The action travels with
 * the barrier as source text and is rebuilt in each thread that runs it.
 *
 * @module
 */

import { BrokenBarrierError } from "./errors.ts";
import { registerHandler } from "./_handles.ts";
import { assertCanBlock, notify, now, waitAsync, waitSync } from "./_wait.ts";
import { checkInteger, checkOptions, checkTimeout, show } from "./_options.ts";
import { compile } from "./_target.ts";
import { throwIfAborted, waitArgs, type WaitOptions } from "./_gate.ts";

const BARRIER = 0;
const PARTIES = 1;
const TIMEOUT = 2;
const HAS_ACTION = 3;
/** The bit of the word set while the last arrival runs the action. */
const ACTING = 4;
/** The count sits above the phase and `ACTING` bits. */
const SHIFT = 3;
const PHASE = 3;
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
 * const options: BarrierOptions = { timeout: 1000, action: () => console.log("all arrived") };
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
  /**
   * Called by one of the waiting threads (the last to arrive) when the
   * barrier trips, before any of them is released (Python's `action`).
   * If it throws, the barrier breaks: that thread's `wait` throws the
   * error, the others get `BrokenBarrierError`. In other threads it is
   * rebuilt from its source text, so it must be self-contained (as a
   * `Thread` target without `module`). A Promise it returns is awaited by
   * `wait()` (not by `waitSync()`).
   * @default {undefined} no action
   */
  action?: () => unknown;
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
  /** The action as source text and name, to ship; `undefined` without one. */
  #shipped: [source: string, name: string] | undefined;
  /** The action in this thread: the caller's function, or one rebuilt from its source on first use. */
  #action: (() => unknown) | undefined;
  /** Whether {@linkcode Barrier.#action} was rebuilt from source in this thread. */
  #rebuilt = false;

  static {
    registerHandler<Barrier, SharedArrayBuffer | [SharedArrayBuffer, string, string]>({
      tag: "Barrier",
      canHandle: (v): v is Barrier => v instanceof Barrier,
      serialize: (v) =>
        v.#shipped ? [v.#cell.buffer as SharedArrayBuffer, ...v.#shipped] : v.#cell.buffer as SharedArrayBuffer,
      deserialize: (data) => Barrier.#rebuild(data),
    });
  }

  static #rebuild(data: SharedArrayBuffer | [SharedArrayBuffer, string, string]): Barrier {
    const b = new Barrier(1);
    if (Array.isArray(data)) {
      b.#cell = new Int32Array(data[0]);
      b.#shipped = [data[1], data[2]];
    } else b.#cell = new Int32Array(data);
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
    const opts = checkOptions<BarrierOptions>(options, "create Barrier");
    const ms = checkTimeout(opts?.timeout, "Barrier()");
    const action = opts?.action;
    if (action !== undefined) {
      if (typeof action !== "function") {
        throw new TypeError(`Cannot create Barrier as 'action' must be a function: current value is ${show(action)}`);
      }
      const source = Function.prototype.toString.call(action);
      if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
        throw new TypeError(
          `Cannot create Barrier as 'action' ('${action.name}') is a native or bound function and has no source to ship to other threads: pass a self-contained function`,
        );
      }
      this.#shipped = [source, action.name];
      this.#action = action as () => unknown;
    }
    this.#cell = new Int32Array(new SharedArrayBuffer(16));
    this.#cell[PARTIES] = parties;
    this.#cell[TIMEOUT] = ms === Infinity ? -1 : Math.min(ms, 0x7fff_ffff);
    this.#cell[HAS_ACTION] = action === undefined ? 0 : 1;
  }

  /** The number of threads needed to pass the barrier. */
  get parties(): number {
    return this.#cell[PARTIES];
  }

  /** The number of threads waiting now (0 while the barrier drains). */
  get nWaiting(): number {
    const v = Atomics.load(this.#cell, BARRIER);
    return (v & PHASE) === FILLING ? v >>> SHIFT : 0;
  }

  /** Whether the barrier is broken (after a timeout or `abort()`). */
  get broken(): boolean {
    return (Atomics.load(this.#cell, BARRIER) & PHASE) === BROKEN;
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
        if ((v & (PHASE | ACTING)) !== (next & (PHASE | ACTING))) notify(cell, BARRIER);
        return;
      }
    }
  }

  /** Tries to arrive: the index, `-1` to wait for the phase to change, or throws when broken. */
  #arrive(): number {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, BARRIER);
      const phase = v & PHASE;
      if (phase === BROKEN) throw new BrokenBarrierError();
      if (phase !== FILLING) return -1;
      const index = v >>> SHIFT;
      const last = index + 1 === cell[PARTIES];
      const next = ((index + 1) << SHIFT) | (last ? DRAINING | (cell[HAS_ACTION] ? ACTING : 0) : FILLING);
      if (Atomics.compareExchange(cell, BARRIER, v, next) === v) {
        if (last) notify(cell, BARRIER);
        return index;
      }
    }
  }

  /** Leaves after the wait: the last one out of a drain or reset re-opens the barrier. */
  #leave(): void {
    this.#phase((v) => {
      const count = (v >>> SHIFT) - 1;
      const phase = v & PHASE;
      return (count << SHIFT) | (v & ACTING) |
        (count === 0 && (phase === DRAINING || phase === RESETTING) ? FILLING : phase);
    });
  }

  /** After arriving: `true` when released, `false` to keep waiting; throws when broken. */
  #released(): boolean {
    const v = Atomics.load(this.#cell, BARRIER);
    const phase = v & PHASE;
    if (phase === FILLING) return false;
    if (phase === DRAINING) return (v & ACTING) === 0;
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
      if (this.#acts(index)) {
        let result: unknown;
        try {
          result = this.#runAction();
          if (isThenable(result)) await result;
        } catch (error) {
          throw this.#actionFailed(error);
        }
        this.#acted();
      }
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

  /** Whether the arrival with `index` tripped the barrier and runs the action. */
  #acts(index: number): boolean {
    return index + 1 === this.#cell[PARTIES] && this.#cell[HAS_ACTION] === 1;
  }

  /** Runs the action: the caller's function, or one rebuilt from its source text in this thread. */
  #runAction(): unknown {
    if (this.#action === undefined) {
      const [source, name] = this.#shipped!;
      this.#action = compile(source, name) as () => unknown;
      this.#rebuilt = true;
    }
    return this.#action();
  }

  /** The action ran: the others go (unless the barrier was broken or reset meanwhile: then they learn that). */
  #acted(): void {
    this.#phase((v) => v & ~ACTING);
  }

  /** The action threw: the barrier breaks for the others; the error (explained, when source was missing) is this wait's. */
  #actionFailed(error: unknown): unknown {
    this.#phase((v) => (v & ~(PHASE | ACTING)) | BROKEN);
    if (error instanceof ReferenceError && this.#rebuilt) {
      // Rebuilt from its source text here, the action sees no variable of the thread that made the barrier.
      error.message +=
        ` (a Barrier's action runs in the thread that trips the barrier, rebuilt from its source text there: it must be self-contained)`;
    }
    return error;
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
      if ((v & PHASE) !== FILLING) return false;
      if (Atomics.compareExchange(cell, BARRIER, v, v - (1 << SHIFT)) === v) return true;
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
      if (this.#acts(index)) {
        try {
          this.#runAction();
        } catch (error) {
          throw this.#actionFailed(error);
        }
        this.#acted();
      }
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
      const count = v >>> SHIFT;
      const phase = v & PHASE;
      if (count === 0) return 0;
      return (count << SHIFT) | (v & ACTING) | (phase === FILLING || phase === BROKEN ? RESETTING : phase);
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
    this.#phase((v) => (v & ~PHASE) | BROKEN);
  }

  /** `<Barrier(parties=2, waiting=0)>`. */
  toString(): string {
    return `<Barrier(parties=${this.parties}, waiting=${this.nWaiting}${this.broken ? ", broken" : ""})>`;
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function";
}
