// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClosedError,
  type DictProxy,
  Event,
  FullError,
  IndexError,
  KeyError,
  type ListProxy,
  Manager,
  type ObjectProxy,
  Pipe,
  Pool,
  type ProxyOf,
  Queue,
  RemoteError,
  SharedValue,
  Thread,
} from "../mod.ts";
import {
  appendFromPipe,
  appendFromQueue,
  type Counter,
  hammer,
  incrementMany,
  keepServerBusy,
  passOn,
  poolAppend,
  poolCollect,
  poolEcho,
  poolIncrement,
  poolSame,
  poolSleep,
  putIntoFull,
  relay,
  setFromQueue,
  setInThread,
  setThenFlag,
  url,
  useThenWait,
} from "./testdata/manager_fixtures.ts";
import { collectGarbage } from "./testdata/handles_fixtures.ts";
import { sleep } from "./_util.ts";

test("DictProxy: every method, async and Sync", async () => {
  await using manager = new Manager();
  const d = manager.dict<string | number, unknown>({ a: 1 });
  await d.set("b", 2);
  d.setSync(3, "three");
  assert.equal(await d.get("a"), 1);
  assert.equal(d.getSync(3), "three");
  assert.equal(await d.get("zz"), undefined);
  assert.equal(await d.get("zz", "dflt"), "dflt");
  assert.equal(await d.has("b"), true);
  assert.equal(d.hasSync("zz"), false);
  assert.equal(await d.size(), 3);
  assert.deepEqual(await d.keys(), ["a", "b", 3]);
  assert.deepEqual(d.valuesSync(), [1, 2, "three"]);
  assert.deepEqual(await d.items(), [["a", 1], ["b", 2], [3, "three"]]);
  await d.update({ c: 4 });
  d.updateSync(new Map([["e", 5]]));
  await d.update([["f", 6]]);
  assert.equal(await d.setdefault("c", 0), 4);
  assert.equal(d.setdefaultSync("g", 7), 7);
  assert.equal(await d.pop("g"), 7);
  assert.equal(await d.pop("g", "none"), "none");
  await assert.rejects(d.pop("g"), KeyError);
  assert.deepEqual(await d.popitem(), ["f", 6]);
  await d.delete("e");
  await assert.rejects(d.delete("e"), (e: unknown) => e instanceof KeyError && /'e'/.test(e.message));
  assert.throws(() => d.deleteSync("e"), KeyError);
  const copy = await d.copy();
  assert.ok(copy instanceof Map);
  assert.deepEqual([...copy], [["a", 1], ["b", 2], [3, "three"], ["c", 4]]);
  const seen: unknown[] = [];
  for await (const [k] of d) seen.push(k);
  assert.deepEqual(seen, ["a", "b", 3, "c"]);
  d.clearSync();
  assert.equal(await d.size(), 0);
  await assert.rejects(d.popitem(), KeyError);
  // Keys of every allowed primitive type.
  for (const k of [1n, true, null, undefined, -1.5]) await d.set(k as never, String(k));
  assert.equal(await d.get(1n as never), "1");
  assert.equal(await d.get(null as never), "null");
  assert.equal(await d.size(), 5);
});

test("ListProxy: every method, negative indexes, IndexError", async () => {
  await using manager = new Manager();
  const l = manager.list<number>([3, 1]);
  await l.append(2);
  l.extendSync(new Set([5]));
  await l.insert(0, 0);
  await l.insert(-100, -1);
  l.insertSync(100, 9);
  assert.deepEqual(await l.toArray(), [-1, 0, 3, 1, 2, 5, 9]);
  assert.equal(await l.get(-1), 9);
  await l.set(-1, 8);
  assert.equal(l.getSync(6), 8);
  await assert.rejects(l.get(7), IndexError);
  await assert.rejects(l.get(-8), IndexError);
  assert.throws(() => l.setSync(7, 0), IndexError);
  assert.equal(await l.pop(), 8);
  assert.equal(await l.pop(0), -1);
  assert.equal(await l.length(), 5);
  assert.equal(await l.index(1), 2);
  await l.append(1);
  assert.equal(await l.count(1), 2);
  assert.equal(await l.index(1, 4), 5);
  await assert.rejects(l.index(42), (e: unknown) => e instanceof Error && e.name === "ValueError");
  await l.remove(1);
  assert.throws(() => l.removeSync(42), /not in list/);
  assert.deepEqual(await l.slice(1, -1), [3, 2, 5]);
  await l.reverse();
  assert.deepEqual(await l.toArray(), [1, 5, 2, 3, 0]);
  await l.sort();
  assert.deepEqual(l.toArraySync(), [0, 1, 2, 3, 5]);
  l.sortSync({ reverse: true });
  assert.deepEqual(await l.toArray(), [5, 3, 2, 1, 0]);
  const items: number[] = [];
  for await (const x of l) items.push(x);
  assert.deepEqual(items, [5, 3, 2, 1, 0]);
  const empty = manager.list<number>();
  await assert.rejects(empty.pop(), IndexError);
  // Structural equality for remove/index/count, as Python's ==.
  const objs = manager.list<unknown>([{ a: [1] }, [2]]);
  assert.equal(await objs.index([2]), 1);
  await objs.remove({ a: [1] });
  assert.equal(await objs.length(), 1);
  await assert.rejects(manager.list<unknown>([1, "a"]).sort(), TypeError);
  await assert.rejects(l.sort({ key: (x: number) => -x } as never), TypeError);
});

