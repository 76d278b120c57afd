// Copyright the @mpjs/multiprocessing authors. MIT license.
// Histories checked against sequential models: threads run a few random
// operations at once on a Queue, JoinableQueue, Semaphore, BoundedSemaphore,
// Barrier or Pipe, recording each with its start and end on a shared clock;
// every history must be linearizable (see tests/_linearizable.ts).

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Barrier, BoundedSemaphore, JoinableQueue, Pipe, Queue, Semaphore, Thread } from "../mod.ts";
import { checkLinearizable, describeHistory, describeOperation, type Model, type Operation } from "./_linearizable.ts";
import {
  barrierOps,
  F_ARG,
  F_END,
  F_OP,
  F_RESULT,
  F_START,
  FIELDS,
  OP,
  pipeOps,
  queueOps,
  R,
  semaphoreOps,
  type Setup,
  url,
} from "./testdata/linearizability_fixtures.ts";
import { sharedInts } from "./_util.ts";

/** Seed of the random operations; fixed for reproducible runs, LIN_SEED explores others. */
const SEED = process.env.LIN_SEED ? Number(process.env.LIN_SEED) : 0x1234567;

/** An operation as recorded: the op code and argument in, the result code (or value) out. */
interface Input {
  op: number;
  arg: number;
}
type Op = Operation<Input, number>;

const NAMES = new Map<number, string>(Object.entries(OP).map(([name, code]) => [code, name]));

function opOf(thread: number, log: Int32Array, at: number): Op {
  return {
    thread,
    input: { op: log[at + F_OP], arg: log[at + F_ARG] },
    output: log[at + F_RESULT],
    start: log[at + F_START],
    end: log[at + F_END],
  };
}

function show(history: Op[]): string {
  return describeHistory(
    history.map((o) => ({ ...o, input: `${NAMES.get(o.input.op)}(${o.input.arg || ""})` as unknown as Input })),
  );
}

/**
 * Runs `target` in `threads` threads over `rounds` objects (thread `t` gets
 * `argsFor(t)`), then checks the history of each round against `model`.
 */
async function runAndCheck<S>(
  what: string,
  // deno-lint-ignore no-explicit-any
  target: (objects: any[], setup: Setup) => Promise<void>,
  argsFor: (thread: number) => unknown[],
  threads: number,
  ops: number,
  rounds: number,
  model: Model<S, Input, number>,
): Promise<void> {
  const sync = sharedInts(3);
  const log = sharedInts(rounds * threads * ops * FIELDS);
  const started: Thread[] = [];
  for (let t = 0; t < threads; t++) {
    const setup: Setup = { thread: t, threads, ops, seed: SEED + t, sync, log };
    const th = new Thread({ target, args: [argsFor(t), setup], module: url, name: `${what}-${t}` });
    th.start();
    started.push(th);
  }
  for (const th of started) {
    await th.join();
    assert.equal(th.exitCode, 0, `${th.name}: ${th.error?.remoteStack}`);
  }
  const failures: string[] = [];
  let concurrent = 0;
  for (let r = 0; r < rounds; r++) {
    const history: Op[] = [];
    for (let t = 0; t < threads; t++) {
      for (let j = 0; j < ops; j++) history.push(opOf(t, log, ((r * threads + t) * ops + j) * FIELDS));
    }
    if (overlapping(history) > 0) concurrent++;
    if (process.env.LIN_VERBOSE && r < 2) console.log(show(history) + "\n");
    const verdict = checkLinearizable(history, model);
    if (!verdict.linearizable) {
      failures.push(
        `round ${r} (LIN_SEED=${SEED}) is not linearizable:\n${show(history)}\n  longest valid prefix: ${
          verdict.longest.map((o) => `${NAMES.get(o.input.op)}->${o.output}`).join(", ")
        }`,
      );
    }
  }
  assert.deepEqual(failures, [], failures.join("\n\n"));
  if (process.env.LIN_VERBOSE) console.log(`${what}: ${concurrent} of ${rounds} rounds had overlapping operations`);
  // Histories with no overlap would only test the sequential case. How many
  // overlap depends on the load of the machine (on an idle one, most do).
  assert.ok(concurrent >= 1, `none of the ${rounds} rounds had operations of two threads overlapping`);
}

/** How many pairs of operations of different threads ran at the same time. */
function overlapping(history: Op[]): number {
  let n = 0;
  for (const a of history) {
    for (const b of history) if (a.thread < b.thread && a.start < b.end && b.start < a.end) n++;
  }
  return n;
}

// ---- sequential models ---------------------------------------------------------

const PUTS = new Set<number>([OP.putNowait, OP.putTimed, OP.putAsync]);
const GETS = new Set<number>([OP.getNowait, OP.getTimed, OP.getAsync]);

interface QueueState {
  items: readonly number[];
  /** Items put and not yet marked done (JoinableQueue). */
  unfinished: number;
}

