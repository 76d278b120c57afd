// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AsyncResult, Pool, Queue, RemoteError, TimeoutError } from "../mod.ts";
import {
  add,
  badInit,
  bump,
  busy,
  countCalls,
  crashLater,
  dieAfterTake,
  dieAt,
  doubleLaterAsync,
  doubleOrLabel,
  echo,
  exitLater,
  exitWorker,
  failOn,
  failWithTypeError,
  makeHandles,
  meet,
  nap,
  negateOrFail,
  park,
  readInit,
  readQueue,
  returnFunction,
  setInit,
  slowSquare,
  slowSquareArgs,
  square,
  url,
  whoAmI,
  writeQueue,
} from "./testdata/pool_fixtures.ts";
import { cpuShare, INVALID_TIMEOUTS, runScript, sharedInts, sleep } from "./_util.ts";

const invalidCounts = [0, -1, 1.5, NaN, Infinity];

/** Runs `body` with a fresh pool that is terminated afterwards. */
async function withPool(
  options: ConstructorParameters<typeof Pool>[0],
  body: (pool: Pool) => Promise<void>,
): Promise<void> {
  const pool = new Pool(options);
  try {
    await body(pool);
  } finally {
    await pool.terminate();
  }
}

// --- options -------------------------------------------------------------------

test("new Pool() throws a RangeError naming 'processes' when it is not a positive integer", () => {
  for (const processes of invalidCounts) {
    assert.throws(() => new Pool({ processes }), {
      name: "RangeError",
      message: `Cannot create Pool as 'processes' must be a positive integer: current value is ${processes}`,
    });
  }
  assert.throws(() => new Pool({ processes: "2" as unknown as number }), TypeError);
});

test("new Pool() throws for a bad maxTasksPerChild, initializer, initargs, module or options", () => {
  for (const maxTasksPerChild of invalidCounts) {
    assert.throws(() => new Pool({ processes: 1, maxTasksPerChild }), {
      name: "RangeError",
      message:
        `Cannot create Pool as 'maxTasksPerChild' must be a positive integer: current value is ${maxTasksPerChild}`,
    });
  }
  assert.throws(() => new Pool({ processes: 1, initializer: 3 as unknown as () => void }), {
    name: "TypeError",
    message: "Cannot create Pool as 'initializer' must be a function: current value is 3",
  });
  assert.throws(() => new Pool({ processes: 1, initargs: 3 as unknown as [] }), TypeError);
  assert.throws(() => new Pool({ processes: 1, module: 3 as unknown as string }), TypeError);
  assert.throws(() => new Pool(3 as unknown as object), TypeError);
  assert.throws(() => new Pool({ processes: 1, initializer: setInit, initargs: [() => 1] }), /initargs\[0\]/);
});

// --- apply ---------------------------------------------------------------------

// First of the tests that start workers: on Deno, a worker that terminate()
// catches running JavaScript is not stopped, and may go on burning a core
// for the rest of the process, which would count here.
test("An idle Pool, and its owner awaiting a task that waits on a timer, use almost no CPU", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    await pool.map(square, [1, 2, 3, 4], 1);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the workers park
    // cpuShare takes the lowest share over up to three tries: a spinning waiter
    // spins in each, while a garbage collection of earlier tests' data is a one-off.
    // Both workers parked; the owner has nothing to wait for.
    const idle = await cpuShare(() => new Promise((resolve) => setTimeout(resolve, 400)));
    assert.ok(idle < 0.25, `an idle pool used ${(idle * 100).toFixed(0)}% of a core`);
    // The owner parked on the result ring, one worker in its task's timer, the other in the lobby.
    const waiting = await cpuShare(() => pool.apply(nap, [400, "done"]));
    assert.ok(waiting < 0.25, `waiting for a parked task used ${(waiting * 100).toFixed(0)}% of a core`);
  });
});

test("Pool.apply() runs a self-contained function in a worker and resolves with its result", async () => {
  await withPool({ processes: 2 }, async (pool) => {
    assert.equal(await pool.apply((a: number, b: number) => a * b, [6, 7]), 42);
    assert.equal(await pool.apply(() => "no args"), "no args");
  });
});

test("Pool.apply() runs a module export by name when the pool has 'module'", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    assert.equal(await pool.apply(add, [2, 3]), 5);
    assert.notEqual((await pool.apply(whoAmI)).ident, 1);
    assert.match((await pool.apply(whoAmI)).name, /PoolWorker/);
  });
});

test("Pool.apply() carries structured-clone arguments and results both ways", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const args = [undefined, 10n, new Map([[1, "a"]]), new Set([2]), new Date(5), /x/g, new Uint8Array([1, 2]), {
      nested: [null, 0.5],
    }];
    assert.deepEqual(await pool.apply(echo, args), args);
  });
});

