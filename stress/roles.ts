// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * What the chaos runner's threads run: producers, consumers, lock and
 * semaphore holders, pipe-end producers and consumers, and the pool's
 * tasks. Workers import this module by URL, so its top level has no side
 * effects.
 *
 * Every role records each operation in the ledger (`ledger.ts`) with
 * `Atomics` as soon as it completes, and waits in this library regularly (a
 * queue or lock wait, or now and then a short `Event` wait between
 * operations): on Deno a terminated thread stops only there or at its event
 * loop. Pauses are kept rare so that threads spend most of their time inside
 * operations, where a kill on Node and Bun lands at any instruction.
 *
 * @module
 */

import { ClosedError, type Connection, currentThread, EmptyError, type Event, FullError, Pipe } from "../mod.ts";
import type { Lock, Queue, Semaphore } from "../mod.ts";
import {
  ABANDONED,
  ACKED,
  bump,
  DIED,
  done,
  enter,
  FIRST_VIOLATOR,
  IN_GET,
  type Item,
  itemCheck,
  leave,
  type Ledger,
  maxItems,
  MOST_FREE,
  MUTEX,
  NEXT_ITEM,
  OUT_OF_IDS,
  payloadFor,
  PIPE_BAD,
  PIPE_ITEM,
  PUT,
  raise,
  RAN,
  recordGot,
  RECOVERED,
  RERUNS,
  RUNNING,
  setBit,
  setState,
  TAKE_ARM,
  TAKE_KILLS,
  TASK_ARM,
  threadRuns,
  tooMany,
} from "./ledger.ts";
import { Rng } from "./prng.ts";

export const rolesUrl: string = import.meta.url;

/** How a thread waits: blocking calls, Promise calls, or either at random. */
export type Mode = "sync" | "async" | "mixed";

/** Pauses (ms) between operations: long enough to park (so a Deno thread checks for a stop). */
const PAUSES = [0.2, 0.5, 1, 2];
/** Timeouts (ms) of the waits that may give up. */
const TIMEOUTS = [0, 1, 5, 20, 100];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
}

/** Waits a moment, in the way `sync` says; `true` when the round is over. */
async function pause(stop: Event, rng: Rng, sync: boolean): Promise<boolean> {
  const ms = rng.pick(PAUSES);
  return sync ? stop.waitSync(ms) : await stop.wait(ms);
}

function useSync(mode: Mode, rng: Rng): boolean {
  return mode === "sync" || (mode === "mixed" && rng.chance(0.5));
}

function newItem(L: Ledger, rng: Rng, t: number, seq: number): Item | undefined {
  const id = Atomics.add(L.cells, NEXT_ITEM, 1);
  if (id >= maxItems(L)) return undefined;
  const item: Item = { id, p: t, seq, c: itemCheck(id, t, seq) };
  // Now and then a large one: the ring grows, records wrap around its end.
  if (rng.chance(0.02)) item.data = payloadFor(id, rng.pick([100, 5000, 70_000, 300_000]));
  return item;
}

/**
 * Puts `item`, retrying failed attempts (full, timed out, aborted) until
 * it is in or the round is over. Returns whether it went in.
 */
async function putItem(q: Queue<Item>, item: Item, stop: Event, rng: Rng, mode: Mode): Promise<boolean> {
  for (;;) {
    const sync = useSync(mode, rng);
    const how = rng.int(0, 3);
    try {
      if (how === 0) q.putNowait(item);
      else if (how === 1 && sync) q.putSync(item, { timeout: rng.pick(TIMEOUTS) });
      else if (how === 1) await q.put(item, { timeout: rng.pick(TIMEOUTS) });
      else if (how === 2 && !sync) await q.put(item, { signal: AbortSignal.timeout(rng.pick(TIMEOUTS) + 1) });
      else if (sync) q.putSync(item, { timeout: 100 });
      else await q.put(item, { timeout: 100 });
      return true;
    } catch (e) {
      if (!(e instanceof FullError) && !isAbort(e)) throw e;
    }
    if (await pause(stop, rng, sync)) return false;
  }
}

/** Takes one item, or `undefined` when none came in time. */
async function getItem(q: Queue<Item>, rng: Rng, sync: boolean): Promise<unknown> {
  const how = rng.int(0, 3);
  try {
    if (how === 0) return q.getNowait();
    if (how === 1 && !sync) return await q.get({ signal: AbortSignal.timeout(rng.pick(TIMEOUTS) + 1) });
    const timeout = rng.pick(TIMEOUTS) + 1;
    return sync ? q.getSync({ timeout }) : await q.get({ timeout });
  } catch (e) {
    if (e instanceof EmptyError || isAbort(e)) return undefined;
    throw e;
  }
}

/** Waits for the end of the round (a producer with no item ids left). */
async function idle(L: Ledger, stop: Event): Promise<void> {
  bump(L, OUT_OF_IDS);
  while (!(await stop.wait(100)));
}

