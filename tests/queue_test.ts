// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  ClosedError,
  type Connection,
  EmptyError,
  FullError,
  JoinableQueue,
  Pipe,
  Queue,
  SimpleQueue,
  Thread,
} from "../mod.ts";
import { markDead } from "../_registry.ts";
import {
  bigItem,
  checkBigItem,
  consume,
  echo,
  getAndReport,
  getForever,
  getPerRound,
  idleGet,
  type Item,
  measure,
  produce,
  putForever,
  takeAndStop,
  url,
  work,
  writeShared,
} from "./testdata/queue_fixtures.ts";
import { cpuShare, eventually, INVALID_TIMEOUTS, lines, runScript, sharedInts as ints, sleep } from "./_util.ts";

// --- construction -------------------------------------------------------------

test("new Queue() rejects a maxsize that is not an integer with RangeError", () => {
  assert.throws(() => new Queue(1.5), {
    name: "RangeError",
    message: "Cannot create queue as 'maxsize' must be an integer of at most 2147483647: current value is 1.5",
  });
  for (const bad of [NaN, Infinity, -Infinity, 0.1, 2 ** 40]) {
    assert.throws(() => new Queue(bad), RangeError, String(bad));
    assert.throws(() => new JoinableQueue(bad), RangeError, String(bad));
  }
  assert.throws(() => new Queue("3" as unknown as number), TypeError);
});

test("Queue with maxsize 0 or less is unbounded", () => {
  for (const maxsize of [0, -1, -100, -(2 ** 32) + 5]) {
    const q = new Queue<number>(maxsize);
    for (let i = 0; i < 1000; i++) q.putNowait(i);
    assert.equal(q.full(), false);
    assert.equal(q.qsize(), 1000);
    assert.equal(q.maxsize, 0);
  }
  assert.equal(new Queue().maxsize, 0);
  assert.equal(new Queue(3).maxsize, 3);
});

// --- put / get ------------------------------------------------------------------

test("Queue delivers structured-clone values in FIFO order", async () => {
  const cyclic: Record<string, unknown> = { name: "c" };
  cyclic.self = cyclic;
  const values: unknown[] = [
    1,
    -0, // kept as -0, as structured clone does (assert's deepEqual tells -0 from 0)
    { x: -0, y: [0, -0] },
    "two",
    undefined,
    null,
    10n ** 20n,
    true,
    [1, [2, [3]]],
    { a: { b: "c" } },
    new Map([["k", new Set([1, 2])]]),
    new Date(1700000000000),
    /re+/gi,
    new Uint16Array([1, 2, 65535]),
    new Float64Array(4096).fill(1.25), // large enough for the raw binary path
    new Uint8Array(10_000).fill(7).buffer,
    new DataView(new ArrayBuffer(8192)),
    cyclic,
  ];
  const q = new Queue<unknown>();
  for (const v of values) await q.put(v);
  assert.equal(q.qsize(), values.length);
  for (const v of values) {
    const got = await q.get();
    if (v === cyclic) {
      const c = got as Record<string, unknown>;
      assert.equal(c.name, "c");
      assert.equal(c.self, c);
    } else {
      assert.deepEqual(got, v);
    }
  }
  assert.equal(q.empty(), true);
});

test("binary data got from a Queue is its own: later items do not change it", () => {
  const q = new Queue<{ n: number; buf: Uint8Array; bytes: Uint8Array }>();
  const got = [];
  for (let i = 0; i < 20; i++) {
    // A Node Buffer is written as MessagePack binary, which the decoder would
    // hand out as a view of the getter's reused buffer if it did not copy.
    q.putSync({ n: i, buf: Buffer.from([i, i + 1]), bytes: new Uint8Array([i]) });
    got.push(q.getSync());
  }
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(got[i], { n: i, buf: new Uint8Array([i, i + 1]), bytes: new Uint8Array([i]) });
  }
});