test("Pool.apply(): a SharedArrayBuffer and views over one stay shared in arguments and results", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const sab = new SharedArrayBuffer(8);
    const [buffer, view] = await pool.apply(echo, [sab, new Int32Array(sab, 4, 1)]) as [SharedArrayBuffer, Int32Array];
    assert.ok(buffer instanceof SharedArrayBuffer && view instanceof Int32Array);
    new Int32Array(buffer)[0] = 1;
    view[0] = 2;
    assert.deepEqual([...new Int32Array(sab)], [1, 2]);
  });
});

test("Pool.apply(): this library's handles made in a worker cross in the result and work", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const { q, lock } = await pool.apply(makeHandles, ["from the worker"]);
    assert.equal(q.getSync({ timeout: 5000 }), "from the worker");
    assert.equal(lock.locked(), true);
    lock.release();
    assert.equal(lock.acquireSync({ block: false }), true);
  });
});

test("Pool.apply() awaits a task function that returns a Promise", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    assert.equal(await pool.apply(slowSquare, [9, 20]), 81);
    assert.equal(await pool.apply(async (x: number) => await Promise.resolve(x + 1), [1]), 2);
  });
});

test("Pool.apply() rejects with a RemoteError keeping the remote name, message and stack; the worker goes on", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const err = await pool.apply(failWithTypeError, ["bad input"]).then(() => undefined, (e) => e);
    assert.ok(err instanceof RemoteError);
    assert.equal(err.name, "TypeError");
    assert.equal(err.message, "bad input");
    assert.match(err.remoteStack, /failWithTypeError/);
    assert.equal(await pool.apply(add, [1, 1]), 2);
  });
});

test("Pool.apply() rejects with a RemoteError keeping the error's code, plain fields and cause", async () => {
  await withPool({ processes: 1 }, async (pool) => {
    const fail = () => {
      const cause = Object.assign(new RangeError("inner"), { code: "E_INNER" });
      throw Object.assign(new Error("outer", { cause }), { code: "E_OUTER", retries: 3 });
    };
    const err = await pool.apply(fail, []).then(() => undefined, (e) => e) as
      & RemoteError
      & { code?: string; retries?: number; cause: RemoteError & { code?: string } };
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, "E_OUTER");
    assert.equal(err.retries, 3);
    assert.ok(err.cause instanceof RemoteError);
    assert.equal(err.cause.name, "RangeError");
    assert.equal(err.cause.code, "E_INNER");
  });
});

test("Pool.apply() of a source-shipped function using an outer variable names it and advises 'module'", async () => {
  const config = { factor: 3 };
  await withPool({ processes: 1 }, async (pool) => {
    await assert.rejects(pool.apply((x: number) => x * config.factor, [2]), (e: Error) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.name, "ReferenceError");
      assert.match(e.message, /'config'/);
      assert.match(e.message, /module: import\.meta\.url' to the Pool/);
      return true;
    });
  });
});

test("Pool.map() refuses a source-shipped function's outer variable named like a worker global, and 'this'", async () => {
  // An object, not a string: Bun's transpiler inlines constant primitives.
  const name = { first: "alice" };
  const greeter = {
    greeting: "hi",
    greet(x: number) {
      return `${this.greeting} ${x}`;
    },
  };
  await withPool({ processes: 1 }, async (pool) => {
    await assert.rejects(pool.map((x: number) => `${name.first}${x}`, [1]), (e: Error) => {
      assert.equal(e.name, "ReferenceError");
      assert.match(e.message, /refers to 'name'/);
      assert.match(e.message, /module: import\.meta\.url' to the Pool/);
      return true;
    });
    await assert.rejects(pool.map(greeter.greet, [1]), (e: Error) => {
      assert.equal(e.name, "TypeError");
      assert.match(e.message, /^target 'greet' uses 'this'/);
      assert.match(e.message, /module: import\.meta\.url' to the Pool/);
      return true;
    });
    assert.deepEqual(await pool.map((x: number) => Math.max(x, 2), [1, 3]), [2, 3]);
  });
});

test("Pool with 'module': an anonymous function is shipped by source, and its error says to name and export it", async () => {
  const config = { factor: 3 };
  await withPool({ processes: 1, module: url }, async (pool) => {
    await assert.rejects(pool.map((x: number) => x * config.factor, [2]), (e: Error) => {
      assert.equal(e.name, "ReferenceError");
      assert.match(e.message, /^target 'anonymous' refers to 'config'/);
      assert.match(
        e.message,
        /An anonymous function can only be shipped by its source text \(with 'module', functions are found by name\)/,
      );
      assert.match(e.message, /declare it as a named, exported function/);
      return true;
    });
  });
});

test("Pool.apply() rejects with a TypeError naming an argument that cannot be sent", async () => {
  await withPool({ processes: 1 }, async (pool) => {
    await assert.rejects(pool.apply((x: unknown) => x, [{ cb: () => 1 }]), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /args\[0\]\.cb/);
      return true;
    });
    await assert.rejects(pool.apply(3 as unknown as () => void), TypeError);
    await assert.rejects(pool.apply(() => 1, 3 as unknown as []), TypeError);
    assert.throws(() => pool.applyAsync(3 as unknown as () => void), TypeError);
    assert.equal(await pool.apply(() => "fine"), "fine");
  });
});

