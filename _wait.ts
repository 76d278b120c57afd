// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Adaptive waiting: the one place where this library blocks or parks.
 *
 * Every blocking path (locks, queues, pipes, pools, join) waits on an
 * `Int32Array` cell with the futex pattern: read a "sequence" word, check the
 * condition, and if it does not hold, wait while the word still has the value
 * read. Whoever changes the condition changes the word first, then notifies.
 * A change between the check and the wait makes the wait return at once
 * ("not-equal"), so no wake-up is lost.
 *
 * A futex round trip costs ~50 µs on a small VM while a hand-off seen by
 * spinning costs well under 1 µs, so waits first spin briefly on the word,
 * then park. Parked waiters use no CPU.
 *
 * @module
 */

import { officeWatch } from "./_mailbox.ts";
import { canBlock, terminateStops } from "./_runtime.ts";
import { stopCells, stopIfAsked } from "./_status.ts";

// ---- the policy: every spin length and park slice of the library -----------

/**
 * How long (ms) a wait parks at a time when it must also notice what no
 * wake-up announces: a lock holder's or pipe peer's death (a dead thread
 * cannot notify), a stop request in a Deno thread (`_status.ts`), a worker
 * that wants the post office (`_mailbox.ts`). Such waits park in slices of
 * this length and look in between: a parked thread wakes 20 times a second.
 */
export const SLICE = 50;

/**
 * How long (ms) a queue's parked getter or putter sleeps at most before it
 * looks again. No wake-up is lost, but one can be spent on a waiter whose
 * thread is terminated right after it was woken; this bounds how long
 * another waiter then sleeps next to an item (or room).
 */
export const RECHECK = 1000;

/** The most times a wait polls the word before it parks (~20 µs on a small VM). */
export const SPIN = 2000;
/** The fewest: enough to catch a hand-off from a thread running on another core. */
export const SPIN_MIN = 64;
/** Async waits spin less: they hold up the event loop while they spin. */
export const SPIN_ASYNC = 200;
/**
 * Every `probeEvery` spins, one polls for the full `SPIN` to see whether
 * spinning pays again; a probe that fails doubles the interval (up to
 * `PROBE_MAX`), one that pays resets it.
 */
const PROBE_MIN = 32;
const PROBE_MAX = 1024;

/** Polls of a ring's lock word before a locker parks (`_ring.ts`). */
export const LOCK_SPIN = 200;
/** Polls of a ring's records word after a producer's wake-up, before parking again (~10–30 µs). */
export const WOKEN_SPIN = 2000;
/** The first pause (ms) a ring consumer tries before taking, to learn whether records gather (`_ring.ts`). */
export const GATHER_PROBE_MS = 0.002;
/** The longest such pause (ms). */
export const GATHER_MAX_MS = 0.032;
/** Below this (ms) the pause is dropped. */
export const GATHER_MIN_MS = 0.001;
/** Waits between two probes for a pause while not pausing. */
export const GATHER_PROBE_EVERY = 1024;
/** Records that must arrive during a pause for it to be kept. */
export const GATHER_RECORDS = 4;

/**
 * How long (ms) a {@linkcode Watch} polls before it parks, at most and at
 * least (a pipe's blocking receive).
 */
export const WATCH_MAX_MS = 0.5;
export const WATCH_MIN_MS = 0.005;
/** A {@linkcode Watch} probes when `waits & mask` is 0: first every 64 waits, at most every 4096. */
export const WATCH_PROBE_FIRST = 63;
export const WATCH_PROBE_LAST = 4095;

/** How long (ms) a pool's owner polls for results before it parks (`pool.ts`). */
export const POOL_RESULT_SPIN_MS = 0.05;
/** How long (ms) an idle pool worker polls for the next task before it parks (`_pool_worker.ts`). */
export const POOL_IDLE_SPIN_MS = 0.2;
/** How many times a semaphore taker reads a tagged word before it leaves the wait to the slow path (`sync.ts`). */
export const SEMAPHORE_TAG_SPIN = 256;

