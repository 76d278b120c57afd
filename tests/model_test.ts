// Copyright the @mpjs/multiprocessing authors. MIT license.
// Sequential model tests: fast-check generates sequences of calls on a Queue,
// JoinableQueue, Semaphore, BoundedSemaphore, SharedValue and SharedArray in
// one thread, runs them on the real object and on a plain model, and checks
// every result and error against the model's.

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import {
  BoundedSemaphore,
  ClosedError,
  EmptyError,
  FullError,
  JoinableQueue,
  Queue,
  Semaphore,
  SharedArray,
  SharedValue,
  TimeoutError,
} from "../mod.ts";

/** fast-check seed: fixed for reproducible runs; MODEL_SEED explores others. */
const SEED = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : 7_302_015;
const RUNS = 150;

/** A command for `fc.asyncModelRun`: `run` may be sync or async. */
function command<M extends object, R>(
  name: string,
  run: (m: M, r: R) => void | Promise<void>,
  check: (m: M) => boolean = () => true,
): fc.AsyncCommand<M, R> {
  return { check, run: async (m, r) => await run(m, r), toString: () => name };
}

async function runModel<M extends object, R>(
  setup: fc.Arbitrary<() => { model: M; real: R }>,
  commands: fc.Arbitrary<fc.AsyncCommand<M, R>>[],
  dispose: (r: R) => void = () => {},
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(setup, fc.commands(commands, { maxCommands: 40 }), async (make, cmds) => {
      const made = make();
      try {
        await fc.asyncModelRun(() => made, cmds);
      } finally {
        dispose(made.real);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
}

// ---- queues ------------------------------------------------------------------------

interface QueueModel {
  maxsize: number;
  items: unknown[];
  closed: boolean;
  /** Items put and not yet marked done. */
  unfinished: number;
}

/** Items: any small JSON value (the walk tests every structured-clone value). */
const ITEM = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
);

const isFull = (m: QueueModel) => m.maxsize > 0 && m.items.length >= m.maxsize;

/** What a put must do in `m`: the error class it throws, or `undefined` when it puts. */
function putOutcome(m: QueueModel): typeof ClosedError | typeof FullError | undefined {
  if (m.closed) return ClosedError;
  return isFull(m) ? FullError : undefined;
}

function getOutcome(m: QueueModel): typeof ClosedError | typeof EmptyError | undefined {
  if (m.items.length > 0) return undefined;
  return m.closed ? ClosedError : EmptyError;
}

type Put = (q: Queue<unknown>, item: unknown) => unknown;
type Get = (q: Queue<unknown>) => unknown;

const PUTS: [string, Put][] = [
  ["putNowait", (q, x) => q.putNowait(x)],
  ["putSync({ block: false })", (q, x) => q.putSync(x, { block: false })],
  ["putSync({ timeout: 0 })", (q, x) => q.putSync(x, { timeout: 0 })],
  ["put({ block: false })", (q, x) => q.put(x, { block: false })],
  ["put({ timeout: 0 })", (q, x) => q.put(x, { timeout: 0 })],
];
const GETS: [string, Get][] = [
  ["getNowait", (q) => q.getNowait()],
  ["getSync({ block: false })", (q) => q.getSync({ block: false })],
  ["getSync({ timeout: 0 })", (q) => q.getSync({ timeout: 0 })],
  ["get({ block: false })", (q) => q.get({ block: false })],
  ["get({ timeout: 0 })", (q) => q.get({ timeout: 0 })],
];

function queueCommands(joinable: boolean): fc.Arbitrary<fc.AsyncCommand<QueueModel, Queue<unknown>>>[] {
  const cmds: fc.Arbitrary<fc.AsyncCommand<QueueModel, Queue<unknown>>>[] = [
    fc.tuple(fc.constantFrom(...PUTS), ITEM).map(([[name, put], item]) =>
      command(`${name}(${JSON.stringify(item)})`, async (m: QueueModel, q: Queue<unknown>) => {
        const fails = putOutcome(m);
        if (fails) {
          await assert.rejects(async () => await put(q, item), (e) => {
            assert.ok(e instanceof fails, `${name} threw ${e}`);
            if (e instanceof ClosedError) assert.deepEqual(e.value, item);
            return true;
          });
          return;
        }
        await put(q, item);
        m.items.push(item);
        m.unfinished++;
      })
    ),
    fc.constantFrom(...GETS).map(([name, get]) =>
      command(name, async (m: QueueModel, q: Queue<unknown>) => {
        const fails = getOutcome(m);
        if (fails) {
          await assert.rejects(async () => await get(q), fails);
          return;
        }
        assert.deepEqual(await get(q), m.items.shift());
      })
    ),
    fc.constant(command("sizes", (m: QueueModel, q: Queue<unknown>) => {
      assert.equal(q.qsize(), m.items.length);
      assert.equal(q.empty(), m.items.length === 0);
      assert.equal(q.full(), isFull(m));
      assert.equal(q.closed, m.closed);
      assert.equal(q.maxsize, m.maxsize);
    })),
    fc.constant(command("close", (m: QueueModel, q: Queue<unknown>) => {
      q.close();
      m.closed = true;
    })),
  ];
  if (joinable) {
    cmds.push(
      fc.constant(command("taskDone", (m: QueueModel, q: Queue<unknown>) => {
        const jq = q as JoinableQueue<unknown>;
        if (m.unfinished === 0) {
          assert.throws(() => jq.taskDone(), Error);
          return;
        }
        jq.taskDone();
        m.unfinished--;
      })),
      fc.constant(command("join() with every task done", async (_m: QueueModel, q: Queue<unknown>) => {
        // Resolves at once; a join that waited would time out this test.
        await (q as JoinableQueue<unknown>).join();
        (q as JoinableQueue<unknown>).joinSync();
      }, (m) => m.unfinished === 0)),
      fc.constant(command("join({ timeout: 0 }) with tasks left", async (m: QueueModel, q: Queue<unknown>) => {
        await (q as JoinableQueue<unknown>).join({ timeout: 0 });
        (q as JoinableQueue<unknown>).joinSync({ timeout: 0 });
        assert.ok(m.unfinished > 0);
      }, (m) => m.unfinished > 0)),
    );
  }
  return cmds;
}

function queueSetup(joinable: boolean): fc.Arbitrary<() => { model: QueueModel; real: Queue<unknown> }> {
  // maxsize <= 0 is unbounded.
  return fc.integer({ min: -1, max: 4 }).map((maxsize) => () => ({
    model: { maxsize: Math.max(0, maxsize), items: [], closed: false, unfinished: 0 },
    real: joinable ? new JoinableQueue<unknown>(maxsize) : new Queue<unknown>(maxsize),
  }));
}

test("Queue behaves as a bounded FIFO queue with close(), call after call", async () => {
  await runModel(queueSetup(false), queueCommands(false), (q) => q.close());
});

test("JoinableQueue counts tasks as a model does: taskDone() beyond the puts throws, join() returns when all are done", async () => {
  await runModel(queueSetup(true), queueCommands(true), (q) => q.close());
});

// ---- semaphores ----------------------------------------------------------------------

interface SemModel {
  initial: number;
  bounded: boolean;
  value: number;
}

function semaphoreCommands(): fc.Arbitrary<fc.AsyncCommand<SemModel, Semaphore>>[] {
  const acquires: [string, (s: Semaphore) => boolean | Promise<boolean>][] = [
    ["acquireSync({ block: false })", (s) => s.acquireSync({ block: false })],
    ["acquireSync({ timeout: 0 })", (s) => s.acquireSync({ timeout: 0 })],
    ["acquire({ block: false })", (s) => s.acquire({ block: false })],
    ["acquire({ timeout: 0 })", (s) => s.acquire({ timeout: 0 })],
  ];
  return [
    fc.constantFrom(...acquires).map(([name, acquire]) =>
      command(name, async (m: SemModel, s: Semaphore) => {
        assert.equal(await acquire(s), m.value > 0);
        if (m.value > 0) m.value--;
      })
    ),
    fc.integer({ min: 1, max: 3 }).map((n) =>
      command(`release(${n})`, (m: SemModel, s: Semaphore) => {
        if (m.bounded && m.value + n > m.initial) {
          assert.throws(() => s.release(n), RangeError);
          return;
        }
        s.release(n);
        m.value += n;
      })
    ),
    fc.constant(command("getValue", (m: SemModel, s: Semaphore) => {
      assert.equal(s.getValue(), m.value);
      assert.equal(String(s), `<${m.bounded ? "BoundedSemaphore" : "Semaphore"}(value=${m.value})>`);
    })),
    fc.constant(command("scopedSync({ block: false })", (m: SemModel, s: Semaphore) => {
      if (m.value === 0) {
        assert.throws(() => s.scopedSync({ block: false }), TimeoutError);
        return;
      }
      const held = s.scopedSync({ block: false });
      assert.equal(s.getValue(), m.value - 1);
      held.release();
      held.release(); // twice releases once
      assert.equal(s.getValue(), m.value);
    })),
    fc.constant(command("scoped({ timeout: 0 })", async (m: SemModel, s: Semaphore) => {
      if (m.value === 0) {
        await assert.rejects(s.scoped({ timeout: 0 }), TimeoutError);
        return;
      }
      {
        await using _held = await s.scoped({ timeout: 0 });
        assert.equal(s.getValue(), m.value - 1);
      }
      assert.equal(s.getValue(), m.value);
    })),
  ];
}

test("Semaphore and BoundedSemaphore count permits as a model does", async () => {
  const setup = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean()).map(([initial, bounded]) => () => ({
    model: { initial, bounded, value: initial },
    real: bounded ? new BoundedSemaphore(initial) : new Semaphore(initial),
  }));
  await runModel(setup, semaphoreCommands());
});

// ---- shared values -------------------------------------------------------------------

type Code = "b" | "B" | "h" | "H" | "i" | "I" | "l" | "L" | "q" | "Q" | "f" | "d";
// deno-lint-ignore no-explicit-any
type AnyTyped = any;
const CTOR: Record<Code, new (n: number) => AnyTyped> = {
  b: Int8Array,
  B: Uint8Array,
  h: Int16Array,
  H: Uint16Array,
  i: Int32Array,
  I: Uint32Array,
  l: Int32Array,
  L: Uint32Array,
  q: BigInt64Array,
  Q: BigUint64Array,
  f: Float32Array,
  d: Float64Array,
};
const CODES = Object.keys(CTOR) as Code[];
const isBig = (c: Code) => c === "q" || c === "Q";
const isFloat = (c: Code) => c === "f" || c === "d";

/** Values a typecode accepts (integers of any size wrap, as in a typed array; bigints for q/Q). */
function valueFor(code: Code): fc.Arbitrary<unknown> {
  if (isFloat(code)) return fc.oneof(fc.double(), fc.integer());
  const ints = fc.oneof(fc.integer({ min: -300, max: 300 }), fc.integer(), fc.maxSafeInteger());
  if (isBig(code)) return fc.oneof(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), ints);
  return fc.oneof(ints, fc.boolean());
}