test("Pool.apply() rejects with a RemoteError when the result cannot be sent back", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    await assert.rejects(pool.apply(returnFunction), (e: Error) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.name, "TypeError");
      assert.match(e.message, /the result\.cb/);
      return true;
    });
  });
});

test("Pool workers keep module state between tasks: each function is loaded once per worker", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    assert.deepEqual([await pool.apply(countCalls), await pool.apply(countCalls), await pool.apply(countCalls)], [
      1,
      2,
      3,
    ]);
  });
});

test("Pool.applyAsync() passes library handles in args (the seed's Pool + Queue writer/reader)", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const q = new Queue<number>();
    const w = pool.applyAsync(writeQueue, [q, 10]);
    const r = pool.applyAsync(readQueue, [q, 10]);
    assert.equal(await w.get(), 10);
    assert.deepEqual(await r.get(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

test("Pool task arguments keep a SharedArrayBuffer shared with the caller", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const cells = sharedInts(2);
    await Promise.all([pool.apply(bump, [cells, 1]), pool.apply(bump, [cells, 1])]);
    assert.equal(Atomics.load(cells, 1), 2);
    await pool.starmap(bump, [[cells, 0], [cells, 0], [cells, 0]], 1);
    assert.equal(Atomics.load(cells, 0), 3);
  });
});

// --- AsyncResult ---------------------------------------------------------------

test("AsyncResult: ready(), successful() (Error before ready), get() and wait()", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const r = pool.applyAsync(nap, [150, "late"]);
    assert.ok(r instanceof AsyncResult);
    assert.equal(r.ready(), false);
    assert.throws(() => r.successful(), { name: "Error", message: "AsyncResult is not ready" });
    await r.wait(10);
    assert.equal(r.ready(), false);
    await r.wait();
    assert.equal(r.ready(), true);
    assert.equal(r.successful(), true);
    assert.equal(await r.get(), "late");
    const bad = pool.applyAsync(failWithTypeError, ["x"]);
    await bad.wait();
    assert.equal(bad.successful(), false);
    await assert.rejects(bad.get(), RemoteError);
  });
});

test("AsyncResult.get() rejects with TimeoutError when not ready in time, and the result still arrives", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const r = pool.applyAsync(nap, [300, 7]);
    const t0 = performance.now();
    await assert.rejects(r.get(30), TimeoutError);
    assert.ok(performance.now() - t0 < 280);
    assert.equal(await r.get(), 7);
  });
});

test("AsyncResult.get() and wait() reject with a RangeError for an invalid timeout", async () => {
  await withPool({ processes: 1 }, async (pool) => {
    const r = pool.applyAsync(() => 1);
    for (const timeout of [-1, NaN, Infinity]) {
      await assert.rejects(r.get(timeout), RangeError);
      await assert.rejects(r.wait(timeout), RangeError);
    }
    assert.equal(await r.get(), 1);
  });
});

test("Pool.applyAsync() calls callback with the result and errorCallback with the error", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const seen: unknown[] = [];
    const ok = pool.applyAsync(add, [1, 2], { callback: (v) => seen.push(["ok", v]) });
    const bad = pool.applyAsync(failWithTypeError, ["no"], { errorCallback: (e) => seen.push(["err", e.message]) });
    await ok.wait();
    await bad.wait();
    assert.deepEqual(seen, [["ok", 3], ["err", "no"]]);
  });
});

// --- map -----------------------------------------------------------------------

test("Pool.map() returns results in order, with the default chunk size and with an explicit one", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const want = items.map((x) => x * x);
    assert.deepEqual(await pool.map(square, items), want);
    assert.deepEqual(await pool.map(square, items, 7), want);
    assert.deepEqual(await pool.map(square, items, 5000), want);
    assert.deepEqual(await pool.map((s: string) => s + "!", ["a", "b"]), ["a!", "b!"]);
    assert.deepEqual(await pool.map(square, []), []);
  });
});

test("Pool.map() keeps every number exactly (large numeric chunks travel as raw float64)", async () => {
  await withPool({ processes: 2 }, async (pool) => {
    const items = [-0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300, 0.1, ...Array.from({ length: 100 }, (_, i) => i / 3)];
    const got = await pool.map((x: number) => x, items, 1000);
    assert.equal(got.length, items.length);
    for (let i = 0; i < items.length; i++) assert.ok(Object.is(got[i], items[i]), `item ${i}`);
    assert.ok(Array.isArray(got));
  });
});