test("NamespaceProxy: attribute access waits; get/set work everywhere", async () => {
  await using manager = new Manager();
  const ns = manager.Namespace({ a: 1 });
  ns.x = 10;
  assert.equal(ns.x, 10);
  assert.equal(ns.a, 1);
  assert.equal(ns.missing, undefined);
  await ns.set("y", [1, 2]);
  assert.deepEqual(await ns.get("y"), [1, 2]);
  assert.equal(await ns.has("y"), true);
  delete ns.y;
  assert.equal(ns.hasSync("y"), false);
  assert.deepEqual(await ns.toObject(), { a: 1, x: 10 });
  // Awaiting a namespace must not call it.
  assert.equal(await Promise.resolve(ns), ns);
});

test("Manager: bad keys, values and indexes throw before anything changes", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, unknown>({ keep: 1 });
  await assert.rejects(d.set("f", { cb: () => 1 }), (e: unknown) => e instanceof TypeError && /\.cb/.test(e.message));
  assert.throws(() => d.setSync("f", [Symbol("s")]), TypeError);
  await assert.rejects(d.set({} as never, 1), /key must be/);
  await assert.rejects(d.update([[{}, 1]] as never), /key must be/);
  assert.deepEqual(await d.items(), [["keep", 1]]);
  const l = manager.list<unknown>([1]);
  for (const bad of [1.5, NaN, "0", undefined]) {
    await assert.rejects(l.get(bad as never), TypeError, String(bad));
  }
  assert.throws(() => l.appendSync(() => 1), TypeError);
  assert.deepEqual(await l.toArray(), [1]);
  assert.throws(() => manager.dict({ f: () => 1 }), TypeError);
  assert.throws(() => manager.list([new (class X {})()]), /instance of X/);
  assert.throws(() => manager.create("NotRegistered"), /not registered/);
  assert.throws(() => Manager.register("", { module: url, export: "x" }), TypeError);
});

test("Manager: a proxy stored in a managed object comes back as a working proxy", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, unknown>();
  await d.set("inner", manager.list([1]));
  const inner = (await d.get("inner")) as ListProxy<number>;
  await inner.append(2);
  const again = d.getSync("inner") as ListProxy<number>;
  assert.deepEqual(await again.toArray(), [1, 2]);
  // Inside structures too, and in a list.
  const l = manager.list<unknown>([{ sub: manager.dict({ x: 1 }) }]);
  const { sub } = (await l.get(0)) as { sub: DictProxy<string, number> };
  assert.equal(await sub.get("x"), 1);
  // The server holds the inner list while the dictionary names it.
  assert.equal(manager.numberOfObjects(), 4);
});

