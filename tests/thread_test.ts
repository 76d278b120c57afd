// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import { relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import {
  activeChildren,
  activeCount,
  cpuCount,
  currentProcess,
  currentThread,
  enumerate,
  Event,
  isMainThread,
  Lock,
  Process,
  Queue,
  RemoteError,
  SharedValue,
  Thread,
  Timer,
} from "../mod.ts";
import {
  add,
  addLater,
  countBetweenWaits,
  Counter,
  countUnderLock,
  defaultNames,
  describe,
  describeArgs,
  Failing,
  getForever,
  identities,
  nap,
  newBox,
  readBox,
  rejectLater,
  Secretive,
  spinUntil,
  Squarer,
  startDaemonChild,
  startNested,
  throwTypeError,
  throwWithFields,
  url,
  whoAmI,
} from "./testdata/thread_fixtures.ts";
import writeDefault from "./testdata/thread_fixtures.ts";
import DefaultWriter from "./testdata/thread_default_subclass.ts";
import { cpuShare, eventually, runScript, runtime, sharedInts, sleep } from "./_util.ts";
import { isIdentAlive, markDead, newIdent } from "../_registry.ts";
import { compile, explainMissingVariable } from "../_target.ts";

// --- shipping the target -----------------------------------------------------

test("Thread runs a module export named by target.name with its args", async () => {
  const out = sharedInts();
  const t = new Thread({ target: add, args: [out, 20, 22], module: url });
  t.start();
  await t.join();
  assert.equal(out[0], 42);
  assert.equal(t.exitCode, 0);
  assert.equal(t.error, undefined);
});

test("Thread accepts module as a URL object", async () => {
  const out = sharedInts();
  const t = new Thread({ target: add, args: [out, 1, 2], module: new URL(url) });
  t.start();
  await t.join();
  assert.equal(out[0], 3);
});

test("Thread accepts module as a file path, absolute or relative to the working directory", async () => {
  const file = fileURLToPath(url);
  for (const module of [file, relative(process.cwd(), file), `.${sep}${relative(process.cwd(), file)}`]) {
    const out = sharedInts();
    const t = new Thread({ target: add, args: [out, 2, 3], module });
    t.start();
    await t.join();
    assert.equal(t.error, undefined, module);
    assert.equal(out[0], 5, module);
  }
});

test("new Thread() says which option is wrong and what it takes when 'module' is not a URL or a path", () => {
  for (const module of [1, "", "http://", {}]) {
    assert.throws(() => new Thread({ target: add, module: module as string }), {
      name: "TypeError",
      message: new RegExp(
        "^Cannot create Thread as 'module' must be the URL of the module that exports the target \\(pass import\\.meta\\.url\\) or a file path: current value is ",
      ),
    });
  }
});

test("Thread ships a self-contained target by its source text", async () => {
  const out = sharedInts(2);
  const t = new Thread({
    target: (cells: Int32Array, n: number) => {
      const square = (x: number) => x * x;
      cells[0] = square(n);
      cells[1] = 1;
    },
    args: [out, 7],
  });
  t.start();
  await t.join();
  assert.deepEqual([...out], [49, 1]);
  assert.equal(t.exitCode, 0);
});

test("Thread ships function declarations, async functions and shorthand methods by source", async () => {
  const out = sharedInts(3);
  function first(cells: Int32Array): void {
    cells[0] = 1;
  }
  const holder = {
    second(cells: Int32Array): void {
      cells[1] = 2;
    },
  };
  async function third(cells: Int32Array): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    cells[2] = 3;
  }
  const threads = [first, holder.second, third].map((target) => new Thread({ target, args: [out] }));
  for (const t of threads) t.start();
  for (const t of threads) await t.join();
  assert.deepEqual([...out], [1, 2, 3]);
  assert.deepEqual(threads.map((t) => t.exitCode), [0, 0, 0]);
});

test("Thread fails with an error naming the outer variable a source-shipped target uses", async () => {
  // An object, not a number: Bun's transpiler inlines constant primitives.
  const factor = { value: 3 };
  const out = sharedInts();
  const t = new Thread({
    target: function scale(cells: Int32Array) {
      cells[0] = 2 * factor.value;
    },
    args: [out],
  });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  assert.ok(t.error instanceof RemoteError);
  assert.equal(t.error.name, "ReferenceError");
  assert.match(t.error.message, /'factor'/);
  assert.match(t.error.message, /'scale'/);
  assert.match(t.error.message, /export/i);
  assert.match(t.error.message, /module/);
  assert.equal(out[0], 0);
});

