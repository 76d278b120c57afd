// Copyright the @mpjs/multiprocessing authors. MIT license.
// futures.ts: Python's concurrent.futures on the pool: executors, Future
// states, cancel, callbacks, map, asCompleted and wait.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ALL_COMPLETED,
  asCompleted,
  CancelledError,
  Event,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  Future,
  ProcessPoolExecutor,
  RemoteError,
  ThreadPoolExecutor,
  TimeoutError,
  wait,
} from "../mod.ts";

/** A task that waits until `gate` is set, then returns `value`. */
const gated = (gate: Event, value: number): number => {
  gate.waitSync();
  return value;
};

test("submit gives a future of the result; a task that throws gives its error as RemoteError", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
  const f = executor.submit((a: number, b: number) => a * b, 6, 7);
  assert.equal(await f.result(), 42);
  assert.equal(f.done(), true);
  assert.equal(f.running(), false);
  assert.equal(await f.exception(), undefined);
  const bad = executor.submit((): number => {
    throw new RangeError("out of range");
  });
  const e = await bad.exception();
  assert.ok(e instanceof RemoteError);
  assert.equal((e as RemoteError).name, "RangeError");
  await assert.rejects(bad.result(), (x: Error) => x === e);
  assert.match(String(bad), /<Future state=finished raised RangeError>/);
});

test("only a pending future can be cancelled: a running one keeps running and finishes", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
  const gate = new Event();
  const first = executor.submit(gated, gate, 1);
  const second = executor.submit(gated, gate, 2);
  const third = executor.submit(gated, gate, 3);
  assert.equal(first.running(), true, "a free worker takes the first task at once");
  assert.equal(second.running(), false);
  const calls: string[] = [];
  second.addDoneCallback((f) => calls.push(`second done, cancelled ${f.cancelled()}`));
  assert.equal(first.cancel(), false);
  assert.equal(second.cancel(), true);
  assert.equal(second.cancel(), true, "cancelling twice still says cancelled");
  assert.deepEqual(calls, ["second done, cancelled true"]);
  assert.equal(second.done(), true);
  await assert.rejects(second.result(), CancelledError);
  await assert.rejects(second.exception(), CancelledError);
  gate.set();
  assert.equal(await first.result(), 1);
  assert.equal(await third.result(), 3, "the task after the cancelled one runs");
  assert.equal(first.cancel(), false, "a finished future cannot be cancelled");
});

test("result and exception time out with TimeoutError and stop at an aborted signal, leaving the future running", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
  const gate = new Event();
  const f = executor.submit(gated, gate, 5);
  await assert.rejects(f.result({ timeout: 20 }), (e: Error) => e instanceof TimeoutError && /20 ms/.test(e.message));
  await assert.rejects(f.exception({ timeout: 0 }), TimeoutError);
  const controller = new AbortController();
  const waiting = f.result({ signal: controller.signal });
  controller.abort(new Error("stop waiting"));
  await assert.rejects(waiting, /stop waiting/);
  assert.equal(f.running(), true);
  gate.set();
  assert.equal(await f.result(), 5);
});

test("done callbacks run once done, at once when already done; a throwing callback does not stop the others", () => {
  const f = new Future<number>();
  const seen: number[] = [];
  f.addDoneCallback(() => {
    throw new Error("callback failed on purpose");
  });
  f.addDoneCallback((done) => seen.push(1 + Number(done.done())));
  f.setResult(7);
  f.addDoneCallback(() => seen.push(3));
  assert.deepEqual(seen, [2, 3]);
  assert.throws(() => f.setResult(8), /finished/);
  assert.throws(() => f.addDoneCallback(5 as unknown as () => void), TypeError);
  const g = new Future();
  assert.equal(g.setRunningOrNotifyCancel(), true);
  assert.throws(() => g.setRunningOrNotifyCancel(), /running/);
});

test("map yields results in order over several iterables, by chunks, and rethrows a task's error", async () => {
  await using executor = new ThreadPoolExecutor({ maxWorkers: 2 });
  const out: number[] = [];
  for await (
    const r of executor.map((a: number, b: number) => a + b, [1, 2, 3, 4, 5], [10, 20, 30, 40], { chunksize: 3 })
  ) {
    out.push(r);
  }
  assert.deepEqual(out, [11, 22, 33, 44]);
  const strings: string[] = [];
  for await (const s of executor.map((c: string) => c.toUpperCase(), "abc")) strings.push(s);
  assert.deepEqual(strings, ["A", "B", "C"]);
  const failing = executor.map((x: number) => {
    if (x === 2) throw new Error("two");
    return x;
  }, [1, 2, 3]);
  assert.deepEqual(await failing.next(), { value: 1, done: false });
  await assert.rejects(failing.next(), /two/);
});