test("Manager: proxies cross in thread args, queue items and pipe messages", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, unknown>();
  const t = new Thread({ target: setInThread, args: [d, "from-args", 1], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(await d.get("from-args"), 1);

  const q = new Queue<DictProxy<string, unknown>>();
  const t2 = new Thread({ target: setFromQueue, args: [q], module: url });
  t2.start();
  await q.put(d);
  await t2.join();
  assert.equal(t2.exitCode, 0, String(t2.error));
  assert.equal(await d.get("from-queue"), true);

  const [a, b] = Pipe();
  const l = manager.list<number>();
  const t3 = new Thread({ target: appendFromPipe, args: [b], module: url });
  t3.start();
  a.send(l);
  await t3.join();
  assert.equal(t3.exitCode, 0, String(t3.error));
  assert.deepEqual(await l.toArray(), [99]);
  a.close();
});

test("Manager: proxies cross in pool tasks and results", async () => {
  await using manager = new Manager();
  await using pool = new Pool({ processes: 2, module: url });
  const counter = manager.create<Counter>("Counter");
  const results = await pool.map(poolIncrement, [counter, counter, counter, counter]);
  assert.deepEqual([...results].sort(), [1, 2, 3, 4]);
  const l = manager.list<number>();
  const back = await pool.apply(poolAppend, [l, 7]);
  assert.deepEqual(await back.toArray(), [7]);
  const echoed = await pool.apply(poolEcho, [{ d: manager.dict({ k: "v" }) }]);
  assert.equal(await echoed.d.get("k"), "v");
});

test("Manager: a proxy named twice in one task or thread's args arrives as one proxy, and its object lives on", async () => {
  await using manager = new Manager();
  await using pool = new Pool({ processes: 1, module: url });
  const l = manager.list<number>();
  assert.equal(await pool.apply(poolSame, [l, l]), true);
  const t = new Thread({ target: poolSame, args: [l, l], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  // The worker drops its proxy: one release for the one crossing, not one per name.
  for (let i = 0; i < 5; i++) {
    await pool.apply(poolCollect, []);
    collectGarbage();
    await sleep(20);
  }
  assert.deepEqual(await l.toArray(), [1, 1]);
  assert.equal(manager.numberOfObjects(), 1);
});

/**
 * Holds the server in a long call from another thread, runs `target` in a
 * thread registered after that one, and gives it a list made while the
 * server is busy. The server serves its clients in turn: the second thread,
 * when served before the creating one, names an object whose `CREATE` is
 * still unread in its creator's channel.
 */
async function handOverWhileServerBusy(
  manager: Manager,
  counter: ProxyOf<Counter>,
  // deno-lint-ignore no-explicit-any
  target: (...args: any[]) => void,
  extra: unknown[] = [],
  keep = true,
): Promise<ListProxy<number> | undefined> {
  const flags = new Int32Array(new SharedArrayBuffer(16));
  const q = new Queue<ListProxy<number>>();
  const blocker = new Thread({ target: keepServerBusy, args: [counter, flags, 300], module: url });
  blocker.start();
  while (Atomics.load(flags, 0) === 0) await sleep(2);
  const user = new Thread({ target, args: [counter, q, flags, ...extra], module: url });
  user.start();
  while (Atomics.load(flags, 3) === 0) await sleep(2);
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  while (Atomics.load(flags, 2) === 0) await sleep(1);
  await sleep(50);
  let l: ListProxy<number> | undefined = manager.list<number>([1]);
  q.putNowait(l);
  if (!keep) l = undefined;
  await user.join();
  await blocker.join();
  assert.equal(user.exitCode, 0, String(user.error));
  assert.equal(blocker.exitCode, 0, String(blocker.error));
  return l;
}

test("Manager: another thread may call a proxy before the server has read the proxy's creation", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  for (let round = 0; round < 4; round++) {
    const l = await handOverWhileServerBusy(manager, counter, appendFromQueue);
    assert.deepEqual(await l!.toArray(), [1, 5]);
  }
});

test("Manager: holds counted before the server has read the creation are kept", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  const out = new Queue<ListProxy<number>>();
  for (let round = 0; round < 3; round++) {
    // The thread puts the list on `out` (a TRANSFER) and ends; the sender's proxy is dropped.
    await handOverWhileServerBusy(manager, counter, passOn, [out], false);
    const l = await out.get();
    new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
    collectGarbage();
    await sleep(1500); // the server drops the ended thread's holds (it looks every second)
    await counter.value(); // every release has reached the server once this is served
    assert.deepEqual(await l.toArray(), [1]);
  }
});

test("Manager.create: a registered class served to many threads, one call at a time", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter", 10);
  assert.equal(await counter.increment(5), 15);
  assert.equal(counter.valueSync(), 15);
  const threads = [0, 1].map(() => new Thread({ target: incrementMany, args: [counter, 200], module: url }));
  for (const t of threads) t.start();
  for (const t of threads) await t.join();
  for (const t of threads) assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(await counter.value(), 415);
  assert.equal(await counter.later(10), 415);
  // Errors arrive as RemoteError; the server goes on.
  await assert.rejects(counter.fail("nope"), (e: unknown) => e instanceof RemoteError && e.name === "RangeError");
  assert.throws(() => counter.failSync("nope"), RemoteError);
  const untyped = counter as unknown as ObjectProxy;
  await assert.rejects(untyped.noSuchMethod(), /no method 'noSuchMethod'/);
  await assert.rejects(counter._hidden(), /no method '_hidden'/);
  await assert.rejects(counter.badResult(), TypeError);
  assert.equal(await counter.increment(), 416);
  // A proxy given to the object comes back as a proxy.
  const d = manager.dict({ a: 1 });
  const same = (await counter.echo(d)) as DictProxy<string, number>;
  assert.equal(await same.get("a"), 1);
  // A class whose constructor throws, or that is missing: every call rejects.
  const broken = manager.create("Broken");
  await assert.rejects(broken.anything(), (e: unknown) => e instanceof RemoteError && /cannot build/.test(e.message));
  await assert.rejects(manager.create("Missing").anything(), /no exported class 'NoSuchClass'/);
  assert.equal(await counter.value(), 416);
});

