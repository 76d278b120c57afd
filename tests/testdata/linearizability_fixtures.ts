// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/linearizability_test.ts: each thread runs a few random
// operations per round on that round's object and records each one as
// (operation, argument, result, start, end) in shared memory. `start` and
// `end` are ticks of one shared counter taken with `Atomics.add` just before
// the call and just after it returned. Workers import this module by URL,
// so it must stay free of side effects at its top level.

import {
  type Barrier,
  BrokenBarrierError,
  type Connection,
  EmptyError,
  FullError,
  type JoinableQueue,
  type Queue,
  type Semaphore,
  TimeoutError,
} from "../../mod.ts";

export const url: string = import.meta.url;

/** Int32 fields per recorded operation. */
export const FIELDS = 5;
export const F_OP = 0;
export const F_ARG = 1;
export const F_RESULT = 2;
export const F_START = 3;
export const F_END = 4;

/** Operation codes. `Async` variants await the Promise form; the others use the `Sync`/`Nowait` form. */
export const OP = {
  putNowait: 1,
  getNowait: 2,
  putTimed: 3,
  getTimed: 4,
  putAsync: 5,
  getAsync: 6,
  taskDone: 7,
  acquireNowait: 10,
  acquireAsync: 11,
  release: 12,
  getValue: 13,
  wait: 20,
  waitAsync: 21,
  send: 30,
  recvTimed: 31,
  recvAsync: 32,
  poll: 33,
} as const;

/** Results that are not values. */
export const R = {
  ok: 0,
  empty: -1,
  full: -2,
  error: -3,
  timeout: -4,
  false: 0,
  true: 1,
} as const;

/** Everything a thread needs, passed in `args`. */
export interface Setup {
  /** Which thread this is, 0…threads-1. */
  thread: number;
  threads: number;
  /** Operations per thread and round. */
  ops: number;
  seed: number;
  /** `[0]`: the clock; `[1]`, `[2]`: round arrivals (see `startRound`). */
  sync: Int32Array;
  /** Records, `FIELDS` per operation, at `((round * threads + thread) * ops + j) * FIELDS`. */
  log: Int32Array;
}

