// Copyright the @mpjs/multiprocessing authors. MIT license.
// registerClass: instances of registered classes cross threads in args, queue
// items, pipe messages and pool tasks, rebuilt with their prototype.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Lock, Pipe, Pool, Queue, registerClass, Thread } from "../mod.ts";
import {
  describeArgs,
  doubleOverPipe,
  Guarded,
  Point,
  Point3,
  scale,
  takeAndReport,
  url,
} from "./testdata/class_fixtures.ts";
import { Late, registerLate, url as lateUrl } from "./testdata/class_late.ts";

test("an instance of a registered class comes out of a queue as an instance, cycles and shared references kept", async () => {
  const q = new Queue<unknown>();
  const p = new Point(3, 4);
  p.next = p;
  p.label = "p";
  const shared = new Point(1, 0);
  const value = {
    p,
    pair: [shared, shared],
    map: new Map([["k", shared]]),
    zero: new Point(-0, 0),
    nested: Object.assign(new Point(0, 1), { extra: new Point(5, 12) }),
  };
  await q.put(value);
  const got = (await q.get()) as typeof value;
  assert.ok(got.p instanceof Point);
  assert.equal(got.p.norm(), 5);
  assert.equal(got.p.label, "p");
  assert.equal(got.p.next, got.p, "the cycle through the instance is kept");
  assert.equal(got.pair[0], got.pair[1], "a shared instance stays one object");
  assert.equal(got.map.get("k"), got.pair[0]);
  assert.ok(Object.is(got.zero.x, -0));
  assert.ok(got.nested.extra instanceof Point);
  assert.equal((got.nested.extra as Point).norm(), 13);
  assert.deepEqual(Object.keys(got.p).sort(), Object.keys(p).sort(), "no marker key is left behind");
  // The sender's objects are unchanged.
  assert.ok(value.p instanceof Point);
  assert.equal(value.p.next, value.p);
});

test("instances of registered classes cross in thread args and come back through a queue", async () => {
  const out = new Queue<unknown>();
  const p = new Point(3, 4);
  p.next = p;
  const g = new Guarded(new Lock(), 41);
  const t = new Thread({ target: describeArgs, module: url, args: [p, g, out] });
  t.start();
  assert.deepEqual(await out.get({ timeout: 30_000 }), { isPoint: true, norm: 5, cycle: true, bumped: 42 });
  const back = (await out.get({ timeout: 30_000 })) as Point;
  assert.ok(back instanceof Point);
  assert.equal(back.norm(), 10);
  assert.equal(back.label, "from the thread");
  await t.join();
  assert.equal(t.exitCode, 0);
  assert.equal(g.count, 41, "the thread changed its own copy");
});

test("instances of registered classes cross in pipe messages and pool tasks and results", async () => {
  const [a, b] = Pipe<Point>();
  const t = new Thread({ target: doubleOverPipe, module: url, args: [b] });
  t.start();
  await a.send(new Point(1, 2));
  const p = await a.recv({ timeout: 30_000 });
  assert.ok(p instanceof Point);
  assert.deepEqual([p.x, p.y], [2, 4]);
  await t.join();
  await using pool = new Pool({ processes: 2, module: url });
  const results = await pool.map(scale, [new Point(1, 1), new Point(0, 3)]);
  assert.ok(results.every((r) => r instanceof Point));
  assert.deepEqual(results.map((r) => r.norm()), [Math.hypot(10, 10), 30]);
});

test("an unregistered class is refused with a TypeError that names registerClass, and nothing is sent", async () => {
  const q = new Queue<unknown>();
  class Secret {
    n = 1;
  }
  await assert.rejects(q.put({ a: [new Secret()] }), (e: Error) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, /item\.a\[0\].*instance of Secret/);
    assert.match(e.message, /registerClass\(Secret, \{ module: import\.meta\.url \}\)/);
    return true;
  });
  // A subclass of a registered class is not registered by it.
  assert.throws(() => q.putSync(new Point3(1, 1)), /instance of Point3.*registerClass/);
  assert.equal(q.qsize(), 0);
});

test("a thread that receives an instance of a class it does not know is told which module to import", async () => {
  const q = new Queue<Point>();
  const out = new Queue<string>();
  const t = new Thread({ target: takeAndReport, module: url, args: [q, out] });
  t.start();
  // Registered after the thread started, in a module the thread never imported.
  registerLate();
  await q.put(new Late(1) as unknown as Point);
  const message = await out.get({ timeout: 30_000 });
  assert.match(message, /^TypeError: Cannot rebuild an instance of Late in this thread/);
  assert.ok(message.includes(lateUrl), message);
  await t.join();
});

test("registerClass refuses bad input with a TypeError and registers nothing", () => {
  class Fine {}
  const cases: [unknown, unknown, RegExp][] = [
    [() => 1, { module: url }, /not a class/],
    [42, { module: url }, /not a class/],
    [Map, { module: url }, /instances of Map are not registered/],
    [class E extends Error {}, { module: url }, /instances of Error are not registered/],
    [Uint8Array, { module: url }, /not registered/],
    [Fine, undefined, /'options' must be an object/],
    [Fine, { module: 42 }, /'module' must be the URL of the module that registers the class/],
    [Fine, { module: url, name: "" }, /'name' must be a non-empty string/],
    [(() => class {})(), { module: url }, /anonymous class.*'name'.*pass one/],
    [Point, { module: url, name: "Other" }, /already registered as Point/],
    [Fine, { module: url, name: "Point" }, /another class is already registered as Point/],
  ];
  for (const [cls, options, message] of cases) {
    assert.throws(
      () => registerClass(cls as typeof Fine, options as { module: string }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      message.source,
    );
  }
  // Nothing above registered Fine: it still cannot be sent.
  assert.throws(() => new Queue().putSync(new Fine()), /instance of Fine/);
  // Registering again the same way is allowed.
  registerClass(Point, { module: url });
});