test("a SharedArrayBuffer and views over one stay shared when they cross a Queue, as with structured clone", async () => {
  const sab = new SharedArrayBuffer(16);
  const q = new Queue<{ sab: SharedArrayBuffer; view: Int32Array; dv: DataView }>();
  const done = new Queue<string>();
  const t = new Thread({ target: writeShared, args: [q, done], module: url });
  t.start();
  await q.put({ sab, view: new Int32Array(sab, 4, 2), dv: new DataView(sab, 8, 4) });
  assert.equal(await done.get({ timeout: 30_000 }), "SharedArrayBuffer Int32Array(2) at 4");
  await t.join();
  assert.deepEqual([...new Int32Array(sab)], [1, 2, 3, 0]);
});

test("Queue.put() copies a typed-array view's bytes, not its whole buffer", () => {
  const q = new Queue<Float32Array>();
  const whole = new Float32Array(10_000).map((_, i) => i);
  q.putNowait(whole.subarray(2000, 9000));
  const got = q.getNowait();
  assert.ok(got instanceof Float32Array);
  assert.equal(got.length, 7000);
  assert.equal(got[0], 2000);
  assert.equal(got[6999], 8999);
});

test("large binary items come out of a Queue byte for byte, also where they wrap around its buffer", () => {
  const q = new Queue<Uint8Array | Float64Array>();
  let seed = 7;
  const randomByte = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) | 1; // never 0
  const sent: (Uint8Array | Float64Array)[] = [];
  for (let i = 0; i < 60; i++) {
    // 5–29 KiB each, up to three waiting: the records wrap around the end of
    // the queue's buffer, and the receiver's new array must be written whole.
    const bytes = new Uint8Array(5000 + ((i * 7919) % 25000)).map(randomByte);
    const item = i % 2 ? new Float64Array(bytes.buffer, 0, bytes.length >> 3) : bytes;
    q.putSync(item);
    sent.push(item.slice());
    if (i >= 2) assert.deepEqual(q.getSync(), sent[i - 2], `item ${i - 2}`);
  }
  assert.deepEqual([q.getSync(), q.getSync()], sent.slice(58));
});

test("a large Float16Array (where the runtime has one) crosses a Queue as itself", () => {
  type F16 = ArrayBufferView & Iterable<number>;
  const Float16 = (globalThis as Record<string, unknown>).Float16Array as (new (values: number[]) => F16) | undefined;
  if (!Float16) return; // Node 20
  const q = new Queue<F16>();
  const a = new Float16(Array.from({ length: 5000 }, (_, i) => i / 4)); // 10,000 bytes: copied raw, past the codec
  q.putNowait(a);
  const got = q.getNowait();
  assert.equal(got.constructor, Float16);
  assert.deepEqual([...got], [...a]);
});

test("Queue.putNowait() throws FullError and Queue.getNowait() throws EmptyError", () => {
  const q = new Queue<string>(2);
  assert.throws(() => q.getNowait(), EmptyError);
  q.putNowait("a");
  q.putNowait("b");
  assert.equal(q.full(), true);
  assert.throws(() => q.putNowait("c"), FullError);
  assert.equal(q.qsize(), 2);
  assert.equal(q.getNowait(), "a");
  q.putNowait("c");
  assert.deepEqual([q.getNowait(), q.getNowait()], ["b", "c"]);
  assert.throws(() => q.getNowait(), EmptyError);
});

test("Queue.get() rejects with EmptyError after timeout", async () => {
  const q = new Queue();
  const t0 = performance.now();
  await assert.rejects(q.get({ timeout: 60 }), EmptyError);
  assert.ok(performance.now() - t0 >= 50, "waited for the timeout");
  await assert.rejects(q.get({ timeout: 0 }), EmptyError);
  await assert.rejects(q.get({ block: false, timeout: 10_000 }), EmptyError);
});

test("Queue.getSync() throws EmptyError after timeout", () => {
  const q = new Queue();
  const t0 = performance.now();
  assert.throws(() => q.getSync({ timeout: 60 }), EmptyError);
  assert.ok(performance.now() - t0 >= 50);
  assert.throws(() => q.getSync({ block: false }), EmptyError);
});