test("Pool.map() of large numeric chunks: number, mixed and async results, errors, and maps at once", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const items = Array.from({ length: 5000 }, (_, i) => i);
    // Chunks of 1250 numbers (Python's default for 5000 items on 2 workers), and of 2000.
    assert.deepEqual(await pool.map(square, items), items.map((x) => x * x));
    assert.deepEqual(await pool.map(doubleOrLabel, items, 2000), items.map(doubleOrLabel));
    assert.deepEqual(await pool.map(doubleLaterAsync, items, 2500), items.map((x) => x * 2));
    const special = [-0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300, 0.1];
    const exact = await pool.map((x: number) => x, [...special, ...items.map((x) => x / 3)]);
    special.forEach((x, i) => assert.ok(Object.is(exact[i], x), `item ${i}`));
    assert.equal(exact[7 + 4999], 4999 / 3);
    await assert.rejects(pool.map(negateOrFail, items, 1000), { name: "RangeError", message: "bad item 2500" });
    // Items that are not all numbers take the general path.
    const mixed: unknown[] = [...items];
    mixed[4000] = "x";
    assert.equal((await pool.map((x: unknown) => typeof x, mixed, 1000))[4000], "string");
    // Several maps in flight share the area, and it is reused once they are done.
    const at = await Promise.all([1, 2, 3].map((k) => pool.map(square, items.map((x) => x + k), 1024)));
    at.forEach((got, k) => assert.deepEqual(got, items.map((x) => (x + k + 1) ** 2)));
    assert.deepEqual(await pool.map(square, items, 1024), items.map((x) => x * x));
  });
});

test("Pool.map() accepts any iterable and async iterable, and awaits async task functions", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    function* gen() {
      for (let i = 0; i < 5; i++) yield i;
    }
    async function* agen() {
      for (let i = 0; i < 5; i++) yield i;
    }
    assert.deepEqual(await pool.map(square, gen()), [0, 1, 4, 9, 16]);
    assert.deepEqual(await pool.map(square, agen()), [0, 1, 4, 9, 16]);
    assert.deepEqual(await pool.map(async (x: number) => await Promise.resolve(x * 2), new Set([1, 2])), [2, 4]);
  });
});

test("Pool.map() rejects with the first task error as a RemoteError", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    await assert.rejects(pool.starmap(failOn, [[1, 3], [3, 3], [5, 3]], 1), (e: Error) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.name, "RangeError");
      assert.equal(e.message, "bad item 3");
      return true;
    });
    assert.equal(await pool.apply(add, [1, 2]), 3);
  });
});

test("Pool.map() rejects for an invalid chunksize, a non-iterable or an item that cannot be sent", async () => {
  await withPool({ processes: 1 }, async (pool) => {
    for (const chunksize of invalidCounts) {
      await assert.rejects(pool.map((x: number) => x, [1], chunksize), {
        name: "RangeError",
        message: `Cannot map as 'chunksize' must be a positive integer: current value is ${chunksize}`,
      });
      assert.throws(() => pool.imap((x: number) => x, [1], chunksize), RangeError);
    }
    await assert.rejects(pool.map((x: number) => x, 5 as unknown as number[]), TypeError);
    const items: unknown[] = [1, 2, 3, { cb: () => 1 }];
    await assert.rejects(pool.map((x: unknown) => x, items, 2), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /iterable\[3\]\.cb/);
      return true;
    });
    assert.throws(() => pool.mapAsync((x: unknown) => x, items), /iterable\[3\]\.cb/);
  });
});

test("Pool.mapAsync() and starmapAsync() return AsyncResults and call callback with the list", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    let seen: unknown;
    const r = pool.mapAsync(square, [1, 2, 3], undefined, { callback: (v) => seen = v });
    assert.deepEqual(await r.get(), [1, 4, 9]);
    assert.deepEqual(seen, [1, 4, 9]);
    assert.deepEqual(await pool.starmapAsync(add, [[1, 2], [3, 4]]).get(), [3, 7]);
    assert.deepEqual(await pool.starmap(add, [[5, 6]]), [11]);
  });
});

// --- imap ----------------------------------------------------------------------

test("Pool.imap() yields results in order and imapUnordered() yields all of them", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const items = Array.from({ length: 200 }, (_, i) => i);
    const got: number[] = [];
    for await (const v of pool.imap(square, items)) got.push(v);
    assert.deepEqual(got, items.map((x) => x * x));
    const got3: number[] = [];
    for await (const v of pool.imap(square, items, 3)) got3.push(v);
    assert.deepEqual(got3, items.map((x) => x * x));
    const un: number[] = [];
    for await (const v of pool.imapUnordered(square, items, 4)) un.push(v);
    assert.deepEqual(un.sort((a, b) => a - b), items.map((x) => x * x));
  });
});