test("map's timeout counts from the call; leaving the loop early cancels the tasks not started", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
  const gate = new Event();
  const slow = executor.map(gated, [gate, gate], [1, 2], { timeout: 30 });
  await assert.rejects(slow.next(), TimeoutError);
  gate.set();
  const seen: number[] = [];
  const gate2 = new Event();
  const results = executor.map(gated, [gate2, gate2, gate2], [1, 2, 3]);
  gate2.set();
  for await (const r of results) {
    seen.push(r);
    break;
  }
  assert.deepEqual(seen, [1]);
});

test("asCompleted yields done futures first, then in the order they finish, each once; it times out", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
  const gate = new Event();
  const done = new Future<number>();
  done.setResult(0);
  const late = executor.submit(gated, gate, 2);
  const early = executor.submit((x: number) => x, 1);
  const order: number[] = [];
  const iterator = asCompleted([late, early, done, done]);
  for await (const f of iterator) {
    order.push(await f.result());
    if (order.length === 2) gate.set();
  }
  assert.deepEqual(order, [0, 1, 2]);
  const stuck = new Future<number>();
  const timed = asCompleted([stuck], { timeout: 20 });
  await assert.rejects(
    timed.next(),
    (e: Error) => e instanceof TimeoutError && /1 \(of 1\) futures unfinished/.test(e.message),
  );
});

test("wait returns at the first completion, the first exception or when all are done, or at the timeout", async () => {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 3 });
  const gate = new Event();
  const blocked = executor.submit(gated, gate, 1);
  const ok = executor.submit(() => 2);
  const first = await wait([blocked, ok], { returnWhen: FIRST_COMPLETED });
  assert.ok(first.done.has(ok));
  assert.ok(first.notDone.has(blocked));
  const failing = executor.submit((): number => {
    throw new Error("boom");
  });
  const firstError = await wait([blocked, failing], { returnWhen: FIRST_EXCEPTION });
  assert.deepEqual([...firstError.done], [failing]);
  const timedOut = await wait([blocked], { timeout: 20 });
  assert.deepEqual([...timedOut.notDone], [blocked], "a timeout is not an error");
  gate.set();
  const all = await wait([blocked, ok, failing], { returnWhen: ALL_COMPLETED });
  assert.equal(all.done.size, 3);
  assert.equal(all.notDone.size, 0);
  // With no exception, FIRST_EXCEPTION waits for all.
  const cancelled = new Future();
  cancelled.cancel();
  assert.equal((await wait([cancelled, ok], { returnWhen: FIRST_EXCEPTION })).done.size, 2);
});

test("shutdown waits for the tasks, refuses new ones, and with cancelFutures cancels those not started", async () => {
  const executor = new ProcessPoolExecutor({ maxWorkers: 1 });
  const gate = new Event();
  const running = executor.submit(gated, gate, 1);
  const pending = executor.submit(gated, gate, 2);
  const closing = executor.shutdown({ wait: true, cancelFutures: true });
  assert.throws(() => executor.submit(() => 3), /cannot schedule new futures after shutdown/);
  assert.equal(pending.cancelled(), true);
  assert.equal(running.running(), true);
  gate.set();
  await closing;
  assert.equal(await running.result(), 1);
  // Without wait it returns at once; the work still finishes.
  const other = new ProcessPoolExecutor({ maxWorkers: 1 });
  const gate2 = new Event();
  const f = other.submit(gated, gate2, 4);
  await other.shutdown({ wait: false });
  assert.equal(f.done(), false);
  gate2.set();
  assert.equal(await f.result(), 4);
  await other.shutdown();
});

test("bad input: clear errors, nothing scheduled; an unshippable function fails its future, as in Python", async () => {
  assert.throws(() => new ProcessPoolExecutor({ maxWorkers: 0 }), RangeError);
  assert.throws(() => new ProcessPoolExecutor({ maxWorkers: 1.5 }), /'maxWorkers' must be a positive integer/);
  assert.throws(() => new ProcessPoolExecutor(5 as never), TypeError);
  await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
  assert.throws(() => executor.submit(5 as never), /'fn' must be a function/);
  assert.throws(() => executor.submit((x: unknown) => x, { cb: () => 1 }), /args\[0\]\.cb/);
  assert.throws(() => executor.map((x: number) => x, 5 as never), /not iterable/);
  assert.throws(() => executor.map((x: number) => x, [1], { chunksize: 0 }), /'chunksize'/);
  assert.throws(() => asCompleted(5 as never), /iterable of futures/);
  assert.throws(() => asCompleted([1] as never), /fs\[0\] is not a Future/);
  await assert.rejects(wait([], { returnWhen: "SOON" as never }), /'returnWhen'/);
  await assert.rejects(wait([], { timeout: -1 }), RangeError);
  const native = executor.submit(Math.max, 1, 2);
  assert.ok((await native.exception()) instanceof TypeError);
  assert.equal(await executor.submit(() => "still fine").result(), "still fine");
});
