// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { handlerFor, pack, registerHandler, unpack } from "../_handles.ts";
import { encodeTo } from "../_codec.ts";
import { heldMoves, holdMoves, keptHandles, settleMoves, shareHandles } from "../_post.ts";
import {
  Barrier,
  ClosedError,
  Condition,
  Connection,
  Event,
  FullError,
  JoinableQueue,
  Lock,
  Pipe,
  Queue,
  RLock,
  Semaphore,
  SharedArray,
  SharedValue,
  SimpleQueue,
  Thread,
} from "../mod.ts";
import {
  answerThroughPassedReader,
  answerThroughReceivedEnd,
  bumpFromPipe,
  collectGarbage,
  countUnderLock,
  doubleIntoReplyQueue,
  doubleIntoReplyQueueAsync,
  handOverAndExit,
  holdLockFromQueue,
  holdUnread,
  passReaderOn,
  type SyncKit,
  syncThroughItem,
  takeAndParkAfterAsking,
  talkThroughMovedEnd,
  url,
  useOrphans,
  waitForItem,
} from "./testdata/handles_fixtures.ts";
import { runScript } from "./_util.ts";

/** A stand-in for a library handle: shared cells plus private state that cannot be cloned. */
class Counter {
  #cells: Int32Array;
  moved = false;
  constructor(cells = new Int32Array(new SharedArrayBuffer(4))) {
    this.#cells = cells;
  }
  get value(): number {
    return Atomics.load(this.#cells, 0);
  }
  add(n: number): void {
    Atomics.add(this.#cells, 0, n);
  }
  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }
}

/** A handle that carries a MessagePort to transfer. */
class Porter {
  constructor(readonly port: MessagePort) {}
}

registerHandler<Counter, { sab: SharedArrayBuffer }>({
  tag: "test.Counter",
  canHandle: (v): v is Counter => v instanceof Counter,
  serialize: (c, path) => {
    if (c.moved) throw new TypeError(`Cannot send ${path}: the counter was moved`);
    return { sab: c.buffer };
  },
  deserialize: (d) => new Counter(new Int32Array(d.sab)),
});

registerHandler<Porter, { port: MessagePort }>({
  tag: "test.Porter",
  canHandle: (v): v is Porter => v instanceof Porter,
  serialize: (p) => ({ port: p.port }),
  deserialize: (d) => new Porter(d.port),
  transferables: (d) => [d.port],
  moved: (p) => (p as unknown as { gone: boolean }).gone = true,
});

test("pack leaves values without handles as they are", () => {
  const value = [1, { a: new Map([["k", new Set([2])]]) }];
  const p = pack(value, "args");
  assert.equal(p.hasHandles, false);
  assert.equal(p.data, value);
  assert.deepEqual(p.transfer, []);
  assert.equal(unpack(p.data, p.hasHandles), value);
});

test("pack and unpack rebuild handles nested in arrays, objects, Maps and Sets", () => {
  const c = new Counter();
  c.add(5);
  const value = [c, { deep: { c } }, new Map<unknown, unknown>([["k", c], [c, "as key"]]), new Set([c]), "plain"];
  const p = pack(value, "args");
  assert.equal(p.hasHandles, true);
  assert.notEqual(p.data, value); // the caller's value is not changed
  assert.equal(value[0], c);
  const back = unpack(structuredClone(p.data), true) as [
    Counter,
    { deep: { c: Counter } },
    Map<unknown, unknown>,
    Set<Counter>,
    string,
  ];
  assert.ok(back[0] instanceof Counter);
  assert.ok(back[1].deep.c instanceof Counter);
  assert.ok(back[2].get("k") instanceof Counter);
  const keys = [...back[2].keys()];
  assert.ok(keys.some((k) => k instanceof Counter));
  assert.ok([...back[3]][0] instanceof Counter);
  assert.equal(back[4], "plain");
  // They share the same memory as the original.
  back[0].add(1);
  assert.equal(c.value, 6);
  assert.equal(back[1].deep.c.value, 6);
});

test("pack keeps cycles around handles", () => {
  const c = new Counter();
  const root: Record<string, unknown> = { c };
  root.self = root;
  const p = pack(root, "args");
  const back = unpack(structuredClone(p.data), true) as Record<string, unknown>;
  assert.equal(back.self, back);
  assert.ok(back.c instanceof Counter);
});

test("pack collects transferables and commit() tells moved handles", () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const porter = new Porter(port1);
    const p = pack({ list: [porter] }, "args");
    assert.deepEqual(p.transfer, [port1]);
    assert.equal((porter as unknown as { gone?: boolean }).gone, undefined);
    p.commit();
    assert.equal((porter as unknown as { gone?: boolean }).gone, true);
  } finally {
    port1.close();
    port2.close();
  }
});