/** How a single wait ended. */
export type WaitResult = "ok" | "not-equal" | "timed-out";
let probeEvery = PROBE_MIN;

/**
 * How long this thread spins before parking, adapted to what spinning has
 * achieved lately: a spin that sees the change sets the budget to twice
 * what it needed; one that has to park halves it. On an idle machine
 * hand-offs are seen while spinning (well under a µs); on an overloaded one
 * (more runnable threads than cores) the thread we wait for may not be
 * running at all, spinning only steals its CPU, and the budget falls to
 * `SPIN_MIN` so waits park at once.
 */
let budget = SPIN;
/**
 * Set when this thread just woke a sleeper: its next wait spins in full.
 * In a ping-pong the reply to a thread that was parked comes only after a
 * wake-up latency; parking meanwhile would make the other side wake us in
 * turn, and both would keep parking for ever.
 */
let boosted = false;
/** How long a boosted wait spins: halved when even that does not see the reply. */
let boostBudget = SPIN;
let spins = 0;
/** Throws when the calling thread may not block (a browser's main thread). */
export function assertCanBlock(what: string): void {
  if (!canBlock) {
    throw new Error(
      `Cannot call ${what} on this thread: it may not block (a browser's main thread). Use the Promise form instead.`,
    );
  }
}

/** Milliseconds since some fixed point, for deadlines. */
export function now(): number {
  return performance.now();
}

/**
 * Waits while `cell[index] === expected`, spinning briefly before parking.
 *
 * @param timeout Milliseconds, `Infinity` for no limit.
 */
export function waitSync(cell: Int32Array, index: number, expected: number, timeout = Infinity): WaitResult {
  if (spin(cell, index, expected)) return "not-equal";
  return parkSync(cell, index, expected, timeout);
}

/**
 * Polls `cell[index]` while it holds `expected`, for about as long as a
 * park and wake-up would cost (sync) or a couple of µs (`short`, for async
 * waits, which hold up the event loop while they spin).
 *
 * Waiters that count themselves before parking (so that a releaser calls
 * `notify` only when someone sleeps) spin with this first, uncounted, then
 * count themselves and park with {@linkcode parkSync} / {@linkcode parkAsync}.
 *
 * @returns `true` when the word changed.
 */
export function spin(cell: Int32Array, index: number, expected: number, short = false): boolean {
  const boost = boosted;
  boosted = false;
  const probe = ++spins >= probeEvery;
  if (probe) spins = 0;
  const cap = short ? SPIN_ASYNC * 4 : SPIN;
  const limit = probe ? cap : boost ? Math.min(cap, boostBudget) : short ? Math.min(budget, SPIN_ASYNC) : budget;
  for (let i = 0; i < limit; i++) {
    if (Atomics.load(cell, index) !== expected) {
      const want = 2 * i + SPIN_MIN;
      if (want > budget || probe) budget = Math.min(SPIN, want);
      if (boost || want > boostBudget) boostBudget = Math.min(SPIN, Math.max(boostBudget, want));
      if (probe) probeEvery = PROBE_MIN;
      return true;
    }
  }
  if (!short || budget <= SPIN_ASYNC) budget = Math.max(SPIN_MIN, budget >> 1);
  // The reply to a sleeper we woke did not come while we spun: the machine
  // is too busy for spinning to pay, so spin less after the next wake-up.
  if (boost) boostBudget = Math.max(SPIN_MIN, boostBudget >> 1);
  if (probe) probeEvery = Math.min(PROBE_MAX, probeEvery * 2);
  return false;
}

/** Parks while `cell[index] === expected`, with no spinning first. */
export function parkSync(cell: Int32Array, index: number, expected: number, timeout = Infinity): WaitResult {
  stopIfAsked();
  // A thread that its parent may ask to stop, on a runtime that cannot stop
  // it while it is parked (Deno), parks in slices and checks in between.
  if (terminateStops || stopCells() === undefined) return parkOnce(cell, index, expected, timeout);
  const end = now() + timeout;
  for (;;) {
    const left = end - now();
    const r = parkOnce(cell, index, expected, Math.min(left, SLICE));
    if (r !== "timed-out" || left <= SLICE) return r;
    stopIfAsked();
  }
}

