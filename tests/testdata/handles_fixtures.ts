// Copyright the @mpjs/multiprocessing authors. MIT license.
// Worker targets for tests/handles_test.ts: handles inside queue items and pipe messages.
import {
  type Barrier,
  type Connection,
  Event,
  type JoinableQueue,
  Lock,
  Queue,
  type Semaphore,
  type SharedArray,
  type SharedValue,
  type SimpleQueue,
  Thread,
} from "../../mod.ts";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export const url: string = import.meta.url;

/** Takes a Lock out of `q`, holds it until `release` has an item, reports on `out`. */
export async function holdLockFromQueue(
  q: Queue<{ lock: Lock }>,
  out: Queue<string>,
  release: Queue<string>,
): Promise<void> {
  const { lock } = await q.get();
  lock.acquireSync();
  out.putSync("held");
  await release.get();
  lock.release();
  out.putSync("released");
}

/** Serves jobs `{ n, reply }` until `null`: puts `n * 2` into each job's own reply queue. */
export function doubleIntoReplyQueue(jobs: Queue<{ n: number; reply: Queue<number> } | null>): void {
  for (let job = jobs.getSync(); job !== null; job = jobs.getSync()) job.reply.putSync(job.n * 2);
}

/** Receives `{ box: { counter }, by }` on a pipe, adds `by` to the counter, answers with its value. */
export function bumpFromPipe(conn: Connection<{ box: { counter: SharedValue<"i"> }; by: number } | string>): void {
  const msg = conn.recvSync() as { box: { counter: SharedValue<"i"> }; by: number };
  msg.box.counter.value += msg.by;
  conn.send(`now ${msg.box.counter.value}`);
}

/** Takes a Connection end out of `q` and talks through it. */
export function talkThroughMovedEnd(q: Queue<{ end: Connection<string> }>): void {
  const { end } = q.getSync();
  end.send(`hello from the thread, got ${end.recvSync()}`);
  end.close();
}

/** One of several consumers: items `{ i, lock, total, done }` until `null`. */
export function countUnderLock(
  q: Queue<{ i: number; lock: Lock; total: SharedValue<"i">; done: Queue<number> } | null>,
): void {
  for (let item = q.getSync(); item !== null; item = q.getSync()) {
    item.lock.acquireSync();
    try {
      // A read-modify-write the lock must protect.
      const v = item.total.value;
      item.total.value = v + 1;
    } finally {
      item.lock.release();
    }
    item.done.putSync(item.i);
  }
}

/** Creates a Lock and a Queue, puts `{ lock, inner }` into `out` `copies` times, and returns (the thread ends). */
export function handOverAndExit(out: Queue<{ lock: Lock; inner: Queue<string> }>, copies: number): void {
  const lock = new Lock();
  const inner = new Queue<string>();
  for (let i = 0; i < copies; i++) out.putSync({ lock, inner });
}

/** Takes `{ lock, inner }` from `q`, and under the lock puts `msg` into `inner`. */
export function useOrphans(q: Queue<{ lock: Lock; inner: Queue<string> }>, msg: string): void {
  const { lock, inner } = q.getSync();
  lock.acquireSync();
  inner.putSync(msg);
  lock.release();
}

/** Receives a Connection end through a Connection, and answers through it. */
export function answerThroughReceivedEnd(conn: Connection<Connection<string>>): void {
  const end = conn.recvSync();
  end.send(`got ${end.recvSync()}`);
  end.close();
  conn.close();
}

/** Waits for one item in `q` (parks), for the idle-CPU test. */
export async function waitForItem(q: Queue<unknown>): Promise<void> {
  await q.get();
}

/** Creates a Lock and a Queue and puts them into `q` for another thread (nothing else in the program sent a handle). */
export function offerFreshHandles(q: Queue<{ lock: Lock; back: Queue<string> }>): void {
  q.putSync({ lock: new Lock(), back: new Queue<string>() });
}