test("pack passes the path to serialize, which may refuse", () => {
  const c = new Counter();
  c.moved = true;
  assert.throws(() => pack([0, { q: c }], "args"), { name: "TypeError", message: /args\[1\]\.q/ });
});

test("pack throws a TypeError naming the path of an uncloneable value next to handles", () => {
  assert.throws(() => pack([new Counter(), { cb: () => {} }], "args"), {
    name: "TypeError",
    message: /args\[1\]\.cb/,
  });
});

test("unpack throws when a handle's class is not loaded in this thread", () => {
  const data = pack([new Counter()], "args").data as unknown[];
  const forged = JSON.parse(
    JSON.stringify(data, (_k, v) => v instanceof SharedArrayBuffer ? {} : v).replace(
      "test.Counter",
      "test.Missing",
    ),
  );
  assert.throws(() => unpack(forged, true), /test\.Missing/);
});

test("handlerFor finds the registered handler, registerHandler ignores a second registration of a tag", () => {
  assert.equal(handlerFor(new Counter())?.tag, "test.Counter");
  assert.equal(handlerFor({}), undefined);
  assert.equal(handlerFor(1), undefined);
  registerHandler({
    tag: "test.Counter",
    canHandle: (v): v is object => v === "never",
    serialize: () => null,
    deserialize: () => ({}),
  });
  assert.equal(handlerFor(new Counter())?.tag, "test.Counter");
});

// --- handles inside queue items and pipe messages (the post office) ---------------

/** Starts a thread on a fixture and returns it. */
function run(target: (...args: never[]) => unknown, ...args: unknown[]): Thread {
  const t = new Thread({ target: target as (...a: unknown[]) => unknown, module: url, args });
  t.start();
  return t;
}

test("a Lock put into a Queue is taken in another thread and excludes the main thread", async () => {
  const q = new Queue<{ lock: Lock }>();
  const out = new Queue<string>();
  const release = new Queue<string>();
  const lock = new Lock();
  const t = run(holdLockFromQueue, q, out, release);
  try {
    await q.put({ lock });
    assert.equal(await out.get({ timeout: 20_000 }), "held");
    assert.equal(lock.locked(), true);
    assert.equal(await lock.acquire({ timeout: 50 }), false);
    await release.put("go");
    assert.equal(await out.get({ timeout: 20_000 }), "released");
    assert.equal(await lock.acquire({ timeout: 5000 }), true);
    lock.release();
  } finally {
    await t.join();
  }
  assert.equal(t.exitCode, 0);
});

test("a Queue sent through a Queue is used by the thread that takes it", async () => {
  const jobs = new Queue<{ n: number; reply: Queue<number> } | null>();
  const t = run(doubleIntoReplyQueue, jobs);
  try {
    const replies = [new Queue<number>(), new Queue<number>()];
    for (let n = 0; n < 6; n++) await jobs.put({ n, reply: replies[n % 2] });
    const got = await Promise.all(Array.from({ length: 6 }, (_, n) => replies[n % 2].get({ timeout: 20_000 })));
    assert.deepEqual(got.sort((a, b) => a - b), [0, 2, 4, 6, 8, 10]);
    assert.ok(replies.every((r) => r.empty()));
  } finally {
    await jobs.put(null);
    await t.join();
  }
  assert.equal(t.exitCode, 0);
});

test("a server answering each request on a fresh reply queue keeps the post office's table bounded", async () => {
  const jobs = new Queue<{ n: number; reply: Queue<number> } | null>();
  const t = run(doubleIntoReplyQueueAsync, jobs);
  const N = 10_000;
  const EVERY = 1000;
  try {
    for (let n = 1; n <= N; n++) {
      const reply = new Queue<number>();
      await jobs.put({ n, reply });
      assert.equal(await reply.get({ timeout: 20_000 }), 2 * n);
      if (n % EVERY !== 0) continue;
      // Both threads collect what they dropped, then tell the post office.
      const done = new Queue<number>();
      await jobs.put({ n: -1, reply: done });
      await done.get({ timeout: 20_000 });
      collectGarbage();
      let kept = keptHandles();
      for (let tries = 0; kept >= 50 && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        kept = keptHandles();
      }
      // Without releases it keeps every reply queue.
      assert.ok(kept < 50, `the post office kept ${kept} handles after ${n} requests`);
    }
  } finally {
    await jobs.put(null);
    await t.join();
  }
  assert.equal(t.exitCode, 0, String(t.error));
});