/** A small seeded generator (mulberry32). */
export function random(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Waits until every thread has arrived at round `r` (raw Atomics: the
 * library's Barrier is under test), in two phases: arrive, then confirm
 * that this thread runs. Threads spin between the phases (parking now and
 * then to leave the CPU to the others), so that when the last one confirms,
 * all of them are running and their operations overlap.
 */
function startRound(s: Setup, r: number): void {
  const target = (r + 1) * s.threads;
  for (const cell of [1, 2]) {
    Atomics.add(s.sync, cell, 1);
    Atomics.notify(s.sync, cell);
    for (let spins = 1;; spins++) {
      const v = Atomics.load(s.sync, cell);
      if (v >= target) break;
      if (spins % 10_000 === 0) Atomics.wait(s.sync, cell, v, 1);
    }
  }
}

/**
 * Waits until every thread is done with the last round: a thread that ends
 * closes its pipe ends and gives back its semaphore permits to the next
 * acquirer (owner death), which the others must not see.
 */
function finish(s: Setup, rounds: number): void {
  startRound(s, rounds);
}

/**
 * Spins a random while (up to `n` reads of the clock, ~`n` × 10 ns): spreads a
 * thread's operations so that other threads' fall between them. (Counted,
 * not timed: `performance.now()` is coarse in some runtimes' workers.)
 */
function jitter(s: Setup, rand: () => number, n: number): void {
  for (let i = Math.floor(rand() * n); i > 0; i--) Atomics.load(s.sync, 0);
}

/** Runs `call`, recording it as operation `j` of this thread in round `r`. */
async function record(
  s: Setup,
  r: number,
  j: number,
  op: number,
  arg: number,
  call: () => number | Promise<number>,
): Promise<void> {
  const at = ((r * s.threads + s.thread) * s.ops + j) * FIELDS;
  s.log[at + F_OP] = op;
  s.log[at + F_ARG] = arg;
  s.log[at + F_START] = Atomics.add(s.sync, 0, 1);
  const result = await call();
  s.log[at + F_END] = Atomics.add(s.sync, 0, 1);
  s.log[at + F_RESULT] = result;
}

/** Maps the documented failures of an operation to result codes; anything else is rethrown. */
async function outcome(call: () => unknown, map: (error: unknown) => number | undefined): Promise<number> {
  try {
    const v = await call();
    return typeof v === "number" ? v : R.ok;
  } catch (error) {
    const code = map(error);
    if (code === undefined) throw error;
    return code;
  }
}

const queueErrors = (e: unknown) => e instanceof FullError ? R.full : e instanceof EmptyError ? R.empty : undefined;

/** Random puts and gets (items are unique positive numbers), and for a JoinableQueue `taskDone`. */
export async function queueOps(queues: (Queue<number> | JoinableQueue<number>)[], s: Setup): Promise<void> {
  const rand = random(s.seed ^ (s.thread * 0x9e3779b9));
  for (let r = 0; r < queues.length; r++) {
    const q = queues[r];
    const joinable = "taskDone" in q;
    startRound(s, r);
    for (let j = 0; j < s.ops; j++) {
      jitter(s, rand, 30_000);
      const item = (s.thread + 1) * 100 + j;
      const pick = Math.floor(rand() * (joinable ? 7 : 6));
      switch (pick) {
        case 0:
          await record(s, r, j, OP.putNowait, item, () => outcome(() => q.putNowait(item), queueErrors));
          break;
        case 1:
          await record(s, r, j, OP.getNowait, 0, () => outcome(() => q.getNowait(), queueErrors));
          break;
        case 2:
          await record(s, r, j, OP.putTimed, item, () => outcome(() => q.putSync(item, { timeout: 1 }), queueErrors));
          break;
        case 3:
          await record(s, r, j, OP.getTimed, 0, () => outcome(() => q.getSync({ timeout: 1 }), queueErrors));
          break;
        case 4:
          await record(s, r, j, OP.putAsync, item, () => outcome(() => q.put(item, { timeout: 1 }), queueErrors));
          break;
        case 5:
          await record(s, r, j, OP.getAsync, 0, () => outcome(() => q.get({ timeout: 1 }), queueErrors));
          break;
        default:
          await record(
            s,
            r,
            j,
            OP.taskDone,
            0,
            () =>
              outcome(() => (q as JoinableQueue<number>).taskDone(), (e) => e instanceof Error ? R.error : undefined),
          );
      }
    }
  }
  finish(s, queues.length);
}

/** Random non-blocking acquires, releases and reads of the value. */
export async function semaphoreOps(sems: Semaphore[], s: Setup): Promise<void> {
  const rand = random(s.seed ^ (s.thread * 0x85ebca6b));
  for (let r = 0; r < sems.length; r++) {
    const sem = sems[r];
    startRound(s, r);
    for (let j = 0; j < s.ops; j++) {
      jitter(s, rand, 30_000);
      const pick = Math.floor(rand() * 4);
      if (pick === 0) {
        await record(s, r, j, OP.acquireNowait, 0, () => (sem.acquireSync({ block: false }) ? R.true : R.false));
      } else if (pick === 1) {
        await record(s, r, j, OP.acquireAsync, 0, async () => (await sem.acquire({ block: false }) ? R.true : R.false));
      } else if (pick === 2) {
        await record(
          s,
          r,
          j,
          OP.release,
          0,
          () => outcome(() => sem.release(), (e) => e instanceof RangeError ? R.error : undefined),
        );
      } else {
        await record(s, r, j, OP.getValue, 0, () => sem.getValue());
      }
    }
  }
  finish(s, sems.length);
}

/** `ops` waits per round, each thread one party (half of them awaiting `wait`). */
export async function barrierOps(barriers: Barrier[], s: Setup): Promise<void> {
  const rand = random(s.seed ^ (s.thread * 0xc2b2ae35));
  for (let r = 0; r < barriers.length; r++) {
    const b = barriers[r];
    startRound(s, r);
    for (let j = 0; j < s.ops; j++) {
      jitter(s, rand, 30_000);
      const broken = (e: unknown) => e instanceof BrokenBarrierError ? R.error : undefined;
      if (rand() < 0.5) await record(s, r, j, OP.wait, 0, () => outcome(() => b.waitSync(), broken));
      else await record(s, r, j, OP.waitAsync, 0, () => outcome(() => b.wait(), broken));
    }
  }
  finish(s, barriers.length);
}

/** Random sends, timed receives and polls on this thread's end of each round's pipe. */
export async function pipeOps(ends: Connection<number>[], s: Setup): Promise<void> {
  const rand = random(s.seed ^ (s.thread * 0x27d4eb2f));
  const timeout = (e: unknown) => e instanceof TimeoutError ? R.timeout : undefined;
  for (let r = 0; r < ends.length; r++) {
    const end = ends[r];
    startRound(s, r);
    for (let j = 0; j < s.ops; j++) {
      jitter(s, rand, 30_000);
      const item = (s.thread + 1) * 100 + j;
      const pick = Math.floor(rand() * 4);
      if (pick === 0) await record(s, r, j, OP.send, item, () => outcome(() => end.send(item), () => undefined));
      else if (pick === 1) {
        await record(s, r, j, OP.recvTimed, 0, () => outcome(() => end.recvSync({ timeout: 1 }), timeout));
      } else if (pick === 2) {
        await record(s, r, j, OP.recvAsync, 0, () => outcome(() => end.recv({ timeout: 1 }), timeout));
      } else await record(s, r, j, OP.poll, 0, () => (end.pollSync(0) ? R.true : R.false));
    }
  }
  finish(s, ends.length);
}