/** A FIFO queue holding at most `maxsize` items (0: unbounded); `taskDone` as JoinableQueue's. */
export function queueModel(maxsize: number): Model<QueueState, Input, number> {
  const full = (s: QueueState) => maxsize > 0 && s.items.length >= maxsize;
  return {
    init: { items: [], unfinished: 0 },
    key: (s) => `${s.items.join(",")}|${s.unfinished}`,
    step: (s, { input, output }) => {
      if (PUTS.has(input.op)) {
        if (output === R.full) return full(s) ? s : undefined;
        if (output !== R.ok || full(s)) return undefined;
        return { items: [...s.items, input.arg], unfinished: s.unfinished + 1 };
      }
      if (GETS.has(input.op)) {
        if (output === R.empty) return s.items.length === 0 ? s : undefined;
        if (s.items[0] !== output) return undefined;
        return { items: s.items.slice(1), unfinished: s.unfinished };
      }
      if (input.op === OP.taskDone) {
        if (output === R.error) return s.unfinished === 0 ? s : undefined;
        if (output !== R.ok || s.unfinished === 0) return undefined;
        return { items: s.items, unfinished: s.unfinished - 1 };
      }
      return undefined;
    },
  };
}

/** A counter of permits starting at `initial`; bounded: a release above `initial` fails. */
export function semaphoreModel(initial: number, bounded: boolean): Model<number, Input, number> {
  return {
    init: initial,
    key: (v) => String(v),
    step: (v, { input, output }) => {
      switch (input.op) {
        case OP.acquireNowait:
        case OP.acquireAsync:
          if (output === R.true) return v > 0 ? v - 1 : undefined;
          return output === R.false && v === 0 ? v : undefined;
        case OP.release: {
          const over = bounded && v + 1 > initial;
          if (output === R.error) return over ? v : undefined;
          return output === R.ok && !over ? v + 1 : undefined;
        }
        case OP.getValue:
          return output === v ? v : undefined;
      }
      return undefined;
    },
  };
}

interface BarrierState {
  /** Waits of the current generation so far: each got this many as its index. */
  arrived: number;
  /** The generation's waits must all be running when it trips: they overlap. */
  minEnd: number;
  maxStart: number;
}

/** A barrier of `parties`: the waits of one generation get 0…parties-1 in arrival order and run at one moment. */
export function barrierModel(parties: number): Model<BarrierState, Input, number> {
  const fresh: BarrierState = { arrived: 0, minEnd: Infinity, maxStart: -Infinity };
  return {
    init: fresh,
    key: (s) => `${s.arrived}|${s.minEnd}|${s.maxStart}`,
    step: (s, op) => {
      if (op.input.op !== OP.wait && op.input.op !== OP.waitAsync) return undefined;
      if (op.output !== s.arrived || op.start > s.minEnd || op.end < s.maxStart) return undefined;
      if (s.arrived + 1 === parties) return fresh;
      return { arrived: s.arrived + 1, minEnd: Math.min(s.minEnd, op.end), maxStart: Math.max(s.maxStart, op.start) };
    },
  };
}

interface PipeState {
  /** Messages in flight to thread 0 and to thread 1. */
  to: readonly [readonly number[], readonly number[]];
}

/** A duplex pipe between threads 0 and 1: one FIFO per direction. */
export function pipeModel(): Model<PipeState, Input, number> {
  return {
    init: { to: [[], []] },
    key: (s) => `${s.to[0].join(",")}|${s.to[1].join(",")}`,
    step: (s, { thread, input, output }) => {
      const incoming = s.to[thread];
      const other = 1 - thread;
      switch (input.op) {
        case OP.send: {
          if (output !== R.ok) return undefined;
          const to: [number[], number[]] = [[...s.to[0]], [...s.to[1]]];
          to[other].push(input.arg);
          return { to };
        }
        case OP.recvTimed:
        case OP.recvAsync: {
          if (output === R.timeout) return incoming.length === 0 ? s : undefined;
          if (incoming[0] !== output) return undefined;
          const to: [readonly number[], readonly number[]] = [s.to[0], s.to[1]];
          to[thread] = incoming.slice(1);
          return { to };
        }
        case OP.poll:
          return (output === R.true) === (incoming.length > 0) ? s : undefined;
      }
      return undefined;
    },
  };
}

// ---- the checker can fail ---------------------------------------------------------

function op(thread: number, op: number, arg: number, output: number, start: number, end: number): Op {
  return { thread, input: { op, arg }, output, start, end };
}

test("the checker rejects a get that returns an item before its put started", () => {
  const history = [op(0, OP.getNowait, 0, 7, 1, 2), op(1, OP.putNowait, 7, R.ok, 3, 4)];
  const verdict = checkLinearizable(history, queueModel(0));
  assert.equal(verdict.linearizable, false);
  assert.match(describeOperation(history[0]), /^t0 .* -> 7 \[1, 2\]$/);
});