test("a handle inside an item waiting in a queue is kept after the thread that sent it dropped it", async () => {
  const q = new Queue<{ lock: Lock }>();
  let collected = false;
  const watch = new FinalizationRegistry(() => collected = true);
  (() => {
    const lock = new Lock();
    watch.register(lock, 0);
    q.putNowait({ lock });
  })();
  new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
  for (let tries = 0; !collected && tries < 100; tries++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(collected, "the lock was not collected");
  // This thread told the post office it no longer holds the lock; the item still names it.
  const { lock } = q.getNowait();
  assert.equal(await lock.acquire({ timeout: 1000 }), true);
  lock.release();
});

test("a SharedValue nested in a Pipe message is updated by the receiver", async () => {
  const [here, there] = Pipe<{ box: { counter: SharedValue }; by: number } | string>();
  const counter = new SharedValue("i", 40);
  const t = run(bumpFromPipe, there);
  try {
    here.send({ box: { counter }, by: 2 });
    assert.equal(await here.recv({ timeout: 20_000 }), "now 42");
    assert.equal(counter.value, 42);
  } finally {
    await t.join();
    here.close();
  }
});

test("a Connection end sent through a Queue moves: the sender's copy throws a clear error", async () => {
  const q = new Queue<{ end: Connection<string> }>();
  const [mine, theirs] = Pipe<string>();
  const t = run(talkThroughMovedEnd, q);
  try {
    await q.put({ end: theirs });
    assert.equal(theirs.closed, true);
    assert.throws(() => theirs.send("x"), /moved|closed/i);
    await assert.rejects(theirs.recv({ timeout: 10 }), /moved|closed/i);
    assert.throws(() => q.putNowait({ end: theirs }), { name: "TypeError", message: /item\.end.*moved/ });
    mine.send("ping");
    assert.equal(await mine.recv({ timeout: 20_000 }), "hello from the thread, got ping");
  } finally {
    await t.join();
  }
  // The thread closed its end: the pipe reports it.
  await assert.rejects(mine.recv({ timeout: 20_000 }), { name: "ClosedError" });
  mine.close();
});

test("a put that fails leaves a Connection end inside the item with the sender, still usable", async () => {
  const [mine, theirs] = Pipe<string>();
  const full = new Queue<unknown>(1);
  full.putNowait("filler");
  assert.throws(() => full.putNowait({ end: theirs }), FullError);
  await assert.rejects(full.put({ end: theirs }, { timeout: 20 }), FullError);
  assert.throws(() => full.putSync({ end: theirs }, { timeout: 20 }), FullError);
  const aborted = new AbortController();
  const pending = full.put({ end: theirs }, { signal: aborted.signal });
  aborted.abort(new Error("no longer wanted"));
  await assert.rejects(pending, /no longer wanted/);
  const closed = new Queue<unknown>();
  closed.close();
  assert.throws(() => closed.putNowait([theirs]), ClosedError);
  assert.equal(theirs.closed, false);
  theirs.send("still mine");
  assert.equal(mine.recvSync({ timeout: 1000 }), "still mine");
  // A put that waited for room and then went in does move it.
  const later = full.put({ end: theirs });
  assert.equal(theirs.closed, false);
  assert.equal(full.getNowait(), "filler");
  await later;
  assert.equal(theirs.closed, true);
  const { end } = full.getNowait() as { end: Connection<string> };
  end.send("moved at last");
  assert.equal(mine.recvSync({ timeout: 1000 }), "moved at last");
  end.close();
  mine.close();
});

test("shared memory deposited for an item is held with it, so that a put that fails gives the deposit up", () => {
  const sab = new SharedArrayBuffer(8);
  holdMoves();
  encodeTo({ sab, view: new Int32Array(sab, 4, 1) }, "item", () => 0, shareHandles);
  const held = heldMoves();
  assert.deepEqual(held?.map((m) => m.handler.tag), ["SharedArrayBuffer", "SharedArrayBuffer view"]);
  settleMoves(held, false); // the post office forgets both deposits
});

test("a Connection end sent through a Connection moves to the receiving thread", async () => {
  const [ctl, ctlThere] = Pipe<Connection<string>>();
  const [mine, theirs] = Pipe<string>();
  const t = run(answerThroughReceivedEnd, ctlThere);
  try {
    ctl.send(theirs);
    assert.equal(theirs.closed, true);
    mine.send("ping");
    assert.equal(await mine.recv({ timeout: 20_000 }), "got ping");
  } finally {
    await t.join();
    mine.close();
    ctl.close();
  }
});

/** Waits until `flag[0]` is set by a fixture (see `reportAndPark`). */
async function reported(flag: Int32Array): Promise<void> {
  const end = Date.now() + 20_000;
  while (Atomics.load(flag, 0) === 0) {
    if (Date.now() > end) throw new Error("the thread did not report");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("a Connection end inside a queue item closes when the thread that took the item dies before receiving the end", async () => {
  const q = new Queue<{ end: Connection<string> }>();
  const [mine, theirs] = Pipe<string>();
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const t = run(takeAndParkAfterAsking, q, flag);
  try {
    await q.put({ end: theirs });
    await reported(flag); // it took the item and asked for the end
    await t.terminate();
    await assert.rejects(mine.recv({ timeout: 10_000 }), ClosedError);
  } finally {
    await t.terminate();
    mine.close();
  }
});

test("a Connection end sent through a pipe closes when the receiving thread dies without receiving it", async () => {
  const [ctl, ctlThere] = Pipe<{ end: Connection<string> }>();
  const [mine, theirs] = Pipe<string>();
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const t = run(holdUnread, ctlThere, flag);
  try {
    await reported(flag);
    ctl.send({ end: theirs });
    assert.equal(await mine.poll(200), false); // in transit: open
    await t.terminate();
    await assert.rejects(mine.recv({ timeout: 10_000 }), ClosedError);
  } finally {
    await t.terminate();
    mine.close();
    ctl.close();
  }
});

test("a Connection end sent through a pipe closes when the receiving end is closed without receiving it", async () => {
  const [ctl, ctlThere] = Pipe<{ end: Connection<string> }>();
  const [mine, theirs] = Pipe<string>();
  ctl.send({ end: theirs });
  assert.equal(await mine.poll(100), false);
  ctlThere.close();
  await assert.rejects(mine.recv({ timeout: 10_000 }), ClosedError);
  mine.close();
  ctl.close();
});

test("a Connection end inside a message stays open while the receiving end moves on from a thread that ends", async () => {
  const [ctl, ctlThere] = Pipe<{ end: Connection<string> }>();
  const [mine, theirs] = Pipe<string>();
  const q = new Queue<{ conn: Connection<{ end: Connection<string> }> }>();
  const go = new Queue<string>();
  const a = run(passReaderOn, ctlThere, q, go);
  ctl.send({ end: theirs }); // to a thread that will pass the receiving end on and end
  await go.put("go");
  await a.join(); // the receiving end is in transit now, inside an item
  assert.equal(a.exitCode, 0, String(a.error));
  assert.equal(await mine.poll(200), false);
  const b = run(answerThroughPassedReader, q);
  try {
    assert.equal(await mine.recv({ timeout: 20_000 }), "answered");
    await assert.rejects(mine.recv({ timeout: 20_000 }), ClosedError);
  } finally {
    await b.join();
    mine.close();
    ctl.close();
  }
  assert.equal(b.exitCode, 0, String(b.error));
});

test("handles in items taken by several consumer threads all work", async () => {
  const q = new Queue<{ i: number; lock: Lock; total: SharedValue; done: Queue<number> } | null>();
  const lock = new Lock();
  const total = new SharedValue("i", 0, { lock: false });
  const done = new Queue<number>();
  const N = 60;
  const threads = [0, 1, 2].map(() => run(countUnderLock, q));
  try {
    for (let i = 0; i < N; i++) await q.put({ i, lock, total, done });
    const seen: number[] = [];
    for (let i = 0; i < N; i++) seen.push(await done.get({ timeout: 20_000 }));
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
    assert.equal(total.value, N);
  } finally {
    for (const _ of threads) await q.put(null);
    for (const t of threads) await t.join();
  }
  assert.ok(threads.every((t) => t.exitCode === 0));
});

test("handles in an item outlive the thread that created and sent them", async () => {
  const q = new Queue<{ lock: Lock; inner: Queue<string> }>();
  const a = run(handOverAndExit, q, 2);
  await a.join();
  assert.equal(a.exitCode, 0);
  assert.equal(a.isAlive(), false);
  // One copy is read here, the other by a thread started after the creator ended.
  const { lock, inner } = await q.get({ timeout: 1000 });
  assert.ok(lock instanceof Lock);
  assert.ok(inner instanceof Queue);
  assert.equal(await lock.acquire({ timeout: 1000 }), true);
  const b = run(useOrphans, q, "from b");
  try {
    assert.equal(await inner.get({ timeout: 200 }).catch((e) => e.name), "EmptyError"); // b waits for the lock
    lock.release();
    assert.equal(await inner.get({ timeout: 20_000 }), "from b");
  } finally {
    await b.join();
  }
  assert.equal(b.exitCode, 0);
});

test("a Barrier, Event, Semaphore, JoinableQueue and SharedArray taken from a SimpleQueue work in the worker", async () => {
  const sq = new SimpleQueue<SyncKit>();
  const kit: SyncKit = {
    barrier: new Barrier(2),
    event: new Event(),
    jq: new JoinableQueue<string>(),
    sem: new Semaphore(0),
    arr: new SharedArray("i", 1),
  };
  const t = run(syncThroughItem, sq);
  try {
    await sq.put(kit);
    assert.equal(typeof await kit.barrier.wait(20_000), "number");
    assert.equal(await kit.event.wait(20_000), true);
    assert.equal(kit.arr.get(0), 7);
    assert.equal(await kit.sem.acquire({ timeout: 1000 }), true);
    assert.equal(await kit.jq.get({ timeout: 1000 }), "from the worker");
    kit.jq.taskDone();
    await kit.jq.join({ timeout: 1000 });
  } finally {
    await t.join();
  }
  assert.equal(t.exitCode, 0);
});

test("every kind of handle crosses a Queue nested in Maps, Sets and arrays, and comes back as itself", () => {
  const q = new Queue();
  const [c1, c2] = Pipe();
  const handles = [
    new Queue(),
    new JoinableQueue(),
    new SimpleQueue(),
    new Lock(),
    new RLock(),
    new Semaphore(2),
    new Event(),
    new Condition(),
    new Barrier(2),
    new SharedValue("d", 1.5),
    new SharedArray("i", [1, 2, 3]),
  ];
  const item = { list: handles, map: new Map([["lock", handles[3]]]), set: new Set([handles[0]]), again: handles[3] };
  q.putNowait(item);
  const back = q.getNowait() as typeof item;
  // In the thread that sent them, the very same objects come back.
  back.list.forEach((h, i) => assert.equal(h, handles[i]));
  assert.equal(back.map.get("lock"), handles[3]);
  assert.equal(back.again, back.list[3]);
  assert.equal([...back.set][0], handles[0]);
  // A Connection end moves even to the same thread: a new, working end comes back.
  q.putNowait([c2]);
  const [moved] = q.getNowait() as [Connection];
  assert.notEqual(moved, c2);
  assert.ok(moved instanceof Connection);
  c1.send("through the moved end");
  assert.equal(moved.recvSync({ timeout: 1000 }), "through the moved end");
  c1.close();
  moved.close();
});

test("a value that cannot be cloned next to a handle throws before anything moves", () => {
  const q = new Queue();
  const [c1, c2] = Pipe();
  assert.throws(() => q.putNowait({ end: c2, cb: () => {} }), { name: "TypeError", message: /item\.cb/ });
  assert.equal(c2.closed, false);
  assert.equal(q.qsize(), 0);
  c1.close();
  c2.close();
  assert.throws(() => q.putNowait({ end: c2 }), { name: "TypeError", message: /item\.end.*closed/ });
});

test("a program that sent handles through a queue still exits by itself", async () => {
  const r = await runScript("tests/testdata/handles_exit_script.ts", [], 60_000);
  assert.equal(r.timedOut, false, `the script did not exit: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /took 3/);
});

test("an idle program that sent handles through a queue uses no CPU (the post office sleeps)", async () => {
  const q = new Queue<unknown>();
  const t = run(waitForItem, q);
  try {
    const inner = new Queue<unknown>();
    const lock = new Lock();
    // Make the post office work, then let everything park.
    const echo = new Queue<unknown>();
    echo.putSync({ inner, lock });
    assert.equal((echo.getSync() as { inner: Queue }).inner, inner);
    let best = Infinity;
    for (let i = 0; i < 3 && best >= 0.2; i++) {
      const before = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 400));
      const used = process.cpuUsage(before);
      best = Math.min(best, (used.user + used.system) / 1000 / (performance.now() - t0));
    }
    assert.ok(best < 0.2, `an idle program used ${(best * 100).toFixed(0)}% of a core`);
  } finally {
    await q.put({ bye: new Lock() });
    await t.join();
  }
  assert.equal(t.exitCode, 0);
});

for (
  const [mode, how] of [
    ["parked", "while the main thread is parked in joinSync()"],
    ["async", "while the main thread awaits"],
    ["nested", "under a worker parked in joinSync()"],
    ["orphan", "after the thread that sent them ended"],
  ]
) {
  test(`the post office starts only for handles in items, and serves them when only workers exchange them ${how}`, async () => {
    const r = await runScript("tests/testdata/handles_lazy_script.ts", [mode], 60_000);
    assert.equal(r.timedOut, false, `the script hung: ${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { before: 0, result: "used", after: 2 });
  });
}