test("a Queue wait that times out says how long it waited, in milliseconds; one that does not wait says only why", async () => {
  const waited = (what: string, ms: number) =>
    new RegExp(`: ${what.replace(/[.()]/g, "\\$&")} timed out after ${ms} ms \\(timeouts are in milliseconds\\)$`);
  const empty = new Queue<number>();
  await assert.rejects(empty.get({ timeout: 2 }), { name: "EmptyError", message: waited("Queue.get()", 2) });
  assert.throws(() => empty.getSync({ timeout: 2 }), { name: "EmptyError", message: waited("Queue.getSync()", 2) });
  const simple = new SimpleQueue<number>();
  await assert.rejects(simple.get({ timeout: 0 }), { name: "EmptyError", message: waited("SimpleQueue.get()", 0) });
  assert.throws(() => simple.getSync({ timeout: 1.5 }), {
    name: "EmptyError",
    message: waited("SimpleQueue.getSync()", 1.5),
  });
  const full = new Queue<number>(1);
  full.putNowait(1);
  await assert.rejects(full.put(2, { timeout: 2 }), { name: "FullError", message: waited("Queue.put()", 2) });
  assert.throws(() => full.putSync(2, { timeout: 2 }), { name: "FullError", message: waited("Queue.putSync()", 2) });
  // No wait, no time: the message stays as it was.
  assert.throws(() => empty.getNowait(), { name: "EmptyError", message: "The queue is empty" });
  await assert.rejects(empty.get({ block: false }), { name: "EmptyError", message: "The queue is empty" });
  assert.throws(() => full.putNowait(2), { name: "FullError", message: "The queue is full" });
  assert.throws(() => full.putSync(2, { block: false }), { name: "FullError", message: "The queue is full" });
  full.close();
  simple.close();
  empty.close();
});

test("Queue.put() on a full queue rejects with FullError after timeout", async () => {
  const q = new Queue<number>(1);
  await q.put(1);
  const t0 = performance.now();
  await assert.rejects(q.put(2, { timeout: 60 }), FullError);
  assert.ok(performance.now() - t0 >= 50);
  await assert.rejects(q.put(2, { block: false }), FullError);
  assert.throws(() => q.putSync(2, { timeout: 20 }), FullError);
  assert.throws(() => q.putSync(2, { block: false }), FullError);
  assert.equal(q.qsize(), 1);
  assert.equal(q.getNowait(), 1);
});

test("Queue.put() waits for room and Queue.get() waits for an item", async () => {
  const q = new Queue<number>(1);
  await q.put(1);
  let put = false;
  const putting = q.put(2).then(() => (put = true));
  await sleep(20);
  assert.equal(put, false);
  assert.equal(await q.get(), 1);
  await putting;
  assert.equal(await q.get(), 2);
  const getting = q.get();
  await sleep(20);
  await q.put(3);
  assert.equal(await getting, 3);
});

test("items waiting for room in a full Queue keep their value while later items are encoded", async () => {
  // A put that finds no room keeps its encoded item for later; the encoder
  // writes the next items where it wrote that one, so the kept copy must be
  // a copy (a Node Buffer's slice is a view).
  const q = new Queue<unknown>(1);
  q.putNowait("first");
  const waiting = [
    q.put({ k: 1, s: "kept while the queue is full" }),
    q.put([2, "another, longer item waiting for room"]),
    q.put({ k: 3 }),
  ];
  assert.throws(() => q.putNowait({ other: "encoded, then refused" }), FullError);
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await q.get());
  await Promise.all(waiting);
  assert.deepEqual(got.slice(1).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
    [2, "another, longer item waiting for room"],
    { k: 1, s: "kept while the queue is full" },
    { k: 3 },
  ]);
  assert.equal(got[0], "first");
});

test("a Buffer put in a full Queue is copied at put(): changing it while it waits for room changes nothing", async () => {
  const q = new Queue<unknown>(1);
  q.putNowait("first");
  const buf = Buffer.from([1, 2, 3]);
  const waiting = q.put(buf);
  buf.fill(9);
  assert.equal(await q.get(), "first");
  await waiting;
  assert.deepEqual([...(await q.get() as Uint8Array)], [1, 2, 3]);
});

