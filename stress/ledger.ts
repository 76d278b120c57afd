// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The chaos runner's ledger: shared memory in which the worker threads of a
 * round record, with `Atomics`, every operation they complete, so that the
 * main thread can check at the end what the library delivered.
 *
 * `cells` (an `Int32Array`):
 *
 * | index              | written by                          | meaning                                       |
 * |--------------------|-------------------------------------|-----------------------------------------------|
 * | `NEXT_ITEM`        | producers, `Atomics.add`            | the next item id (ids are never reused)       |
 * | `OPS`              | every role, `Atomics.add`           | operations completed                          |
 * | `DUPLICATES`       | getters                             | items received a second time                  |
 * | `PHANTOMS`         | getters                             | items no producer made (bad id or contents)   |
 * | `MUTEX`            | holders                             | confirmed mutual-exclusion violations         |
 * | `PIPE_BAD`         | pipe consumers                      | an end's message missing or not the one sent  |
 * | `ENTRIES`          | holders, `Atomics.add`              | critical-section entries (token numbers)      |
 * | `RECOVERED`        | holders                             | acquires that reported `ownerDied`            |
 * | `TASK_ARM`         | the main thread (+1), pool tasks (CAS -1) | pool tasks asked to end their worker    |
 * | `TAKE_ARM`         | the main thread (+1), pool workers (CAS -1) | workers asked to end right after a take |
 * | `TAKE_KILLS`       | pool workers                        | workers that ended right after a take         |
 * | `RERUNS`           | pool tasks                          | tasks that ran a second time                  |
 * | `OUT_OF_IDS`       | producers                           | producers that found no item id left          |
 * | `MOST_INSIDE`      | holders, CAS up                     | the most holders seen inside at once (two scans) |
 * | `ZOMBIE`           | every role                          | operations completed by a thread the registry marks dead |
 * | `FIRST_VIOLATOR`   | holders, CAS from 0                 | `t + 1` of the first thread that saw too many inside |
 * | `MOST_FREE`        | holders, CAS up                     | the most free permits (`getValue()`) read while too many were inside |
 * | `THREADS`+3t       | thread t                            | its ident, once it runs                       |
 * | `THREADS`+3t+1     | thread t                            | its state: `RUNNING`, or `IN_GET`+q while in a get from queue q |
 * | `THREADS`+3t+2     | thread t                            | operations it completed                       |
 * | bitmaps            | see `PUT` … `DIED` below            | one bit per item or task id                   |
 *
 * `seats` (a `BigInt64Array`): for each primitive, one cell per seat (a
 * holder thread has a seat of its own) holding the token of the critical
 * section that thread is in, `ident << 32 | entry number`, or 0. Tokens are
 * never reused, so a reader that sees the same token in two scans knows that
 * entry stayed inside for the whole time between them.
 *
 * @module
 */

import { isIdentAlive } from "../_registry.ts";

export const NEXT_ITEM = 0;
export const OPS = 1;
export const DUPLICATES = 2;
export const PHANTOMS = 3;
export const MUTEX = 4;
export const PIPE_BAD = 5;
export const ENTRIES = 6;
export const RECOVERED = 7;
export const TASK_ARM = 8;
export const TAKE_ARM = 9;
export const TAKE_KILLS = 10;
export const RERUNS = 11;
export const OUT_OF_IDS = 12;
export const MOST_INSIDE = 13;
export const ZOMBIE = 14;
export const FIRST_VIOLATOR = 15;
export const MOST_FREE = 16;
/** Sizes, written by {@linkcode createLedger}. */
const MAX_THREADS = 24;
const MAX_ITEMS = 25;
const MAX_TASKS = 26;
const HEADER = 32;
/** Cells per thread. */
const SLOT = 3;

/** Thread states. */
export const RUNNING = 1;
/** `IN_GET + q`: inside a get from queue `q` (0: items, 1: pipe ends). */
export const IN_GET = 2;

/** Bitmaps (in this order after the thread slots). */
export const PUT = 0; // item: its put returned
export const GOT = 1; // item: received (by a consumer, or by the main thread's final drain)
export const PIPE_ITEM = 2; // item: it went into the pipe-end queue
export const ACKED = 3; // item: the consumer's acknowledgement went through its end
export const ABANDONED = 4; // item: its producer gave up putting it (every attempt failed)
export const RAN = 5; // pool task: started running
export const DIED = 6; // pool task: ended its worker on purpose
const ITEM_MAPS = 5;

/** Seats per primitive. */
export const SEATS = 64;
/** Primitives with seats: the lock, the semaphore. */
export const LOCK_SEATS = 0;
export const SEM_SEATS = 1;