/** What a typed array of `code` stores for `v`. */
function stored(code: Code, v: unknown): unknown {
  const a = new CTOR[code](1);
  a[0] = isBig(code) ? BigInt(v as bigint | number) : typeof v === "boolean" ? Number(v) : v;
  return a[0];
}

interface ValueModel {
  code: Code;
  value: unknown;
}

test("SharedValue stores what a typed array of its typecode stores, and refuses values of the wrong type unchanged", async () => {
  const setup = fc.constantFrom(...CODES).chain((code) =>
    valueFor(code).map((initial) => () => ({
      model: { code, value: stored(code, initial) },
      real: new SharedValue(code, initial as never) as SharedValue,
    }))
  );
  const cmds: fc.Arbitrary<fc.AsyncCommand<ValueModel, SharedValue>>[] = [
    fc.tuple(fc.constantFrom(...CODES), fc.nat()).chain(([code]) => valueFor(code)).map((v) =>
      command(`value = ${typeof v === "bigint" ? `${v}n` : String(v)}`, (m: ValueModel, s: SharedValue) => {
        const fits = isFloat(m.code)
          ? typeof v === "number"
          : isBig(m.code)
          ? typeof v === "bigint" || Number.isInteger(v)
          : Number.isInteger(v) || typeof v === "boolean";
        if (!fits) {
          assert.throws(() => (s.value = v as never), TypeError);
          return;
        }
        s.value = v as never;
        m.value = stored(m.code, v);
      })
    ),
    fc.constant(command("read", (m: ValueModel, s: SharedValue) => {
      assert.ok(Object.is(s.value, m.value), `${String(s.value)} !== ${String(m.value)}`);
      assert.ok(Object.is(s.getObj()[0], m.value));
      assert.equal(s.typecode, m.code);
    })),
    fc.constant(command("getLock() round trip", (_m: ValueModel, s: SharedValue) => {
      const lock = s.getLock();
      assert.equal(lock.acquireSync({ block: false }), true);
      lock.release();
      assert.equal(lock.locked(), false);
    })),
  ];
  await runModel(setup, cmds);
});

