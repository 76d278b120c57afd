// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Queue`, `JoinableQueue` and `SimpleQueue`: Python's `multiprocessing`
 * queues, multi-producer and multi-consumer, in shared memory.
 *
 * Each item is encoded once into the queue's shared buffer by the thread
 * that puts it and decoded once by the thread that gets it; no message is
 * posted per item and no broker thread runs. Pass a queue to
 * another thread in a `Thread`'s `args`, or inside an item of another queue.
 *
 * ## Handles inside items
 *
 * Items may hold this library's own objects anywhere inside (`Queue`,
 * `Lock`, `Event`, `SharedValue`, a `Connection` end, …): the thread that
 * gets the item gets working objects over the same shared memory. Their
 * buffers cannot be written into the queue's bytes, so they travel through
 * the *post office*, one small worker the main thread starts the first
 * time a handle is sent this way (it never keeps the program alive and
 * sleeps while idle; a program that never does this never starts it): the
 * putting thread deposits each object there before the item is published,
 * the item carries only a number, and a getter that has not seen that object
 * yet fetches it (a wait of about 50–100 µs, once per object and thread).
 * Sending the same object again deposits nothing more, and a thread that
 * gets it again gets the same instance back.
 *
 * - A `Connection` end moves, as in `args`: the sender's copy is detached
 *   once the item is in the queue. A put that fails (`FullError`,
 *   `ClosedError`, an aborted signal) leaves the end with the sender, still
 *   usable. While the item waits in the queue the end counts as open,
 *   whatever becomes of the thread that sent it; once a thread has taken
 *   the item, the end is that thread's and closes if the thread dies (on
 *   Node and Bun, a thread stopped in the moment between taking the item
 *   and rebuilding the end inside may still leave the end open).
 * - Memory: the post office keeps what rebuilds each object sent this way
 *   (its `SharedArrayBuffer`s) until no thread holds an object for it and
 *   every item naming it has been read; a `Connection` end is dropped once
 *   received. A thread lets go of the objects it dropped when the garbage
 *   collector has collected them and the thread returns to its event loop
 *   (awaits), so a thread that never does, or that ended, keeps what it
 *   held.
 * - Browsers cannot receive a message synchronously, which a getter needs:
 *   there, a handle inside an item throws a `TypeError` (pass it in `args`).
 *
 * @example Producer and consumer threads
 * ```ts
 * import { Queue, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new Queue<number | null>();
 * const t = new Thread({
 *   target: async (q: Queue<number | null>) => {
 *     for (let i = 0; i < 3; i++) await q.put(i);
 *     await q.put(null);
 *   },
 *   args: [q],
 * });
 * t.start();
 * const got: number[] = [];
 * for (let x = await q.get(); x !== null; x = await q.get()) got.push(x);
 * await t.join();
 * assert.deepEqual(got, [0, 1, 2]);
 * ```
 *
 * @module
 */