/** What threads and the main thread share. */
export interface Ledger {
  cells: Int32Array;
  seats: BigInt64Array;
}

/** Sizes of a ledger. */
export interface LedgerSizes {
  threads: number;
  items: number;
  tasks: number;
}

/** A zeroed ledger for a round. */
export function createLedger(sizes: LedgerSizes): Ledger {
  const itemWords = Math.ceil(sizes.items / 32);
  const taskWords = Math.ceil(sizes.tasks / 32);
  const n = HEADER + SLOT * sizes.threads + ITEM_MAPS * itemWords + 2 * taskWords;
  const cells = new Int32Array(new SharedArrayBuffer(4 * n));
  cells[MAX_THREADS] = sizes.threads;
  cells[MAX_ITEMS] = itemWords * 32;
  cells[MAX_TASKS] = taskWords * 32;
  const seats = new BigInt64Array(new SharedArrayBuffer(8 * 2 * SEATS));
  return { cells, seats };
}

export function maxThreads(L: Ledger): number {
  return L.cells[MAX_THREADS];
}

export function maxItems(L: Ledger): number {
  return L.cells[MAX_ITEMS];
}

export function maxTasks(L: Ledger): number {
  return L.cells[MAX_TASKS];
}

function bitmapAt(L: Ledger, map: number): number {
  const c = L.cells;
  const itemWords = c[MAX_ITEMS] / 32;
  const base = HEADER + SLOT * c[MAX_THREADS];
  return map < RAN ? base + map * itemWords : base + ITEM_MAPS * itemWords + (map - RAN) * (c[MAX_TASKS] / 32);
}

function bitmapSize(L: Ledger, map: number): number {
  return map < RAN ? L.cells[MAX_ITEMS] : L.cells[MAX_TASKS];
}

/** Sets bit `i` of bitmap `map`; returns whether it was set already. */
export function setBit(L: Ledger, map: number, i: number): boolean {
  const bit = 1 << (i & 31);
  return (Atomics.or(L.cells, bitmapAt(L, map) + (i >>> 5), bit) & bit) !== 0;
}

/** Whether bit `i` of bitmap `map` is set. */
export function hasBit(L: Ledger, map: number, i: number): boolean {
  return (Atomics.load(L.cells, bitmapAt(L, map) + (i >>> 5)) & (1 << (i & 31))) !== 0;
}

/** The ids whose bit is set in `map` and, when `and` is given, in `and`, and not in `not`. */
export function bitsWhere(L: Ledger, map: number, opts: { and?: number; not?: number[] } = {}): number[] {
  const at = bitmapAt(L, map);
  const andAt = opts.and === undefined ? -1 : bitmapAt(L, opts.and);
  const notAt = (opts.not ?? []).map((m) => bitmapAt(L, m));
  const out: number[] = [];
  const words = bitmapSize(L, map) / 32;
  for (let w = 0; w < words; w++) {
    let v = Atomics.load(L.cells, at + w);
    if (andAt >= 0) v &= Atomics.load(L.cells, andAt + w);
    for (const n of notAt) v &= ~Atomics.load(L.cells, n + w);
    while (v !== 0) {
      const b = 31 - Math.clz32(v & -v);
      out.push(w * 32 + b);
      v &= v - 1;
    }
  }
  return out;
}

/** How many bits of `map` are set. */
export function countBits(L: Ledger, map: number): number {
  const at = bitmapAt(L, map);
  let n = 0;
  const words = bitmapSize(L, map) / 32;
  for (let w = 0; w < words; w++) {
    let v = Atomics.load(L.cells, at + w);
    while (v !== 0) {
      v &= v - 1;
      n++;
    }
  }
  return n;
}

/** Adds `n` to counter `index`. */
export function bump(L: Ledger, index: number, n = 1): void {
  Atomics.add(L.cells, index, n);
}

/** Reads counter `index`. */
export function read(L: Ledger, index: number): number {
  return Atomics.load(L.cells, index);
}

/** Thread `t` runs, with this ident. */
export function threadRuns(L: Ledger, t: number, ident: number): void {
  Atomics.store(L.cells, HEADER + SLOT * t, ident);
  Atomics.store(L.cells, HEADER + SLOT * t + 1, RUNNING);
}

/**
 * Thread `t` completed an operation. A thread that the registry marks dead
 * must not run any more (its locks may be recovered): if it does, `ZOMBIE`
 * counts it.
 */
export function done(L: Ledger, t: number): void {
  Atomics.add(L.cells, OPS, 1);
  Atomics.add(L.cells, HEADER + SLOT * t + 2, 1);
  if (!isIdentAlive(Atomics.load(L.cells, HEADER + SLOT * t))) Atomics.add(L.cells, ZOMBIE, 1);
}