interface ArrayModel {
  code: Code;
  items: unknown[];
}

test("SharedArray reads and writes elements (negative indexes from the end) as a typed array does", async () => {
  const setup = fc.tuple(fc.constantFrom(...CODES), fc.integer({ min: 0, max: 5 })).map(([code, n]) => () => ({
    model: { code, items: Array.from({ length: n }, () => stored(code, 0)) },
    real: new SharedArray(code, n) as SharedArray,
  }));
  const cmds: fc.Arbitrary<fc.AsyncCommand<ArrayModel, SharedArray>>[] = [
    fc.tuple(fc.integer({ min: -7, max: 7 }), fc.constantFrom(...CODES)).chain(([i, code]) =>
      valueFor(code).map((v) => [i, v] as const)
    ).map(([i, v]) =>
      command(`set(${i}, ${typeof v === "bigint" ? `${v}n` : String(v)})`, (m: ArrayModel, a: SharedArray) => {
        const n = m.items.length;
        const fits = isFloat(m.code)
          ? typeof v === "number"
          : isBig(m.code)
          ? typeof v === "bigint" || Number.isInteger(v)
          : Number.isInteger(v) || typeof v === "boolean";
        if (i < -n || i >= n) {
          assert.throws(() => a.set(i, v as never), RangeError);
          return;
        }
        if (!fits) {
          assert.throws(() => a.set(i, v as never), TypeError);
          return;
        }
        a.set(i, v as never);
        m.items[i < 0 ? i + n : i] = stored(m.code, v);
      })
    ),
    fc.integer({ min: -7, max: 7 }).map((i) =>
      command(`get(${i})`, (m: ArrayModel, a: SharedArray) => {
        const n = m.items.length;
        if (i < -n || i >= n) {
          assert.throws(() => a.get(i), RangeError);
          return;
        }
        assert.ok(Object.is(a.get(i), m.items[i < 0 ? i + n : i]));
      })
    ),
    fc.constant(command("toArray", (m: ArrayModel, a: SharedArray) => {
      assert.deepStrictEqual(a.toArray(), m.items);
      assert.deepStrictEqual([...a], m.items);
      assert.equal(a.length, m.items.length);
    })),
  ];
  await runModel(setup, cmds);
});