test("Manager.create: proxies nested in arguments reach the object as proxies it can keep, return and call", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  const d = manager.dict<string, unknown>({ a: 1 });
  const l = manager.list<number>([1, 2]);
  await counter.keep({ d, all: [l, d] });
  const kept = (await counter.getKept()) as { d: DictProxy<string, unknown>; all: [ListProxy<number>, DictProxy] };
  assert.equal(await kept.d.get("a"), 1);
  assert.deepEqual(await kept.all[0].toArray(), [1, 2]);
  // Called from inside the server: the calls are served, on copies of the values.
  assert.deepEqual(await counter.useKept(), [3, 3, true]);
  assert.deepEqual(await d.get("arr"), [1]);
  assert.deepEqual(await l.toArray(), [1, 2, 3]);
  assert.deepEqual(await ((await d.get("b")) as ListProxy<number>).toArray(), [1, 2, 3]);
  await assert.rejects(
    counter.waitOnSelf(counter),
    (e: unknown) => e instanceof RemoteError && /await it/.test(e.message),
  );
  // The object's proxies hold their objects after the caller dropped its own.
  assert.equal(manager.numberOfObjects(), 3);
});

test("Manager: a call that reaches the server before its object's creation waits for it", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  await counter.value();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  // The server is busy until the thread has sent its call: by then this
  // thread's channel holds more creations than a round takes from it.
  const busy = counter.waitFor(flag);
  const dicts = Array.from({ length: 300 }, () => manager.dict<string, unknown>());
  const d = dicts[dicts.length - 1];
  const t = new Thread({ target: setThenFlag, args: [d, flag], module: url });
  t.start();
  await busy;
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(await d.get("k"), 1);
});

test("Manager: an object is kept while a thread the server has not met yet passes it on", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  await counter.value();
  const q1 = new Queue<DictProxy<string, unknown>>();
  const q2 = new Queue<DictProxy<string, unknown>>();
  const go = new Event();
  const t = new Thread({ target: relay, args: [q1, q2, go], module: url });
  t.start();
  // While the server is busy: this thread makes a dictionary, sends it to
  // the thread, gets it back and drops both proxies; the thread keeps one.
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const busy = counter.waitFor(flag);
  let dropped = 0;
  const watch = new FinalizationRegistry(() => dropped++);
  await (async () => {
    const d = manager.dict<string, unknown>();
    watch.register(d, 0);
    q1.putNowait(d);
    watch.register(await q2.get(), 0);
  })();
  new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
  for (let tries = 0; dropped < 2 && tries < 100; tries++) {
    collectGarbage();
    await sleep(20);
  }
  assert.equal(dropped, 2, "this thread's proxies were not collected");
  Atomics.store(flag, 0, 1);
  await busy;
  await counter.value(); // the releases have been served
  go.set();
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
});

test("Manager.shutdown: pending and later calls reject with ClosedError naming the manager", async () => {
  const manager = new Manager({ name: "TestManager" });
  const counter = manager.create<Counter>("Counter");
  const d = manager.dict<string, number>();
  await d.set("a", 1);
  const pending = assert.rejects(
    counter.later(60_000),
    (e: unknown) => e instanceof ClosedError && /TestManager/.test(e.message),
  );
  await sleep(50);
  const started = performance.now();
  await manager.shutdown();
  await pending;
  await assert.rejects(d.get("a"), ClosedError);
  assert.throws(() => d.getSync("a"), ClosedError);
  assert.throws(() => manager.dict(), ClosedError);
  assert.ok(performance.now() - started < 30_000);
  await manager.shutdown(); // idempotent
});