test("Pool.imapUnordered() yields fast results before a slow one", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const cells = sharedInts();
    await pool.starmap(meet, [[cells, 2], [cells, 2]], 1); // both workers are up
    const got: number[] = [];
    for await (const v of pool.imapUnordered(slowSquareArgs, [[20, 1500], [1, 1], [2, 1], [3, 1]])) got.push(v);
    assert.deepEqual(got.slice(0, 3).sort((a, b) => a - b), [1, 4, 9]);
    assert.equal(got[3], 400);
  });
});

test("an imap iterator's next(timeout) rejects with TimeoutError and the result still comes later", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const it = pool.imap(slowSquareArgs, [[3, 400], [4, 1]]);
    const t0 = performance.now();
    await assert.rejects(it.next(30), TimeoutError);
    assert.ok(performance.now() - t0 < 350, "it gave up at the timeout, not when the result came");
    await assert.rejects(it.next(0), TimeoutError);
    assert.deepEqual(await it.next(5_000), { value: 9, done: false });
    assert.deepEqual(await it.next(), { value: 16, done: false });
    assert.deepEqual(await it.next(0), { value: undefined, done: true });
    for (const bad of INVALID_TIMEOUTS) await assert.rejects(it.next(bad as number), RangeError);
  });
});

test("concurrent next() calls on an imap iterator get the results in call order", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const it = pool.imap(slowSquareArgs, [[1, 150], [2, 50], [3, 100]]);
    const got = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
    assert.deepEqual(got.map((r) => r.value), [1, 4, 9, undefined]);
    assert.equal(got[3].done, true);
  });
});

test("Pool.imap() streams an endless generator with bounded read-ahead", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    let produced = 0;
    function* naturals() {
      for (;;) yield produced++;
    }
    let consumed = 0;
    let maxAhead = 0;
    for await (const v of pool.imap(square, naturals(), 4)) {
      assert.equal(v, consumed * consumed);
      consumed++;
      maxAhead = Math.max(maxAhead, produced - consumed);
      if (consumed === 20_000) break;
    }
    // Read-ahead is a bounded window of chunks, not the whole input.
    assert.ok(maxAhead <= 200, `read ${maxAhead} items ahead`);
    const after = produced;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(produced, after, "the input is not read after the loop ends");
    assert.equal(await pool.apply(add, [1, 1]), 2);
  });
});

test("Pool.close() reads the rest of a running imap's input, so join() returns and the results stay", async () => {
  const pool = new Pool({ processes: 1, module: url });
  try {
    const items = Array.from({ length: 300 }, (_, i) => i);
    const it = pool.imap(square, items);
    pool.close();
    await pool.join();
    const got: number[] = [];
    for await (const v of it) got.push(v);
    assert.deepEqual(got, items.map((x) => x * x));
  } finally {
    await pool.terminate();
  }
});

test("Pool.imap() throws a task's error at its position", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (
          const v of pool.imap((x: number) => {
            if (x === 5) throw new Error("five");
            return x;
          }, [0, 1, 2, 3, 4, 5, 6, 7])
        ) got.push(v);
      })(),
      (e: Error) => e instanceof RemoteError && e.message === "five",
    );
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });
});

test("with chunksize 1, an imap iterator goes on after a failed item, as in Python; with larger chunks it ends", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const one = pool.imap(negateOrFail, [1, 2500, 3]);
    assert.deepEqual(await one.next(), { value: -1, done: false });
    await assert.rejects(one.next(), { message: "bad item 2500" });
    assert.deepEqual(await one.next(), { value: -3, done: false });
    assert.deepEqual(await one.next(), { value: undefined, done: true });
    const unordered = pool.imapUnordered(negateOrFail, [2500, 4], 1);
    const seen: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      try {
        seen.push((await unordered.next()).value);
      } catch (error) {
        seen.push((error as Error).message === "bad item 2500" ? "failed" : error);
      }
    }
    assert.deepEqual(seen.sort(), [-4, "failed"].sort());
    assert.deepEqual(await unordered.next(), { value: undefined, done: true });
    const chunked = pool.imap(negateOrFail, [1, 2, 2500, 4, 5, 6], 2);
    assert.deepEqual(await chunked.next(), { value: -1, done: false });
    assert.deepEqual(await chunked.next(), { value: -2, done: false });
    await assert.rejects(chunked.next(), { message: "bad item 2500" });
    assert.deepEqual(await chunked.next(), { value: undefined, done: true });
  });
});

test("Pool.imapUnordered() yields the results that finished before a failure, then throws it", async () => {
  await withPool({ processes: 1 }, async (pool) => {
    const it = pool.imapUnordered((x: number) => {
      if (x === 3) throw new Error("three");
      return x;
    }, [1, 2, 3, 4]);
    await new Promise((r) => setTimeout(r, 300)); // all finish before the first read
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of it) got.push(v);
      })(),
      (e: Error) => e instanceof RemoteError && e.message === "three",
    );
    assert.deepEqual(got, [1, 2]);
  });
});