/**
 * Puts items `{ id, p, seq, c }` (now and then with a payload) into `q`,
 * in bursts, until the round is over. An item's `PUT` bit is set once its
 * put returned; one whose attempts all failed is marked `ABANDONED`.
 */
export async function producer(
  L: Ledger,
  stop: Event,
  q: Queue<Item>,
  t: number,
  seed: number,
  mode: Mode,
): Promise<void> {
  threadRuns(L, t, currentThread().ident);
  const rng = new Rng(seed);
  let seq = 0;
  for (;;) {
    for (let burst = rng.int(1, 32); burst > 0; burst--) {
      if (stop.isSet()) return;
      const item = newItem(L, rng, t, seq++);
      if (!item) return await idle(L, stop);
      if (!(await putItem(q, item, stop, rng, mode))) {
        setBit(L, ABANDONED, item.id);
        return;
      }
      setBit(L, PUT, item.id);
      done(L, t);
    }
    if (rng.chance(0.3) && await pause(stop, rng, useSync(mode, rng))) return;
  }
}

/**
 * Gets items from `q` (queue number `qn`) until the round is over. Its
 * state reads `IN_GET + qn` from before each get until the item is
 * recorded, so an item taken by a consumer killed in that window is known
 * to be lost with it.
 */
export async function consumer(
  L: Ledger,
  stop: Event,
  q: Queue<Item>,
  t: number,
  seed: number,
  mode: Mode,
): Promise<void> {
  threadRuns(L, t, currentThread().ident);
  const rng = new Rng(seed);
  while (!stop.isSet()) {
    const sync = useSync(mode, rng);
    setState(L, t, IN_GET);
    const v = await getItem(q, rng, sync);
    if (v !== undefined) recordGot(L, v);
    setState(L, t, RUNNING);
    if (v === undefined) {
      if (await pause(stop, rng, sync)) return;
      continue;
    }
    done(L, t);
    if (rng.chance(0.1) && await pause(stop, rng, sync)) return;
  }
}

/** A pipe end's first message: which item carries the other end. */
interface Token {
  id: number;
  c: number;
}

/**
 * Makes a pipe per item: sends the item's token on the first end, puts the
 * second end inside the item into `pq` (the end is in transit while the
 * item waits), then hands the first end to the main thread through `ret`.
 */
export async function pipeProducer(
  L: Ledger,
  stop: Event,
  pq: Queue<Item>,
  ret: Queue<{ id: number; end: Connection }>,
  t: number,
  seed: number,
  mode: Mode,
): Promise<void> {
  threadRuns(L, t, currentThread().ident);
  const rng = new Rng(seed);
  let seq = 0;
  while (!stop.isSet()) {
    const item = newItem(L, rng, t, seq++);
    if (!item) return await idle(L, stop);
    const [mine, theirs] = Pipe<Token | { ack: number }>();
    mine.send({ id: item.id, c: item.c });
    item.end = theirs;
    setBit(L, PIPE_ITEM, item.id);
    if (!(await putItem(pq, item, stop, rng, mode))) {
      setBit(L, ABANDONED, item.id);
      mine.close();
      theirs.close();
      return;
    }
    setBit(L, PUT, item.id);
    done(L, t);
    if (useSync(mode, rng)) ret.putSync({ id: item.id, end: mine });
    else await ret.put({ id: item.id, end: mine });
    if (rng.chance(0.3) && await pause(stop, rng, useSync(mode, rng))) return;
  }
}

/**
 * Gets items carrying a pipe end from `pq`: receives the token the
 * producer sent before the put (it must be there, whatever became of the
 * producer), acknowledges through the end, and closes it.
 */
export async function pipeConsumer(
  L: Ledger,
  stop: Event,
  pq: Queue<Item>,
  t: number,
  seed: number,
  mode: Mode,
): Promise<void> {
  threadRuns(L, t, currentThread().ident);
  const rng = new Rng(seed);
  while (!stop.isSet()) {
    const sync = useSync(mode, rng);
    setState(L, t, IN_GET + 1);
    const v = await getItem(pq, rng, sync);
    const item = v === undefined ? undefined : recordGot(L, v);
    setState(L, t, RUNNING);
    if (v === undefined) {
      if (await pause(stop, rng, sync)) return;
      continue;
    }
    done(L, t);
    if (!item) continue;
    const end = item.end as Connection<Token | { ack: number }>;
    let token: unknown;
    try {
      token = sync ? end.recvSync({ timeout: 5000 }) : await end.recv({ timeout: 5000 });
    } catch {
      token = undefined;
    }
    const tk = token as Token | undefined;
    if (tk?.id !== item.id || tk.c !== item.c) bump(L, PIPE_BAD);
    try {
      end.send({ ack: item.id });
      setBit(L, ACKED, item.id);
    } catch (e) {
      if (!(e instanceof ClosedError)) throw e;
    }
    end.close();
    if (rng.chance(0.1) && await pause(stop, rng, sync)) return;
  }
}

