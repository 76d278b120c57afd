// Copyright the @mpjs/multiprocessing authors. MIT license.
// The option checks of _options.ts, and that every module applies them alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BoundedSemaphore, Condition, JoinableQueue, Lock, Queue, RLock, Semaphore, SimpleQueue } from "../mod.ts";
import { checkBlock, checkInteger } from "../_options.ts";

/** Stand-ins a Python programmer might pass for a boolean: each means "wait" to some readers and "don't" to others. */
const NOT_BOOLEAN: unknown[] = [0, 1, "", "false", null, NaN, {}, [], 0n];

test("checkBlock(): undefined means wait, a boolean is itself, anything else is a TypeError naming it", () => {
  assert.equal(checkBlock(undefined, "Queue.get()", "call "), true);
  assert.equal(checkBlock(true, "Queue.get()", "call "), true);
  assert.equal(checkBlock(false, "Queue.get()", "call "), false);
  assert.throws(() => checkBlock(0, "Queue.get()", "call "), {
    name: "TypeError",
    message: "Cannot call Queue.get() as 'block' must be a boolean: current value is 0",
  });
  assert.throws(() => checkBlock("no", "Lock.acquire()", "call "), {
    name: "TypeError",
    message: `Cannot call Lock.acquire() as 'block' must be a boolean: current value is "no"`,
  });
});

test("checkInteger(): names the range only when it has an upper bound", () => {
  assert.equal(checkInteger(3, "create Semaphore", "value", 0, 10), 3);
  assert.throws(() => checkInteger(1.5, "create Semaphore", "value", 0, 10), {
    name: "RangeError",
    message: "Cannot create Semaphore as 'value' must be an integer from 0 to 10: current value is 1.5",
  });
  assert.throws(() => checkInteger(0, "create Barrier", "parties", 1), {
    name: "RangeError",
    message: "Cannot create Barrier as 'parties' must be an integer >= 1: current value is 0",
  });
  assert.throws(() => checkInteger(2 ** 31, "create Barrier", "parties", 1), RangeError);
});

/** A call taking `{ block, timeout }` where waiting would not succeed: it must throw or reject at once. */
interface BlockCall {
  name: string;
  call: (options: { block: unknown; timeout: number }) => unknown;
  /** Whatever shows the object unchanged. */
  state: () => unknown;
}

function blockCalls(): { calls: BlockCall[]; close: () => void } {
  const calls: BlockCall[] = [];
  const held = new Lock();
  held.acquireSync();
  const rheld = new RLock();
  rheld.acquireSync();
  const cond = new Condition(new Lock());
  cond.acquireSync();
  const sems = [new Semaphore(0), new BoundedSemaphore(0)];
  const subjects: [string, Lock | RLock | Condition | Semaphore][] = [
    ["Lock", held],
    ["RLock", rheld],
    ["Condition", cond],
    ...sems.map((s): [string, Semaphore] => [s.constructor.name, s]),
  ];
  for (const [label, p] of subjects) {
    for (const m of ["acquire", "acquireSync", "scoped", "scopedSync"] as const) {
      calls.push({
        name: `${label}.${m}()`,
        call: (o) => (p[m] as (o: unknown) => unknown)(o),
        state: () => String(p),
      });
    }
  }
  const empty = new Queue<number>();
  const full = new Queue<number>(1);
  full.putNowait(1);
  const joinable = new JoinableQueue<number>();
  const simple = new SimpleQueue<number>();
  calls.push(
    { name: "Queue.get()", call: (o) => empty.get(o as never), state: () => empty.qsize() },
    { name: "Queue.getSync()", call: (o) => empty.getSync(o as never), state: () => empty.qsize() },
    { name: "Queue.put()", call: (o) => full.put(2, o as never), state: () => full.qsize() },
    { name: "Queue.putSync()", call: (o) => full.putSync(2, o as never), state: () => full.qsize() },
    { name: "JoinableQueue.get()", call: (o) => joinable.get(o as never), state: () => joinable.qsize() },
    { name: "SimpleQueue.get()", call: (o) => simple.get(o as never), state: () => simple.empty() },
    { name: "SimpleQueue.getSync()", call: (o) => simple.getSync(o as never), state: () => simple.empty() },
  );
  return {
    calls,
    close: () => {
      for (const q of [empty, full, joinable, simple]) q.close();
    },
  };
}

test("every 'block' option (locks, semaphores, conditions, queues) refuses a non-boolean alike, changing nothing", async () => {
  const { calls, close } = blockCalls();
  try {
    for (const c of calls) {
      for (const block of NOT_BOOLEAN) {
        const before = c.state();
        let result: unknown;
        try {
          result = c.call({ block, timeout: 20 });
        } catch (error) {
          result = Promise.reject(error);
        }
        await assert.rejects(
          Promise.resolve(result),
          (e: Error) => e instanceof TypeError && /'block' must be a boolean/.test(e.message),
          `${c.name} with block ${String(block)}`,
        );
        assert.deepEqual(c.state(), before, `${c.name} left unchanged`);
      }
    }
  } finally {
    close();
  }
});

test("Lock.acquire() and Queue.get() name themselves and the value in the 'block' error", async () => {
  await assert.rejects(new Lock().acquire({ block: 0 as never, timeout: 20 }), {
    name: "TypeError",
    message: "Cannot call Lock.acquire() as 'block' must be a boolean: current value is 0",
  });
  const q = new Queue<number>();
  try {
    assert.throws(() => q.getSync({ block: "no" as never, timeout: 20 }), {
      name: "TypeError",
      message: `Cannot call Queue.getSync() as 'block' must be a boolean: current value is "no"`,
    });
  } finally {
    q.close();
  }
});