test("Pool.imap() passes on an error thrown by its input", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    function* broken() {
      yield 1;
      yield 2;
      throw new Error("input broke");
    }
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of pool.imap(square, broken())) got.push(v);
      })(),
      /input broke/,
    );
    assert.deepEqual(got, [1, 4]);
  });
});

// --- scheduling ------------------------------------------------------------------

test("Pool workers take tasks themselves: a slow task does not hold up the ones behind it", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const slow = pool.applyAsync(busy, [800, "slow"]);
    const fast = Array.from({ length: 10 }, (_, i) => pool.applyAsync(add, [i, 0]));
    await Promise.all(fast.map((r) => r.get()));
    assert.equal(slow.ready(), false);
    assert.equal(await slow.get(), "slow");
  });
});

test("Pool runs tasks on all its workers at once", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const cells = sharedInts();
    const idents = await pool.starmap(meet, [[cells, 2], [cells, 2]], 1);
    assert.equal(new Set(idents).size, 2);
  });
});

// --- faults --------------------------------------------------------------------

test("Pool rejects the task of a worker that exits, starts a replacement and completes the rest", async () => {
  await withPool({ processes: 2, module: url }, async (pool) => {
    const others = Array.from({ length: 20 }, (_, i) => pool.applyAsync(slowSquare, [i, 5]));
    await assert.rejects(pool.apply(exitWorker, [3]), (e: Error) => {
      assert.match(e.message, /died while running the task/);
      return true;
    });
    assert.deepEqual(await Promise.all(others.map((r) => r.get())), others.map((_, i) => i * i));
    const cells = sharedInts();
    const idents = await pool.starmap(meet, [[cells, 2], [cells, 2]], 1);
    assert.equal(new Set(idents).size, 2, "two live workers again");
  });
});

test("Pool rejects the task of a worker that dies right after taking it, before it records which task it runs", async () => {
  const cells = sharedInts(2);
  await withPool({ processes: 2, module: url, initializer: dieAfterTake, initargs: [cells] }, async (pool) => {
    assert.equal(await pool.apply(add, [1, 1]), 2);
    Atomics.store(cells, 0, 1); // armed: the next worker to take a task ends there
    const lost = pool.applyAsync(add, [2, 2]);
    // Without the owner's search for the task taken by the dead worker, it never settles.
    await assert.rejects(lost.get(20_000), (e: Error) => {
      assert.match(e.message, /died while running the task/);
      return true;
    });
    assert.equal(Atomics.load(cells, 1), 1, "a worker did die after taking the task");
    assert.deepEqual(await pool.map(square, [1, 2, 3], 1), [1, 4, 9]);
  });
});

/**
 * How `p` settles within `ms`: "ok" with `want`, "died" (its worker ended),
 * "remote" (a RemoteError), "late", or the unexpected outcome itself.
 */
async function outcome(p: Promise<unknown>, want: unknown, ms = 20_000): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => timer = setTimeout(resolve, ms, "late"));
  const got = p.then(
    (v) => assert.deepEqual(v, want) === undefined ? "ok" : "",
    (e) => e instanceof RemoteError ? "remote" : /died while running the task/.test(e.message) ? "died" : `${e}`,
  );
  try {
    return await Promise.race([got, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A seeded PRNG (mulberry32), so that a failing mix can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("Pool: a seeded mix of tasks that return, throw, exit, or exit from a 0-3 ms timer all settle, and join() returns", async () => {
  for (const seed of [2, 3, 5]) {
    const random = prng(seed);
    const pool = new Pool({ processes: 2, module: url });
    try {
      const pending: Promise<string>[] = [];
      for (let i = 0; i < 40; i++) {
        const r = random();
        if (r < 0.35) pending.push(outcome(pool.apply(add, [i, 1]), i + 1));
        else if (r < 0.5) pending.push(outcome(pool.apply(failWithTypeError, ["no"]), undefined));
        else if (r < 0.7) pending.push(outcome(pool.apply(exitWorker, [3]), undefined));
        else pending.push(outcome(pool.apply(exitLater, [i, Math.floor(random() * 4)]), i));
        // Now one at a time, now a few at once.
        if (random() < 0.6) await pending[pending.length - 1];
      }
      const got = await Promise.all(pending);
      assert.deepEqual(got.filter((g) => !["ok", "remote", "died"].includes(g)), [], `seed ${seed}: ${got}`);
      pool.close();
      assert.equal(await outcome(pool.join(), undefined), "ok", `seed ${seed}: join()`);
    } finally {
      await pool.terminate();
    }
  }
});

test("Pool: a worker that ends at any point of its loop costs at most the task it ran; the rest settle and join() returns", async () => {
  const points = ["take", "taken", "running", "done", "spinning", "lobby", "woken"];
  for (const point of points) {
    const cells = sharedInts(2);
    const pool = new Pool({ processes: 2, module: url, initializer: dieAt, initargs: [cells, point] });
    try {
      assert.deepEqual(await pool.map(square, [1, 2, 3, 4], 1), [1, 4, 9, 16]);
      Atomics.store(cells, 0, 1); // armed: the next worker to pass the point ends there
      const got: string[] = [];
      // One at a time with pauses (the workers spin, park and are woken), then a burst.
      for (let i = 0; i < 6; i++) {
        got.push(await outcome(pool.apply(add, [i, 1]), i + 1));
        await sleep(3);
      }
      got.push(...await Promise.all(Array.from({ length: 8 }, (_, i) => outcome(pool.apply(add, [i, 2]), i + 2))));
      assert.deepEqual(got.filter((g) => g !== "ok" && g !== "died"), [], `${point}: ${got}`);
      assert.ok(got.filter((g) => g === "died").length <= 1, `${point}: ${got}`);
      assert.ok(Atomics.load(cells, 1) >= 1, `${point}: a worker ended there`);
      // Armed again while the workers take their STOP records.
      Atomics.store(cells, 0, 1);
      pool.close();
      assert.equal(await outcome(pool.join(), undefined), "ok", `${point}: join()`);
    } finally {
      await pool.terminate();
    }
  }
});

test("Pool rejects the task of a worker that crashes with an uncaught error and goes on", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    await assert.rejects(pool.apply(crashLater), /died while running the task.*crash from a timer/s);
    assert.equal(await pool.apply(add, [2, 2]), 4);
  });
});