test("Queue methods reject an invalid timeout with RangeError", async () => {
  const q = new JoinableQueue<number>(1);
  for (const timeout of INVALID_TIMEOUTS) {
    const opts = { timeout } as { timeout: number };
    await assert.rejects(q.get(opts), RangeError, String(timeout));
    await assert.rejects(q.put(1, opts), RangeError, String(timeout));
    await assert.rejects(q.join(opts), RangeError, String(timeout));
    assert.throws(() => q.getSync(opts), RangeError);
    assert.throws(() => q.putSync(1, opts), RangeError);
    assert.throws(() => q.joinSync(opts), RangeError);
  }
  assert.equal(q.qsize(), 0);
});

test("Queue async methods never throw synchronously", () => {
  const q = new Queue();
  const bad = { timeout: -1 };
  const promises = [q.get(bad), q.put(1, bad), q.put(() => 1)];
  for (const p of promises) {
    assert.ok(p instanceof Promise);
    p.catch(() => {});
  }
});

test("Queue.put() of an item that cannot be cloned throws TypeError and leaves the queue unchanged", async () => {
  const q = new Queue<unknown>();
  q.putNowait("keep");
  await assert.rejects(q.put({ a: [1, () => 0] }), { name: "TypeError", message: /item\.a\[1\]/ });
  assert.throws(() => q.putNowait(Symbol("s")), TypeError);
  assert.throws(() => q.putSync({ q: new Queue(), cb: () => 0 }), { name: "TypeError", message: /item\.cb/ });
  class Point {
    #x = 1;
    get x() {
      return this.#x;
    }
  }
  assert.throws(() => q.putNowait(new Point()), TypeError);
  assert.equal(q.qsize(), 1);
  assert.equal(q.getNowait(), "keep");
  assert.equal(q.empty(), true);
});

// --- abort ----------------------------------------------------------------------

test("Queue.get() rejects when the signal aborts while waiting, and no item is lost", async () => {
  const q = new Queue<string>();
  const ac = new AbortController();
  const getting = q.get({ signal: ac.signal });
  await sleep(10);
  ac.abort(new Error("stop"));
  await assert.rejects(getting, { message: "stop" });
  await q.put("after");
  assert.equal(await q.get({ timeout: 1000 }), "after");
});

test("Queue.get() and Queue.put() with an aborted signal reject and change nothing", async () => {
  const q = new Queue<string>(1);
  const signal = AbortSignal.abort(new Error("already"));
  await assert.rejects(q.put("x", { signal }), { message: "already" });
  assert.equal(q.qsize(), 0);
  q.putNowait("y");
  await assert.rejects(q.get({ signal }), { message: "already" });
  assert.equal(q.qsize(), 1);
  const ac = new AbortController();
  const putting = q.put("z", { signal: ac.signal });
  await sleep(10);
  ac.abort();
  await assert.rejects(putting, { name: "AbortError" });
  assert.equal(q.getNowait(), "y");
  assert.throws(() => q.getNowait(), EmptyError);
});

// --- close ----------------------------------------------------------------------

test("Queue.close() makes puts fail with ClosedError and gets drain, then fail", async () => {
  const q = new Queue<number>();
  q.putNowait(1);
  q.putNowait(2);
  assert.equal(q.closed, false);
  q.close();
  q.close(); // idempotent
  assert.equal(q.closed, true);
  assert.throws(() => q.putNowait(3), (e: unknown) => e instanceof ClosedError && e.value === 3);
  assert.throws(() => q.putSync(3), ClosedError);
  await assert.rejects(q.put(3), (e: unknown) => e instanceof ClosedError && e.value === 3);
  assert.equal(q.qsize(), 2);
  assert.equal(await q.get(), 1);
  assert.equal(q.getSync(), 2);
  await assert.rejects(q.get(), ClosedError);
  assert.throws(() => q.getSync(), ClosedError);
  assert.throws(() => q.getNowait(), ClosedError);
});

test("Queue.close() wakes blocked getters and putters with ClosedError, promptly", async () => {
  const empty = new Queue();
  const full = new Queue<number>(1);
  full.putNowait(0);
  const getting = empty.get();
  const putting = full.put(1);
  await sleep(20);
  const t0 = performance.now();
  empty.close();
  full.close();
  await assert.rejects(getting, ClosedError);
  await assert.rejects(putting, (e: unknown) => e instanceof ClosedError && e.value === 1);
  // Well under the 1 s after which a waiter re-checks on its own.
  assert.ok(performance.now() - t0 < 500, `woken after ${performance.now() - t0} ms`);
  assert.equal(full.getNowait(), 0);
});