function parkOnce(cell: Int32Array, index: number, expected: number, timeout: number): WaitResult {
  if (officeWatch === undefined) return Atomics.wait(cell, index, expected, timeout);
  // Looking out for a worker that wants the post office (`_mailbox.ts`).
  const end = now() + timeout;
  for (;;) {
    if (officeWatch === undefined || officeWatch()) {
      return Atomics.wait(cell, index, expected, Math.max(0, end - now()));
    }
    const left = end - now();
    if (left <= 0) return "timed-out";
    const r = Atomics.wait(cell, index, expected, Math.min(left, SLICE));
    if (r !== "timed-out") return r;
  }
}

/**
 * The Promise twin of {@linkcode waitSync}; never blocks the event loop for
 * longer than a short spin. When `signal` aborts, the Promise rejects with
 * the signal's reason.
 */
export function waitAsync(
  cell: Int32Array,
  index: number,
  expected: number,
  timeout = Infinity,
  signal?: AbortSignal,
): Promise<WaitResult> {
  if (spin(cell, index, expected, true)) return Promise.resolve("not-equal");
  return parkAsync(cell, index, expected, timeout, signal);
}

/**
 * The Promise twin of {@linkcode parkSync}: parks with `Atomics.waitAsync`,
 * no spinning first. When `signal` aborts, the Promise rejects with the
 * signal's reason.
 */
export function parkAsync(
  cell: Int32Array,
  index: number,
  expected: number,
  timeout = Infinity,
  signal?: AbortSignal,
): Promise<WaitResult> {
  stopIfAsked();
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (typeof Atomics.waitAsync !== "function") return pollAsync(cell, index, expected, timeout, signal);
  const res = Atomics.waitAsync(cell, index, expected, timeout === Infinity ? undefined : timeout);
  if (!res.async) return Promise.resolve(res.value as WaitResult);
  // A timer is pending for as long as the wait is parked, for two reasons:
  // - Deno and Node do not count a pending Atomics.waitAsync as work: a
  //   program whose only pending thing is this wait would exit (or, in a
  //   test, fail with "promise resolution is still pending");
  // - Bun (1.3/1.4) does, but by polling: with no timer pending its event
  //   loop spins for as long as the wait lasts (measured: 1.9-2.0 s of CPU
  //   for a 2 s wait, with or without a wait timeout), and with any timer
  //   pending it sleeps (6-16 ms of CPU for the same 2 s). So every async
  //   waiter parks with no CPU use on every runtime.
  const keepAlive = setTimeout(noop, KEEP_ALIVE);
  if (!signal) {
    return (res.value as Promise<WaitResult>).then((v) => {
      clearTimeout(keepAlive);
      return v;
    });
  }
  return new Promise<WaitResult>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(keepAlive);
      reject(signal.reason);
      // Wake the parked waitAsync so it does not linger until the next
      // notify (and absorb a wake-up meant for a live waiter); the other
      // waiters on the word re-check and wait again.
      Atomics.notify(cell, index);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    (res.value as Promise<WaitResult>).then((v) => {
      clearTimeout(keepAlive);
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    });
  });
}

function noop(): void {}

/**
 * `parkAsync` where `Atomics.waitAsync` is missing (older Firefox): polls
 * the word with timers that back off from 1 to 16 ms.
 */
function pollAsync(
  cell: Int32Array,
  index: number,
  expected: number,
  timeout: number,
  signal?: AbortSignal,
): Promise<WaitResult> {
  const end = now() + timeout;
  return new Promise<WaitResult>((resolve, reject) => {
    let delay = 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const check = () => {
      const left = end - now();
      const done: WaitResult | undefined = Atomics.load(cell, index) !== expected
        ? "ok"
        : left <= 0
        ? "timed-out"
        : undefined;
      if (done) {
        signal?.removeEventListener("abort", onAbort);
        resolve(done);
        return;
      }
      timer = setTimeout(check, Math.min(delay, left));
      delay = Math.min(16, delay * 2);
    };
    check();
  });
}
/** The longest timer delay (about 24.8 days); cleared long before. */
const KEEP_ALIVE = 0x7fffffff;