/** How many operations thread `t` completed. */
export function doneBy(L: Ledger, t: number): number {
  return Atomics.load(L.cells, HEADER + SLOT * t + 2);
}

/** Sets thread `t`'s state. */
export function setState(L: Ledger, t: number, state: number): void {
  Atomics.store(L.cells, HEADER + SLOT * t + 1, state);
}

/** Thread `t`'s state (0 until it runs). */
export function stateOf(L: Ledger, t: number): number {
  return Atomics.load(L.cells, HEADER + SLOT * t + 1);
}

// ---- items -------------------------------------------------------------------

/** A checksum of an item's identity, so that a corrupted or made-up item is seen. */
export function itemCheck(id: number, producer: number, seq: number): number {
  let h = Math.imul(id ^ 0x5bd1e995, 0x27d4eb2d) ^ Math.imul(producer + 1, 0x165667b1) ^ Math.imul(seq + 7, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** The bytes of an item's payload (if it has one): a pattern derived from its id. */
export function payloadFor(id: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = itemCheck(id, length, 1);
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** An item as it travels through a queue. */
export interface Item {
  id: number;
  p: number;
  seq: number;
  c: number;
  data?: Uint8Array;
  end?: unknown;
}

/** Whether `v` is an item some producer made, with its contents intact. */
export function itemValid(L: Ledger, v: unknown): v is Item {
  if (typeof v !== "object" || v === null) return false;
  const it = v as Item;
  if (!Number.isInteger(it.id) || it.id < 0 || it.id >= Atomics.load(L.cells, NEXT_ITEM)) return false;
  if (it.c !== itemCheck(it.id, it.p, it.seq)) return false;
  if (it.data !== undefined) {
    if (!(it.data instanceof Uint8Array)) return false;
    const want = payloadFor(it.id, it.data.length);
    for (let i = 0; i < want.length; i++) if (it.data[i] !== want[i]) return false;
  }
  return true;
}

/**
 * Records a received item: a phantom, a duplicate, or its first delivery.
 * One `Atomics.or` marks it got, so a getter killed around this call either
 * recorded it or did not.
 */
export function recordGot(L: Ledger, v: unknown): Item | undefined {
  if (!itemValid(L, v)) {
    bump(L, PHANTOMS);
    return undefined;
  }
  if (setBit(L, GOT, v.id)) bump(L, DUPLICATES);
  return v;
}

// ---- critical sections ---------------------------------------------------------

/** Enters a critical section of primitive `prim` in `seat`; returns the entry's token. */
export function enter(L: Ledger, prim: number, seat: number, ident: number): bigint {
  const n = Atomics.add(L.cells, ENTRIES, 1) >>> 0;
  const token = (BigInt(ident) << 32n) | BigInt(n);
  Atomics.store(L.seats, prim * SEATS + seat, token);
  return token;
}

/** Leaves the critical section entered with `token`. */
export function leave(L: Ledger, prim: number, seat: number): void {
  Atomics.store(L.seats, prim * SEATS + seat, 0n);
}

/** The tokens of live threads' critical sections, other than `seat`'s. */
function others(L: Ledger, prim: number, seat: number): bigint[] {
  const out: bigint[] = [];
  for (let s = 0; s < SEATS; s++) {
    if (s === seat) continue;
    const v = Atomics.load(L.seats, prim * SEATS + s);
    if (v !== 0n && isIdentAlive(Number(v >> 32n))) out.push(v);
  }
  return out;
}

/**
 * How many threads are inside at once, counting the caller (who is
 * inside), when that is more than `permits`; else 0. A single scan is not a
 * snapshot (an entry can leave and another come in while it reads), so an
 * excess must be seen in two scans, one after the other, with the same
 * tokens: each of those entries then stayed inside from the first scan to
 * the second, all at once. Entries of threads marked dead do not count
 * (their permits may have been recovered), except the caller's: a thread
 * that runs was not stopped, whatever the registry says. An excess is also
 * recorded in `MOST_INSIDE`.
 */
export function tooMany(L: Ledger, prim: number, seat: number, permits: number): number {
  const first = others(L, prim, seat);
  if (first.length + 1 <= permits) return 0;
  const second = new Set(others(L, prim, seat));
  let inside = 1;
  for (const v of first) if (second.has(v)) inside++;
  if (inside <= permits) return 0;
  raise(L, MOST_INSIDE, inside);
  return inside;
}

/** Raises counter `index` to `value` if it is lower. */
export function raise(L: Ledger, index: number, value: number): void {
  for (let most = Atomics.load(L.cells, index); most < value;) {
    const seen = Atomics.compareExchange(L.cells, index, most, value);
    if (seen === most) break;
    most = seen;
  }
}
