// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/sync_test.ts and tests/shared_test.ts. Workers import
// this module by URL, so it must stay free of side effects at its top level.

import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  Lock,
  RLock,
  Semaphore,
  type SharedArray,
  type SharedValue,
} from "../../mod.ts";
import { prng } from "./pipe_fixtures.ts";

export const url: string = import.meta.url;

type AnyLock = Lock | RLock;

/**
 * Sleeps in a wait of this library, where every runtime can stop the thread
 * (Deno cannot stop one parked in a raw `Atomics.wait`).
 */
function nap(ms: number): void {
  new Event().waitSync(ms);
}

/** Takes `lock` (twice if `depth` is 2), sets `ready`, then hangs until terminated. */
export function holdAndHang(lock: AnyLock | Semaphore, ready: Event, depth = 1): void {
  for (let i = 0; i < depth; i++) lock.acquireSync();
  ready.set();
  for (;;) nap(10);
}

/** Takes `lock`, then throws: the thread crashes holding it. */
export function holdAndThrow(lock: AnyLock | Semaphore): void {
  lock.acquireSync();
  throw new Error("crashed while holding the lock");
}

/** Takes `lock` and returns without releasing it. */
export function holdAndReturn(lock: AnyLock | Semaphore): void {
  lock.acquireSync();
}

/**
 * Takes `lock` (blocking or awaiting), records in `out[0]` 1 (taken) or 0
 * (timed out) and in `out[1]` whether the owner had died, then releases it.
 */
export async function acquireAndReport(
  lock: AnyLock | Semaphore,
  out: Int32Array,
  timeout?: number,
  useAsync = false,
): Promise<void> {
  const options = timeout === undefined ? undefined : { timeout };
  const got = useAsync ? await lock.acquire(options) : lock.acquireSync(options);
  out[1] = lock.ownerDied ? 1 : 0;
  Atomics.store(out, 0, got ? 1 : 2);
  Atomics.notify(out, 0);
  if (got) lock.release();
}

/** Tries to release `lock` without holding it; records the error's message length in `out[0]` (0 = no error). */
export function releaseForeign(lock: AnyLock, out: Int32Array): string {
  try {
    lock.release();
    return "";
  } catch (e) {
    out[0] = 1;
    return (e as Error).message;
  }
}

/** `n` increments of `v`, each under its lock (blocking acquire). */
export function lockedIncrements(v: SharedValue<"i">, n: number): void {
  const lock = v.getLock();
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    v.value += 1;
    lock.release();
  }
}

/** `n` increments of `v` under the scoped form of `lock`. */
export function scopedIncrements(v: SharedValue<"i">, lock: AnyLock, n: number): void {
  for (let i = 0; i < n; i++) {
    using _ = lock.scopedSync();
    v.value += 1;
  }
}

/** `n` increments of `v` under `lock`, awaiting each acquire. */
export async function asyncIncrements(v: SharedValue<"i">, lock: AnyLock, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await lock.acquire();
    v.value += 1;
    lock.release();
  }
}

/** `n` increments of `counts[slot]` and `counts[total]` under `lock`: a plain read-modify-write race without it. */
export function arrayIncrements(a: SharedArray<"i">, lock: AnyLock, slot: number, n: number): void {
  for (let i = 0; i < n; i++) {
    lock.acquireSync();
    a.set(slot, a.get(slot) + 1);
    a.set(0, a.get(0) + 1);
    lock.release();
  }
}

/**
 * Hammers `lock` in a tight loop until `stop` is set, counting its
 * acquisitions in `counts[slot]`.
 */
export function contend(lock: AnyLock, counts: Int32Array, slot: number, stop: Event): void {
  while (!stop.isSet()) {
    lock.acquireSync();
    counts[slot]++;
    lock.release();
  }
}

/**
 * Takes a permit `rounds` times and, while holding it, tracks how many
 * threads hold one at once: `stats[0]` now, `stats[1]` the most seen.
 */
export function useSemaphore(
  sem: Semaphore | BoundedSemaphore,
  stats: Int32Array,
  rounds: number,
  together?: Barrier,
): void {
  // Threads start one by one (tens of ms apart on a loaded machine): meet
  // first, so that they really contend.
  together?.waitSync(60_000);
  for (let r = 0; r < rounds; r++) {
    sem.acquireSync();
    const now = Atomics.add(stats, 0, 1) + 1;
    for (;;) {
      const max = Atomics.load(stats, 1);
      if (now <= max || Atomics.compareExchange(stats, 1, max, now) === max) break;
    }
    nap(1);
    Atomics.sub(stats, 0, 1);
    sem.release();
  }
}