test("Thread refuses an outer variable named like a worker global (Deno's name, location) in a source-shipped target", async () => {
  // Objects, not strings: Bun's transpiler inlines constant primitives.
  const name = { first: "alice" };
  const location = { city: "Oslo" };
  const targets = [
    (cells: Int32Array) => cells[0] = String(name.first).length,
    (cells: Int32Array) => cells[0] = String(location.city).length,
  ];
  for (const [i, target] of targets.entries()) {
    const out = sharedInts();
    const t = new Thread({ target, args: [out] });
    t.start();
    await t.join();
    assert.equal(out[0], 0, "the target must not go on with the worker's global");
    assert.equal(t.exitCode, 1);
    assert.equal(t.error?.name, "ReferenceError");
    assert.match(t.error!.message, i === 0 ? /refers to 'name'/ : /refers to 'location'/);
    assert.match(t.error!.message, /module: import\.meta\.url' to the Thread/);
  }
});

test("Thread refuses a source-shipped method that uses 'this', and an arrow function's 'this', with a TypeError", async () => {
  const counter = {
    step: 2,
    bump(cells: Int32Array) {
      cells[0] = this.step;
    },
    arrow() {
      return (cells: Int32Array) => {
        cells[0] = this.step;
      };
    },
  };
  for (const target of [counter.bump, counter.arrow()]) {
    const out = sharedInts();
    const t = new Thread({ target, args: [out] });
    t.start();
    await t.join();
    assert.equal(t.exitCode, 1);
    assert.equal(t.error?.name, "TypeError");
    assert.match(t.error!.message, /uses 'this'/);
    assert.match(t.error!.message, /plain function/);
    assert.match(t.error!.message, /module: import\.meta\.url' to the Thread/);
    assert.equal(out[0], 0);
  }
  const out = sharedInts();
  const t = new Thread({ target: counter.bump, args: [out] });
  t.start();
  await t.join();
  assert.match(t.error!.message, /^target 'bump' uses 'this'/);
});

test("a rebuilt target sees its own bindings and the standard globals, in strict code too, and nothing else", async () => {
  const rebuilt = (f: (...args: never[]) => unknown) => compile(Function.prototype.toString.call(f), f.name);
  // Its own variables, parameters, functions and classes shadow everything; the standard globals work.
  const own = rebuilt(function own(name: string) {
    "use strict";
    const location = [1, 2, 3];
    function total(xs: number[]) {
      return xs.reduce((a, b) => a + b, 0);
    }
    class Box {
      constructor(readonly v: number) {}
    }
    return [name, total(location), new Box(Math.max(...location)).v, JSON.stringify([NaN, undefined])];
  });
  assert.deepEqual(own("given"), ["given", 6, 3, "[null,null]"]);
  // The runtimes' namespaces are there where the runtime has them.
  const namespaces = rebuilt(new Function("return [typeof Deno, typeof Bun, typeof process]") as () => unknown);
  assert.deepEqual(namespaces(), [
    runtime === "deno" ? "object" : "undefined",
    runtime === "bun" ? "object" : "undefined",
    "object",
  ]);
  // Shorthand methods, async functions and generators; import() still works.
  const holder = {
    async load() {
      return typeof (await import("node:path")).join;
    },
    *pairs(n: number) {
      for (let i = 0; i < n; i++) yield [i, i * i];
    },
  };
  assert.equal(await rebuilt(holder.load)(), "function");
  assert.deepEqual([...rebuilt(holder.pairs)(2) as Iterable<number[]>], [[0, 0], [1, 1]]);
  // Reading, writing or typeof of a name from outside is refused, in strict code too, with the name.
  const outside = { v: 1 };
  for (
    const [f, refused] of [
      [() => outside.v, "outside"],
      [new Function("x", "undeclared = x; return x"), "undeclared"],
      [new Function("x", '"use strict"; return typeof missing'), "missing"],
      [new Function("return () => arguments")(), "arguments"],
    ] as const
  ) {
    const g = rebuilt(f as () => unknown);
    assert.throws(() => g(1), (e: Error) => {
      const explained = explainMissingVariable(e, "f") as Error;
      assert.equal(explained.name, "ReferenceError");
      assert.match(
        explained.message,
        new RegExp(`^target 'f' refers to '${refused}', which does not exist in the thread`),
      );
      return true;
    });
  }
  // An error of the target's own is left as it is.
  const own2 = rebuilt(() => {
    throw new ReferenceError("x is not defined");
  });
  assert.throws(() => own2(), (e: Error) => explainMissingVariable(e, "f") === e);
});

test("a source-shipped target with using and await using works, compiled or not (Node runs tsc's output)", async () => {
  const lock = new Lock();
  const out = sharedInts(3);
  const t = new Thread({
    target: async (lock: Lock, cells: Int32Array) => {
      {
        using _held = lock.scopedSync();
        cells[0] = 1;
      }
      {
        await using _later = {
          async [Symbol.asyncDispose]() {
            await new Promise((resolve) => setTimeout(resolve, 1));
            cells[1] = 2;
          },
        };
      }
      cells[2] = 3;
    },
    args: [lock, out],
  });
  t.start();
  await t.join();
  assert.equal(t.error, undefined);
  assert.equal(t.exitCode, 0);
  assert.deepEqual([...out], [1, 2, 3]);
  assert.equal(lock.acquireSync({ block: false }), true, "the scoped lock was released");
  lock.release();
});

test("a rebuilt target disposes its using declarations in reverse, suppressing errors as the language does", async () => {
  const rebuilt = <F extends (...args: never[]) => unknown>(f: F) =>
    compile(Function.prototype.toString.call(f), f.name) as unknown as F;
  const log: string[] = [];
  const resource = (label: string, fails: boolean) => ({
    [Symbol.dispose]() {
      log.push(label);
      if (fails) throw new Error(label);
    },
  });
  const sync = rebuilt((make: typeof resource) => {
    using _a = make("a", true);
    using _b = null;
    using _c = make("c", true);
    throw new Error("body");
  });
  assert.throws(
    () => sync(resource),
    (e: Error & { error: Error; suppressed: Error & { error: Error; suppressed: Error } }) => {
      assert.equal(e.name, "SuppressedError");
      assert.equal(e.error.message, "a");
      assert.equal(e.suppressed.name, "SuppressedError");
      assert.equal(e.suppressed.error.message, "c");
      assert.equal(e.suppressed.suppressed.message, "body");
      return true;
    },
  );
  assert.deepEqual(log, ["c", "a"]);
  // await using takes either kind of resource; a sync disposer's throw becomes the rejection.
  log.length = 0;
  const asynchronous = rebuilt(async (make: typeof resource, log: string[]) => {
    await using _a = make("a", false);
    await using _b = {
      async [Symbol.asyncDispose]() {
        await null;
        log.push("b");
      },
    };
    await using _c = make("c", true);
    return "body done";
  });
  await assert.rejects(asynchronous(resource, log), { message: "c" });
  assert.deepEqual(log, ["c", "b", "a"]);
  // The helpers esbuild (and so tsx) writes, in the shape it writes them.
  const esbuilt = compile(
    `(make) => {
      var _stack = [];
      try {
        const _a = __using(_stack, make("a", false));
        const inner = /* @__PURE__ */ __name(() => 1, "inner");
        return inner.name;
      } catch (_) {
        var _error = _, _hasError = true;
      } finally {
        __callDispose(_stack, _error, _hasError);
      }
    }`,
    "esbuilt",
  );
  log.length = 0;
  assert.equal(esbuilt(resource), "inner");
  assert.deepEqual(log, ["a"]);
});

test("a rebuilt target may use #private members as tsc writes them below ES2022", () => {
  // tsc --target ES2021 output for a class with a field, a static field and a method, all #private.
  const lowered = compile(
    `() => { var _C_instances, _a, _C_x, _C_y, _C_m; class C {
      constructor() {
        _C_instances.add(this);
        _C_x.set(this, 1);
      }
      get x() { return __classPrivateFieldGet(this, _C_x, "f") + __classPrivateFieldGet(_a, _a, "f", _C_y) + __classPrivateFieldGet(this, _C_instances, "m", _C_m).call(this); }
      set x(v) { __classPrivateFieldSet(this, _C_x, v, "f"); }
      has(o) { return __classPrivateFieldIn(_C_x, o); }
      steal(o) { return __classPrivateFieldGet(o, _C_x, "f"); }
    } _a = C, _C_x = new WeakMap(), _C_instances = new WeakSet(), _C_m = function _C_m() { return 10; }; _C_y = { value: 2 };
    const c = new C(); c.x = 5; return [c.x, c.has(c), c.has({}), c]; }`,
    "lowered",
  );
  const [x, has, hasNot, c] = lowered() as [number, boolean, boolean, { steal(o: object): unknown }];
  assert.deepEqual([x, has, hasNot], [17, true, false]);
  assert.throws(() => c.steal({}), { name: "TypeError", message: /private member/ });
});

test("a rebuilt target's relative import() under tsc's rewriteRelativeImportExtensions keeps working", async () => {
  // Relative specifiers resolve against the library's own file (tests/ is beside it in the npm build too).
  const load = compile(
    Function.prototype.toString.call(async (specifier: string) => Object.keys(await import(specifier)).length),
    "load",
  ) as (specifier: string) => Promise<number>;
  assert.ok(await load("./tests/testdata/thread_fixtures.ts") > 0);
});

test("Thread fails clearly when the module has no export named like the target", async () => {
  const t = new Thread({ target: function notExported() {}, module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  assert.equal(t.error?.name, "TypeError");
  assert.match(t.error!.message, /notExported/);
});

test("Thread.start() throws when a module target has no name, saying how to ship it", () => {
  const t = new Thread({ target: (() => () => {})(), module: url });
  assert.throws(() => t.start(), {
    name: "TypeError",
    message: /has none: export a named function \(export function work\(…\)\) and pass it, or leave out 'module'/,
  });
  assert.equal(t.ident, null);
  const bound = new Thread({ target: add.bind(null, sharedInts()), module: url });
  assert.throws(() => bound.start(), { name: "TypeError", message: /'bound add'.*pass the exported function itself/ });
});

test("Thread runs a module's default export named like the target", async () => {
  const out = sharedInts();
  const t = new Thread({ target: writeDefault, args: [out, 7], module: url });
  t.start();
  await t.join();
  assert.equal(t.error, undefined);
  assert.equal(out[0], 7);
});

test("Thread with 'module' and an inline target (named 'target' by the option) says to export it or drop 'module'", async () => {
  const t = new Thread({ target: (out: Int32Array) => out[0] = 1, args: [sharedInts()], module: url });
  t.start();
  await t.join();
  assert.equal(t.error?.name, "TypeError");
  assert.match(t.error!.message, /^Cannot run target 'target': module .* has no exported function of that name/);
  assert.match(t.error!.message, /named 'target' after the option: export a named function/);
  assert.match(t.error!.message, /or leave out 'module'/);
});

test("Thread with neither a target nor a run() override runs nothing and ends normally, as in Python", async () => {
  const t = new Thread();
  t.start();
  assert.equal(typeof t.ident, "number");
  await t.join();
  assert.equal(t.isAlive(), false);
  assert.equal(t.exitCode, 0);
  assert.equal(t.error, undefined);
  assert.throws(() => t.start(), Error); // still only once
});

// --- subclassing ---------------------------------------------------------------

test("Thread subclass exported from a module runs run() on an instance rebuilt from its fields", async () => {
  const box = newBox();
  const c = new Counter(100, { label: "x", steps: [1, 2, 3], nested: { deep: true } }, box);
  assert.equal(c.name, "counter-x");
  c.start();
  await c.join();
  assert.equal(c.exitCode, 0, c.error?.stack);
  assert.deepEqual(readBox(box), {
    total: 106,
    label: "x",
    deep: true,
    tags: [["a", 1]],
    name: "counter-x",
    ident: c.ident,
    alive: true,
    isCounter: true,
    isThread: true,
    current: "counter-x",
    isMainThread: false,
  });
});

test("Thread subclass keeps field changes made after construction", async () => {
  const box = newBox();
  const c = new Counter(0, { label: "y", steps: [5], nested: { deep: false } }, box);
  c.config.steps.push(10);
  c.start0 = 1;
  c.start();
  await c.join();
  const got = readBox(box) as { total: number; deep: boolean };
  assert.equal(got.total, 16);
  assert.equal(got.deep, false);
});

test("Thread subclass whose run() throws records a RemoteError", async () => {
  const f = new Failing("subclass says no");
  f.start();
  await f.join();
  assert.equal(f.exitCode, 1);
  assert.equal(f.error?.message, "subclass says no");
  assert.match(f.error!.stack!, /run/);
});

test("Thread subclass using a #private field fails with an error that says why and what to do", async () => {
  const out = sharedInts();
  const t = new Secretive(out);
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  assert.equal(t.error?.name, "TypeError");
  assert.match(
    t.error!.message,
    /^Secretive\.run\(\) uses a #private member, which the instance in the thread does not have/,
  );
  assert.match(t.error!.message, /rebuilds a Thread subclass from its public fields, without calling its constructor/);
  assert.match(t.error!.remoteStack, /run/);
  assert.equal(out[0], 0);
});

test("Thread subclass that is its module's default export runs", async () => {
  const out = sharedInts();
  const t = new DefaultWriter(out, 9);
  t.start();
  await t.join();
  assert.equal(t.error, undefined);
  assert.equal(out[0], 9);
});

test("Thread subclass without a module fails to start with a TypeError", () => {
  class Local extends Thread {
    override run(): void {}
  }
  const t = new Local();
  assert.throws(() => t.start(), { name: "TypeError", message: /module/ });
  assert.equal(t.ident, null);
});

test("Thread subclass with an uncloneable field throws a TypeError naming the field", () => {
  const box = newBox();
  const c = new Counter(0, { label: "z", steps: [], nested: { deep: true } }, box);
  (c.config as unknown as Record<string, unknown>).fn = () => {};
  assert.throws(() => c.start(), { name: "TypeError", message: /config\.fn/ });
  assert.equal(c.ident, null);
});

// --- lifecycle -------------------------------------------------------------------

test("Thread.isAlive() is false before start, true while running and false after join", async () => {
  const t = new Thread({ target: nap, args: [100], module: url });
  assert.equal(t.isAlive(), false);
  t.start();
  assert.equal(t.isAlive(), true);
  await t.join();
  assert.equal(t.isAlive(), false);
  assert.equal(t.is_alive(), false);
});

test("Thread.join(timeout) returns after the timeout while the thread keeps running", async () => {
  const t = new Thread({ target: nap, args: [5000], module: url });
  t.start();
  const before = performance.now();
  await t.join(50);
  const waited = performance.now() - before;
  assert.ok(waited >= 40, `join(50) returned after ${waited} ms`);
  assert.ok(waited < 4000, `join(50) returned after ${waited} ms`);
  assert.equal(t.isAlive(), true);
  assert.equal(t.exitCode, null);
  await t.terminate();
});

test("Thread.join(0) returns at once", async () => {
  const t = new Thread({ target: nap, args: [5000], module: url });
  t.start();
  await t.join(0);
  assert.equal(t.isAlive(), true);
  await t.terminate();
});

test("Thread.joinSync() blocks until the thread ends", () => {
  const out = sharedInts();
  const t = new Thread({ target: addLater, args: [out, 50, 9], module: url });
  t.start();
  t.joinSync();
  assert.equal(out[0], 9);
  assert.equal(t.isAlive(), false);
  assert.equal(t.exitCode, 0);
});

test("Thread.joinSync(timeout) returns after the timeout while the thread keeps running", async () => {
  const t = new Thread({ target: nap, args: [5000], module: url });
  t.start();
  const before = performance.now();
  t.joinSync(50);
  const waited = performance.now() - before;
  assert.ok(waited >= 40 && waited < 4000, `joinSync(50) returned after ${waited} ms`);
  assert.equal(t.isAlive(), true);
  await t.terminate();
});

test("Thread.join() on an ended thread resolves at once, repeatedly", async () => {
  const t = new Thread({ target: () => {} });
  t.start();
  await t.join();
  await t.join();
  t.joinSync();
  await t.join(10);
  assert.equal(t.exitCode, 0);
});

test("Thread.terminate() stops a busy thread, sets exitCode -15, and the thread uses no CPU afterwards", async () => {
  const flag = sharedInts(2);
  const t = new Thread({ target: spinUntil, args: [flag], module: url });
  t.start();
  try {
    await eventually(() => Atomics.load(flag, 1) === 1, 30_000); // it spins
    assert.equal(t.isAlive(), true);
    await t.terminate();
    if (runtime === "deno") {
      // Deno cannot interrupt running JavaScript: the thread is still running
      // and must not be reported stopped until it can run no more code.
      assert.equal(t.isAlive(), true);
      assert.equal(t.exitCode, null);
      Atomics.store(flag, 0, 1); // the loop ends; the thread stops at its event loop
      await t.join();
    }
    assert.equal(t.isAlive(), false);
    assert.equal(t.exitCode, -15);
    assert.equal(t.error, undefined);
    await t.join();
    await t.terminate(); // a second terminate is harmless
    assert.equal(t.exitCode, -15);
  } finally {
    Atomics.store(flag, 0, 1);
  }
  await sleep(300);
  const share = await cpuShare(() => sleep(400));
  assert.ok(share < 0.25, `a terminated thread used ${(share * 100).toFixed(0)}% of a core`);
});

test("a terminated thread is not reported dead while it still runs, and its lock passes only then", async () => {
  // The holder adds to a counter while it holds the lock, in a loop that
  // never yields. Once the main thread has the lock, the counter must not
  // move: that would be two holders at once.
  for (let round = 0; round < 10; round++) {
    const lock = new Lock();
    const counter = sharedInts(3); // [count, started, stop]
    const t = new Thread({ target: countUnderLock, args: [lock, counter], module: url });
    t.start();
    try {
      await eventually(() => Atomics.load(counter, 1) === 1, 30_000);
      // The death is published on this thread's event loop (Node, Bun), so
      // the kill is awaited before this thread blocks on the lock.
      await t.kill();
      if (runtime === "deno") {
        assert.equal(t.isAlive(), true, "a thread that still runs JavaScript is alive");
        Atomics.store(counter, 2, 1); // let the loop end; the thread then stops
      }
      assert.equal(lock.acquireSync({ timeout: 10_000 }), true);
      const before = Atomics.load(counter, 0);
      const end = performance.now() + 30;
      while (performance.now() < end) {
        assert.equal(Atomics.load(counter, 0), before, `round ${round}: the old holder ran on after the lock passed`);
      }
      lock.release();
      await t.join();
      assert.equal(t.exitCode, -9);
    } finally {
      Atomics.store(counter, 2, 1);
    }
  }
});

test("a thread reported stopped after terminate() runs no more code", async () => {
  // Deno's close() inside a worker now and then returned and let the loop run on.
  for (let round = 0; round < 8; round++) {
    const counter = sharedInts(1);
    const t = new Thread({ target: countBetweenWaits, args: [new Event(), counter], module: url });
    t.start();
    await eventually(() => Atomics.load(counter, 0) > 0, 30_000);
    await t.terminate();
    await t.join();
    assert.equal(t.isAlive(), false);
    assert.equal(t.exitCode, -15);
    const stopped = Atomics.load(counter, 0);
    await sleep(150);
    assert.equal(
      Atomics.load(counter, 0),
      stopped,
      `round ${round}: the thread counted on after it was reported stopped`,
    );
  }
});

test("Thread.kill() stops a thread parked in a library wait on every runtime", async () => {
  const q = new Queue<number>();
  const t = new Thread({ target: getForever, args: [q], module: url });
  t.start();
  await sleep(300);
  await t.kill();
  assert.equal(t.isAlive(), false);
  assert.equal(t.exitCode, -9);
  q.close();
});

test("a live thread keeps its ident alive while 65,536 later threads come and go", () => {
  const held = newIdent(); // a long-lived thread
  for (let i = 0; i < 70_000; i++) {
    const ident = newIdent();
    assert.notEqual(ident % 65536, held % 65536, `ident ${ident} took the slot of live ${held}`);
    markDead(ident);
  }
  assert.equal(isIdentAlive(held), true);
  markDead(held);
  assert.equal(isIdentAlive(held), false);
});

test("Thread.kill() stops a sleeping thread and sets exitCode -9", async () => {
  const t = new Thread({ target: nap, args: [10_000], module: url });
  t.start();
  await t.kill();
  assert.equal(t.isAlive(), false);
  assert.equal(t.exitCode, -9);
  assert.ok(!enumerate().includes(t));
});

test("Thread.terminate() after a normal end keeps exitCode 0", async () => {
  const t = new Thread({ target: () => {} });
  t.start();
  await t.join();
  await t.terminate();
  assert.equal(t.exitCode, 0);
});

test("Thread.terminate() before start resolves and changes nothing", async () => {
  const t = new Thread({ target: () => {} });
  await t.terminate();
  assert.equal(t.exitCode, null);
  assert.equal(t.ident, null);
});

test("Thread works with await using: leaving the scope stops it", async () => {
  let kept: Thread | undefined;
  {
    await using t = new Thread({ target: nap, args: [10_000], module: url });
    t.start();
    kept = t;
  }
  assert.equal(kept?.isAlive(), false);
  assert.equal(kept?.exitCode, -15);
});

// --- attributes -------------------------------------------------------------------

test("Thread names default to Thread-N with N counting up", () => {
  const a = new Thread({ target: () => {} });
  const b = new Thread({ target: () => {} });
  const na = /^Thread-(\d+)$/.exec(a.name);
  const nb = /^Thread-(\d+)$/.exec(b.name);
  assert.ok(na && nb, `${a.name}, ${b.name}`);
  assert.equal(Number(nb[1]), Number(na[1]) + 1);
});

test("Thread name can be given and changed", () => {
  const t = new Thread({ target: () => {}, name: "worker-a" });
  assert.equal(t.name, "worker-a");
  t.name = "worker-b";
  assert.equal(t.name, "worker-b");
});

test("Thread.ident is null before start and a unique number after", async () => {
  const threads = [1, 2, 3].map(() => new Thread({ target: () => {} }));
  for (const t of threads) assert.equal(t.ident, null);
  for (const t of threads) t.start();
  const idents = threads.map((t) => t.ident);
  for (const id of idents) assert.equal(typeof id, "number");
  assert.equal(new Set([...idents, currentThread().ident]).size, 4);
  for (const t of threads) await t.join();
  assert.deepEqual(threads.map((t) => t.ident), idents);
  assert.equal(threads[0].pid, idents[0]);
});

test("Thread.daemon defaults to false and can be set before start", async () => {
  const t = new Thread({ target: () => {} });
  assert.equal(t.daemon, false);
  t.daemon = true;
  assert.equal(t.daemon, true);
  assert.equal(new Thread({ target: () => {}, daemon: true }).daemon, true);
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0);
});

test("Thread.daemon cannot be set after start", async () => {
  const t = new Thread({ target: nap, args: [50], module: url });
  t.start();
  assert.throws(() => (t.daemon = true), Error);
  assert.equal(t.daemon, false);
  await t.join();
  assert.throws(() => (t.daemon = true), Error);
});

test("Thread.exitCode is null before start and while running, 0 after a normal end", async () => {
  const t = new Thread({ target: nap, args: [100], module: url });
  assert.equal(t.exitCode, null);
  t.start();
  assert.equal(t.exitCode, null);
  await t.join();
  assert.equal(t.exitCode, 0);
});

test("Thread.error is a RemoteError keeping the remote name, message and stack", async () => {
  const t = new Thread({ target: throwTypeError, args: ["bad input"], module: url });
  assert.ok(t.error === undefined);
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  const e = (t as Thread).error; // (a fresh read: the check above narrowed t.error)
  assert.ok(e instanceof RemoteError);
  assert.ok(e instanceof Error);
  assert.equal(e.name, "TypeError");
  assert.equal(e.message, "bad input");
  assert.match(e.remoteStack, /throwTypeError/);
  assert.match(e.remoteStack, /thread_fixtures/);
  assert.equal(e.stack, e.remoteStack);
  assert.equal(t.error, e); // the same object each time
});

test("Thread records a thrown non-Error as a RemoteError", async () => {
  const t = new Thread({
    target: () => {
      throw "plain string";
    },
  });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  assert.equal(t.error?.message, "plain string");
});

test("Thread awaits a Promise returned by the target before it ends", async () => {
  const out = sharedInts();
  const t = new Thread({ target: addLater, args: [out, 100, 5], module: url });
  t.start();
  await t.join(10);
  assert.equal(t.isAlive(), true);
  await t.join();
  assert.equal(out[0], 5);
  assert.equal(t.exitCode, 0);
});

test("Thread records a rejected Promise from the target as its error", async () => {
  const t = new Thread({ target: rejectLater, args: ["too late"], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 1);
  assert.equal(t.error?.name, "RangeError");
  assert.equal(t.error?.message, "too late");
});

test("Thread.toString() shows the name and state", async () => {
  const t = new Thread({ target: () => {}, name: "shown" });
  assert.equal(String(t), "Thread(shown, initial)");
  t.start();
  await t.join();
  assert.equal(String(t), `Thread(shown, stopped ${t.ident})`);
});

test("Process is Thread", () => {
  assert.equal(Process, Thread);
  assert.ok(new Process({ target: () => {} }) instanceof Thread);
});

// --- module functions ---------------------------------------------------------------

test("currentThread() in the main thread is MainThread", () => {
  assert.equal(isMainThread, true);
  assert.equal(currentThread().name, "MainThread");
  assert.equal(typeof currentThread().ident, "number");
  assert.equal(currentProcess().ident, currentThread().ident);
});

test("currentThread() inside a thread matches the Thread's name and ident; isMainThread is false there", async () => {
  const box = newBox();
  const t = new Thread({ target: whoAmI, args: [box], module: url, name: "inspector" });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, t.error?.stack);
  const got = readBox(box) as Record<string, unknown>;
  assert.equal(got.name, "inspector");
  assert.equal(got.ident, t.ident);
  assert.equal(got.isMainThread, false);
  assert.equal(got.cpuCount, cpuCount());
  assert.equal(got.activeCount, 1);
  assert.equal(got.enumerate, 0);
});

test("enumerate(), activeChildren() and activeCount() list live threads started here", async () => {
  const before = activeCount();
  const flag = sharedInts();
  const t = new Thread({ target: spinUntil, args: [flag], module: url });
  assert.ok(!enumerate().includes(t));
  t.start();
  assert.ok(enumerate().includes(t));
  assert.ok(activeChildren().includes(t));
  assert.equal(activeCount(), before + 1);
  assert.equal(activeCount(), enumerate().length + 1);
  Atomics.store(flag, 0, 1);
  await t.join();
  assert.ok(!enumerate().includes(t));
  assert.equal(activeCount(), before);
});

test("enumerate() inside a thread lists the threads that thread started", async () => {
  const box = newBox();
  const t = new Thread({ target: startNested, args: [box], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, t.error?.stack);
  const got = readBox(box) as Record<string, unknown>;
  assert.deepEqual(got.names, ["inner"]);
  assert.equal(got.activeCount, 2);
  assert.equal(typeof got.innerIdent, "number");
  assert.notEqual(got.innerIdent, t.ident);
  assert.equal(got.innerExitCode, 0);
  assert.equal(got.afterJoin, 0);
});

test("a thread that ends stops the daemon threads it started instead of waiting for them", async () => {
  const box = newBox();
  const t = new Thread({ target: startDaemonChild, args: [box, 20_000], module: url });
  const before = performance.now();
  t.start();
  await t.join(15_000);
  assert.equal(t.isAlive(), false, "the thread waited for its daemon child");
  assert.ok(performance.now() - before < 15_000);
  assert.equal(t.exitCode, 0, t.error?.stack);
  const got = readBox(box) as { ident: number; alive: boolean };
  assert.equal(got.alive, true);
  assert.equal(typeof got.ident, "number");
});

test("cpuCount() is a positive integer", () => {
  const n = cpuCount();
  assert.ok(Number.isInteger(n) && n >= 1);
});

// --- bad input ---------------------------------------------------------------------

test("new Thread() throws a TypeError for a target that is not a function", () => {
  for (const target of [1, "f", {}, null, [], true]) {
    assert.throws(() => new Thread({ target: target as never }), TypeError, String(target));
  }
});

test("new Thread() throws a TypeError for bad options", () => {
  assert.throws(() => new Thread(null as never), TypeError);
  assert.throws(() => new Thread({ args: 1 as never }), TypeError);
  assert.throws(() => new Thread({ name: 1 as never }), TypeError);
  assert.throws(() => new Thread({ module: 1 as never }), TypeError);
});

test("Thread.start() twice throws 'threads can only be started once'", async () => {
  const t = new Thread({ target: () => {} });
  t.start();
  assert.throws(() => t.start(), { message: /threads can only be started once/ });
  await t.join();
  assert.throws(() => t.start(), { message: /threads can only be started once/ });
});

test("Thread.join() before start rejects and joinSync() throws", async () => {
  const t = new Thread({ target: () => {} });
  const p = t.join();
  assert.ok(p instanceof Promise);
  await assert.rejects(p, Error);
  assert.throws(() => t.joinSync(), Error);
});

test("Thread.join() rejects and joinSync() throws a RangeError for a bad timeout", async () => {
  const t = new Thread({ target: nap, args: [50], module: url });
  t.start();
  for (const timeout of [-1, -0.5, NaN, Infinity, -Infinity, "10" as unknown as number]) {
    let p: Promise<void> | undefined;
    assert.doesNotThrow(() => p = t.join(timeout));
    await assert.rejects(p!, RangeError, String(timeout));
    assert.throws(() => t.joinSync(timeout), RangeError, String(timeout));
  }
  await t.join();
});

test("Thread.start() throws a TypeError naming the path of an uncloneable arg, before the thread starts", () => {
  const cases: [unknown[], RegExp][] = [
    [[1, { cb: () => {} }], /args\[1\]\.cb/],
    [[Symbol("s")], /args\[0\]/],
    [[{ list: [0, new (class Secret {})()] }], /args\[0\]\.list\[1\]/],
    [[new Map([["k", { f() {} }]])], /args\[0\]/],
  ];
  for (const [args, path] of cases) {
    const before = enumerate().length;
    const t = new Thread({ target: (..._: unknown[]) => {}, args });
    assert.throws(() => t.start(), (e: Error) => e instanceof TypeError && path.test(e.message), path.source);
    assert.equal(t.ident, null);
    assert.equal(t.isAlive(), false);
    assert.equal(enumerate().length, before);
  }
});

// --- values through args -------------------------------------------------------------

test("Thread args carry every structured-clone type, cycles and shared references", async () => {
  const shared = { s: 1 };
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const err = new TypeError("carried");
  const values: unknown[] = [
    undefined,
    null,
    -0,
    NaN,
    12345678901234567890n,
    "text ✓",
    new Map<unknown, unknown>([[1, "one"], ["two", [2]]]),
    new Set([1, "a", 3n]),
    new Date(1_700_000_000_000),
    /ab+c/gi,
    err,
    new Float64Array([1.5, -2]),
    new BigInt64Array([-1n, 2n]),
    new Uint8Array([1, 2, 255]),
    new Uint8Array([9, 8, 7]).buffer,
    [shared, shared],
    cyclic,
    Object.assign(Object.create(null), { bare: true }),
  ];
  const box = newBox();
  const t = new Thread({ target: describeArgs, args: [box, ...values], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, t.error?.stack);
  const got = readBox(box) as string;
  const want = describe(values);
  // The worker cannot tell a null-prototype object from a plain one after cloning.
  assert.equal(got.replace("null-proto", ""), want.replace("null-proto", ""));
  assert.match(got, /@\d+/); // shared references and cycles survived as references
});

// --- whether the program waits --------------------------------------------------------

test("a daemon thread does not keep the program alive", async () => {
  const r = await runScript("tests/testdata/thread_exit_script.ts", ["daemon"]);
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /main done, daemon=true/);
  assert.doesNotMatch(r.stdout, /thread done/);
});

test("a non-daemon thread keeps the program alive until it ends", async () => {
  const r = await runScript("tests/testdata/thread_exit_script.ts", ["normal"]);
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /main done, daemon=false\n[^]*thread done/);
  assert.ok(r.elapsed >= 2900, `exited after ${r.elapsed} ms`);
});

test("a module that starts a thread at top level without an isMainThread guard gets a clear error, not endless threads", async () => {
  const r = await runScript("tests/testdata/unguarded_script.ts", [], 30_000);
  assert.equal(r.timedOut, false, "threads kept starting threads");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^exit 1$/m);
  assert.doesNotMatch(r.stdout, /worked/);
  assert.match(r.stderr, /Cannot start a thread while this thread is still importing its target's module/);
  assert.match(r.stderr, /if \(isMainThread\)/);
});

test("default thread names count over the whole program, and a subclass is named after its class", async () => {
  const here = Number(new Thread().name.replace(/^Thread-/, ""));
  assert.ok(Number.isInteger(here) && here > 0);
  assert.match(new Squarer().name, /^Squarer-\d+$/);
  const box = newBox();
  const t = new Thread({ target: defaultNames, args: [box], module: url });
  t.start();
  await t.join();
  const [plain, sub] = readBox(box) as [string, string];
  // Python's counter is per program: a thread made inside a thread does not start again at 1.
  assert.match(plain, /^Thread-\d+$/);
  assert.ok(Number(plain.replace(/^Thread-/, "")) > here + 1, `${plain} after Thread-${here}`);
  assert.match(sub, /^Squarer-\d+$/);
});

test("Thread.error keeps the error's code, its other plain fields and its cause", async () => {
  const t = new Thread({ target: throwWithFields, module: url });
  t.start();
  await t.join();
  const e = t.error as RemoteError & { code?: string; retries?: number; detail?: unknown };
  assert.ok(e instanceof RemoteError);
  assert.equal(e.message, "outer");
  assert.equal(e.code, "E_OUTER");
  assert.equal(e.retries, 3);
  assert.deepEqual(e.detail, { path: "/x" });
  const cause = e.cause as RemoteError & { code?: string };
  assert.ok(cause instanceof RemoteError);
  assert.equal(cause.name, "RangeError");
  assert.equal(cause.message, "inner");
  assert.equal(cause.code, "E_INNER");
});

test("an error in a thread is printed to stderr like a traceback, naming the thread", async () => {
  const r = await runScript("tests/testdata/thread_exit_script.ts", ["error"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exitCode 1/);
  assert.match(r.stderr, /Exception in thread Reactor:\n/);
  assert.match(r.stderr, /TypeError: the reactor exploded\n\s+at explode/);
});

test("terminate() stops threads that never yield (spinning, parked in Atomics.wait) and the program exits", async () => {
  // Deno cannot stop a worker that runs JavaScript or is parked in a raw
  // Atomics.wait (terminate() documents it, and the test above checks it
  // stays alive there): the program would run for ever.
  if (runtime === "deno") return;
  const r = await runScript("tests/testdata/thread_exit_script.ts", ["busy"], 20_000);
  assert.equal(r.timedOut, false, "the program did not exit after terminate()");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /terminated -15 -15/);
});

test("Thread.exitCode: process.exit(n) in the thread gives n, as Python's sys.exit(n)", async () => {
  const run = async (target: () => void) => {
    const t = new Thread({ target });
    t.start();
    await t.join();
    assert.equal(t.isAlive(), false);
    return t;
  };
  const three = await run(() => (globalThis as unknown as { process: { exit(n?: number): void } }).process.exit(3));
  assert.equal(three.exitCode, 3);
  assert.equal(three.error, undefined);
  const zero = await run(() => (globalThis as unknown as { process: { exit(n?: number): void } }).process.exit(0));
  assert.equal(zero.exitCode, 0);
  const none = await run(() => (globalThis as unknown as { process: { exit(n?: number): void } }).process.exit());
  assert.equal(none.exitCode, 0);
  // On Node and Bun nothing after the call runs (Deno ends the worker at its next turn of the event loop).
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const t = new Thread({
    target: (f: Int32Array) => {
      (globalThis as unknown as { process: { exit(n?: number): void } }).process.exit(5);
      f[0] = 1;
    },
    args: [flag],
  });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 5);
  if (typeof (globalThis as { Deno?: unknown }).Deno === "undefined") assert.equal(flag[0], 0);
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") {
    const deno = await run(() => (globalThis as unknown as { Deno: { exit(n?: number): void } }).Deno.exit(4));
    assert.equal(deno.exitCode, 4);
  }
});

test("mainThread, getIdent and getNativeId: the same answers in every thread as Python's", async () => {
  const { mainThread, getIdent, getNativeId, currentThread } = await import("../mod.ts");
  assert.deepEqual(mainThread(), { name: "MainThread", ident: currentThread().ident });
  assert.equal(getIdent(), currentThread().ident);
  assert.equal(getNativeId(), getIdent());
  const out = new Int32Array(new SharedArrayBuffer(12));
  const t = new Thread({ target: identities, args: [out], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.deepEqual([...out], [t.ident, mainThread().ident, 1]);
});

test("Timer: calls its function after the interval, in a thread, unless cancelled first", async () => {
  const hit = new SharedValue("i", 0);
  const t0 = performance.now();
  const t = new Timer(100, (v: SharedValue<"i">) => (v.value += 1), [hit]);
  assert.ok(t instanceof Thread);
  assert.equal(t.interval, 100);
  t.start();
  assert.equal(t.isAlive(), true);
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.equal(hit.value, 1);
  assert.ok(performance.now() - t0 >= 95, "the function ran before the interval");
  assert.equal(t.finished.isSet(), true);
  // Cancelled while it waits: the function never runs, and the thread ends at once.
  const c = new Timer(60_000, (v: SharedValue<"i">) => (v.value += 10), [hit]);
  c.start();
  await sleep(50);
  const t1 = performance.now();
  c.cancel();
  await c.join(30_000);
  assert.equal(c.isAlive(), false);
  assert.ok(performance.now() - t1 < 20_000);
  assert.equal(hit.value, 1);
  // A function from a module, looked up by name; a failing one gives the thread's error.
  const out = new Int32Array(new SharedArrayBuffer(4));
  const m = new Timer(0, add, [out, 1, 2], { module: url, name: "adder" });
  assert.equal(m.name, "adder");
  m.start();
  await m.join();
  assert.equal(m.exitCode, 0, String(m.error));
  assert.equal(out[0], 3);
  const f = new Timer(0, () => {
    throw new RangeError("late");
  });
  f.start();
  await f.join();
  assert.equal(f.exitCode, 1);
  assert.equal(f.error?.name, "RangeError");
  // Bad input fails at once.
  assert.throws(() => new Timer(-1, () => {}), RangeError);
  assert.throws(() => new Timer(Infinity, () => {}), RangeError);
  assert.throws(() => new Timer(10, 5 as unknown as () => void), TypeError);
  assert.throws(() => new Timer(10, () => {}, "x" as unknown as unknown[]), TypeError);
  assert.throws(() => new Timer(10, Math.max as () => number), /native or bound/);
});

test("Thread.join({ timeout, signal }): an abort rejects with its reason and leaves the thread running", async () => {
  const t = new Thread({ target: () => new Promise((r) => setTimeout(r, 300)) });
  t.start();
  const controller = new AbortController();
  const reason = new Error("stop waiting");
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(t.join({ signal: controller.signal }), (e) => e === reason);
  assert.equal(t.isAlive(), true);
  await assert.rejects(t.join({ signal: controller.signal }), (e) => e === reason);
  await t.join({ timeout: 10 });
  await t.join({ timeout: 30_000 });
  assert.equal(t.isAlive(), false);
  await assert.rejects(t.join({ timeout: -1 }), RangeError);
});