test("Manager: if the server thread dies, calls reject with ClosedError", async () => {
  await using manager = new Manager();
  const counter = manager.create<Counter>("Counter");
  const d = manager.dict<string, number>();
  await counter.crash();
  await assert.rejects(
    counter.later(60_000),
    (e: unknown) => e instanceof ClosedError && /lost its server/.test(e.message),
  );
  await assert.rejects(d.get("a"), ClosedError);
  assert.throws(() => d.setSync("a", 1), ClosedError);
});

test("Manager: a client thread killed in the middle of calls leaves the server serving", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, number>();
  const done = new Int32Array(new SharedArrayBuffer(4));
  for (let round = 0; round < 3; round++) {
    const t = new Thread({ target: hammer, args: [d, "n", done], module: url });
    t.start();
    while (Atomics.load(done, 0) < 50) await sleep(5);
    await sleep(Math.random() * 20);
    await t.terminate();
    await t.join();
    assert.equal(t.isAlive(), false);
    const last = Atomics.load(done, 0);
    // A call that completed is there (a later one may be too).
    const n = (await d.get("n"))!;
    assert.ok(n >= last, `n = ${n}, last completed ${last}`);
    Atomics.store(done, 0, 0);
  }
  await d.set("x", 1);
  assert.equal(d.getSync("x"), 1);
});

test("Manager: objects are freed once no proxy is left (many short-lived dicts)", async () => {
  await using manager = new Manager();
  const keep = manager.dict<string, number>({ k: 1 });
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const d = manager.dict<string, number>({ i });
    if (i % 500 === 0) {
      assert.equal(await d.get("i"), i);
      collectGarbage();
      await sleep(10);
    }
  }
  let count = n;
  for (let tries = 0; tries < 100; tries++) {
    collectGarbage();
    await sleep(20);
    await keep.get("k"); // the releases have reached the server once this is served
    count = manager.numberOfObjects();
    if (count < 100) break;
  }
  // Without releases every one of them is kept.
  assert.ok(count < 100, `the server keeps ${count} objects after ${n} short-lived dicts`);
  assert.equal(await keep.get("k"), 1);
});

test("Manager: a proxy in flight keeps its object after the sender dropped it", async () => {
  await using manager = new Manager();
  const q = new Queue<DictProxy<string, number>>();
  let collected = false;
  const watch = new FinalizationRegistry(() => collected = true);
  (() => {
    const d = manager.dict<string, number>({ kept: 1 });
    watch.register(d, 0);
    q.putNowait(d);
  })();
  new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
  for (let tries = 0; !collected && tries < 100; tries++) {
    collectGarbage();
    await sleep(20);
  }
  assert.ok(collected, "the sender's proxy was not collected");
  await manager.dict().size(); // the release has been served
  const d = await q.get();
  assert.equal(await d.get("kept"), 1);
});

test("Manager: a proxy in a queue item that does not go in leaves no hold behind", async () => {
  await using manager = new Manager();
  const keep = manager.dict<string, number>();
  const q = new Queue<unknown>(1);
  q.putNowait(0);
  (() => {
    const d = manager.dict();
    assert.throws(() => q.putNowait(d), FullError);
    assert.throws(() => q.putSync({ d }, { timeout: 1 }), FullError);
    // The proxy is met before the value that cannot cross.
    assert.throws(() => new Queue().putNowait([d, () => 1]), TypeError);
  })();
  await (async () => {
    const d = manager.dict();
    await assert.rejects(q.put([d], { timeout: 10 }), FullError);
  })();
  new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
  let count = Infinity;
  for (let tries = 0; count > 1 && tries < 100; tries++) {
    collectGarbage();
    await sleep(20);
    await keep.size(); // the releases have been served
    count = manager.numberOfObjects();
  }
  // A hold taken for an item that never went in keeps its dictionary for good.
  assert.equal(count, 1);
});

