// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  Condition,
  Event,
  Lock,
  RLock,
  Semaphore,
  SharedValue,
  Thread,
  TimeoutError,
} from "../mod.ts";
import {
  acquireAndReport,
  asyncIncrements,
  barrierActs,
  barrierOutcome,
  barrierRounds,
  boundedConsume,
  boundedProduce,
  checkHandleClasses,
  churn,
  churnUntilKilled,
  conditionConsumer,
  conditionWaiter,
  consumeSignal,
  contend,
  holdAndHang,
  holdAndReturn,
  holdAndThrow,
  killAtStep,
  KW_CELLS,
  KW_COUNTDOWN,
  KW_DONE,
  KW_PARKED,
  KW_POINT,
  KW_RUNNING,
  KW_STATE,
  KW_UNWIND,
  lockedIncrements,
  pauseAtStep,
  releaseForeign,
  scopedIncrements,
  semaphoreIncrements,
  STEPS,
  timeoutStorm,
  url,
  useSemaphore,
  waitEvent,
} from "./testdata/sync_fixtures.ts";
import { prng } from "./testdata/pipe_fixtures.ts";
import { runtime, sharedInts as ints, sleep } from "./_util.ts";
import { markDead, selfIdent } from "../_registry.ts";
import { FAILED, type Gate, otherStarver, slowAsync, slowSync, STARVE_MS, STARVER, WAITERS, WORD } from "../_gate.ts";

const BAD_TIMEOUTS: unknown[] = [-1, NaN, Infinity, -Infinity, "5", null];

// deno-lint-ignore no-explicit-any
function start(target: (...args: any[]) => unknown, args: unknown[]): Thread {
  const t = new Thread({ target, args, module: url });
  t.start();
  return t;
}