test("Pool.terminate() rejects pending tasks and stops the workers", async () => {
  const pool = new Pool({ processes: 1, module: url });
  // Parked rather than spinning: on Deno, terminate() does not stop a worker
  // that spins, which would then burn a core through the tests that follow.
  const running = pool.applyAsync(park, [60_000]);
  const queued = assert.rejects(pool.apply(add, [1, 2]), /terminated/);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  await pool.terminate();
  assert.ok(performance.now() - t0 < 5000);
  await assert.rejects(running.get(), /terminated/);
  await queued;
  await pool.join();
  await pool.terminate();
  assert.throws(() => pool.applyAsync(add, [1, 2]), { message: "Pool not running" });
});

test("Pool.close() lets submitted tasks finish; submitting afterwards throws; join() waits for the workers", async () => {
  const pool = new Pool({ processes: 2, module: url });
  await assert.rejects(pool.join(), { message: "Pool is still running" });
  const rs = [1, 2, 3, 4].map((x) => pool.applyAsync(slowSquare, [x, 30]));
  pool.close();
  pool.close();
  const notRunning = { name: "ClosedError", message: "Pool not running" };
  assert.throws(() => pool.applyAsync(add, [1, 2]), notRunning);
  assert.throws(() => pool.mapAsync(square, [1]), notRunning);
  assert.throws(() => pool.imap(square, [1]), notRunning);
  await assert.rejects(pool.apply(add, [1, 2]), notRunning);
  await assert.rejects(pool.map(square, [1]), notRunning);
  await pool.join();
  assert.deepEqual(rs.map((r) => r.ready()), [true, true, true, true]);
  assert.deepEqual(await Promise.all(rs.map((r) => r.get())), [1, 4, 9, 16]);
});

test("Pool.close() right after a task: every STOP reaches a worker and join() returns", async () => {
  for (let round = 0; round < 5; round++) {
    const pool = new Pool({ processes: 2, module: url });
    try {
      assert.equal(await pool.apply(add, [1, round]), 1 + round);
      // One worker may still spin for the next task while the other is parked.
      pool.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise((resolve) => timer = setTimeout(resolve, 10_000, "late"));
      assert.equal(await Promise.race([pool.join().then(() => "joined"), late]), "joined");
      clearTimeout(timer);
    } finally {
      await pool.terminate();
    }
  }
});

test("Pool with maxTasksPerChild replaces each worker after that many tasks", async () => {
  await withPool({ processes: 1, module: url, maxTasksPerChild: 2 }, async (pool) => {
    const idents: number[] = [];
    for (let i = 0; i < 6; i++) idents.push((await pool.apply(whoAmI)).ident);
    assert.equal(new Set(idents).size, 3);
    assert.equal(idents[0], idents[1]);
    assert.notEqual(idents[1], idents[2]);
  });
});