test("Queue.close() in one thread wakes a getter blocked in another thread, promptly", async () => {
  const q = new Queue();
  const out = ints(2);
  const t = new Thread({ target: getAndReport, args: [q, out], module: url });
  t.start();
  // Started (on a loaded machine that can take seconds), then a moment to park.
  await eventually(() => Atomics.load(out, 1) === 1);
  await sleep(100);
  assert.equal(Atomics.load(out, 0), 0, "the thread is still waiting");
  const t0 = performance.now();
  q.close();
  await eventually(() => Atomics.load(out, 0) !== 0);
  // Well under the 1 s after which a blocked getter re-checks on its own.
  assert.ok(performance.now() - t0 < 500, `woken after ${performance.now() - t0} ms`);
  await t.join();
  assert.equal(Atomics.load(out, 0), 2);
  assert.equal(t.exitCode, 0);
});

test("for await over a Queue yields items until it is closed and drained", async () => {
  const q = new Queue<number>();
  const seen: number[] = [];
  const reading = (async () => {
    for await (const x of q) seen.push(x);
  })();
  for (let i = 0; i < 5; i++) await q.put(i);
  await sleep(10);
  q.close();
  await reading;
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
});

test("Queue[Symbol.dispose] closes the queue", () => {
  const q = new Queue();
  q[Symbol.dispose]();
  assert.equal(q.closed, true);
});

// --- JoinableQueue --------------------------------------------------------------

test("JoinableQueue.taskDone() throws when called more times than items were put", () => {
  const q = new JoinableQueue<number>();
  assert.throws(() => q.taskDone(), Error);
  q.putNowait(1);
  q.getNowait();
  q.taskDone();
  assert.throws(() => q.taskDone(), /more times than items/);
});

test("JoinableQueue.join() waits until a thread has marked every task done", async () => {
  const q = new JoinableQueue<number>();
  for (let i = 1; i <= 10; i++) await q.put(i);
  const sum = ints(1);
  const t = new Thread({ target: work, args: [q, 10, sum], module: url });
  t.start();
  await q.join();
  assert.equal(Atomics.load(sum, 0), 55);
  await t.join();
  q.joinSync();
});

test("JoinableQueue.join() just returns after timeout and rejects on abort", async () => {
  const q = new JoinableQueue();
  await q.join(); // nothing put
  q.putNowait("task");
  const t0 = performance.now();
  await q.join({ timeout: 50 });
  assert.ok(performance.now() - t0 >= 40);
  q.joinSync({ timeout: 10 });
  await assert.rejects(q.join({ signal: AbortSignal.abort(new Error("no")) }), { message: "no" });
  const ac = new AbortController();
  const joining = q.join({ signal: ac.signal });
  await sleep(10);
  ac.abort(new Error("later"));
  await assert.rejects(joining, { message: "later" });
  q.getNowait();
  q.taskDone();
  await q.join();
});

// --- SimpleQueue ----------------------------------------------------------------

test("SimpleQueue puts, gets, closes and crosses threads", async () => {
  const inbox = new Queue<unknown>();
  const outbox = new SimpleQueue<unknown>();
  assert.equal(outbox.empty(), true);
  const t = new Thread({ target: echo, args: [inbox, outbox], module: url });
  t.start();
  await inbox.put(1);
  await inbox.put({ two: [2] });
  assert.deepEqual(await outbox.get({ timeout: 10_000 }), { echo: 1 });
  assert.deepEqual(outbox.getSync({ timeout: 10_000 }), { echo: { two: [2] } });
  inbox.close();
  await t.join();
  assert.equal(t.exitCode, 0);
  assert.equal(outbox.empty(), true);
  await assert.rejects(outbox.get({ timeout: 10 }), EmptyError);
  outbox.putSync("sync");
  assert.equal(outbox.getSync(), "sync");
  assert.throws(() => outbox.putSync(() => 1), TypeError);
  assert.equal(outbox.empty(), true);
  outbox.close();
  await assert.rejects(outbox.put(1), ClosedError);
  assert.throws(() => outbox.putSync(1), ClosedError);
  await assert.rejects(outbox.get(), ClosedError);
});