/**
 * Wakes up to `count` waiters parked on `cell[index]`.
 *
 * @returns How many were woken.
 */
export function notify(cell: Int32Array, index: number, count = Infinity): number {
  const woken = Atomics.notify(cell, index, count);
  if (woken > 0) boosted = true;
  return woken;
}

/**
 * Waits until `check()` returns something other than `undefined`, re-running
 * it each time `cell[index]` (the sequence word of the condition) changes.
 *
 * @param slice When set, wake at least this often (ms) to re-run `check`,
 *   for conditions that can change without the word changing (a thread
 *   that died while holding a lock).
 * @returns What `check` returned, or `undefined` when `timeout` passed.
 */
export function untilSync<T>(
  cell: Int32Array,
  index: number,
  check: () => T | undefined,
  timeout = Infinity,
  slice = Infinity,
): T | undefined {
  const end = timeout === Infinity ? Infinity : now() + timeout;
  for (;;) {
    const seq = Atomics.load(cell, index);
    const got = check();
    if (got !== undefined) return got;
    const left = end - now();
    if (left <= 0) return undefined;
    waitSync(cell, index, seq, Math.min(left, slice));
  }
}

/**
 * The Promise twin of {@linkcode untilSync}. When `signal` aborts, rejects
 * with the signal's reason (and `check` is not run again).
 */
export async function until<T>(
  cell: Int32Array,
  index: number,
  check: () => T | undefined,
  timeout = Infinity,
  signal?: AbortSignal,
  slice = Infinity,
): Promise<T | undefined> {
  const end = timeout === Infinity ? Infinity : now() + timeout;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const seq = Atomics.load(cell, index);
    const got = check();
    if (got !== undefined) return got;
    const left = end - now();
    if (left <= 0) return undefined;
    await waitAsync(cell, index, seq, Math.min(left, slice), signal);
  }
}

/**
 * A watch whose length adapts to what watching achieved lately, for a
 * waiter answered within microseconds when the other side is busy with it
 * (a pipe's ping-pong): a parked thread takes 5–50 µs to wake (far more when
 * the cores are busy), so the watch rides out a hiccup on the other side.
 * When it does not pay (an idle producer, or more busy threads than cores,
 * where the watch takes the CPU the producer needs) it halves at each
 * failure down to {@linkcode WATCH_MIN_MS}, with a full-length probe every
 * 64 watches, or rarer (down to one in 4096) while probes fail, so that
 * they do not weigh on the tail. One instance per waiter (its state is the
 * waiter's history).
 */
export class Watch {
  #ms = WATCH_MAX_MS;
  #watches = 0;
  #probeMask = WATCH_PROBE_FIRST;

  /**
   * Polls `cell[index]` while it equals `expected`, for this watch's current
   * length but at most `limit` ms.
   *
   * @returns `true` when the word changed.
   */
  watch(cell: Int32Array, index: number, expected: number, limit: number): boolean {
    const t0 = now();
    const probe = (++this.#watches & this.#probeMask) === 0;
    const ms = Math.min(limit, probe ? WATCH_MAX_MS : this.#ms);
    do {
      for (let i = 0; i < 64; i++) {
        if (Atomics.load(cell, index) !== expected) {
          if (probe) {
            this.#ms = WATCH_MAX_MS;
            this.#probeMask = WATCH_PROBE_FIRST;
          } else {
            this.#ms = Math.min(WATCH_MAX_MS, this.#ms * 2);
          }
          return true;
        }
      }
    } while (now() - t0 < ms);
    this.#ms = Math.max(WATCH_MIN_MS, this.#ms / 2);
    if (probe) this.#probeMask = Math.min(WATCH_PROBE_LAST, this.#probeMask * 2 + 1);
    return false;
  }

  /** The current length (ms), for tests. */
  get ms(): number {
    return this.#ms;
  }
}