/** Takes one permit from `sem` (a signal) and returns. */
export function consumeSignal(sem: Semaphore, done: Event): void {
  sem.acquireSync();
  done.set();
}

/** Waits for `ev` (blocking or awaiting) and records the result in `out[slot]` (1 true, 2 false). */
export async function waitEvent(ev: Event, out: Int32Array, slot: number, timeout?: number, useAsync = false) {
  const got = useAsync ? await ev.wait(timeout) : ev.waitSync(timeout);
  Atomics.store(out, slot, got ? 1 : 2);
  Atomics.notify(out, slot);
}

/**
 * Waits on `cond` once (lock held), counting the thread in `out[0]` as
 * waiting and in `out[1]` as woken (or `out[2]` when the wait timed out).
 */
export async function conditionWaiter(cond: Condition, out: Int32Array, timeout?: number, useAsync = false) {
  if (useAsync) await cond.acquire();
  else cond.acquireSync();
  Atomics.add(out, 0, 1);
  const got = useAsync ? await cond.wait(timeout) : cond.waitSync(timeout);
  // The lock is held again here: a second acquire with block:false fails for a Lock.
  Atomics.add(out, got ? 1 : 2, 1);
  cond.release();
}

/** Consumer: waits (with the condition's lock) until `box[0]` is non-zero, then records it in `box[1]`. */
export function conditionConsumer(cond: Condition, box: Int32Array): void {
  cond.acquireSync();
  const value = cond.waitForSync(() => Atomics.load(box, 0));
  Atomics.store(box, 1, value);
  cond.release();
}

/** Waits at `barrier` `rounds` times, recording its index of each round in `out[round * stride + slot]`. */
export async function barrierRounds(
  barrier: Barrier,
  out: Int32Array,
  slot: number,
  stride: number,
  rounds: number,
  useAsync = false,
) {
  for (let r = 0; r < rounds; r++) {
    const index = useAsync ? await barrier.wait() : barrier.waitSync();
    out[r * stride + slot] = index + 1;
  }
}

/** Waits at `barrier` `rounds` times, then records in `out[slot]` how often this thread ran the barrier's action. */
export function barrierActs(barrier: Barrier, out: Int32Array, slot: number, rounds: number): void {
  for (let r = 0; r < rounds; r++) barrier.waitSync();
  out[slot] = (globalThis as { barrierActs?: number }).barrierActs ?? 0;
}

/** Waits at `barrier` and records the outcome in `out[slot]`: 1 passed, 2 BrokenBarrierError, 3 other. */
export async function barrierOutcome(barrier: Barrier, out: Int32Array, slot: number, timeout?: number) {
  try {
    barrier.waitSync(timeout);
    Atomics.store(out, slot, 1);
  } catch (e) {
    Atomics.store(out, slot, (e as Error).name === "BrokenBarrierError" ? 2 : 3);
  }
  Atomics.notify(out, slot);
  await Promise.resolve();
}

/** Hand-off ping-pong: waits for `ping`, then releases `pong`, `n` times (locks used as binary semaphores). */
export function pingPong(ping: Lock, pong: Lock, n: number): void {
  for (let i = 0; i < n; i++) {
    ping.acquireSync();
    pong.release();
  }
}

/** Sets `a[i] = i * k` for every element. */
export function fillArray(a: SharedArray, k: number): void {
  for (let i = 0; i < a.length; i++) a.set(i, a.typecode === "q" ? BigInt(i * k) as never : (i * k) as never);
}

/** Adds `k` to `v` under its lock and returns. */
export function addUnderLock(v: SharedValue<"d">, k: number): void {
  using _ = v.getLock().scopedSync();
  v.value += k;
}

/** Writes the same number `n` times into `v` without a lock, racing with others. */
export function unlockedIncrements(v: SharedValue<"i">, n: number): void {
  for (let i = 0; i < n; i++) v.value += 1;
}

/**
 * Bounded-buffer producer over `cond`: `box` = [items, capacity, consumed,
 * closed, produced]. Puts `n` items, waiting while the buffer is full.
 */
export function boundedProduce(cond: Condition, box: Int32Array, n: number, useAsync = false): Promise<void> | void {
  if (useAsync) {
    return (async () => {
      for (let i = 0; i < n; i++) {
        await cond.acquire();
        await cond.waitFor(() => box[0] < box[1]);
        box[0]++;
        box[4]++;
        cond.notifyAll();
        cond.release();
      }
    })();
  }
  for (let i = 0; i < n; i++) {
    cond.acquireSync();
    cond.waitForSync(() => box[0] < box[1]);
    box[0]++;
    box[4]++;
    cond.notifyAll();
    cond.release();
  }
}