test("Manager: a thread's first frame, a proxy in an item that does not go in, gives its hold back", async () => {
  await using manager = new Manager();
  const keep = manager.dict<string, number>();
  const q = new Queue<unknown>(1);
  q.putNowait(0);
  await (async () => {
    // The put registers the thread with the manager (a put of its own) while the item is encoded.
    const t = new Thread({ target: putIntoFull, args: [manager.dict(), q], module: url });
    t.start();
    await t.join();
    assert.equal(t.exitCode, 0, String(t.error));
  })();
  let count = Infinity;
  for (let tries = 0; count > 1 && tries < 100; tries++) {
    collectGarbage();
    await sleep(20);
    await keep.size(); // the releases have been served
    count = manager.numberOfObjects();
  }
  assert.equal(count, 1);
});

test("Manager: plain shared objects under their manager names", async () => {
  await using manager = new Manager();
  assert.ok(manager.Queue() instanceof Queue);
  const v = manager.Value("i", 3);
  assert.ok(v instanceof SharedValue);
  assert.equal(v.value, 3);
  assert.deepEqual(manager.Array("d", [1, 2]).toArray(), [1, 2]);
  assert.equal(manager.Lock().locked(), false);
  assert.equal(manager.Semaphore(2).getValue(), 2);
  assert.equal(manager.Event().isSet(), false);
  assert.equal(manager.Barrier(2).parties, 2);
  manager.RLock();
  manager.BoundedSemaphore();
  manager.Condition();
  manager.JoinableQueue();
});

test("Manager: library handles stored in managed objects come back working", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, unknown>();
  const q = new Queue<number>();
  d.setSync("q", q);
  await d.set("v", new SharedValue("i", 5));
  (d.getSync("q") as Queue<number>).putNowait(1);
  assert.equal(q.getNowait(), 1);
  assert.equal(((await d.get("v")) as SharedValue<"i">).value, 5);
});

test("Manager: a TypeError names the argument that cannot cross", async () => {
  await using manager = new Manager();
  const d = manager.dict<string, unknown>();
  await assert.rejects(d.set("k", { cb: () => 1 }), /DictProxy\.set\(\) args\[1\]\.cb/);
  assert.throws(() => manager.create("Counter", { f: () => 1 }), /Manager\.create\('Counter'\) args\[0\]\.f/);
  assert.throws(() => manager.list([() => 1]), /Manager\.list\(\) init\[0\]/);
});

test("Manager: a thread that dies releases its proxies' holds", async () => {
  await using manager = new Manager();
  const keep = manager.dict<string, number>();
  const used = new Int32Array(new SharedArrayBuffer(4));
  const never = new Event();
  const q = new Queue<DictProxy<string, unknown>>();
  const t = new Thread({ target: useThenWait, args: [q, used, never], module: url });
  t.start();
  (() => q.putNowait(manager.dict<string, unknown>()))();
  new Queue().putNowait(new Map()); // the encoder keeps the last value it wrote
  while (Atomics.load(used, 0) === 0) await sleep(10);
  await t.terminate();
  await t.join();
  let count = manager.numberOfObjects();
  for (let tries = 0; count > 1 && tries < 100; tries++) {
    collectGarbage();
    await sleep(50);
    await keep.size();
    count = manager.numberOfObjects();
  }
  // Without the dead thread's holds dropped, its dictionary stays.
  assert.equal(count, 1);
});

test("Manager: a proxy in a pool's initargs, or in a task dropped before it ran, is not kept for ever", async () => {
  await using manager = new Manager();
  const keep = manager.dict<string, number>({ k: 1 });
  await (async () => {
    // initargs are checked at construction (a check only: nothing is sent then).
    const pool = new Pool({ processes: 1, module: url, initializer: poolEcho, initargs: [manager.dict({ a: 1 })] });
    // A task whose worker is busy, dropped before it ran: its payload never leaves.
    const busy = pool.apply(poolSleep, [300]);
    const controller = new AbortController();
    const dropped = pool.apply(poolEcho, [manager.list([1])], { signal: controller.signal });
    controller.abort(new Error("not now"));
    await assert.rejects(dropped, /not now/);
    await busy;
    await pool.terminate();
  })();
  let count = Infinity;
  for (let tries = 0; tries < 100 && count > 1; tries++) {
    collectGarbage();
    await sleep(20);
    await keep.get("k"); // the releases have reached the server once this is served
    count = manager.numberOfObjects();
  }
  assert.equal(count, 1, `the server keeps ${count} objects, not only the one still held`);
});