test("the checker rejects sequential gets out of FIFO order and accepts them when the puts overlap", () => {
  const gets = [op(2, OP.getNowait, 0, 2, 5, 6), op(2, OP.getNowait, 0, 1, 7, 8)];
  const sequential = [op(0, OP.putNowait, 1, R.ok, 1, 2), op(1, OP.putNowait, 2, R.ok, 3, 4), ...gets];
  assert.equal(checkLinearizable(sequential, queueModel(0)).linearizable, false);
  const overlapping = [op(0, OP.putNowait, 1, R.ok, 1, 4), op(1, OP.putNowait, 2, R.ok, 2, 3), ...gets];
  const verdict = checkLinearizable(overlapping, queueModel(0));
  assert.ok(verdict.linearizable);
  assert.deepEqual(verdict.order.map((o) => o.input.arg || o.output), [2, 1, 2, 1]);
});

test("the checker rejects Empty and Full outcomes that no moment of the history allows", () => {
  assert.equal(
    checkLinearizable([op(0, OP.putNowait, 1, R.ok, 1, 2), op(1, OP.getTimed, 0, R.empty, 3, 4)], queueModel(0))
      .linearizable,
    false,
  );
  assert.equal(checkLinearizable([op(0, OP.putNowait, 1, R.full, 1, 2)], queueModel(1)).linearizable, false);
  // A get running alongside the put may see the queue still empty.
  assert.equal(
    checkLinearizable([op(0, OP.putNowait, 1, R.ok, 1, 4), op(1, OP.getTimed, 0, R.empty, 2, 3)], queueModel(0))
      .linearizable,
    true,
  );
});

test("the checker rejects two permits taken from a semaphore of one, and a barrier generation that never met", () => {
  const twice = [op(0, OP.acquireNowait, 0, R.true, 1, 3), op(1, OP.acquireAsync, 0, R.true, 2, 4)];
  assert.equal(checkLinearizable(twice, semaphoreModel(1, false)).linearizable, false);
  assert.equal(checkLinearizable(twice, semaphoreModel(2, false)).linearizable, true);
  const apart = [op(0, OP.wait, 0, 0, 1, 2), op(1, OP.wait, 0, 1, 3, 4)];
  assert.equal(checkLinearizable(apart, barrierModel(2)).linearizable, false);
  const met = [op(0, OP.wait, 0, 0, 1, 4), op(1, OP.wait, 0, 1, 2, 3)];
  assert.equal(checkLinearizable(met, barrierModel(2)).linearizable, true);
});

test("the checker rejects a message received by the thread that sent it", () => {
  const history = [op(0, OP.send, 5, R.ok, 1, 2), op(0, OP.recvTimed, 0, 5, 3, 4)];
  assert.equal(checkLinearizable(history, pipeModel()).linearizable, false);
  history[1].thread = 1;
  assert.equal(checkLinearizable(history, pipeModel()).linearizable, true);
});

// ---- histories from threads ----------------------------------------------------------

test("Queue: concurrent puts and gets from 3 threads are linearizable as a bounded FIFO queue", async () => {
  const maxsize = 2;
  const queues = Array.from({ length: 40 }, () => new Queue<number>(maxsize));
  await runAndCheck("queue", queueOps, () => queues, 3, 4, queues.length, queueModel(maxsize));
  for (const q of queues) q.close();
});

test("Queue: an unbounded queue from 2 threads is linearizable as a FIFO queue", async () => {
  const queues = Array.from({ length: 40 }, () => new Queue<number>());
  await runAndCheck("unbounded", queueOps, () => queues, 2, 6, queues.length, queueModel(0));
  for (const q of queues) q.close();
});

test("JoinableQueue: puts, gets and taskDone from 3 threads are linearizable", async () => {
  const queues = Array.from({ length: 30 }, () => new JoinableQueue<number>(3));
  await runAndCheck("joinable", queueOps, () => queues, 3, 4, queues.length, queueModel(3));
  for (const q of queues) q.close();
});

test("Semaphore: non-blocking acquires, releases and getValue from 3 threads are linearizable", async () => {
  const sems = Array.from({ length: 40 }, () => new Semaphore(1));
  await runAndCheck("semaphore", semaphoreOps, () => sems, 3, 4, sems.length, semaphoreModel(1, false));
});

test("BoundedSemaphore: releases above the bound fail exactly when the model says so", async () => {
  const sems = Array.from({ length: 40 }, () => new BoundedSemaphore(2));
  await runAndCheck("bounded", semaphoreOps, () => sems, 3, 4, sems.length, semaphoreModel(2, true));
});

test("Barrier: the waits of each generation overlap and get the indexes 0..parties-1", async () => {
  const parties = 3;
  const barriers = Array.from({ length: 20 }, () => new Barrier(parties));
  await runAndCheck("barrier", barrierOps, () => barriers, parties, 3, barriers.length, barrierModel(parties));
});

test("Pipe: sends, timed receives and polls at both ends are linearizable as one FIFO per direction", async () => {
  const pipes = Array.from({ length: 40 }, () => Pipe<number>());
  await runAndCheck("pipe", pipeOps, (t) => pipes.map((p) => p[t]), 2, 6, pipes.length, pipeModel());
});