/** Bounded-buffer consumer: takes items until the buffer is closed and empty. */
export function boundedConsume(cond: Condition, box: Int32Array): void {
  for (;;) {
    cond.acquireSync();
    cond.waitForSync(() => box[0] > 0 || box[3] === 1);
    if (box[0] === 0) {
      cond.release();
      return;
    }
    box[0]--;
    box[2]++;
    cond.notifyAll();
    cond.release();
  }
}

/** `rounds` times: take a permit, bump `counts[0]` non-atomically (guarded by a Semaphore(1)), give it back. */
export function semaphoreIncrements(sem: Semaphore, counts: Int32Array, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    sem.acquireSync();
    counts[0] = counts[0] + 1;
    sem.release();
  }
}

/**
 * Acquires `lock` `n` times with short timeouts (many fail), bumping
 * `counts[0]` non-atomically when it got it and counting its successes in
 * `counts[slot]`.
 */
export function timeoutStorm(lock: AnyLock | Semaphore, counts: Int32Array, slot: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const got = i % 7 === 0 ? lock.acquireSync({ block: false }) : lock.acquireSync({ timeout: i % 2 });
    if (!got) continue;
    counts[0] = counts[0] + 1;
    counts[slot]++;
    lock.release();
  }
}

/** Checks that each handle nested in `box` arrived as its own class; writes 1 per match into `out`. */
export function checkHandleClasses(
  box: { locks: [Lock, RLock]; sems: Map<string, Semaphore>; more: { ev: Event; cond: Condition; barrier: Barrier } },
  out: Int32Array,
): void {
  const checks = [
    box.locks[0] instanceof Lock && !(box.locks[0] instanceof RLock),
    box.locks[1] instanceof RLock,
    box.sems.get("plain") instanceof Semaphore && !(box.sems.get("plain") instanceof BoundedSemaphore),
    box.sems.get("bounded") instanceof BoundedSemaphore,
    box.more.ev instanceof Event,
    box.more.cond instanceof Condition,
    box.more.barrier instanceof Barrier && box.more.barrier.parties === 3,
  ];
  checks.forEach((ok, i) => out[i] = ok ? 1 : 0);
  // And they act on the same memory: take what the main thread left free.
  out[7] = box.sems.get("bounded")!.acquireSync({ block: false }) ? 1 : 0;
  box.more.ev.set();
}

// --- Semaphore kill windows ------------------------------------------------------
// A thread is "killed" at a step of the semaphore's protocol by parking it
// there for good (sync.ts calls the step hook between any two of its
// shared-memory writes) while the test declares it dead (markDead): it then
// provably runs no more semaphore code. At the end the test lets it unwind
// (the hook throws) so that it ends on every runtime.

const STEP_HOOK = Symbol.for("@mpjs/multiprocessing/sync.semaphoreStep");

/** Per-thread cells of a kill-window fixture. */
export const KW_STATE = 0;
/** `KW_STATE` values. */
export const KW_RUNNING = 0;
export const KW_PARKED = 1;
export const KW_DONE = 2;
/**
 * Set by the test: after this many more steps the thread parks (0: never;
 * negative: after that many steps of a recovery).
 */
export const KW_COUNTDOWN = 1;
/** Set by the test to let a parked thread unwind (or a running one stop). */
export const KW_UNWIND = 2;
/** Where the thread parked: 1 + the index of the step in {@linkcode STEPS}. */
export const KW_POINT = 3;
/** Cells per thread. */
export const KW_CELLS = 4;

/** Every step sync.ts reports: of a take, a give, and a recovery of a dead holder's slot. */
export const STEPS: readonly string[] = [
  "take.start",
  "take.cas",
  "take.record",
  "give.start",
  "give.cas",
  "give.record",
  "recover.claim",
  "finish.record",
  "recover.start",
  "recover.cas",
  "recover.record",
  "recover.take",
  "recover.taken",
  "recover.end",
];

/** Thrown out of the hook to unwind a parked thread. */
class Unwind extends Error {}

/** Parks here, for good as far as the semaphore is concerned: reports it, waits for `KW_UNWIND`, throws. */
function park(cells: Int32Array, at: number, point: string): never {
  Atomics.store(cells, at + KW_POINT, STEPS.indexOf(point) + 1);
  Atomics.store(cells, at + KW_STATE, KW_PARKED);
  Atomics.notify(cells, at + KW_STATE);
  while (Atomics.load(cells, at + KW_UNWIND) === 0) Atomics.wait(cells, at + KW_UNWIND, 0, 100);
  throw new Unwind(point);
}