/**
 * Takes `prim` (a lock, or a semaphore of `permits`) and stays inside for a
 * few steps, checking at entry and after each step that no more than
 * `permits` live threads are inside (`tooMany`), then leaves and releases.
 */
export async function holder(
  L: Ledger,
  stop: Event,
  prim: Lock | Semaphore,
  seats: number,
  permits: number,
  t: number,
  seat: number,
  seed: number,
  mode: Mode,
): Promise<void> {
  const ident = currentThread().ident;
  threadRuns(L, t, ident);
  const rng = new Rng(seed);
  while (!stop.isSet()) {
    const sync = useSync(mode, rng);
    const how = rng.int(0, 3);
    let ok: boolean;
    if (how === 0) ok = sync ? prim.acquireSync({ block: false }) : await prim.acquire({ block: false });
    else if (how === 1) ok = sync ? prim.acquireSync() : await prim.acquire();
    else {
      const timeout = rng.pick(TIMEOUTS);
      ok = sync ? prim.acquireSync({ timeout }) : await prim.acquire({ timeout });
    }
    if (!ok) {
      if (await pause(stop, rng, sync)) return;
      continue;
    }
    if (prim.ownerDied) bump(L, RECOVERED);
    enter(L, seats, seat, ident);
    // With too many inside, how many permits the semaphore still has free
    // tells an inflated count from holders it forgot.
    const check = () => {
      if (tooMany(L, seats, seat, permits) === 0) return false;
      if ("getValue" in prim) raise(L, MOST_FREE, prim.getValue());
      return true;
    };
    let bad = check();
    for (let steps = rng.int(0, 3); steps > 0; steps--) {
      const step = rng.int(0, 2);
      if (step === 0) stop.waitSync(rng.pick(PAUSES));
      else if (step === 1) await stop.wait(rng.pick(PAUSES));
      else for (let i = rng.int(0, 20_000); i > 0; i--) Atomics.load(L.cells, NEXT_ITEM);
      bad = check() || bad;
    }
    leave(L, seats, seat);
    prim.release();
    if (bad) {
      bump(L, MUTEX);
      Atomics.compareExchange(L.cells, FIRST_VIOLATOR, 0, t + 1);
    }
    done(L, t);
    if (rng.chance(0.2) && await pause(stop, rng, sync)) return;
  }
}

// ---- pool tasks --------------------------------------------------------------

/** Pool task kinds. */
export const TASK_OK = 0;
export const TASK_THROW = 1;
export const TASK_EXIT = 2;

let poolLedger: Ledger | undefined;

/** Takes one request from counter `index`; `true` when there was one. */
function takeArm(L: Ledger, index: number): boolean {
  for (;;) {
    const n = Atomics.load(L.cells, index);
    if (n <= 0) return false;
    if (Atomics.compareExchange(L.cells, index, n, n - 1) === n) return true;
  }
}

/** Ends this worker as a crashing task would (`process.exit`). */
async function die(): Promise<never> {
  (globalThis as unknown as { process: { exit(code: number): void } }).process.exit(1);
  // Not reached where process.exit ends the worker at once.
  return await new Promise<never>(() => {});
}

/**
 * The pool's initializer: keeps the ledger, and makes the worker end right
 * after it takes a task record when the main thread asked for it (the
 * pool's fault-injection hook: the task is taken but not yet recorded).
 */
export function poolInit(L: Ledger): void {
  poolLedger = L;
  (globalThis as Record<symbol, unknown>)[Symbol.for("@mpjs/multiprocessing/pool.afterTake")] = () => {
    if (!takeArm(L, TAKE_ARM)) return;
    Atomics.add(L.cells, TAKE_KILLS, 1);
    (globalThis as unknown as { process: { exit(code: number): void } }).process.exit(1);
  };
}

/**
 * A pool task: marks task `id` ran (a second run is counted), then returns
 * `id * 3 + 1` (after `delay` ms), throws, or ends its worker, as `kind`
 * says; an OK task also ends its worker when the main thread asked for it.
 * A task that ends its worker marks `DIED` first.
 */
export async function poolTask(id: number, kind: number, delay: number): Promise<number> {
  const L = poolLedger!;
  if (setBit(L, RAN, id)) bump(L, RERUNS);
  if (delay > 0) await sleep(delay);
  if (kind === TASK_THROW) throw new Error(`boom ${id}`);
  if (kind === TASK_EXIT || takeArm(L, TASK_ARM)) {
    setBit(L, DIED, id);
    return await die();
  }
  return id * 3 + 1;
}

/** {@linkcode poolTask} with its arguments in one array, for `Pool.map`. */
export function poolTaskOf(call: [number, number, number]): Promise<number> {
  return poolTask(...call);
}