test("every consumer parked on an empty Queue is woken by a put, promptly", async () => {
  // Consumers in three threads (two blocking, one async) park on an empty
  // queue; three puts in a row must wake all three (each takes one item per
  // round). A wake-up lost between the puts would leave one asleep until its
  // next re-check (1 s).
  const q = new Queue<number>();
  const n = 3;
  const go = ints(1);
  const parked = ints(1);
  const got = ints(1);
  const threads = [false, false, true].map((useAsync) =>
    new Thread({ target: getPerRound, args: [q, go, parked, got, useAsync], module: url })
  );
  for (const t of threads) t.start();
  let codes: (number | null)[] = [];
  try {
    for (let r = 1; r <= 5; r++) {
      Atomics.store(go, 0, r);
      await eventually(() => Atomics.load(parked, 0) === r * n, 30_000);
      await sleep(50); // let them park
      const t0 = performance.now();
      for (let k = 0; k < n; k++) q.putNowait(k);
      await eventually(() => Atomics.load(got, 0) === r * n, 5_000);
      const ms = performance.now() - t0;
      assert.ok(ms < 600, `round ${r}: the last of ${n} parked consumers took ${ms.toFixed(0)} ms to wake`);
    }
  } finally {
    q.close();
    Atomics.store(go, 0, 1 << 30); // on to a get, which sees the queue closed
    for (const t of threads) await t.join(5_000);
    codes = threads.map((t) => t.exitCode);
    for (const t of threads) await t.terminate(); // one that hangs must not outlive the test
  }
  assert.deepEqual(codes, [0, 0, 0], String(threads.map((t) => t.error)));
});

test("an async Queue.get() aborted just after a put woke it leaves later wake-ups intact", async () => {
  const q = new Queue<number>();
  const ac = new AbortController();
  const first = q.get({ signal: ac.signal }); // parks
  q.putNowait(1); // wakes it; the wake-up reaches it on a later turn
  ac.abort(); // meanwhile it is aborted
  await assert.rejects(first);
  assert.equal(q.getNowait(), 1);
  for (let k = 2; k < 5; k++) {
    const t0 = performance.now();
    const next = q.get(); // parks again
    setTimeout(() => q.putNowait(k), 10);
    assert.equal(await next, k);
    const ms = performance.now() - t0;
    // A lost wake-up would wait for the 1 s re-check.
    assert.ok(ms < 600, `get ${k} took ${ms.toFixed(0)} ms`);
  }
  q.close();
});

test("a consumer waiting on an empty Queue uses no CPU", async () => {
  const q = new Queue();
  const ready = ints(1);
  const t = new Thread({ target: idleGet, args: [q, ready], module: url });
  t.start();
  await eventually(() => Atomics.load(ready, 0) === 1, 30_000);
  await sleep(100); // let it park
  const share = await cpuShare(() => sleep(400));
  await q.put("wake");
  await t.join();
  assert.ok(share < 0.25, `the process used ${(share * 100).toFixed(0)}% of a core`);
});

test("an async Queue.get() waiting on an empty queue uses no CPU", async () => {
  const q = new Queue<string>();
  const got = q.get();
  await sleep(100); // past the short spin
  const share = await cpuShare(() => sleep(400));
  await q.put("wake");
  assert.equal(await got, "wake");
  assert.ok(share < 0.25, `the process used ${(share * 100).toFixed(0)}% of a core`);
});

// --- threads, large items, stress -----------------------------------------------

test("a 64 MiB item passes through a Queue to another thread and back", async () => {
  const inbox = new Queue<Uint8Array>();
  const outbox = new Queue<number[]>();
  const size = 64 * 1024 * 1024;
  const big = new Uint8Array(size);
  for (let k = 0; k < size; k += 65521) big[k] = k % 251;
  big[size - 1] = 42;
  let sum = 0;
  for (let k = 0; k < size; k += 65521) sum = (sum + big[k]) | 0;
  const t = new Thread({ target: measure, args: [{ inbox, outbox }], module: url });
  t.start();
  await inbox.put(big);
  assert.deepEqual(await outbox.get({ timeout: 60_000 }), [size, sum, 42]);
  await t.join();
  // The room is reused: a second round trip of the same size works in the same queue.
  inbox.putNowait(big);
  assert.equal(inbox.getSync().length, size);
});