/** Takes what {@linkcode offerFreshHandles} offered and uses both handles. */
export function takeFreshHandles(q: Queue<{ lock: Lock; back: Queue<string> }>, out: Queue<string>): void {
  const { lock, back } = q.getSync({ timeout: 20_000 });
  lock.acquireSync();
  back.putSync("used");
  lock.release();
  out.putSync(back.getSync());
}

/** In a worker: starts an offering and a taking thread and waits for them blocking (a parked forwarder). */
export function exchangeBetweenGrandchildren(out: Queue<string>): void {
  const q = new Queue<{ lock: Lock; back: Queue<string> }>();
  const taker = new Thread({ target: takeFreshHandles, module: url, args: [q, out] });
  const offerer = new Thread({ target: offerFreshHandles, module: url, args: [q] });
  taker.start();
  offerer.start();
  taker.joinSync();
  offerer.joinSync();
}

/** What {@linkcode syncThroughItem} takes out of a SimpleQueue. */
export interface SyncKit {
  barrier: Barrier;
  event: Event;
  jq: JoinableQueue<string>;
  sem: Semaphore;
  arr: SharedArray<"i">;
}

/** Takes a kit of primitives from a SimpleQueue item and uses each of them. */
export async function syncThroughItem(sq: SimpleQueue<SyncKit>): Promise<void> {
  const { barrier, event, jq, sem, arr } = await sq.get();
  barrier.waitSync();
  arr.set(0, 7);
  sem.release();
  jq.putSync("from the worker");
  event.set();
}

/**
 * Reports on `flag[0]`, then parks until terminated (or until `flag[1]` is
 * set), in waits of this library, where every runtime can stop the thread.
 */
function reportAndPark(flag: Int32Array): void {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const nap = new Event();
  while (Atomics.load(flag, 1) === 0) nap.waitSync(50);
}

/**
 * Takes an item from `q`, and parks (see {@linkcode reportAndPark}) as soon
 * as it has asked the post office for a handle inside it, before receiving it.
 */
export function takeAndParkAfterAsking(q: Queue<unknown>, flag: Int32Array): void {
  const hooks = globalThis as Record<symbol, unknown>;
  hooks[Symbol.for("@mpjs/multiprocessing/post.afterAsk")] = () => reportAndPark(flag);
  q.getSync();
}

/** Holds `conn` without ever receiving from it, and parks (see {@linkcode reportAndPark}). */
export function holdUnread(_conn: Connection, flag: Int32Array): void {
  reportAndPark(flag);
}

/** Once `go` has an item, passes `conn` on inside an item of `out`, and returns. */
export function passReaderOn(
  conn: Connection<{ end: Connection<string> }>,
  out: Queue<{ conn: Connection<{ end: Connection<string> }> }>,
  go: Queue<string>,
): void {
  go.getSync();
  out.putSync({ conn });
}

/** Takes `{ conn }` from `q`, receives `{ end }` through it and answers through the end. */
export function answerThroughPassedReader(q: Queue<{ conn: Connection<{ end: Connection<string> }> }>): void {
  const { conn } = q.getSync();
  const { end } = conn.recvSync();
  end.send("answered");
  end.close();
  conn.close();
}

/** Runs a full garbage collection now, by whatever means this runtime offers. */
export function collectGarbage(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) return g.Bun.gc(true);
  if (!g.gc) {
    setFlagsFromString("--expose-gc");
    g.gc = runInNewContext("gc") as () => void;
  }
  g.gc();
}

/**
 * Like {@linkcode doubleIntoReplyQueue}, awaiting each job (so that its
 * event loop turns between jobs); a job with a negative `n` first collects
 * this thread's garbage.
 */
export async function doubleIntoReplyQueueAsync(
  jobs: Queue<{ n: number; reply: Queue<number> } | null>,
): Promise<void> {
  for (let job = await jobs.get(); job !== null; job = await jobs.get()) {
    if (job.n < 0) collectGarbage();
    job.reply.putSync(job.n * 2);
  }
}