/**
 * Runs `plan` on `sem` ("acquire", "acquireAsync", "release" or "release<n>"),
 * parking at the `nth` step named `point`. `cells[0]` ends as `KW_PARKED`, or
 * `KW_DONE` when the plan ran to its end without reaching that step.
 */
export async function killAtStep(
  sem: Semaphore,
  plan: string[],
  point: string,
  nth: number,
  cells: Int32Array,
): Promise<void> {
  let seen = 0;
  (globalThis as Record<symbol, unknown>)[STEP_HOOK] = (p: string) => {
    if (p === point && ++seen === nth) park(cells, 0, p);
  };
  try {
    for (const op of plan) {
      if (op === "acquire") sem.acquireSync();
      else if (op === "acquireAsync") await sem.acquire();
      else sem.release(Number(op.slice("release".length)) || 1);
    }
  } catch (e) {
    if (e instanceof Unwind) return;
    throw e;
  }
  Atomics.store(cells, KW_STATE, KW_DONE);
  Atomics.notify(cells, KW_STATE);
}

/**
 * Runs `plan` on `sem` as {@linkcode killAtStep} does, but pauses at the
 * first step named `point` (`cells[0]` = `KW_PARKED`) until the test sets
 * `KW_UNWIND`, then goes on: a thread descheduled in the middle of a move.
 */
export function pauseAtStep(sem: Semaphore, plan: string[], point: string, cells: Int32Array): void {
  let paused = false;
  (globalThis as Record<symbol, unknown>)[STEP_HOOK] = (p: string) => {
    if (p !== point || paused) return;
    paused = true;
    Atomics.store(cells, KW_STATE, KW_PARKED);
    Atomics.notify(cells, KW_STATE);
    while (Atomics.load(cells, KW_UNWIND) === 0) Atomics.wait(cells, KW_UNWIND, 0, 100);
  };
  for (const op of plan) {
    if (op === "acquire") sem.acquireSync();
    else sem.release(Number(op.slice("release".length)) || 1);
  }
  Atomics.store(cells, KW_STATE, KW_DONE);
  Atomics.notify(cells, KW_STATE);
}

/**
 * Until the test sets its `KW_UNWIND`: takes a permit (blocking or
 * awaiting), sometimes a second one if free, holds them a moment, gives them
 * back (together or one by one), in an order drawn from `seed`. Once the
 * test sets its `KW_COUNTDOWN`, it parks that many steps later, wherever
 * that is.
 */
export async function churnUntilKilled(sem: Semaphore, cells: Int32Array, index: number, seed: number): Promise<void> {
  const at = index * KW_CELLS;
  const rnd = prng(seed);
  (globalThis as Record<symbol, unknown>)[STEP_HOOK] = (p: string) => {
    const left = Atomics.load(cells, at + KW_COUNTDOWN);
    if (left === 0 || (left < 0 && !p.startsWith("recover") && !p.startsWith("finish"))) return;
    const next = left > 0 ? left - 1 : left + 1;
    if (Atomics.compareExchange(cells, at + KW_COUNTDOWN, left, next) === left && next === 0) park(cells, at, p);
  };
  try {
    while (Atomics.load(cells, at + KW_UNWIND) === 0) {
      if (rnd() < 0.3) await sem.acquire();
      else sem.acquireSync();
      // A second one only if free: waiting for it while holding one could deadlock.
      const n = rnd() < 0.3 && sem.acquireSync({ block: false }) ? 2 : 1;
      if (rnd() < 0.1) nap(1);
      if (n === 2 && rnd() < 0.5) sem.release(2);
      else for (let i = 0; i < n; i++) sem.release();
    }
  } catch (e) {
    if (e instanceof Unwind) return;
    throw e;
  }
  Atomics.store(cells, at + KW_STATE, KW_DONE);
  Atomics.notify(cells, at + KW_STATE);
}

/** Takes a permit (and every third time a second one, if free) and gives them back, until terminated. */
export function churn(sem: Semaphore, counts: Int32Array, slot: number): void {
  for (let r = 0;; r++) {
    sem.acquireSync();
    const n = r % 3 === 0 && sem.acquireSync({ block: false }) ? 2 : 1;
    Atomics.add(counts, slot, 1);
    sem.release(n);
  }
}