test("Pool runs the initializer with initargs once in each worker", async () => {
  await withPool({ processes: 2, module: url, initializer: setInit, initargs: [{ ready: true }] }, async (pool) => {
    assert.deepEqual(await pool.map(readInit, [1, 2, 3, 4], 1), [
      { ready: true },
      { ready: true },
      { ready: true },
      { ready: true },
    ]);
  });
  await withPool({
    processes: 1,
    initializer: (v: number) => {
      // deno-lint-ignore no-explicit-any
      (globalThis as any).__poolInit = v;
    },
    initargs: [5],
  }, async (pool) => {
    // deno-lint-ignore no-explicit-any
    assert.equal(await pool.apply(() => (globalThis as any).__poolInit), 5);
  });
});

test("Pool whose initializer fails rejects its tasks instead of restarting workers for ever", async () => {
  await withPool({ processes: 2, module: url, initializer: badInit }, async (pool) => {
    await assert.rejects(pool.apply(add, [1, 2]), /failed to start.*initializer says no/s);
    assert.throws(() => pool.applyAsync(add, [1, 2]), /failed to start/);
    await pool.join(); // the pool stopped its workers: join() returns
  });
});

// --- cancellation --------------------------------------------------------------

test("Pool.apply() with an aborted signal rejects with its reason and runs nothing", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const cells = sharedInts();
    const reason = new Error("not wanted");
    await assert.rejects(pool.apply(bump, [cells, 0], { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    const blocker = pool.applyAsync(busy, [300]);
    const ac = new AbortController();
    const queued = pool.apply(bump, [cells, 0], { signal: ac.signal });
    ac.abort(reason);
    await assert.rejects(queued, (e) => e === reason);
    await blocker.get();
    assert.equal(await pool.apply(add, [1, 1]), 2);
    assert.equal(Atomics.load(cells, 0), 0, "the cancelled task did not run");
    const aborted = pool.map(square, [1, 2, 3], 1, { signal: AbortSignal.abort(reason) });
    await assert.rejects(aborted, (e) => e === reason);
    await assert.rejects(pool.apply(add, [1, 1], { signal: 5 as unknown as AbortSignal }), TypeError);
  });
});

test("Pool: aborting a running task replaces its worker at once, so the next map does not wait for it", async () => {
  await withPool({ processes: 1, module: url }, async (pool) => {
    const reason = new Error("no longer wanted");
    let ident = (await pool.apply(whoAmI)).ident;
    // A task that awaits (stoppable everywhere), then one that keeps its
    // thread busy (on Deno that worker stops once the task returns; its
    // replacement works meanwhile).
    const long: [typeof nap, [number, string]][] = [[nap, [60_000, "late"]], [busy as typeof nap, [5000, "late"]]];
    for (const [fn, args] of long) {
      const ac = new AbortController();
      const task = pool.apply(fn, args, { signal: ac.signal });
      await sleep(200); // it runs
      ac.abort(reason);
      await assert.rejects(task, (e) => e === reason);
      const t0 = performance.now();
      assert.deepEqual(await pool.map(square, [1, 2, 3], 1), [1, 4, 9]);
      assert.ok(performance.now() - t0 < 3000, `the map took ${performance.now() - t0} ms`);
      const next = (await pool.apply(whoAmI)).ident;
      assert.notEqual(next, ident, "a fresh worker");
      ident = next;
    }
    // The chunks of an aborted map that run are stopped too.
    const ac = new AbortController();
    const mapped = pool.map(nap, [60_000], 1, { signal: ac.signal });
    await sleep(200);
    ac.abort(reason);
    await assert.rejects(mapped, (e) => e === reason);
    const t0 = performance.now();
    assert.equal(await pool.apply(add, [1, 2]), 3);
    assert.ok(performance.now() - t0 < 3000, `the task took ${performance.now() - t0} ms`);
  });
});

test("Pool is closed by Symbol.asyncDispose (await using)", async () => {
  let escaped: Pool;
  {
    await using pool = new Pool({ processes: 1 });
    escaped = pool;
    assert.equal(await pool.apply(() => 1), 1);
  }
  assert.throws(() => escaped.applyAsync(() => 1), { message: "Pool not running" });
});

test("a module that makes a Pool at top level without an isMainThread guard fails clearly, not with endless pools", async () => {
  const r = await runScript("tests/testdata/unguarded_pool_script.ts", [], 30_000);
  assert.equal(r.timedOut, false, "pools kept making pools");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^failed: /m);
  assert.match(r.stdout + r.stderr, /Cannot create a Pool while this thread is still importing its target's module/);
});

test("Pool: a task that calls process.exit(n) rejects saying the worker exited with code n; the pool goes on", async () => {
  await using pool = new Pool({ processes: 1 });
  await assert.rejects(
    pool.apply(() => (globalThis as unknown as { process: { exit(n: number): void } }).process.exit(7)),
    (e: Error) =>
      /exited with code 7/.test(e.message) || /exited with code 7/.test(String((e.cause as Error)?.message)),
  );
  assert.equal(await pool.apply((x: number) => x * 2, [21]), 42);
});