/** Waits (without blocking the event loop) until `cell[i]` is non-zero; returns it. */
async function until(cell: Int32Array, i: number, ms = 60_000): Promise<number> {
  const end = performance.now() + ms;
  while (Atomics.load(cell, i) === 0) {
    if (performance.now() > end) throw new Error(`timed out waiting for cell ${i}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return Atomics.load(cell, i);
}

test("every primitive crosses to a thread nested in args and arrives as its own class over the same memory", async () => {
  const box = {
    locks: [new Lock(), new RLock()] as [Lock, RLock],
    sems: new Map<string, Semaphore>([["plain", new Semaphore(2)], ["bounded", new BoundedSemaphore(1)]]),
    more: { ev: new Event(), cond: new Condition(), barrier: new Barrier(3) },
  };
  const out = ints(8);
  const t = start(checkHandleClasses, [box, out]);
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.deepEqual([...out], [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.equal(box.sems.get("bounded")!.getValue(), 0, "the thread took the permit");
  assert.equal(box.more.ev.isSet(), true);
});

// --- Lock ----------------------------------------------------------------------

test("Lock.acquire() and release() toggle locked(); release of an unlocked lock throws", async () => {
  const lock = new Lock();
  assert.equal(lock.locked(), false);
  assert.equal(await lock.acquire(), true);
  assert.equal(lock.locked(), true);
  lock.release();
  assert.equal(lock.locked(), false);
  assert.throws(() => lock.release(), { name: "Error", message: /unlocked lock/ });
  assert.equal(lock.acquireSync(), true);
  lock.release();
});

test("Lock.acquireSync({ block: false }) and acquire({ timeout }) return false while the lock is held", async () => {
  const lock = new Lock();
  lock.acquireSync();
  assert.equal(lock.acquireSync({ block: false }), false);
  assert.equal(await lock.acquire({ block: false }), false);
  const t0 = performance.now();
  assert.equal(await lock.acquire({ timeout: 40 }), false);
  assert.ok(performance.now() - t0 >= 35, "waited about the timeout");
  const t1 = performance.now();
  assert.equal(lock.acquireSync({ timeout: 40 }), false);
  assert.ok(performance.now() - t1 >= 35, "waited about the timeout");
  assert.equal(lock.locked(), true);
  lock.release();
  assert.equal(lock.acquireSync({ timeout: 0 }), true);
  lock.release();
});

test("Lock and Semaphore acquire with block: false ignore a timeout, as Python's multiprocessing does", async () => {
  const lock = new Lock();
  assert.equal(lock.acquireSync({ block: false, timeout: 5000 }), true);
  const t0 = performance.now();
  assert.equal(lock.acquireSync({ block: false, timeout: 5000 }), false);
  assert.equal(await lock.acquire({ block: false, timeout: 5000 }), false);
  assert.ok(performance.now() - t0 < 1000);
  lock.release();
  const sem = new Semaphore(0);
  assert.equal(await sem.acquire({ block: false, timeout: 5000 }), false);
  assert.equal(sem.acquireSync({ block: false, timeout: 5000 }), false);
});

test("Lock rejects invalid timeouts: RangeError thrown by acquireSync, rejected (not thrown) by acquire", async () => {
  const lock = new Lock();
  for (const timeout of BAD_TIMEOUTS) {
    assert.throws(() => lock.acquireSync({ timeout: timeout as number }), RangeError, `timeout ${String(timeout)}`);
    let promise: Promise<boolean> | undefined;
    assert.doesNotThrow(() => promise = lock.acquire({ timeout: timeout as number }));
    await assert.rejects(promise!, RangeError);
  }
  assert.throws(() => lock.acquireSync({ block: false, timeout: -1 }), RangeError);
  assert.throws(() => lock.acquireSync(5 as never), TypeError);
  assert.equal(lock.locked(), false);
});

test("Lock.acquire() rejects with the signal's reason, before and while waiting, and leaves the lock as it was", async () => {
  const lock = new Lock();
  const reason = new Error("stop");
  await assert.rejects(lock.acquire({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.equal(lock.locked(), false);
  lock.acquireSync();
  const ac = new AbortController();
  const pending = lock.acquire({ signal: ac.signal });
  setTimeout(() => ac.abort(reason), 20);
  await assert.rejects(pending, (e) => e === reason);
  assert.equal(lock.locked(), true);
  // The aborted waiter must not linger and swallow the next wake-up.
  const next = lock.acquire({ timeout: 5000 });
  setTimeout(() => lock.release(), 10);
  assert.equal(await next, true);
  lock.release();
});

test("Lock.scopedSync() with using releases at the end of the block, even when it throws", () => {
  const lock = new Lock();
  assert.throws(() => {
    using held = lock.scopedSync();
    assert.equal(held.ownerDied, false);
    assert.equal(lock.locked(), true);
    throw new Error("boom");
  }, /boom/);
  assert.equal(lock.locked(), false);
  {
    using held = lock.scopedSync();
    held.release(); // early release; leaving the block does not release twice
    assert.equal(lock.locked(), false);
    lock.acquireSync();
  }
  assert.equal(lock.locked(), true, "the scope did not release the lock taken after its early release");
  lock.release();
});

test("Lock.scoped() with await using holds the lock for the block; times out with TimeoutError", async () => {
  const lock = new Lock();
  {
    await using _ = await lock.scoped();
    assert.equal(lock.locked(), true);
    await assert.rejects(lock.scoped({ timeout: 10 }), TimeoutError);
    await assert.rejects(lock.scoped({ block: false }), TimeoutError);
    assert.throws(() => lock.scopedSync({ timeout: 10 }), TimeoutError);
  }
  assert.equal(lock.locked(), false);
});

test("Lock passed to a thread: the thread waits in acquireSync() until the main thread releases", async () => {
  const lock = new Lock();
  const out = ints(2);
  lock.acquireSync();
  const t = start(acquireAndReport, [lock, out]);
  await sleep(50);
  assert.equal(Atomics.load(out, 0), 0, "still waiting");
  lock.release();
  assert.equal(await until(out, 0), 1);
  await t.join();
  assert.equal(t.exitCode, 0);
  assert.equal(lock.locked(), false);
});

test("Lock held by a thread: its acquire with a timeout returns false in the thread", async () => {
  const lock = new Lock();
  const out = ints(2);
  lock.acquireSync();
  const t = start(acquireAndReport, [lock, out, 30]);
  assert.equal(await until(out, 0), 2);
  await t.join();
  lock.release();
});

test("Lock held by a terminated thread is taken over by the next acquirer, which sees ownerDied", async () => {
  const lock = new Lock();
  const ready = new Event();
  const t = start(holdAndHang, [lock, ready]);
  assert.equal(await ready.wait(60_000), true);
  assert.equal(lock.locked(), true);
  const pending = lock.acquire({ timeout: 60_000 });
  await sleep(20);
  await t.terminate();
  assert.equal(await pending, true);
  assert.equal(lock.ownerDied, true);
  lock.release();
  assert.equal(lock.acquireSync(), true);
  assert.equal(lock.ownerDied, false, "reset by the next normal acquire");
  lock.release();
});

test("Lock held by a thread that crashed is recovered by a blocking acquirer in another thread", async () => {
  const lock = new Lock();
  const crasher = new Thread({ target: holdAndThrow, args: [lock], module: url });
  crasher.start();
  await crasher.join();
  assert.equal(crasher.exitCode, 1);
  const out = ints(2);
  const t = start(acquireAndReport, [lock, out, 60_000]);
  assert.equal(await until(out, 0), 1);
  assert.equal(out[1], 1, "the acquirer saw ownerDied");
  await t.join();
  assert.equal(lock.locked(), false);
});

test("Lock left held by a thread that returned is recovered with acquireSync({ block: false })", async () => {
  const lock = new Lock();
  const t = start(holdAndReturn, [lock]);
  await t.join();
  assert.equal(lock.locked(), true);
  assert.equal(lock.acquireSync({ block: false }), true);
  assert.equal(lock.ownerDied, true);
  lock.release();
});

test("Lock counts exactly: 2 threads × 1,000,000 locked increments of a SharedValue give 2,000,000", async () => {
  const v = new SharedValue("i", 0, { lock: new Lock() });
  const n = 1_000_000;
  const threads = [start(lockedIncrements, [v, n]), start(lockedIncrements, [v, n])];
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(v.value, 2 * n);
});

test("Lock counts exactly with 4 threads mixing scopedSync, acquireSync and awaited acquire", async () => {
  const lock = new Lock();
  const v = new SharedValue("i", 0, { lock });
  const n = 50_000;
  const threads = [
    start(lockedIncrements, [v, n]),
    start(scopedIncrements, [v, lock, n]),
    start(asyncIncrements, [v, lock, n]),
  ];
  for (let i = 0; i < n; i++) {
    await lock.acquire();
    v.value += 1;
    lock.release();
  }
  for (const t of threads) await t.join();
  assert.equal(v.value, 4 * n);
});

test("Lock does not starve a waiter while another thread re-acquires it in a tight loop", async () => {
  const lock = new Lock();
  const stop = new Event();
  const counts = ints(2);
  const t = start(contend, [lock, counts, 0, stop]);
  while (Atomics.load(counts, 0) < 1000) await sleep(1);
  let served = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    assert.equal(lock.acquireSync({ timeout: 2000 }), true, "the blocking waiter got the lock in time");
    served++;
    lock.release();
  }
  const t1 = performance.now();
  while (performance.now() - t1 < 300) {
    assert.equal(await lock.acquire({ timeout: 2000 }), true, "the awaiting waiter got the lock in time");
    served++;
    lock.release();
  }
  stop.set();
  await t.join();
  assert.ok(served > 20, `main thread was served ${served} times`);
  assert.ok(counts[0] > 1000, `the other thread ran too (${counts[0]})`);
});

test("Lock shares fairly between two threads hammering it", async () => {
  const lock = new Lock();
  const stop = new Event();
  const counts = ints(2);
  const threads = [start(contend, [lock, counts, 0, stop]), start(contend, [lock, counts, 1, stop])];
  // Measure once both run (starting a worker can take a while under test).
  while (Atomics.load(counts, 0) === 0 || Atomics.load(counts, 1) === 0) await sleep(5);
  const [a0, b0] = [Atomics.load(counts, 0), Atomics.load(counts, 1)];
  await sleep(500);
  const [a, b] = [Atomics.load(counts, 0) - a0, Atomics.load(counts, 1) - b0];
  stop.set();
  for (const t of threads) await t.join();
  assert.ok(a > 0 && b > 0, `both made progress: ${a}, ${b}`);
  assert.ok(Math.min(a, b) / (a + b) > 0.01, `neither was starved: ${a}, ${b}`);
});

test("Lock and Semaphore stay consistent and live under a storm of timed-out and non-blocking acquires", async () => {
  for (const lock of [new Lock(), new Semaphore(1)]) {
    const counts = ints(5);
    const n = 20_000;
    const threads = [1, 2, 3].map((slot) => start(timeoutStorm, [lock, counts, slot, n]));
    let mine = 0;
    for (let i = 0; i < 2000; i++) {
      if (!(await lock.acquire({ timeout: i % 2 }))) continue;
      counts[0] = counts[0] + 1;
      mine++;
      lock.release();
    }
    for (const t of threads) await t.join();
    for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
    assert.equal(counts[0], counts[1] + counts[2] + counts[3] + mine, "every success counted once");
    assert.ok(counts[0] > 0);
    assert.equal(lock.acquireSync({ timeout: 1000 }), true, "free again afterwards");
    lock.release();
  }
});

test("Lock.toString() shows the owner", () => {
  const lock = new Lock();
  assert.equal(String(lock), "<Lock(unlocked)>");
  lock.acquireSync();
  assert.match(String(lock), /^<Lock\(owner=\d+\)>$/);
  lock.release();
});

// --- RLock ---------------------------------------------------------------------

test("RLock is re-entrant per thread and frees after as many releases as acquires", async () => {
  const rlock = new RLock();
  assert.equal(rlock.acquireSync(), true);
  assert.equal(await rlock.acquire(), true);
  assert.equal(rlock.acquireSync({ block: false }), true);
  rlock.release();
  rlock.release();
  assert.equal(rlock.locked(), true);
  rlock.release();
  assert.equal(rlock.locked(), false);
  assert.throws(() => rlock.release(), { name: "Error", message: /un-acquired/ });
});

test("RLock held by the main thread: a thread cannot take it, nor release it", async () => {
  const rlock = new RLock();
  rlock.acquireSync();
  const out = ints(2);
  const t = start(acquireAndReport, [rlock, out, 30]);
  assert.equal(await until(out, 0), 2, "the thread timed out");
  await t.join();
  const out2 = ints(2);
  const t2 = start(releaseForeign, [rlock, out2]);
  await t2.join();
  assert.equal(out2[0], 1, "release by a non-owner threw");
  assert.equal(rlock.locked(), true);
  rlock.release();
});

test("RLock held twice by a terminated thread is recovered at depth 1", async () => {
  const rlock = new RLock();
  const ready = new Event();
  const t = start(holdAndHang, [rlock, ready, 2]);
  assert.equal(await ready.wait(60_000), true);
  await t.terminate();
  assert.equal(await rlock.acquire({ timeout: 60_000 }), true);
  assert.equal(rlock.ownerDied, true);
  rlock.release();
  assert.equal(rlock.locked(), false);
});

test("RLock rejects invalid timeouts", async () => {
  const rlock = new RLock();
  for (const timeout of BAD_TIMEOUTS) {
    assert.throws(() => rlock.acquireSync({ timeout: timeout as number }), RangeError);
    await assert.rejects(rlock.acquire({ timeout: timeout as number }), RangeError);
  }
});

test("RLock.scopedSync() nests and releases each level", () => {
  const rlock = new RLock();
  {
    using _a = rlock.scopedSync();
    {
      using _b = rlock.scopedSync();
      assert.match(String(rlock), /count=2/);
    }
    assert.equal(rlock.locked(), true);
  }
  assert.equal(rlock.locked(), false);
});

test("RLock counts exactly across 3 threads", async () => {
  const v = new SharedValue("i", 0); // its default lock is an RLock
  const n = 100_000;
  const threads = [0, 1, 2].map(() => start(lockedIncrements, [v, n]));
  for (const t of threads) await t.join();
  assert.equal(v.value, 3 * n);
});

// --- Semaphore -----------------------------------------------------------------

test("Semaphore counts permits: acquire takes one, release(n) gives n back", async () => {
  const sem = new Semaphore(2);
  assert.equal(sem.getValue(), 2);
  assert.equal(await sem.acquire(), true);
  assert.equal(sem.acquireSync(), true);
  assert.equal(sem.acquireSync({ block: false }), false);
  assert.equal(await sem.acquire({ timeout: 10 }), false);
  sem.release(2);
  assert.equal(sem.getValue(), 2);
  sem.release();
  assert.equal(sem.getValue(), 3, "a plain Semaphore may go above its initial value");
  assert.equal(new Semaphore().getValue(), 1);
});

test("Semaphore rejects bad values, counts and timeouts", async () => {
  for (const value of [-1, 1.5, NaN, Infinity, "1", null, 2 ** 23]) {
    assert.throws(() => new Semaphore(value as number), RangeError, `value ${String(value)}`);
    assert.throws(() => new BoundedSemaphore(value as number), RangeError);
  }
  const sem = new Semaphore(0);
  for (const n of [0, -1, 1.5, NaN, Infinity, 2 ** 23]) assert.throws(() => sem.release(n), RangeError);
  const full = new Semaphore(2 ** 23 - 1);
  assert.throws(() => full.release(), /its value would exceed 8388607/);
  assert.equal(full.getValue(), 2 ** 23 - 1);
  for (const timeout of BAD_TIMEOUTS) {
    assert.throws(() => sem.acquireSync({ timeout: timeout as number }), RangeError);
    await assert.rejects(sem.acquire({ timeout: timeout as number }), RangeError);
  }
  assert.equal(sem.getValue(), 0);
});

test("BoundedSemaphore throws RangeError when released above its initial value, and keeps its value", () => {
  const sem = new BoundedSemaphore(2);
  assert.throws(() => sem.release(), RangeError);
  sem.acquireSync();
  assert.throws(() => sem.release(2), RangeError);
  assert.equal(sem.getValue(), 1);
  sem.release();
  assert.equal(sem.getValue(), 2);
  assert.equal(String(sem), "<BoundedSemaphore(value=2)>");
});

test("Semaphore(2) lets at most two of four threads in at once", async () => {
  const sem = new Semaphore(2);
  const stats = ints(2);
  const together = new Barrier(4);
  const threads = [0, 1, 2, 3].map(() => start(useSemaphore, [sem, stats, 30, together]));
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(stats[1], 2, "two threads were in at once, never more");
  assert.equal(sem.getValue(), 2);
});

test("BoundedSemaphore passed to threads stays bounded", async () => {
  const sem = new BoundedSemaphore(1);
  const stats = ints(2);
  const threads = [0, 1].map(() => start(useSemaphore, [sem, stats, 20]));
  for (const t of threads) await t.join();
  assert.equal(stats[1], 1);
  assert.throws(() => sem.release(), RangeError);
});

test("Semaphore awaiting acquire is woken by a release", async () => {
  const sem = new Semaphore(0);
  const pending = sem.acquire({ timeout: 5000 });
  setTimeout(() => sem.release(), 10);
  assert.equal(await pending, true);
  assert.equal(sem.getValue(), 0);
});

test("Semaphore permit held by a terminated thread comes back to the next acquirer with ownerDied", async () => {
  const sem = new Semaphore(1);
  const ready = new Event();
  const t = start(holdAndHang, [sem, ready]);
  assert.equal(await ready.wait(60_000), true);
  assert.equal(sem.getValue(), 0);
  const pending = sem.acquire({ timeout: 60_000 });
  await t.terminate();
  assert.equal(await pending, true);
  assert.equal(sem.ownerDied, true);
  sem.release();
  assert.equal(sem.getValue(), 1);
});

test("Semaphore permit held by a crashed thread is recovered by acquireSync", async () => {
  const sem = new BoundedSemaphore(1);
  const crasher = new Thread({ target: holdAndThrow, args: [sem], module: url });
  crasher.start();
  await crasher.join();
  assert.equal(sem.acquireSync({ timeout: 60_000 }), true);
  assert.equal(sem.ownerDied, true);
  sem.release();
  assert.throws(() => sem.release(), RangeError, "recovery did not add a permit beyond the bound");
});

test("Semaphore(0) used as a signal: a permit consumed by a thread that ended is not handed out again", async () => {
  const sem = new Semaphore(0);
  const done = new Event();
  const t = start(consumeSignal, [sem, done]);
  sem.release();
  assert.equal(await done.wait(60_000), true);
  await t.join();
  assert.equal(await sem.acquire({ timeout: 120 }), false);
  assert.equal(sem.getValue(), 0);
});

test("Semaphore.scoped() and scopedSync() give the permit back", async () => {
  const sem = new Semaphore(1);
  {
    await using _ = await sem.scoped();
    assert.equal(sem.getValue(), 0);
    await assert.rejects(sem.scoped({ timeout: 5 }), TimeoutError);
  }
  {
    using _ = sem.scopedSync();
    assert.equal(sem.getValue(), 0);
  }
  assert.equal(sem.getValue(), 1);
});

test("Semaphore(1) as a mutex between three threads counts exactly", async () => {
  const sem = new Semaphore(1);
  const counts = ints(1);
  const n = 100_000;
  const threads = [0, 1, 2].map(() => start(semaphoreIncrements, [sem, counts, n]));
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(counts[0], 3 * n);
  assert.equal(sem.getValue(), 1);
});

// --- Semaphore: threads that stop at any step -------------------------------------
// A thread parked for good at a step of the protocol (see killAtStep) and
// declared dead stands for one killed there: it runs no more semaphore code.

/** The main thread takes exactly `n` permits (no fewer: none lost; no more: none twice), then gives them back. */
async function takesExactly(sem: Semaphore, n: number): Promise<boolean> {
  let recovered = false;
  for (let i = 0; i < n; i++) {
    assert.equal(sem.acquireSync({ timeout: 30_000 }), true, `permit ${i + 1} of ${n} lost`);
    recovered ||= sem.ownerDied;
  }
  await sleep(60); // past the recovery scan's rate limit, so the next acquire scans again
  assert.equal(sem.acquireSync({ block: false }), false, `a permit beyond the ${n} was handed out`);
  assert.equal(sem.getValue(), 0);
  sem.release(n);
  assert.equal(sem.getValue(), n);
  if (sem instanceof BoundedSemaphore) assert.throws(() => sem.release(), RangeError);
  return recovered;
}

/** Lets the parked threads of `cells` (one block of KW_CELLS each) unwind and waits for them. */
async function unwind(cells: Int32Array, threads: Thread[]): Promise<void> {
  for (let at = 0; at < cells.length; at += KW_CELLS) {
    Atomics.store(cells, at + KW_UNWIND, 1);
    Atomics.notify(cells, at + KW_UNWIND);
  }
  for (const t of threads) await t.join();
}

test("Semaphore: a try that does not wait gets a free permit while another thread's move is unfinished", async () => {
  // Python's acquire(block=False) fails only when the value is 0.
  const cases = [
    { plan: ["acquire"], point: "take.cas", free: 1 },
    { plan: ["acquire", "release"], point: "give.cas", free: 2 },
    { plan: ["acquire", "acquire", "release2"], point: "give.cas", free: 2 },
  ];
  for (const [i, { plan, point, free }] of cases.entries()) {
    const what = `${plan.join(",")} paused at ${point}`;
    const sem = i % 2 ? new BoundedSemaphore(2) : new Semaphore(2);
    const cells = ints(KW_CELLS);
    const mover = start(pauseAtStep, [sem, plan, point, cells]);
    assert.equal(await until(cells, KW_STATE), KW_PARKED, `${what}: never reached`);
    assert.equal(sem.getValue(), free, what);
    const out = ints(2);
    const trier = start(acquireAndReport, [sem, out, 0]);
    await sleep(100);
    Atomics.store(cells, KW_UNWIND, 1);
    Atomics.notify(cells, KW_UNWIND);
    assert.equal(await until(out, 0), 1, `${what}: a non-blocking acquire failed with ${free} free`);
    for (const t of [mover, trier]) {
      await t.join();
      assert.equal(t.exitCode, 0, String(t.error));
    }
    assert.equal(Atomics.load(cells, KW_STATE), KW_DONE, what);
    assert.equal(sem.getValue(), plan.length === 1 ? 1 : 2, what);
  }
});

test("Semaphore: a holder stopped at any step of a take or a give leaves exactly its permits to recover", async () => {
  const cases: { plan: string[]; point: string; holds: boolean }[] = [
    { plan: ["acquire"], point: "take.start", holds: false },
    { plan: ["acquire"], point: "take.cas", holds: true },
    { plan: ["acquireAsync"], point: "take.record", holds: true },
    { plan: ["acquire", "release"], point: "give.start", holds: true },
    { plan: ["acquire", "release"], point: "give.cas", holds: false },
    { plan: ["acquire", "release"], point: "give.record", holds: false },
    { plan: ["acquire", "acquire", "release2"], point: "give.start", holds: true },
    { plan: ["acquire", "acquire", "release2"], point: "give.cas", holds: false },
    { plan: ["acquire", "acquire", "release2"], point: "give.record", holds: false },
  ];
  for (const [i, { plan, point, holds }] of cases.entries()) {
    const what = `${plan.join(",")} stopped at ${point}`;
    const sem = i % 2 ? new BoundedSemaphore(2) : new Semaphore(2);
    const cells = ints(KW_CELLS);
    const t = start(killAtStep, [sem, plan, point, 1, cells]);
    assert.equal(await until(cells, KW_STATE), KW_PARKED, `${what}: never reached`);
    markDead(t.ident!);
    assert.equal(await takesExactly(sem, 2), holds, `${what}: ownerDied`);
    await unwind(cells, [t]);
    assert.equal(t.exitCode, 0, String(t.error));
  }
});

test("Semaphore: a recoverer stopped at any step leaves the dead holder's permits to the next one, each once", async () => {
  for (const [i, point] of STEPS.filter((p) => !p.startsWith("take") && !p.startsWith("give")).entries()) {
    // The holder took two permits and stopped in the middle of taking a third.
    const sem = i % 2 ? new BoundedSemaphore(3) : new Semaphore(3);
    const cells = ints(2 * KW_CELLS);
    const holder = start(killAtStep, [
      sem,
      ["acquire", "acquire", "acquire"],
      "take.cas",
      3,
      cells.subarray(0, KW_CELLS),
    ]);
    assert.equal(await until(cells, KW_STATE), KW_PARKED);
    markDead(holder.ident!);
    // A waiter recovers them and stops at `point`; another waiter takes
    // over once that one is declared dead.
    const recoverer = start(killAtStep, [sem, ["acquire"], point, 1, cells.subarray(KW_CELLS)]);
    assert.equal(await until(cells, KW_CELLS + KW_STATE), KW_PARKED, `${point}: never reached`);
    const out = ints(2);
    const next = start(acquireAndReport, [sem, out, 60_000]);
    await sleep(20);
    markDead(recoverer.ident!);
    assert.equal(await until(out, 0), 1, `${point}: the next waiter got no permit`);
    await next.join();
    await takesExactly(sem, 3);
    await unwind(cells, [holder, recoverer]);
    for (const t of [holder, recoverer, next]) assert.equal(t.exitCode, 0, String(t.error));
  }
});

test("Semaphore: threads stopped at random steps while others take and give leave every permit back, none twice", async () => {
  const stoppedAt = new Set<string>();
  for (const seed of [0x5eed, 20260515, 7]) {
    const rnd = prng(seed);
    const n = 6;
    const sem = new BoundedSemaphore(3);
    const cells = ints(n * KW_CELLS);
    const threads = Array.from({ length: n }, (_, i) => start(churnUntilKilled, [sem, cells, i, seed + i]));
    const cell = (i: number, k: number) => i * KW_CELLS + k;
    const running = () => threads.map((_, i) => i).filter((i) => Atomics.load(cells, cell(i, KW_STATE)) === KW_RUNNING);
    const declareDead = (i: number) => {
      stoppedAt.add(STEPS[Atomics.load(cells, cell(i, KW_POINT)) - 1]);
      markDead(threads[i].ident!);
    };
    while (running().length >= 3) {
      await sleep(Math.floor(rnd() * 15));
      const alive = running();
      const i = alive[Math.floor(rnd() * alive.length)];
      Atomics.store(cells, cell(i, KW_COUNTDOWN), 1 + Math.floor(rnd() * 12));
      assert.equal(await until(cells, cell(i, KW_STATE)), KW_PARKED);
      // The others stop a few steps into the recovery this death starts, if they do one.
      const others = alive.filter((j) => j !== i);
      for (const j of others) Atomics.store(cells, cell(j, KW_COUNTDOWN), -1 - Math.floor(rnd() * 4));
      declareDead(i);
      await sleep(20);
      for (const j of others) {
        if (Atomics.exchange(cells, cell(j, KW_COUNTDOWN), 0) !== 0) continue;
        assert.equal(await until(cells, cell(j, KW_STATE)), KW_PARKED);
        declareDead(j);
      }
    }
    const stopping = running();
    for (const i of stopping) Atomics.store(cells, cell(i, KW_UNWIND), 1);
    for (const i of stopping) await threads[i].join();
    await takesExactly(sem, 3);
    await unwind(cells, threads);
    for (const t of threads) assert.equal(t.exitCode, 0, `seed ${seed}: ${t.error}`);
  }
  assert.ok([...stoppedAt].some((p) => p.startsWith("recover")), `stopped at ${[...stoppedAt]}, in no recovery`);
});

test("Semaphore: threads terminated at random instants while others take and give leave every permit back (Node)", {
  skip: runtime !== "node" && "terminate() stops a worker at once only on Node",
}, async () => {
  const rnd = prng(0xdead);
  const sem = new Semaphore(2);
  const counts = ints(8);
  const threads = Array.from({ length: 8 }, (_, i) => start(churn, [sem, counts, i]));
  for (const [i, t] of threads.entries()) {
    while (Atomics.load(counts, i) === 0) await sleep(1);
    await sleep(Math.floor(rnd() * 20));
    await t.terminate();
  }
  await takesExactly(sem, 2);
});

// --- Event ---------------------------------------------------------------------

test("Event: set, clear, isSet and waits that time out with false", async () => {
  const ev = new Event();
  assert.equal(ev.isSet(), false);
  assert.equal(await ev.wait(10), false);
  assert.equal(ev.waitSync(10), false);
  assert.equal(ev.waitSync(0), false);
  ev.set();
  ev.set();
  assert.equal(ev.isSet(), true);
  assert.equal(await ev.wait(), true);
  assert.equal(ev.waitSync(), true);
  ev.clear();
  assert.equal(ev.isSet(), false);
  assert.equal(String(ev), "<Event(unset)>");
});

test("Event.wait rejects invalid timeouts and aborted signals", async () => {
  const ev = new Event();
  for (const timeout of BAD_TIMEOUTS.filter((t) => t !== null)) {
    assert.throws(() => ev.waitSync(timeout as number), RangeError);
    await assert.rejects(ev.wait(timeout as number), RangeError);
  }
  const reason = new Error("stop");
  await assert.rejects(ev.wait({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  const ac = new AbortController();
  const pending = ev.wait({ signal: ac.signal });
  setTimeout(() => ac.abort(reason), 10);
  await assert.rejects(pending, (e) => e === reason);
  assert.equal(ev.isSet(), false);
});

test("Event.set() wakes every waiting thread, blocking and awaiting", async () => {
  const ev = new Event();
  const out = ints(4);
  const threads = [
    start(waitEvent, [ev, out, 0]),
    start(waitEvent, [ev, out, 1]),
    start(waitEvent, [ev, out, 2, undefined, true]),
  ];
  const local = ev.wait(60_000);
  await sleep(50);
  assert.deepEqual([...out.subarray(0, 3)], [0, 0, 0]);
  ev.set();
  for (let i = 0; i < 3; i++) assert.equal(await until(out, i), 1);
  assert.equal(await local, true);
  for (const t of threads) await t.join();
});

test("Event.waitSync in a thread times out with false", async () => {
  const ev = new Event();
  const out = ints(1);
  const t = start(waitEvent, [ev, out, 0, 30]);
  assert.equal(await until(out, 0), 2);
  await t.join();
});

test("Event.wait returns true when the event was set and cleared again while it waited", async () => {
  const ev = new Event();
  const pending = ev.wait(5000);
  ev.set();
  ev.clear();
  assert.equal(await pending, true);
});

// --- Condition -----------------------------------------------------------------

test("Condition.wait and notify need the lock: Error otherwise", async () => {
  const cond = new Condition();
  await assert.rejects(cond.wait(1), /un-acquired/);
  assert.throws(() => cond.waitSync(1), /un-acquired/);
  assert.throws(() => cond.notify(), /un-acquired/);
  assert.throws(() => cond.notifyAll(), /un-acquired/);
  assert.throws(() => new Condition({} as never), TypeError);
  cond.acquireSync();
  for (const n of [-1, 1.5, NaN]) assert.throws(() => cond.notify(n), RangeError);
  for (const timeout of [-1, NaN, Infinity]) {
    assert.throws(() => cond.waitSync(timeout), RangeError);
    await assert.rejects(cond.wait(timeout), RangeError);
  }
  cond.release();
});

test("Condition.wait times out with false and holds the lock again, at its RLock depth", async () => {
  const rlock = new RLock();
  const cond = new Condition(rlock);
  cond.acquireSync();
  cond.acquireSync();
  assert.equal(await cond.wait(10), false);
  assert.match(String(rlock), /count=2/);
  assert.equal(cond.waitSync(10), false);
  assert.match(String(rlock), /count=2/);
  cond.release();
  cond.release();
  assert.equal(rlock.locked(), false);
});

test("Condition.notify(1) wakes exactly one of three waiting threads; notifyAll wakes the rest", async () => {
  for (const useAsync of [false, true]) {
    const cond = new Condition(new Lock());
    const out = ints(3);
    const threads = [0, 1, 2].map(() => start(conditionWaiter, [cond, out, undefined, useAsync]));
    while (Atomics.load(out, 0) < 3) await sleep(2);
    await sleep(30); // let the last one park
    await cond.acquire();
    cond.notify(1);
    cond.release();
    await until(out, 1);
    await sleep(80);
    assert.equal(Atomics.load(out, 1), 1, "exactly one woke");
    await cond.acquire();
    cond.notifyAll();
    cond.release();
    while (Atomics.load(out, 1) < 3) await sleep(2);
    for (const t of threads) await t.join();
    assert.equal(out[2], 0, "none timed out");
  }
});

test("Condition.waitFor in a thread wakes when the predicate becomes true", async () => {
  const cond = new Condition();
  const box = ints(2);
  const t = start(conditionConsumer, [cond, box]);
  await sleep(30);
  await cond.acquire();
  Atomics.store(box, 0, 42);
  cond.notifyAll();
  cond.release();
  assert.equal(await until(box, 1), 42);
  await t.join();
});

test("Condition.waitFor returns the predicate's last value when time runs out", async () => {
  const cond = new Condition();
  await cond.acquire();
  let calls = 0;
  assert.equal(await cond.waitFor(() => (calls++, 0), 30), 0);
  assert.ok(calls >= 2);
  assert.equal(cond.waitForSync(() => "", 10), "");
  cond.release();
});

test("Condition.wait rejects with the signal's reason and holds the lock again", async () => {
  const cond = new Condition(new Lock());
  await cond.acquire();
  const reason = new Error("stop");
  const ac = new AbortController();
  setTimeout(() => ac.abort(reason), 10);
  await assert.rejects(cond.wait({ signal: ac.signal }), (e) => e === reason);
  cond.release(); // held again: does not throw
  assert.throws(() => cond.release(), /unlocked/);
});

for (const [kind, make] of [["RLock", () => new Condition()], ["Lock", () => new Condition(new Lock())]] as const) {
  test(`Condition (${kind}): async waiters in one thread are all woken by notifyAll and come back one at a time`, async () => {
    const cond = make();
    const events: string[] = [];
    let inside = 0;
    const waiter = async (id: number) => {
      await cond.acquire();
      const notified = await cond.wait(5000);
      inside++;
      events.push(`${id} back (${inside} inside)`);
      await sleep(5); // still holding the lock
      inside--;
      cond.release();
      return notified;
    };
    const waiters = [waiter(1)];
    await sleep(10);
    waiters.push(waiter(2));
    await sleep(10);
    await cond.acquire();
    cond.notifyAll();
    await sleep(20); // the waiters must not come back while the notifier holds the lock
    events.push("notifier releases");
    cond.release();
    assert.deepEqual(await Promise.all(waiters), [true, true]);
    // Either may come back first, but only after the notifier released, and one at a time.
    assert.equal(events[0], "notifier releases");
    assert.deepEqual(events.slice(1).sort(), ["1 back (1 inside)", "2 back (1 inside)"]);
    assert.equal(cond.toString().includes("unlocked"), true);
  });
}

test("Condition: a bounded buffer with two producers and two consumers passes every item once", async () => {
  const cond = new Condition();
  const box = ints(5);
  box[1] = 4; // capacity
  const n = 5000;
  const consumers = [0, 1].map(() => start(boundedConsume, [cond, box]));
  const producers = [false, true].map((useAsync) => start(boundedProduce, [cond, box, n, useAsync]));
  for (const t of producers) await t.join();
  await cond.acquire();
  box[3] = 1; // closed
  cond.notifyAll();
  cond.release();
  for (const t of consumers) await t.join();
  for (const t of [...producers, ...consumers]) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(box[4], 2 * n, "produced");
  assert.equal(box[2], 2 * n, "consumed");
  assert.equal(box[0], 0);
});

// --- Barrier -------------------------------------------------------------------

test("Barrier shared by three threads and the main thread", async () => {
  const parties = 4;
  const rounds = 5;
  const b = new Barrier(parties);
  const out = ints(parties * rounds);
  const threads = [0, 1, 2].map((slot) => start(barrierRounds, [b, out, slot, parties, rounds, slot === 2]));
  for (let r = 0; r < rounds; r++) out[r * parties + 3] = (await b.wait(60_000)) + 1;
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  for (let r = 0; r < rounds; r++) {
    const indexes = [...out.subarray(r * parties, (r + 1) * parties)].map((i) => i - 1).sort();
    assert.deepEqual(indexes, [0, 1, 2, 3], `round ${r}`);
  }
  assert.equal(b.nWaiting, 0);
  assert.equal(b.broken, false);
});

test("Barrier action: run once per trip, by one of the waiting threads", async () => {
  const parties = 4;
  const rounds = 6;
  const act = () => {
    const g = globalThis as { barrierActs?: number };
    // Slow on purpose: a waiter released before the action ended would be seen below.
    const end = Date.now() + 5;
    while (Date.now() < end);
    g.barrierActs = (g.barrierActs ?? 0) + 1;
  };
  const b = new Barrier(parties, { action: act });
  const out = ints(3);
  const threads = [0, 1, 2].map((slot) => start(barrierActs, [b, out, slot, rounds]));
  const g = globalThis as { barrierActs?: number };
  g.barrierActs = 0;
  for (let r = 0; r < rounds; r++) {
    await b.wait(60_000);
  }
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(out[0] + out[1] + out[2] + g.barrierActs, rounds);
  assert.equal(b.broken, false);
  assert.equal(b.nWaiting, 0);
});

test("Barrier action that throws: its thread gets the error, the others BrokenBarrierError", async () => {
  const b = new Barrier(2, {
    action: () => {
      throw new RangeError("no go");
    },
  });
  const out = ints(1);
  const t = start(barrierOutcome, [b, out, 0]);
  while (b.nWaiting < 1) await new Promise((r) => setTimeout(r, 5));
  // The main thread arrives last: it runs the action.
  await assert.rejects(b.wait(60_000), (e: Error) => e instanceof RangeError && e.message === "no go");
  await t.join();
  assert.equal(out[0], 2);
  assert.equal(b.broken, true);
  // An action that is not self-contained fails in a thread that rebuilds it, saying why.
  let outer = 0;
  const c = new Barrier(2, { action: () => void outer++ });
  const waiting = c.wait(60_000);
  const u = start(barrierOutcome, [c, out, 0]);
  await assert.rejects(waiting, BrokenBarrierError);
  await u.join();
  assert.equal(out[0], 3);
  assert.equal(outer, 0);
  // Bad actions fail at once.
  assert.throws(() => new Barrier(2, { action: 3 as unknown as () => void }), TypeError);
  assert.throws(() => new Barrier(2, { action: Math.max as () => number }), /native or bound/);
});

test("Barrier.wait times out with BrokenBarrierError and breaks the barrier for the others", async () => {
  const b = new Barrier(3);
  const out = ints(1);
  const t = start(barrierOutcome, [b, out, 0]);
  while (b.nWaiting < 1) await sleep(2);
  await assert.rejects(b.wait(30), BrokenBarrierError);
  assert.equal(await until(out, 0), 2);
  assert.equal(b.broken, true);
  await assert.rejects(b.wait(), BrokenBarrierError);
  assert.throws(() => b.waitSync(), BrokenBarrierError);
  await t.join();
  b.reset();
  assert.equal(b.broken, false);
  const [x, y, z] = await Promise.all([b.wait(), b.wait(), b.wait()]);
  assert.deepEqual([x, y, z].sort(), [0, 1, 2]);
});

test("Barrier: the constructor's timeout applies; abort() and reset() break current waiters", async () => {
  const timed = new Barrier(2, { timeout: 20 });
  await assert.rejects(timed.wait(), BrokenBarrierError);
  const b = new Barrier(2);
  const w = b.wait();
  await sleep(10);
  assert.equal(b.nWaiting, 1);
  b.abort();
  await assert.rejects(w, BrokenBarrierError);
  b.reset();
  const w2 = b.wait();
  await sleep(10);
  b.reset();
  await assert.rejects(w2, BrokenBarrierError);
  assert.equal(b.broken, false);
  assert.deepEqual((await Promise.all([b.wait(), b.wait()])).sort(), [0, 1]);
  assert.equal(b.parties, 2);
});

test("Barrier.wait aborted by its signal rejects with the reason and leaves the barrier as it was", async () => {
  const b = new Barrier(3);
  const other = b.wait(5000);
  const ac = new AbortController();
  const reason = new Error("stop");
  const aborted = b.wait({ signal: ac.signal });
  await sleep(10);
  assert.equal(b.nWaiting, 2);
  ac.abort(reason);
  await assert.rejects(aborted, (e) => e === reason);
  assert.equal(b.broken, false);
  assert.equal(b.nWaiting, 1);
  // The waiter that stayed goes on with two more parties.
  const rest = await Promise.all([b.wait(), b.wait(), other]);
  assert.equal(new Set(rest).size, 3);
  assert.equal(b.nWaiting, 0);
});

test("Barrier rejects bad parties and timeouts", async () => {
  for (const parties of [0, -1, 1.5, NaN, Infinity, "2"]) {
    assert.throws(() => new Barrier(parties as number), RangeError, `parties ${String(parties)}`);
  }
  assert.throws(() => new Barrier(2, { timeout: -1 }), RangeError);
  const b = new Barrier(2);
  await assert.rejects(b.wait(-1), RangeError);
  assert.throws(() => b.waitSync(NaN), RangeError);
  assert.equal(b.nWaiting, 0);
  assert.equal(b.broken, false);
  const reason = new Error("stop");
  await assert.rejects(b.wait({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.equal(b.broken, false, "an already aborted signal leaves the barrier unchanged");
});

// --- messages ------------------------------------------------------------------

test("sync timeouts say how long they waited, in ms: scoped forms and Barrier.wait", async () => {
  const lock = new Lock();
  lock.acquireSync();
  await assert.rejects(lock.scoped({ timeout: 2 }), { name: "TimeoutError", message: /within 2 ms/ });
  assert.throws(() => lock.scopedSync({ timeout: 3 }), { name: "TimeoutError", message: /within 3 ms/ });
  const cond = new Condition(lock);
  assert.throws(() => cond.scopedSync({ timeout: 1 }), { name: "TimeoutError", message: /within 1 ms/ });
  lock.release();
  await assert.rejects(new Semaphore(0).scoped({ timeout: 2 }), { name: "TimeoutError", message: /within 2 ms/ });
  await assert.rejects(new Barrier(2).wait(3), { name: "BrokenBarrierError", message: /2 parties .*within 3 ms/ });
  assert.throws(() => new Barrier(3, { timeout: 1 }).waitSync(), {
    name: "BrokenBarrierError",
    message: /3 parties .*within 1 ms/,
  });
});

// --- the gate (_gate.ts) -------------------------------------------------------

/** A gate that is never free and records the slow path's calls. */
function closedGate(): Gate & { calls: string[] } {
  const calls: string[] = [];
  return {
    cell: new Int32Array(new SharedArrayBuffer(16)),
    calls,
    take: () => false,
    recover: () => false,
    starve: () => (calls.push("starve"), true),
    unstarve: () => void calls.push("unstarve"),
    parkValue: () => 1, // not WORD: the park returns at once, so the loop goes round
  };
}

test("gate: a waiter claims priority once after STARVE_MS and gives it up when its wait ends", async () => {
  const g = closedGate();
  assert.equal(slowSync(g, STARVE_MS + 200), FAILED);
  assert.deepEqual(g.calls, ["starve", "unstarve"]);
  const h = closedGate();
  assert.equal(await slowAsync(h, STARVE_MS + 200, undefined), FAILED);
  assert.deepEqual(h.calls, ["starve", "unstarve"]);
  const quick = closedGate();
  assert.equal(slowSync(quick, 0), FAILED, "a try that does not wait");
  assert.deepEqual(quick.calls, [], "never starves");
});

test("gate: a waiter that gives up passes a wake-up on to a parked one", async () => {
  for (const giveUp of [(g: Gate) => slowSync(g, 0), (g: Gate) => slowAsync(g, 0, undefined)]) {
    const g = closedGate();
    Atomics.store(g.cell, WAITERS, 1); // another waiter is parked on WORD
    const parked = Atomics.waitAsync(g.cell, WORD, 0, 10_000);
    assert.equal(parked.async, true);
    // Deno does not count a pending waitAsync as work: keep the event loop alive.
    const keepAlive = setTimeout(() => {}, 10_000);
    try {
      assert.equal(await giveUp(g), FAILED);
      assert.equal(await parked.value, "ok", "the parked waiter was woken, not timed out");
    } finally {
      clearTimeout(keepAlive);
    }
  }
});

test("gate: a starver marks others to stand back while it lives; a dead one is cleared", () => {
  const cell = new Int32Array(new SharedArrayBuffer(16));
  const me = selfIdent();
  Atomics.store(cell, STARVER, me);
  assert.equal(otherStarver(cell, me), false, "itself");
  assert.equal(otherStarver(cell, me + 1), true, "a live starver, seen by another thread");
  const dead = 0x7000_0000 + 7; // never handed out: not alive
  Atomics.store(cell, STARVER, dead);
  assert.equal(otherStarver(cell, me), false);
  assert.equal(Atomics.load(cell, STARVER), 0, "cleared");
});