test("Queue passed in args works in the thread, and JoinableQueue stays joinable", async () => {
  const q = new JoinableQueue<number>();
  assert.ok(q instanceof Queue);
  q.putNowait(5);
  const sum = ints(1);
  const t = new Thread({ target: work, args: [q, 1, sum], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0);
  assert.equal(Atomics.load(sum, 0), 5);
  await q.join({ timeout: 1000 });
  assert.throws(() => q.taskDone(), Error);
});

for (const maxsize of [0, 16]) {
  test(`Queue(${maxsize}) with 3 producer and 3 consumer threads delivers every item exactly once, in order per producer`, async () => {
    const P = 3, C = 3, N = 4000;
    const q = new Queue<Item>(maxsize);
    const counts = ints(P * N + 1);
    const errorsAt = P * N;
    const modes = ["sync", "async", "iterate"] as const;
    const consumers = Array.from(
      { length: C },
      (_, c) => new Thread({ target: consume, args: [q, counts, N, errorsAt, modes[c % 3]], module: url }),
    );
    const producers = Array.from(
      { length: P },
      (_, p) => new Thread({ target: produce, args: [q, p, N, p % 2 === 0], module: url }),
    );
    for (const t of [...consumers, ...producers]) t.start();
    for (const t of producers) await t.join();
    for (const t of producers) assert.equal(t.exitCode, 0);
    q.close();
    for (const t of consumers) await t.join();
    for (const t of consumers) assert.equal(t.exitCode, 0, String(t.error));
    assert.equal(Atomics.load(counts, errorsAt), 0, "out of order or damaged items");
    const wrong: number[] = [];
    for (let k = 0; k < P * N; k++) if (counts[k] !== 1) wrong.push(k);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} items not delivered exactly once`);
    assert.equal(q.qsize(), 0);
  });
}

test("a producer terminated in the middle of put leaves the queue usable and loses no completed put", async () => {
  const size = 4 * 1024 * 1024;
  for (let round = 0; round < 2; round++) {
    const q = new Queue<Uint8Array>(2);
    const done = ints(1);
    const t = new Thread({ target: putForever, args: [q, size, done], module: url });
    t.start();
    const got: number[] = [];
    const take = (timeout: number) => {
      const a = q.getSync({ timeout });
      got.push(checkBigItem(a, size));
    };
    await eventually(() => Atomics.load(done, 0) >= 2, 30_000);
    for (let k = 0; k < 3 + round * 2; k++) take(10_000);
    await sleep(round * 3);
    await t.terminate();
    const completed = Atomics.load(done, 0);
    for (;;) {
      try {
        take(300); // long enough for a put that was being published
      } catch (e) {
        if (e instanceof EmptyError) break;
        throw e;
      }
    }
    assert.ok(!got.includes(-1), "no damaged item");
    assert.deepEqual(got, got.map((_, i) => i), "in order, none missing or repeated");
    // Every completed put was delivered; at most the one in flight besides.
    assert.ok(got.length === completed || got.length === completed + 1, `${got.length} vs ${completed}`);
    // The lock the dead producer may have held is taken over.
    await q.put(bigItem(99, size), { timeout: 5000 });
    assert.equal(checkBigItem(await q.get({ timeout: 5000 }), size), 99);
  }
});

test("a consumer terminated in the middle of get leaves the queue usable and every item is taken once", async () => {
  const size = 4 * 1024 * 1024;
  const q = new Queue<Uint8Array>();
  const total = 40;
  const seen = ints(total + 1);
  for (let i = 1; i <= total; i++) q.putNowait(bigItem(i, size));
  const t = new Thread({ target: getForever, args: [q, size, seen], module: url });
  t.start();
  await eventually(() => q.qsize() <= total - 3);
  await t.terminate();
  assert.equal(Atomics.load(seen, 0), 0, "no damaged item");
  let rest = 0;
  for (;;) {
    let a: Uint8Array;
    try {
      a = await q.get({ timeout: 20 });
    } catch (e) {
      if (e instanceof EmptyError) break;
      throw e;
    }
    const i = checkBigItem(a, size);
    assert.ok(i >= 1, "not damaged");
    seen[i]++;
    rest++;
  }
  assert.ok(rest > 0);
  const counts = Array.from(seen.subarray(1));
  assert.ok(counts.every((c) => c <= 1), "no item twice");
  // At most the item whose get was cut short is missing.
  assert.ok(counts.filter((c) => c === 0).length <= 1, `missing: ${counts.filter((c) => c === 0).length}`);
  q.putNowait(bigItem(7, size));
  assert.equal(checkBigItem(q.getSync({ timeout: 5000 }), size), 7);
});

test("a producer killed while blocked in putSync() stays dead when room frees up, with nothing on stderr", async () => {
  const r = await runScript("tests/testdata/queue_kill_script.ts", [], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), ["killed: exitCode -9", "qsize after: 0"]);
  assert.doesNotMatch(r.stderr, /Exception in thread/);
});

// --- a taker that dies holding an item with a pipe end inside ---------------------

for (const [point, published] of [["take:counted", true], ["take:intent", false]] as const) {
  test(`a pipe end inside an item whose taker died at ${point} is ${published ? "closed" : "left in the queue"}`, async () => {
    const q = new Queue<{ end: Connection<string> } | string>();
    const [a, b] = Pipe<string>();
    await q.put({ end: b });
    const report = ints(1);
    const t = new Thread({ target: takeAndStop, args: [q, point, report], module: url });
    t.start();
    try {
      await eventually(() => Atomics.load(report, 0) === 1);
      markDead(t.ident!); // as the runtime's confirmation of its end would
      q.putSync("next");
      // This get takes the consumer lock over from the dead taker.
      if (published) {
        assert.equal(q.getSync(), "next");
        // Nobody can ever take the item again: its end is closed, so the other end's recv ends.
        await assert.rejects(a.recv({ timeout: 10_000 }), ClosedError);
      } else {
        const item = q.getSync() as { end: Connection<string> };
        a.send("still open");
        assert.equal(await item.end.recv({ timeout: 10_000 }), "still open");
        item.end.close();
        assert.equal(q.getSync(), "next");
      }
    } finally {
      await t.terminate();
      a.close();
    }
  });
}

test("close({ immediate: true }) drops what is left (shutdown(immediate=True)): gets fail at once, join() returns", async () => {
  const q = new Queue<number>();
  for (const i of [1, 2, 3]) q.putNowait(i);
  // A getter waiting on another queue's close is woken as by close().
  const empty = new Queue<number>();
  const waiting = empty.get();
  empty.close({ immediate: true });
  await assert.rejects(waiting, ClosedError);
  // Bad options change nothing.
  assert.throws(() => q.close({ immediate: "yes" as unknown as boolean }), TypeError);
  assert.throws(() => q.close(5 as unknown as { immediate: boolean }), TypeError);
  assert.equal(q.qsize(), 3);
  q.close({ immediate: true });
  assert.equal(q.qsize(), 0);
  await assert.rejects(q.get(), ClosedError);
  assert.throws(() => q.putNowait(4), ClosedError);
  // A JoinableQueue counts each dropped item as done.
  const jq = new JoinableQueue<string>();
  jq.putNowait("a");
  jq.putNowait("b");
  assert.equal(await jq.get(), "a");
  jq.close({ immediate: true });
  jq.taskDone(); // the item taken before the close
  await jq.join({ timeout: 5000 });
  assert.throws(() => jq.taskDone(), Error);
  // SimpleQueue too; a plain close still drains.
  const sq = new SimpleQueue<number>();
  sq.putSync(1);
  sq.close({ immediate: true });
  assert.equal(sq.empty(), true);
  const drained = new Queue<number>();
  drained.putNowait(7);
  drained.close();
  assert.equal(await drained.get(), 7);
});