import { copyBytes } from "./_codec.ts";
import { ClosedError, EmptyError, FullError } from "./errors.ts";
import { registerHandler } from "./_handles.ts";
import { heldMoves, heldOwnedIds, holdMoves, type Move, settleMoves } from "./_post.ts";
import { Kind, readItem, withMovedIds, writeItem } from "./_record.ts";
import {
  MAX_PAYLOAD,
  type PutStatus,
  Ring,
  type RingMemory,
  RingStatus,
  type Taken,
  type TakeStatus,
} from "./_ring.ts";
import { assertCanBlock, now, waitAsync, waitSync } from "./_wait.ts";
import { checkBlock, checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";

/**
 * Options of {@linkcode Queue.put} and {@linkcode Queue.putSync}.
 *
 * @example
 * ```ts
 * import { FullError, Queue, type QueuePutOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new Queue<number>(1);
 * q.putNowait(1);
 * const options: QueuePutOptions = { timeout: 10 };
 * await assert.rejects(q.put(2, options), FullError);
 * q.close();
 * ```
 */
export interface QueuePutOptions {
  /**
   * Whether to wait for room in a full queue. When `false`, a full queue
   * fails at once with `FullError` and `timeout` is ignored.
   * @default {true}
   */
  block?: boolean;
  /** How long to wait for room, in milliseconds. @default {undefined} wait without a time limit */
  timeout?: number;
  /** Stops the wait: the promise rejects with the signal's reason and nothing is put. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Queue.get} and {@linkcode Queue.getSync}.
 *
 * @example
 * ```ts
 * import { EmptyError, Queue, type QueueGetOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new Queue<number>();
 * const options: QueueGetOptions = { block: false };
 * await assert.rejects(q.get(options), EmptyError);
 * q.close();
 * ```
 */
export interface QueueGetOptions {
  /**
   * Whether to wait for an item in an empty queue. When `false`, an empty
   * queue fails at once with `EmptyError` and `timeout` is ignored.
   * @default {true}
   */
  block?: boolean;
  /** How long to wait for an item, in milliseconds. @default {undefined} wait without a time limit */
  timeout?: number;
  /** Stops the wait: the promise rejects with the signal's reason and nothing is taken. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode JoinableQueue.join} and {@linkcode JoinableQueue.joinSync}.
 *
 * @example
 * ```ts
 * import { JoinableQueue, type QueueJoinOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new JoinableQueue<string>();
 * q.putNowait("job");
 * const options: QueueJoinOptions = { timeout: 10 };
 * await q.join(options); // times out: the job is not done
 * assert.equal(q.qsize(), 1);
 * q.close();
 * ```
 */
export interface QueueJoinOptions {
  /** How long to wait, in milliseconds; `join` then just returns. @default {undefined} wait without a time limit */
  timeout?: number;
  /** Stops the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

// ---- shared between Queue and SimpleQueue ------------------------------------

interface Checked {
  block: boolean;
  ms: number;
  signal: AbortSignal | undefined;
}

/** What no options mean: block, with no time limit (shared: the callers only read it). */
const DEFAULT_OPTIONS: Checked = Object.freeze({ block: true, ms: Infinity, signal: undefined });

function checkWaitOptions(
  options: QueuePutOptions | QueueGetOptions | undefined,
  what: string,
): Checked {
  const checked = checkOptions<QueuePutOptions>(options, what, false, "call ");
  if (checked === undefined) return DEFAULT_OPTIONS;
  const block = checkBlock(checked.block, what, "call ");
  const ms = checkTimeout(checked.timeout, what);
  const signal = checkSignal(checked.signal, what, "call ");
  return { block: Boolean(block), ms: block ? ms : 0, signal };
}

function closedForPut(item: unknown): ClosedError {
  return new ClosedError("Cannot put an item in a closed queue", { value: item });
}

function closedForGet(): ClosedError {
  return new ClosedError("The queue is closed and drained");
}

function tooLarge(len: number): RangeError {
  return new RangeError(
    `Cannot put an item of ${len} bytes: a queue holds items of at most ${MAX_PAYLOAD} bytes`,
  );
}

/**
 * The error for a wait that ran out of time: it says how long it waited, as
 * a `timeout` meant as seconds (Python's) waits that many milliseconds.
 */
function timedOut(kind: typeof EmptyError | typeof FullError, what: string, ms: number): Error {
  const state = kind === FullError ? "full" : "empty";
  return new kind(`The queue is ${state}: ${what} timed out after ${ms} ms (timeouts are in milliseconds)`);
}

/**
 * A record that must wait for room or a lock after its first attempt:
 * copied out of the encoder's buffer (the thread runs other code meanwhile),
 * with the moves of the handles inside it, done once it is in.
 */
interface Pending {
  bytes: Uint8Array;
  kind: number;
  moves: Move[] | undefined;
}

/** How {@linkcode putRecord} puts: once, waiting for a lock (`putNowait`). */
const ONCE = 0;
/** Blocking the thread, for up to the timeout (`putSync`). */
const BLOCKING = 1;
/** Once without waiting for a lock; a record that must wait is copied to a {@linkcode Pending} (`put`). */
const FIRST_OF_ASYNC = 2;

/**
 * Encodes `item` and puts its record as `how` says. The moves of the
 * handles inside the item (`Connection` ends) are done when the put went in
 * and given up otherwise; a {@linkcode Pending} record keeps them. An item
 * holding ends lists them in its record (`_record.ts`), so that its taker
 * claims them before it lets go of the queue.
 */
function putRecord(
  ring: Ring,
  item: unknown,
  how: typeof ONCE | typeof BLOCKING | typeof FIRST_OF_ASYNC,
  ms: number,
  block: boolean,
): PutStatus | Pending {
  holdMoves();
  let result: PutStatus | Pending | undefined;
  let moves: Move[] | undefined;
  try {
    result = writeItem(item, (bytes, start, end, kind) => {
      const ids = heldOwnedIds();
      if (ids !== undefined) {
        bytes = withMovedIds(bytes, start, end, ids);
        start = 0;
        end = bytes.length;
        kind |= Kind.MOVES;
      }
      if (end - start > MAX_PAYLOAD) throw tooLarge(end - start);
      // The thread blocks inside the call, so the encoder's bytes stay as they are.
      if (how === BLOCKING) return ring.putSync(bytes, kind, ms, start, end);
      const status = ring.put(bytes, kind, how === ONCE, start, end);
      if (how === FIRST_OF_ASYNC && (status === RingStatus.BUSY || (status === RingStatus.FULL && block))) {
        return { bytes: copyBytes(bytes, start, end), kind, moves: undefined };
      }
      return status;
    });
  } finally {
    moves = heldMoves();
    if (typeof result !== "object") settleMoves(moves, result === RingStatus.OK);
  }
  if (typeof result === "object") result.moves = moves;
  return result;
}

/** Throws what a put that did not go in ended with. */
function putFailed(status: PutStatus, item: unknown, block: boolean, what: string, ms: number): never {
  if (status === RingStatus.CLOSED) throw closedForPut(item);
  throw block ? timedOut(FullError, what, ms) : new FullError();
}

function putNowait(ring: Ring, item: unknown): void {
  if (ring.closed) throw closedForPut(item);
  const status = putRecord(ring, item, ONCE, 0, false) as PutStatus;
  if (status !== RingStatus.OK) putFailed(status, item, false, "", 0);
}

function putSync(ring: Ring, item: unknown, options: QueuePutOptions | undefined, what: string): void {
  const { block, ms } = checkWaitOptions(options, what);
  if (block) assertCanBlock(what);
  if (ring.closed) throw closedForPut(item);
  const status = putRecord(ring, item, BLOCKING, ms, block) as PutStatus;
  if (status !== RingStatus.OK) putFailed(status, item, block, what, ms);
}

async function putAsync(ring: Ring, item: unknown, options: QueuePutOptions | undefined, what: string): Promise<void> {
  const { block, ms, signal } = checkWaitOptions(options, what);
  if (signal?.aborted) throw signal.reason;
  if (ring.closed) throw closedForPut(item);
  const first = putRecord(ring, item, FIRST_OF_ASYNC, ms, block);
  let status: PutStatus;
  if (typeof first === "number") status = first;
  else {
    let done = false;
    try {
      status = await ring.putAsync(first.bytes, first.kind, ms, signal);
      done = status === RingStatus.OK;
    } finally {
      settleMoves(first.moves, done);
    }
  }
  if (status !== RingStatus.OK) putFailed(status, item, block, what, ms);
}

/** The item of a record taken, or the error of a take that took nothing. */
function got(taken: Taken | TakeStatus, block: boolean, what: string, ms: number): unknown {
  if (typeof taken === "object") return readItem(taken.kind, taken.bytes, taken.length);
  if (taken === RingStatus.CLOSED) throw closedForGet();
  throw block ? timedOut(EmptyError, what, ms) : new EmptyError();
}

function getNowait(ring: Ring): unknown {
  return got(ring.take(true), false, "", 0);
}

function getSync(ring: Ring, options: QueueGetOptions | undefined, what: string): unknown {
  const { block, ms } = checkWaitOptions(options, what);
  return got(ring.takeSync(ms, what), block, what, ms);
}

async function getAsync(ring: Ring, options: QueueGetOptions | undefined, what: string): Promise<unknown> {
  const { block, ms, signal } = checkWaitOptions(options, what);
  if (signal?.aborted) throw signal.reason;
  const first = ring.take(false);
  if (first !== RingStatus.BUSY && (first !== RingStatus.EMPTY || !block)) return got(first, block, what, ms);
  let item: unknown;
  const status = await ring.takeAsync(
    (t) => {
      item = readItem(t.kind, t.bytes, t.length);
    },
    ms,
    signal,
  );
  return status === RingStatus.OK ? item : got(status, block, what, ms);
}

/** Yields what `get` gives until it rejects with `ClosedError` (the queue is closed and drained). */
async function* untilClosed<T>(get: () => Promise<T>): AsyncGenerator<T, void, undefined> {
  for (;;) {
    let item: T;
    try {
      item = await get();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    yield item;
  }
}

/** Milliseconds left until `end` (`Infinity` without reading the clock). */
function remaining(end: number): number {
  return end === Infinity ? Infinity : end - now();
}

function checkMaxsize(maxsize: unknown, what: string): number {
  if (typeof maxsize !== "number") {
    throw new TypeError(`Cannot create ${what} as 'maxsize' must be a number: current value is ${String(maxsize)}`);
  }
  if (!Number.isInteger(maxsize) || maxsize > 0x7fffffff) {
    throw new RangeError(
      `Cannot create ${what} as 'maxsize' must be an integer of at most ${0x7fffffff}: current value is ${
        String(maxsize)
      }`,
    );
  }
  return maxsize;
}

/** Set while a handle is rebuilt in a receiving thread: the constructor adopts it. */
let adopting: Ring | undefined;

/** The transport of a queue, for `JoinableQueue` (set in `Queue`'s static block). */
let ringOf: (q: Queue) => Ring;
/** Drops what is left in a closed queue (set by Queue's static block, for JoinableQueue). */
let dropAll: (q: Queue, dropped?: () => void) => void;

/**
 * Options of `close()` on a queue.
 *
 * @example
 * ```ts
 * import { type CloseOptions, Queue } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new Queue<string>();
 * q.putNowait("left over");
 * const options: CloseOptions = { immediate: true };
 * q.close(options);
 * assert.equal(q.qsize(), 0);
 * ```
 */
export interface CloseOptions {
  /**
   * Also drop the items left in the queue (Python 3.13's
   * `shutdown(immediate=True)`); for a `JoinableQueue`, each dropped item
   * counts as done, so `join()` returns.
   * @default {false} leave them to be taken
   */
  immediate?: boolean;
}

function checkImmediate(options: unknown, what: string): boolean {
  const o = checkOptions<CloseOptions>(options, what, false, "call ");
  const immediate = o?.immediate;
  if (immediate !== undefined && typeof immediate !== "boolean") {
    throw new TypeError(`Cannot call ${what} as 'immediate' must be a boolean: current value is ${show(immediate)}`);
  }
  return immediate === true;
}

// ---- Queue ---------------------------------------------------------------------

/**
 * A first-in, first-out queue shared by threads: Python's
 * `multiprocessing.Queue`. Any number of threads may put and get; each item
 * is delivered to exactly one getter, in the order each producer put them.
 *
 * Items are structured-clone values (see `docs/python_guide.md`): plain
 * data is copied, so a getter receives its own copy, while shared memory
 * (`SharedArrayBuffer`s and views over them) and this library's handles stay
 * shared. Sizes (`qsize`, `empty`, `full`) are snapshots: other threads may
 * change them at any moment.
 *
 * @typeParam T The type of the items.
 *
 * @example Python's put / full / putNowait demo
 * ```ts
 * import { FullError, Queue } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new Queue<string>(3);
 * await q.put("m1");
 * await q.put("m2");
 * assert.equal(q.full(), false);
 * await q.put("m3");
 * assert.equal(q.full(), true);
 * await assert.rejects(q.put("m4", { timeout: 10 }), FullError);
 * assert.throws(() => q.putNowait("m4"), FullError);
 * assert.equal(q.qsize(), 3);
 * assert.deepEqual([q.getNowait(), q.getNowait(), q.getNowait()], ["m1", "m2", "m3"]);
 * assert.equal(q.empty(), true);
 * ```
 */
export class Queue<T = unknown> implements AsyncIterable<T> {
  #ring: Ring;

  /**
   * Creates a queue.
   *
   * @param maxsize The most items the queue holds; `0` or less means
   *   unbounded (bounded only by memory: items up to 1 GiB).
   * @default {0}
   * @throws {RangeError} when `maxsize` is not an integer.
   * @throws {TypeError} when `maxsize` is not a number.
   */
  constructor(maxsize: number = 0) {
    if (adopting) {
      this.#ring = adopting;
      adopting = undefined;
      return;
    }
    this.#ring = Ring.create(checkMaxsize(maxsize, "queue"));
  }

  /** The most items the queue holds; `0` means unbounded. */
  get maxsize(): number {
    return this.#ring.maxsize;
  }

  /** Whether {@linkcode Queue.close} was called (by any thread). */
  get closed(): boolean {
    return this.#ring.closed;
  }

  /**
   * Puts `item` at the end of the queue, waiting for room while the queue is
   * full.
   *
   * @param item What to put: a structured-clone value, which may hold this
   *   library's handles (`Queue`, `Lock`, `SharedValue`, a `Connection`
   *   end, …) anywhere inside; the getter gets working handles (see "Handles
   *   inside items" in the module docs).
   * @param options `block`, `timeout`, `signal`; see {@linkcode QueuePutOptions}.
   * @returns A promise that resolves once the item is in the queue.
   * @throws {FullError} (rejects) when there is no room: at once when not
   *   blocking, else after `timeout`.
   * @throws {ClosedError} (rejects) when the queue is closed, or closes while
   *   waiting; `.value` is the item.
   * @throws {TypeError} (rejects) when the item cannot be sent; nothing is put.
   * @throws {RangeError} (rejects) when `timeout` is not a finite number >= 0.
   *
   * @example Waiting for room
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>(1);
   * await q.put(1);
   * const putting = q.put(2); // waits until the first item is taken
   * assert.equal(await q.get(), 1);
   * await putting;
   * assert.equal(await q.get(), 2);
   * ```
   *
   * @example A reply queue inside each job
   * ```ts
   * import { Queue, Thread } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * type Job = { n: number; reply: Queue<number> } | null;
   * const jobs = new Queue<Job>();
   * const t = new Thread({
   *   target: (jobs: Queue<Job>) => {
   *     for (let job = jobs.getSync(); job !== null; job = jobs.getSync()) job.reply.putSync(job.n * 2);
   *   },
   *   args: [jobs],
   * });
   * t.start();
   * const reply = new Queue<number>();
   * await jobs.put({ n: 21, reply });
   * assert.equal(await reply.get(), 42);
   * await jobs.put(null);
   * await t.join();
   * ```
   */
  put(item: T, options?: QueuePutOptions): Promise<void> {
    return putAsync(this.#ring, item, options, "Queue.put()");
  }

  /**
   * The blocking twin of {@linkcode Queue.put}, for workers and server main
   * threads.
   *
   * @param item What to put.
   * @param options `block`, `timeout`; see {@linkcode QueuePutOptions}.
   * @throws {FullError} when there is no room (at once, or after `timeout`).
   * @throws {ClosedError} when the queue is closed.
   * @throws {TypeError} when the item cannot be sent.
   * @throws {RangeError} when `timeout` is not a finite number >= 0.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<{ n: number }>();
   * q.putSync({ n: 1 });
   * assert.deepEqual(q.getSync(), { n: 1 });
   * ```
   */
  putSync(item: T, options?: Omit<QueuePutOptions, "signal">): void {
    putSync(this.#ring, item, options, "Queue.putSync()");
  }

  /**
   * Puts `item` if there is room now: `put(item, { block: false })`.
   *
   * @param item What to put.
   * @throws {FullError} when the queue is full.
   * @throws {ClosedError} when the queue is closed.
   * @throws {TypeError} when the item cannot be sent.
   *
   * @example
   * ```ts
   * import { FullError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<string>(1);
   * q.putNowait("a");
   * assert.throws(() => q.putNowait("b"), FullError);
   * ```
   */
  putNowait(item: T): void {
    putNowait(this.#ring, item);
  }

  /**
   * Removes and returns the first item, waiting while the queue is empty.
   *
   * @param options `block`, `timeout`, `signal`; see {@linkcode QueueGetOptions}.
   * @returns A promise of the item.
   * @throws {EmptyError} (rejects) when there is no item: at once when not
   *   blocking, else after `timeout`.
   * @throws {ClosedError} (rejects) when the queue is closed and drained, or
   *   closes while waiting.
   * @throws {RangeError} (rejects) when `timeout` is not a finite number >= 0.
   *
   * @example With a timeout
   * ```ts
   * import { EmptyError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<string>();
   * await assert.rejects(q.get({ timeout: 20 }), EmptyError);
   * await q.put("x");
   * assert.equal(await q.get({ timeout: 20 }), "x");
   * ```
   */
  get(options?: QueueGetOptions): Promise<T> {
    return getAsync(this.#ring, options, "Queue.get()") as Promise<T>;
  }

  /**
   * The blocking twin of {@linkcode Queue.get}, for workers and server main
   * threads.
   *
   * @param options `block`, `timeout`; see {@linkcode QueueGetOptions}.
   * @returns The item.
   * @throws {EmptyError} when there is no item (at once, or after `timeout`).
   * @throws {ClosedError} when the queue is closed and drained.
   * @throws {RangeError} when `timeout` is not a finite number >= 0.
   *
   * @example
   * ```ts
   * import { EmptyError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * assert.throws(() => q.getSync({ timeout: 10 }), EmptyError);
   * ```
   */
  getSync(options?: Omit<QueueGetOptions, "signal">): T {
    return getSync(this.#ring, options, "Queue.getSync()") as T;
  }

  /**
   * Removes and returns the first item if there is one now:
   * `get({ block: false })`.
   *
   * @returns The item.
   * @throws {EmptyError} when the queue is empty.
   * @throws {ClosedError} when the queue is closed and drained.
   *
   * @example
   * ```ts
   * import { EmptyError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * assert.throws(() => q.getNowait(), EmptyError);
   * q.putNowait(7);
   * assert.equal(q.getNowait(), 7);
   * ```
   */
  getNowait(): T {
    return getNowait(this.#ring) as T;
  }

  /**
   * The number of items in the queue (a snapshot; exact when no thread is
   * putting or getting).
   *
   * @returns How many items the queue holds.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue();
   * q.putNowait("a");
   * q.putNowait("b");
   * assert.equal(q.qsize(), 2);
   * ```
   */
  qsize(): number {
    return this.#ring.size();
  }

  /**
   * Whether the queue holds no items (a snapshot).
   *
   * @returns `true` when empty.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Queue().empty(), true);
   * ```
   */
  empty(): boolean {
    return this.#ring.size() === 0;
  }

  /**
   * Whether the queue holds `maxsize` items (a snapshot); always `false` for
   * an unbounded queue.
   *
   * @returns `true` when full.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue(1);
   * q.putNowait(0);
   * assert.equal(q.full(), true);
   * ```
   */
  full(): boolean {
    return this.#ring.isFull();
  }

  /**
   * Closes the queue for every thread that holds it (Python 3.13's
   * `Queue.shutdown()`): later puts fail with `ClosedError`; gets take what
   * is left, then fail with `ClosedError`; threads waiting to put or get
   * wake up with `ClosedError`. Calling it again does nothing.
   *
   * @example Draining after close
   * ```ts
   * import { ClosedError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * q.putNowait(1);
   * q.close();
   * assert.throws(() => q.putNowait(2), ClosedError);
   * assert.equal(await q.get(), 1);
   * await assert.rejects(q.get(), ClosedError);
   * ```
   *
   * @example Dropping what is left, as shutdown(immediate=True)
   * ```ts
   * import { ClosedError, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * q.putNowait(1);
   * q.close({ immediate: true });
   * assert.equal(q.empty(), true);
   * await assert.rejects(q.get(), ClosedError);
   * ```
   *
   * @param options `immediate: true` also drops the items left in the
   *   queue (Python's `shutdown(immediate=True)`), so gets fail at once.
   * @throws {TypeError} when `options` is not an object or `immediate` not a boolean.
   */
  close(options?: CloseOptions): void {
    const immediate = checkImmediate(options, `${this.constructor.name}.close()`);
    this.#ring.close();
    if (immediate) this.#dropAll();
  }

  /** Takes and drops every item left in a closed queue; `dropped` runs for each. */
  #dropAll(dropped?: () => void): void {
    for (;;) {
      try {
        this.getNowait();
      } catch {
        return;
      }
      dropped?.();
    }
  }

  static {
    dropAll = (q, dropped) => q.#dropAll(dropped);
  }

  /**
   * Yields items until the queue is closed and drained.
   *
   * @returns An async iterator over the items.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new Queue<number>();
   * for (const i of [1, 2, 3]) q.putNowait(i);
   * q.close();
   * const seen: number[] = [];
   * for await (const x of q) seen.push(x);
   * assert.deepEqual(seen, [1, 2, 3]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return untilClosed(() => this.get());
  }

  /**
   * Closes the queue (for every holder) at the end of a `using` block.
   *
   * @example
   * ```ts
   * import { Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * let outer: Queue | undefined;
   * {
   *   using q = new Queue();
   *   outer = q;
   * }
   * assert.equal(outer.closed, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  static {
    registerHandler<Queue, RingMemory>({
      tag: "Queue",
      canHandle: (v): v is Queue => v instanceof Queue && !(v instanceof JoinableQueue),
      serialize: (q) => q.#ring.memory,
      deserialize: (memory) => {
        adopting = Ring.from(memory);
        return new Queue();
      },
    });
  }

  static {
    ringOf = (q) => q.#ring;
  }
}

// ---- JoinableQueue -----------------------------------------------------------

/** Int32 index of the count of tasks marked done: the futex word `join` waits on. */
const DONE = 0;
/** Int32 index of the count of threads waiting in `join`, so that `taskDone` notifies only when needed. */
const JOIN_WAITERS = 1;
/** Bytes of a `JoinableQueue`'s task words. */
const TASK_BYTES = 8;

/** Set while a `JoinableQueue` is rebuilt in a receiving thread: its task words. */
let adoptingTasks: Int32Array | undefined;

/**
 * A `JoinableQueue`'s task accounting, in words of its own beside the
 * ring: tasks unfinished are the records ever put (`Ring.puts`, which a
 * put's publication moves, and which the next producer finishes if a
 * producer died) minus `DONE`. `taskDone` adds to `DONE` with one
 * `compareExchange` that also checks a task is unfinished, and notifies
 * when the count reaches 0 and a joiner counted itself in `JOIN_WAITERS`; a
 * joiner counts itself before it reads `DONE` and re-checks, so it either
 * sees the last `taskDone` or is woken by it.
 */
class Tasks {
  readonly cells: Int32Array;
  readonly #ring: Ring;

  constructor(ring: Ring, cells: Int32Array | undefined) {
    this.#ring = ring;
    this.cells = cells ?? new Int32Array(new SharedArrayBuffer(TASK_BYTES));
  }

  /** Records put and not yet marked done. */
  unfinished(): number {
    const n = (this.#ring.puts() - Atomics.load(this.cells, DONE)) | 0;
    return n < 0 ? 0 : n;
  }

  /** Marks one task done; returns `false` (and changes nothing) if none is unfinished. */
  done(): boolean {
    const c = this.cells;
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (((this.#ring.puts() - done) | 0) <= 0) return false;
      if (Atomics.compareExchange(c, DONE, done, (done + 1) | 0) === done) {
        if (((this.#ring.puts() - done - 1) | 0) === 0 && Atomics.load(c, JOIN_WAITERS) > 0) Atomics.notify(c, DONE);
        return true;
      }
    }
  }

  /** Waits, blocking, until no task is unfinished or `ms` passed. */
  joinSync(ms: number, what: string): void {
    if (this.unfinished() === 0) return;
    assertCanBlock(what);
    const c = this.cells;
    const end = now() + ms;
    Atomics.add(c, JOIN_WAITERS, 1);
    try {
      for (;;) {
        const seq = Atomics.load(c, DONE);
        if (this.unfinished() === 0) return;
        const left = remaining(end);
        if (left <= 0) return;
        waitSync(c, DONE, seq, left);
      }
    } finally {
      Atomics.sub(c, JOIN_WAITERS, 1);
    }
  }

  /** The Promise twin of {@linkcode Tasks.joinSync}. */
  async join(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.unfinished() === 0) return;
    const c = this.cells;
    const end = now() + ms;
    Atomics.add(c, JOIN_WAITERS, 1);
    try {
      for (;;) {
        const seq = Atomics.load(c, DONE);
        if (this.unfinished() === 0) return;
        const left = remaining(end);
        if (left <= 0) return;
        await waitAsync(c, DONE, seq, left, signal);
      }
    } finally {
      Atomics.sub(c, JOIN_WAITERS, 1);
    }
  }
}

/**
 * A {@linkcode Queue} that counts unfinished tasks: Python's
 * `multiprocessing.JoinableQueue`. Each item put is a task; a consumer calls
 * {@linkcode JoinableQueue.taskDone} when it has finished one, and
 * {@linkcode JoinableQueue.join} waits until every task put is done.
 *
 * @typeParam T The type of the items.
 *
 * @example
 * ```ts
 * import { JoinableQueue } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new JoinableQueue<number>();
 * q.putNowait(1);
 * q.putNowait(2);
 * const worker = (async () => {
 *   for (let i = 0; i < 2; i++) {
 *     await q.get();
 *     q.taskDone();
 *   }
 * })();
 * await q.join();
 * await worker;
 * assert.equal(q.empty(), true);
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  #tasks: Tasks;

  /**
   * Creates a joinable queue.
   *
   * @param maxsize The most items the queue holds; `0` or less means unbounded.
   * @default {0}
   * @throws {RangeError} when `maxsize` is not an integer.
   */
  constructor(maxsize: number = 0) {
    const cells = adoptingTasks;
    adoptingTasks = undefined;
    super(maxsize);
    this.#tasks = new Tasks(ringOf(this), cells);
  }

  /**
   * Marks one task (an item taken from the queue) as done.
   *
   * @throws {Error} when called more times than items were put.
   *
   * @example
   * ```ts
   * import { JoinableQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new JoinableQueue();
   * assert.throws(() => q.taskDone(), Error);
   * ```
   */
  taskDone(): void {
    if (!this.#tasks.done()) {
      throw new Error("Cannot call JoinableQueue.taskDone(): it was called more times than items were put");
    }
  }

  /**
   * Closes the queue as {@linkcode Queue.close} does. With
   * `immediate: true` each item dropped also counts as done (Python's
   * `shutdown(immediate=True)`), so `join()` returns once the items
   * already taken are done.
   *
   * @param options `immediate`.
   * @throws {TypeError} when `options` is not an object or `immediate` not a boolean.
   *
   * @example
   * ```ts
   * import { JoinableQueue } from "@mpjs/multiprocessing";
   *
   * const q = new JoinableQueue<number>();
   * q.putNowait(1);
   * q.close({ immediate: true });
   * await q.join({ timeout: 1000 }); // the dropped item counts as done
   * ```
   */
  override close(options?: CloseOptions): void {
    const immediate = checkImmediate(options, "JoinableQueue.close()");
    super.close();
    if (immediate) dropAll(this, () => this.#tasks.done());
  }

  /**
   * Waits until every item put has been marked done with
   * {@linkcode JoinableQueue.taskDone}.
   *
   * @param options `timeout` (then it just returns), `signal`.
   * @returns A promise that resolves when no task is left, or the timeout passed.
   * @throws {RangeError} (rejects) when `timeout` is not a finite number >= 0.
   *
   * @example With a timeout
   * ```ts
   * import { JoinableQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new JoinableQueue();
   * q.putNowait("task");
   * await q.join({ timeout: 10 }); // returns: the task is still unfinished
   * q.getNowait();
   * q.taskDone();
   * await q.join();
   * assert.equal(q.qsize(), 0);
   * ```
   */
  async join(options?: QueueJoinOptions): Promise<void> {
    const { ms, signal } = checkWaitOptions(options, "JoinableQueue.join()");
    if (signal?.aborted) throw signal.reason;
    await this.#tasks.join(ms, signal);
  }

  /**
   * The blocking twin of {@linkcode JoinableQueue.join}.
   *
   * @param options `timeout` (then it just returns).
   * @throws {RangeError} when `timeout` is not a finite number >= 0.
   *
   * @example
   * ```ts
   * import { JoinableQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new JoinableQueue();
   * q.joinSync(); // nothing put: returns at once
   * assert.equal(q.qsize(), 0);
   * ```
   */
  joinSync(options?: Omit<QueueJoinOptions, "signal">): void {
    const { ms } = checkWaitOptions(options, "JoinableQueue.joinSync()");
    this.#tasks.joinSync(ms, "JoinableQueue.joinSync()");
  }

  static {
    registerHandler<JoinableQueue, { memory: RingMemory; tasks: SharedArrayBuffer }>({
      tag: "JoinableQueue",
      canHandle: (v): v is JoinableQueue => v instanceof JoinableQueue,
      serialize: (q) => ({ memory: ringOf(q).memory, tasks: q.#tasks.cells.buffer as SharedArrayBuffer }),
      deserialize: ({ memory, tasks }) => {
        adopting = Ring.from(memory);
        adoptingTasks = new Int32Array(tasks);
        return new JoinableQueue();
      },
    });
  }
}

// ---- SimpleQueue -------------------------------------------------------------

/**
 * An unbounded first-in, first-out queue with a small interface: Python's
 * `multiprocessing.SimpleQueue`. Same transport and guarantees as
 * {@linkcode Queue}.
 *
 * @typeParam T The type of the items.
 *
 * @example
 * ```ts
 * import { SimpleQueue } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const q = new SimpleQueue<string>();
 * assert.equal(q.empty(), true);
 * await q.put("hello");
 * assert.equal(await q.get(), "hello");
 * ```
 */
export class SimpleQueue<T = unknown> implements AsyncIterable<T> {
  #ring: Ring;

  /** Creates an empty queue. */
  constructor() {
    if (adopting) {
      this.#ring = adopting;
      adopting = undefined;
      return;
    }
    this.#ring = Ring.create(0);
  }

  /**
   * Puts `item` at the end of the queue. The queue is unbounded, so this
   * does not wait for room.
   *
   * @param item What to put: a structured-clone value.
   * @returns A promise that resolves once the item is in the queue.
   * @throws {ClosedError} (rejects) when the queue is closed.
   * @throws {TypeError} (rejects) when the item cannot be sent.
   *
   * @example
   * ```ts
   * import { SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue<number[]>();
   * await q.put([1, 2]);
   * assert.deepEqual(q.getSync(), [1, 2]);
   * ```
   */
  put(item: T): Promise<void> {
    return putAsync(this.#ring, item, undefined, "SimpleQueue.put()");
  }

  /**
   * The synchronous twin of {@linkcode SimpleQueue.put}: the queue is
   * unbounded, so it never waits for room (Python's `SimpleQueue.put`).
   *
   * @param item What to put: a structured-clone value.
   * @throws {ClosedError} when the queue is closed.
   * @throws {TypeError} when the item cannot be sent.
   *
   * @example
   * ```ts
   * import { SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue<string>();
   * q.putSync("a");
   * assert.equal(q.getSync(), "a");
   * ```
   */
  putSync(item: T): void {
    putSync(this.#ring, item, undefined, "SimpleQueue.putSync()");
  }

  /**
   * Removes and returns the first item, waiting while the queue is empty.
   *
   * @param options `timeout`, `signal` (and `block`), as for {@linkcode Queue.get}.
   * @returns A promise of the item.
   * @throws {EmptyError} (rejects) when `timeout` passes, or at once with `block: false`.
   * @throws {ClosedError} (rejects) when the queue is closed and drained.
   *
   * @example
   * ```ts
   * import { SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue<number>();
   * setTimeout(() => q.put(5), 10);
   * assert.equal(await q.get(), 5);
   * ```
   */
  get(options?: QueueGetOptions): Promise<T> {
    return getAsync(this.#ring, options, "SimpleQueue.get()") as Promise<T>;
  }

  /**
   * The blocking twin of {@linkcode SimpleQueue.get}.
   *
   * @param options `timeout` (and `block`).
   * @returns The item.
   * @throws {EmptyError} when `timeout` passes.
   * @throws {ClosedError} when the queue is closed and drained.
   *
   * @example
   * ```ts
   * import { EmptyError, SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue();
   * assert.throws(() => q.getSync({ timeout: 5 }), EmptyError);
   * ```
   */
  getSync(options?: Omit<QueueGetOptions, "signal">): T {
    return getSync(this.#ring, options, "SimpleQueue.getSync()") as T;
  }

  /**
   * Whether the queue holds no items (a snapshot).
   *
   * @returns `true` when empty.
   *
   * @example
   * ```ts
   * import { SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new SimpleQueue().empty(), true);
   * ```
   */
  empty(): boolean {
    return this.#ring.size() === 0;
  }

  /**
   * Closes the queue for every holder, as {@linkcode Queue.close} does.
   *
   * @example
   * ```ts
   * import { ClosedError, SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue();
   * q.close();
   * await assert.rejects(q.put(1), ClosedError);
   * ```
   *
   * @param options `immediate: true` also drops the items left (Python's `shutdown(immediate=True)`).
   * @throws {TypeError} when `options` is not an object or `immediate` not a boolean.
   */
  close(options?: CloseOptions): void {
    const immediate = checkImmediate(options, "SimpleQueue.close()");
    this.#ring.close();
    if (!immediate) return;
    for (;;) {
      try {
        getNowait(this.#ring);
      } catch {
        return;
      }
    }
  }

  /**
   * Yields items until the queue is closed and drained.
   *
   * @returns An async iterator over the items.
   *
   * @example
   * ```ts
   * import { SimpleQueue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const q = new SimpleQueue<string>();
   * await q.put("a");
   * q.close();
   * const seen: string[] = [];
   * for await (const x of q) seen.push(x);
   * assert.deepEqual(seen, ["a"]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return untilClosed(() => this.get());
  }

  static {
    registerHandler<SimpleQueue, RingMemory>({
      tag: "SimpleQueue",
      canHandle: (v): v is SimpleQueue => v instanceof SimpleQueue,
      serialize: (q) => q.#ring.memory,
      deserialize: (memory) => {
        adopting = Ring.from(memory);
        return new SimpleQueue();
      },
    });
  }
}
