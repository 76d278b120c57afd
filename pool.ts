// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Pool` and `AsyncResult`: Python's `multiprocessing.Pool`, a fixed set of
 * worker threads that run functions for you.
 *
 * Tasks and results travel through two shared-memory rings, not one
 * `postMessage` each (a task whose arguments hold this library's handles or
 * shared memory goes by message); each worker takes the next task itself as
 * soon as it is free, and a function is shipped to each worker once.
 *
 * @example Square numbers on two workers
 * ```ts
 * import { Pool } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ processes: 2 });
 * assert.deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * pool.close();
 * await pool.join();
 * ```
 *
 * @module
 */

import { ClosedError, RemoteError, TimeoutError } from "./errors.ts";
import { copyBytes, decodeReused, encodeTo, type Format } from "./_codec.ts";
import { handlerFor, pack, type Packed } from "./_handles.ts";
import { assertStarted, markDead } from "./_registry.ts";
import { Ring, RingStatus } from "./_ring.ts";
import { startWorker } from "./_mailbox.ts";
import { moduleUrl } from "./_target.ts";
import { addResultSettler, type Settle, settleResult, TaskTable, waitInList, workerDied } from "./_pool_tasks.ts";
import { type IMapHost, IMapIterator } from "./_pool_imap.ts";
import { BulkArea } from "./_pool_bulk.ts";
import { FnDefs, specFor } from "./_pool_defs.ts";
import { POOL_RESULT_SPIN_MS as SPIN_MS, SLICE } from "./_wait.ts";
import { cpuCount, terminateStops, type WorkerHandle, writeStderr } from "./_runtime.ts";
import {
  DONE,
  exitCodeAsked,
  readError,
  requestStop,
  STATE as STATUS_STATE,
  TERMINATED,
  writeExit,
} from "./_status.ts";
import { checkCallback, checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";
import {
  type ArgsRequest,
  asNumbers,
  Cell,
  CELLS_BYTES,
  type FnSpec,
  Kind,
  Own,
  OWN_BYTES,
  type PoolWorkerConfig,
  type ResultRecord,
  Status,
  WorkerState,
} from "./_pool_protocol.ts";

/** The worker runner, beside this file in the source tree (.ts) and the npm build (.js). */
const workerModule = new URL(
  import.meta.url.endsWith(".ts") ? "./_pool_worker.ts" : "./_pool_worker.js",
  import.meta.url,
).href;

/** `map` chunks of at least this many numbers travel through the bulk area. */
const BULK_MIN = 1024;
/** What a chunk's settle gets when its results replaced its items in the bulk area. */
const BULK_RESULT = Symbol("results in the bulk area");
/** How long `terminate()` waits for a Deno worker to stop itself before it resolves (ms). */
const STOP_GRACE = 1000;

// Pool states (Python's INIT/RUN/CLOSE/TERMINATE).
const INIT = 0;
const RUN = 1;
const CLOSE = 2;
const TERMINATE = 3;

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

// A pending task keeps its Settle alive until its result arrives, and with it
// the scopes the function closes over: these two close over nothing more
// (measured: ~500 B per pending apply() when the Settle was made inline).

/** The Settle of a Promise. */
function settleWith(resolve: (value: never) => void, reject: (reason: unknown) => void): Settle {
  return (ok, value) => ok ? resolve(value as never) : reject(value);
}

/** The Settle of an AsyncResult. */
// deno-lint-ignore no-explicit-any
function settleInto(result: AsyncResult<any>): Settle {
  return (ok, value) => settleResult(result, ok, value);
}

// ---- AsyncResult ------------------------------------------------------------

/**
 * Options for the callbacks of {@linkcode Pool.applyAsync} and {@linkcode Pool.mapAsync}.
 *
 * @example
 * ```ts
 * import { Pool, type AsyncResultCallbacks } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * let got = 0;
 * const callbacks: AsyncResultCallbacks<number> = { callback: (r) => (got = r) };
 * await pool.applyAsync((x: number) => x + 1, [41], callbacks).wait();
 * assert.equal(got, 42);
 * ```
 */
export interface AsyncResultCallbacks<R> {
  /** Called with the result when the task succeeds (in the pool's owner thread). */
  callback?: (result: R) => void;
  /** Called with the error when the task fails. */
  errorCallback?: (error: Error) => void;
}

/**
 * The result of {@linkcode Pool.applyAsync}, {@linkcode Pool.mapAsync} and
 * {@linkcode Pool.starmapAsync}: Python's `AsyncResult`.
 *
 * @example
 * ```ts
 * import { Pool } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ processes: 1 });
 * const r = pool.applyAsync((a: number, b: number) => a + b, [2, 3]);
 * assert.equal(await r.get(), 5);
 * assert.equal(r.ready(), true);
 * assert.equal(r.successful(), true);
 * await pool.terminate();
 * ```
 */
export class AsyncResult<R = unknown> {
  #state: 0 | 1 | 2 = 0;
  #value: unknown;
  #waiters: (() => void)[] | undefined;
  #callbacks: AsyncResultCallbacks<R> | undefined;

  /**
   * Made by the pool; constructing one yourself gives a result that never settles.
   *
   * @param callbacks Called when the result settles.
   */
  constructor(callbacks?: AsyncResultCallbacks<R>) {
    if (callbacks?.callback || callbacks?.errorCallback) this.#callbacks = callbacks;
    addResultSettler(this, (ok, value) => this.#settle(ok, value));
  }

  #settle(ok: boolean, value: unknown): void {
    if (this.#state !== 0) return;
    this.#state = ok ? 1 : 2;
    this.#value = value;
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters) { for (const w of waiters) w(); }
    if (!this.#callbacks) return;
    const cb = ok ? this.#callbacks.callback : this.#callbacks.errorCallback;
    if (cb) {
      try {
        (cb as (v: unknown) => void)(value);
      } catch (error) {
        // As Python prints an exception raised in a callback, and goes on.
        writeStderr(`Exception in Pool ${ok ? "callback" : "errorCallback"}:\n${describe(error)}\n`);
      }
    }
  }

  /** Whether the task has finished (returned or failed). */
  ready(): boolean {
    return this.#state !== 0;
  }

  /**
   * Whether the task returned without error.
   *
   * @throws {Error} when the task has not finished.
   */
  successful(): boolean {
    if (this.#state === 0) throw new Error("AsyncResult is not ready");
    return this.#state === 1;
  }

  /**
   * The result, once the task has finished.
   *
   * @param timeout Milliseconds to wait; no limit when omitted.
   * @returns A Promise of the result; it rejects with the task's error
   *   (a {@linkcode RemoteError} when the task threw), with
   *   {@linkcode TimeoutError} when `timeout` passes first, or with
   *   `RangeError` for an invalid `timeout`.
   */
  async get(timeout?: number): Promise<R> {
    const ms = checkTimeout(timeout, "AsyncResult.get()");
    if (this.#state === 0 && !await waitInList(this.#waiters ??= [], ms)) {
      throw new TimeoutError(`AsyncResult.get() had no result within ${ms} ms`);
    }
    if (this.#state === 1) return this.#value as R;
    throw this.#value;
  }

  /**
   * Waits until the task has finished or `timeout` ms pass (check
   * {@linkcode AsyncResult.ready} afterwards).
   *
   * @param timeout Milliseconds; no limit when omitted.
   * @returns A Promise that resolves (never with the task's error); rejects
   *   with `RangeError` for an invalid `timeout`.
   */
  async wait(timeout?: number): Promise<void> {
    const ms = checkTimeout(timeout, "AsyncResult.wait()");
    if (this.#state === 0) await waitInList(this.#waiters ??= [], ms);
  }
}

// ---- Pool -------------------------------------------------------------------

/**
 * Options for {@linkcode Pool}.
 *
 * @example
 * ```ts
 * import { Pool, type PoolOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: PoolOptions = { processes: 1 };
 * await using pool = new Pool(options);
 * assert.equal(await pool.apply((x: number) => x * 2, [21]), 42);
 * ```
 */
export interface PoolOptions<I extends unknown[] = unknown[]> {
  /** The number of worker threads. @default {cpuCount()} */
  processes?: number;
  /** Run once in each worker when it starts, with `initargs`. Shipped like a task function. */
  initializer?: (...args: I) => unknown;
  /** Arguments for `initializer`. @default {[]} */
  initargs?: I;
  /**
   * Tasks (an `apply`, or one chunk of a `map`) a worker runs before it is
   * replaced by a fresh one. @default {undefined} (no limit)
   */
  maxTasksPerChild?: number;
  /**
   * The module that exports the task functions: its URL (`import.meta.url`
   * from inside it) or its file path, absolute or relative to the current
   * working directory. Workers import it and look functions up by their
   * `name`, as Python's *spawn* does, so guard the main program with
   * `if (isMainThread) { … }`. Without it (and for anonymous functions),
   * functions are shipped by their source text and must be self-contained.
   */
  module?: string | URL;
}

/**
 * Options for {@linkcode Pool.apply} and the map methods.
 *
 * @example
 * ```ts
 * import { Pool, type TaskOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * const options: TaskOptions = { signal: AbortSignal.abort(new Error("not needed")) };
 * await assert.rejects(pool.apply((x: number) => x, [1], options), /not needed/);
 * ```
 */
export interface TaskOptions {
  /**
   * Cancels the task: the result rejects with the signal's reason at once,
   * a task not yet started is skipped, and the worker running one is
   * stopped and replaced by a fresh one at once. On Deno a worker that runs
   * JavaScript (a task that neither awaits nor waits in this library)
   * stops only once it does, or once the task returns; its replacement
   * works meanwhile.
   */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode Pool.applyAsync}, {@linkcode Pool.mapAsync} and {@linkcode Pool.starmapAsync}.
 *
 * @example
 * ```ts
 * import { Pool, type AsyncTaskOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * const options: AsyncTaskOptions<number[]> = { callback: (r) => assert.deepEqual(r, [1, 4]) };
 * assert.deepEqual(await pool.mapAsync((x: number) => x * x, [1, 2], undefined, options).get(), [1, 4]);
 * ```
 */
export interface AsyncTaskOptions<R> extends TaskOptions, AsyncResultCallbacks<R> {}

/** A started worker. */
interface Slot {
  /** Its place in the pool (a replacement takes the same place). */
  index: number;
  ident: number;
  name: string;
  status: SharedArrayBuffer;
  /** Its own cells (`CURRENT`, `STATE`). */
  own: Int32Array;
  handle: WorkerHandle;
  /** Its end was handled. */
  exited: boolean;
  /** It was asked to stop: it is no longer in its place, and its end starts no replacement. */
  stopping: boolean;
  /** The aborted task it was stopped for (0 for none): a bulk chunk it may still touch. */
  aborted: number;
  /** Resolves once its end was handled. */
  ended: Promise<void>;
  end: () => void;
}

let workerCounter = 0;

/**
 * Thrown out of the codec walk when a task's payload holds library handles or
 * shared memory (which `_handles.ts` handles too): such a payload travels by
 * message, where both cross as they are.
 */
const HAS_HANDLES = Symbol("has handles");
function detectHandles(v: object): boolean {
  if (handlerFor(v)) throw HAS_HANDLES;
  return false;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return v != null && typeof (v as Iterable<unknown>)[Symbol.iterator] === "function";
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return v != null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

/** Python's default `map` chunk size: `divmod(len, processes * 4)`, rounded up. */
function defaultChunksize(length: number, processes: number): number {
  const per = processes * 4;
  return Math.max(1, Math.floor(length / per) + (length % per ? 1 : 0));
}

/**
 * A pool of worker threads: Python's `multiprocessing.Pool`.
 *
 * Task functions are shipped as for `Thread`: with `module`, workers import
 * it and look each function up by name; otherwise functions are shipped by
 * their source text and must be self-contained. Either way each worker gets
 * a function once, not once per task. Task functions may return Promises.
 *
 * A task that throws rejects with a {@linkcode RemoteError} and the worker
 * goes on. A worker that dies while running a task (it exits, crashes or,
 * on Node, runs out of memory) rejects that task with an error saying so,
 * and a replacement starts. On Deno and Bun a worker that runs out of memory
 * ends the whole program: Bun has no heap limit per worker, and Deno's hangs
 * the worker when it is reached in a Promise callback. Workers do not keep
 * the program alive while the pool has nothing to do.
 *
 * @example Apply, map and close
 * ```ts
 * import { Pool } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ processes: 2 });
 * assert.equal(await pool.apply((x: number) => x + 1, [41]), 42);
 * assert.deepEqual(await pool.starmap((a: number, b: number) => a * b, [[1, 2], [3, 4]]), [2, 12]);
 * pool.close();
 * await pool.join();
 * ```
 */
export class Pool {
  #state = INIT;
  #processes: number;
  #module: string | undefined;
  #maxTasks: number;
  #initializer: FnSpec | null = null;
  #initargs: unknown[];
  #tasks: Ring;
  #results: Ring;
  #cellsBuffer: SharedArrayBuffer;
  #cells: Int32Array;
  #defs: FnDefs;
  #bulk = new BulkArea();
  #jobs = new TaskTable();
  /** Task records the ring could not take yet (a worker growing it holds its lock), with their formats. */
  #backlog: { bytes: Uint8Array; format: Format; id: number }[] = [];
  /**
   * Puts a task record made by the codec's `encodeTo`, in its format. The
   * bytes are the encoder's, overwritten by the next encoding: a record kept
   * in the backlog is a copy of them.
   */
  #putRecord = (bytes: Uint8Array, start: number, end: number, format: Format): void =>
    this.#put(bytes, start, end, format);
  /** The id of the task record being put (0 for a `STOP`). */
  #putting = 0;
  /** The worker in each place. */
  #slots: (Slot | undefined)[];
  /** Every worker whose end has not been handled yet, those asked to stop included. */
  #workers = new Set<Slot>();
  #feeders = 0;
  /** The `imap` iterators still reading their input, to push on at `close()`. */
  #iterators = new Set<IMapIterator<unknown>>();
  #stopsSent = false;
  #pumping = false;
  #refd = false;
  #unrefTimer: ReturnType<typeof setTimeout> | undefined;
  #joining = 0;
  #exitWaiters: (() => void)[] = [];
  #broken: Error | undefined;
  #terminating: Promise<void> | undefined;

  /**
   * Starts the workers.
   *
   * @param options See {@linkcode PoolOptions}.
   * @throws {RangeError} when `processes` or `maxTasksPerChild` is not a
   *   positive integer.
   * @throws {TypeError} when an option has the wrong type, or `initargs`
   *   cannot be sent to a thread.
   */
  // deno-lint-ignore no-explicit-any
  constructor(options: PoolOptions<any[]> = {}) {
    checkOptions(options, "create Pool");
    assertStarted("create a Pool");
    const { processes, initializer, initargs, maxTasksPerChild, module } = options;
    if (processes !== undefined && processes !== null) {
      if (typeof processes !== "number") {
        throw new TypeError(
          `Cannot create Pool as 'processes' must be a positive integer: current value is ${show(processes)}`,
        );
      }
      if (!Number.isInteger(processes) || processes < 1) {
        throw new RangeError(
          `Cannot create Pool as 'processes' must be a positive integer: current value is ${show(processes)}`,
        );
      }
    }
    if (initializer !== undefined && initializer !== null && typeof initializer !== "function") {
      throw new TypeError(
        `Cannot create Pool as 'initializer' must be a function: current value is ${show(initializer)}`,
      );
    }
    if (initargs !== undefined && !Array.isArray(initargs)) {
      throw new TypeError(`Cannot create Pool as 'initargs' must be an array: current value is ${show(initargs)}`);
    }
    if (maxTasksPerChild !== undefined && maxTasksPerChild !== null) {
      if (typeof maxTasksPerChild !== "number") {
        throw new TypeError(
          `Cannot create Pool as 'maxTasksPerChild' must be a positive integer: current value is ${
            show(maxTasksPerChild)
          }`,
        );
      }
      if (!Number.isInteger(maxTasksPerChild) || maxTasksPerChild < 1) {
        throw new RangeError(
          `Cannot create Pool as 'maxTasksPerChild' must be a positive integer: current value is ${
            show(maxTasksPerChild)
          }`,
        );
      }
    }
    this.#processes = processes ?? cpuCount();
    this.#module = module === undefined || module === null ? undefined : moduleUrl(module, "Pool");
    this.#maxTasks = maxTasksPerChild ?? 0;
    this.#initargs = initargs ?? [];
    if (initializer) this.#initializer = specFor(initializer, this.#module, "initializer");
    // Fail now, not in each worker, when initargs cannot be sent (a check: nothing is sent).
    pack(this.#initargs, "initargs").giveBack();
    this.#tasks = Ring.create(0);
    this.#results = Ring.create(0);
    this.#cellsBuffer = new SharedArrayBuffer(CELLS_BYTES);
    this.#cells = new Int32Array(this.#cellsBuffer);
    this.#defs = new FnDefs(this.#cells, this.#module);
    this.#slots = new Array(this.#processes).fill(undefined);
    for (let i = 0; i < this.#processes; i++) this.#spawn(i);
    this.#state = RUN;
  }

  // ---- workers --------------------------------------------------------------

  #spawn(index: number): void {
    const name = `SpawnPoolWorker-${++workerCounter}`;
    const own = new Int32Array(new SharedArrayBuffer(OWN_BYTES));
    Atomics.store(own, Own.STATE, WorkerState.STARTING);
    const config: PoolWorkerConfig = {
      tasks: this.#tasks.memory,
      results: this.#results.memory,
      cells: this.#cellsBuffer,
      own: own.buffer as SharedArrayBuffer,
      defs: this.#defs.buffer,
      bulk: this.#bulk.buffer,
      maxTasks: this.#maxTasks,
      initializer: this.#initializer,
    };
    let end!: () => void;
    const ended = new Promise<void>((resolve) => end = resolve);
    const slot = { index, name, own, exited: false, stopping: false, aborted: 0, ended, end } as Slot;
    const started = startWorker(
      {
        name,
        daemon: true,
        target: { kind: "module", module: workerModule, exportName: "poolWorkerMain" },
        args: [config, this.#initargs],
        argsName: "initargs",
      },
      {
        onMessage: (m) => this.#onWorkerMessage(slot, m as ArgsRequest),
        onExit: (error) => this.#onWorkerExit(slot, error),
      },
    );
    slot.ident = started.ident;
    slot.status = started.status;
    slot.handle = started.handle;
    // Pool workers are daemons that keep the program alive only while the pool has work.
    if (this.#refd) slot.handle.ref();
    this.#slots[index] = slot;
    this.#workers.add(slot);
  }

  /**
   * Starts a worker in place `index`, after its worker died or was asked to
   * stop; once the `STOP`s were put, puts one more for it (see
   * `_pool_protocol.ts`).
   */
  #replace(index: number): void {
    this.#spawn(index);
    if (!this.#stopsSent) return;
    this.#putting = 0;
    encodeTo([Kind.STOP], "task", this.#putRecord);
    this.#pumpSoon();
  }

  /**
   * Asks a worker to stop (`_status.ts`): at its event loop, in a wait of
   * this library, or before it takes its next record; Node and Bun also
   * terminate it. Its end is handled when the runtime reports it.
   */
  #stopWorker(slot: Slot): void {
    if (slot.stopping || slot.exited) return;
    slot.stopping = true;
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = undefined;
    requestStop(slot.status, TERMINATED);
    try {
      slot.handle.post({ type: "stop" });
    } catch {
      // Already gone: the runtime reports its end.
    }
    // Deno reports a terminated worker's end at once, while it may still
    // run: there the worker stops itself, and its own end is what counts.
    if (terminateStops) void slot.handle.terminate().catch(() => {});
  }

  /**
   * The task `id` was aborted: the worker running it, if any, is stopped
   * and a fresh one takes its place at once. The worker is taken off the
   * task first (`STOP_ASKED`), which fails when it finished the task and
   * went on (then it is left alone).
   */
  #stopRunning(id: number): void {
    if (this.#state !== RUN && this.#state !== CLOSE) return;
    for (const slot of this.#slots) {
      if (!slot || slot.exited || slot.stopping) continue;
      if (Atomics.compareExchange(slot.own, Own.CURRENT, id, Own.STOP_ASKED) !== id) continue;
      slot.aborted = id;
      this.#stopWorker(slot);
      if (!this.#broken) this.#replace(slot.index);
      this.#updateRef();
      return;
    }
  }

  #onWorkerMessage(slot: Slot, m: ArgsRequest): void {
    if (m.type !== "pool-args" || slot.exited) return;
    const packed = this.#jobs.takePayload(m.id);
    if (!packed) {
      slot.handle.post({ type: "pool-args", id: m.id, data: null, hasHandles: false, missing: true });
      return;
    }
    slot.handle.post(
      { type: "pool-args", id: m.id, data: packed.data, hasHandles: packed.hasHandles, missing: false },
      packed.transfer,
    );
    packed.commit(slot.ident);
  }

  /**
   * A worker ended, as its runtime reports (see "A worker's end" in
   * `_pool_protocol.ts`): it runs no more code, whatever instruction it
   * stopped at.
   */
  #onWorkerExit(slot: Slot, error: unknown): void {
    if (slot.exited) return;
    slot.exited = true;
    this.#workers.delete(slot);
    // Read before this records the end: what the worker recorded itself, if anything.
    const cause = this.#exitCause(slot, error);
    writeExit(slot.status, 1, error);
    markDead(slot.ident);
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = undefined;
    if (this.#state !== TERMINATE) {
      // Results it published before it ended come first.
      this.#drain();
      const state = Atomics.load(slot.own, Own.STATE);
      const current = Atomics.load(slot.own, Own.CURRENT);
      if (slot.aborted !== 0) this.#jobs.releaseBulk(slot.aborted);
      if (current === Own.TAKING) {
        this.#rejectLostTask(slot, cause);
      } else if (current > 0) {
        this.#jobs.finish(current)?.(false, workerDied(slot.name, cause));
      }
      this.#clearLobby(slot);
      if (slot.stopping) {
        // Asked to stop: its replacement, if any, started then.
      } else if (state === WorkerState.STARTING) {
        // Its initializer (or loading its module) failed: a replacement would too.
        this.#broken ??= new Error(`Pool worker ${slot.name} failed to start (${cause.message})`, { cause });
        for (const settle of this.#jobs.takeAll()) settle(false, this.#broken);
        if (this.#state === RUN) this.#state = CLOSE;
        // The other workers can get no more work: stop them, so join() returns.
        for (const other of [...this.#workers]) this.#stopWorker(other);
      } else if (state !== WorkerState.STOPPED && !this.#broken) {
        this.#replace(slot.index);
      }
    }
    slot.end();
    this.#updateRef();
    this.#wakeJoiners();
  }

  /**
   * Clears the lobby cells a worker that ended may have left set, and wakes
   * the lobby so that the idle workers look at the ring again.
   */
  #clearLobby(slot: Slot): void {
    const cells = this.#cells;
    Atomics.compareExchange(cells, Cell.SPINNER, slot.ident, 0);
    Atomics.store(cells, Cell.WAKING, 0);
    Atomics.add(cells, Cell.LOBBY_SEQ, 1);
    Atomics.notify(cells, Cell.LOBBY_SEQ);
  }

  #wakeJoiners(): void {
    if (this.#workers.size > 0) return;
    const waiters = this.#exitWaiters;
    this.#exitWaiters = [];
    for (const w of waiters) w();
  }

  /** Why a worker ended, as an error. */
  #exitCause(slot: Slot, error: unknown): Error {
    if (error instanceof Error) return error;
    if (error !== undefined) return new RemoteError(RemoteError.describe(error));
    if (Atomics.load(new Int32Array(slot.status, 0, 1), STATUS_STATE) === DONE) {
      const recorded = readError(slot.status);
      if (recorded) return new RemoteError(recorded);
    }
    // The task called process.exit(code) (recorded by the worker as it called it).
    const code = exitCodeAsked(slot.status);
    return new Error(code === undefined ? "the worker exited" : `the worker exited with code ${code}`);
  }

  /**
   * Workers keep the program alive only while the pool has work or is being
   * joined. Going idle lets go after a moment, not at once, so that a caller
   * awaiting one task after another does not flip every worker's ref twice
   * per task.
   */
  #updateRef(): void {
    const want = this.#jobs.size > 0 || this.#joining > 0;
    if (want) {
      if (!this.#refd) this.#setRef(true);
      return;
    }
    if (!this.#refd || this.#unrefTimer !== undefined) return;
    if (this.#state === TERMINATE) return this.#setRef(false);
    this.#unrefTimer = setTimeout(() => {
      this.#unrefTimer = undefined;
      if (this.#jobs.size === 0 && this.#joining === 0) this.#setRef(false);
    }, 1);
  }

  #setRef(want: boolean): void {
    this.#refd = want;
    for (const s of this.#workers) {
      if (want) s.handle.ref();
      else s.handle.unref();
    }
  }

  // ---- submitting -----------------------------------------------------------

  #checkRunning(): void {
    if (this.#broken) throw this.#broken;
    if (this.#state !== RUN) throw new ClosedError("Pool not running");
  }

  /**
   * Puts one task record and registers `settle` for its result.
   *
   * @param rename Rewrites the path in a codec error (the payload sits at `task[3]`).
   */
  #submit(kind: number, fnId: number, payload: unknown, rename: (e: unknown) => unknown, settle: Settle): number {
    const id = this.#jobs.newId();
    const put = this.#putRecord;
    this.#putting = id;
    let payloadByMessage: Packed | undefined;
    try {
      encodeTo([kind, id, fnId, payload], "task", put, detectHandles);
    } catch (error) {
      if (error !== HAS_HANDLES) throw rename(error);
      let packed: Packed;
      try {
        packed = pack(payload, "task[3]");
      } catch (e) {
        throw rename(e);
      }
      payloadByMessage = packed;
      encodeTo([kind | Kind.BY_MESSAGE, id, fnId, null], "task", put);
    }
    this.#jobs.add(id, settle, payloadByMessage);
    if (!this.#pumping) {
      this.#pumping = true;
      this.#updateRef();
      queueMicrotask(() => this.#pump());
    }
    return id;
  }

  #put(bytes: Uint8Array, start: number, end: number, format: Format): void {
    if (this.#backlog.length === 0) {
      const s = this.#tasks.put(bytes, format, false, start, end);
      if (s === RingStatus.OK) {
        this.#jobs.put(this.#putting);
        return this.#wakeWorker();
      }
      if (s !== RingStatus.BUSY) throw new RangeError("Cannot submit to the pool: its task queue is full (1 GiB)");
    }
    // A worker holds the ring's lock while the ring must grow: keep it for the pump.
    this.#backlog.push({ bytes: copyBytes(bytes, start, end), format, id: this.#putting });
  }

  #flush(): void {
    while (this.#backlog.length > 0) {
      const { bytes, format, id } = this.#backlog[0];
      const s = this.#tasks.put(bytes, format, false);
      if (s === RingStatus.BUSY) return;
      this.#backlog.shift();
      this.#jobs.put(id);
      this.#wakeWorker();
    }
  }

  /**
   * A worker died while taking a task record, before it recorded which
   * (`CURRENT` was `TAKING`): rejects the task it took, found by elimination
   * (see `_pool_protocol.ts`), once no live worker is itself taking one.
   */
  #rejectLostTask(slot: Slot, cause: Error): void {
    if (this.#state === TERMINATE) return;
    const taken = this.#jobs.taken(this.#tasks.size());
    const running = new Set<number>();
    for (const other of this.#workers) {
      const current = Atomics.load(other.own, Own.CURRENT);
      if (current === Own.TAKING) {
        // It holds the record it took for a moment only: look again shortly.
        setTimeout(() => this.#rejectLostTask(slot, cause), 1);
        return;
      }
      running.add(current);
    }
    // Results published before now settle their tasks first.
    this.#drain();
    for (const id of this.#jobs.takenAndNotRunning(taken, running)) {
      this.#jobs.finish(id)?.(false, workerDied(slot.name, cause));
    }
    this.#updateRef();
  }

  /**
   * After a put: wakes a worker parked in the lobby unless one is spinning
   * or a wake-up is already on its way (see `_pool_protocol.ts`).
   */
  #wakeWorker(): void {
    const cells = this.#cells;
    if (
      Atomics.load(cells, Cell.SPINNER) === 0 && Atomics.load(cells, Cell.LOBBY_WAITERS) > 0 &&
      Atomics.load(cells, Cell.WAKING) === 0 && Atomics.compareExchange(cells, Cell.WAKING, 0, 1) === 0
    ) {
      Atomics.add(cells, Cell.LOBBY_SEQ, 1);
      Atomics.notify(cells, Cell.LOBBY_SEQ, 1);
    }
  }

  /**
   * Drops a task not yet finished; a worker skips it if it has not started
   * it. With `stopRunning` (its signal aborted), a worker running it is
   * replaced by a fresh one.
   */
  #cancel(id: number, stopRunning = false): boolean {
    if (!this.#jobs.cancel(id)) return false;
    Atomics.store(this.#cells, Cell.CANCEL + (id % Cell.CANCEL_N), id);
    if (stopRunning) this.#stopRunning(id);
    this.#updateRef();
    return true;
  }

  // ---- results --------------------------------------------------------------

  /** Settles every result in the result ring; returns how many it took. */
  #drain(): number {
    if (this.#backlog.length > 0) this.#flush();
    let n = 0;
    for (;;) {
      const t = this.#results.take(false);
      if (typeof t === "number") break;
      const [id, status, value] = decodeReused(t.bytes, t.length, t.kind as Format) as ResultRecord;
      n++;
      // Its worker is done with its chunk (released before the settle, which copies the results out).
      const settle = this.#jobs.finish(id);
      if (!settle) continue;
      if (status === Status.OK) settle(true, value);
      else if (status === Status.OK_BULK) settle(true, BULK_RESULT);
      else if (status === Status.FAILED) {
        settle(false, new RemoteError(value as { name: string; message: string; stack?: string }));
      }
    }
    if (n > 0) {
      this.#jobs.trim(this.#tasks.size());
      this.#updateRef();
    }
    return n;
  }

  /** Takes results while tasks are outstanding: spins for a moment, then parks. */
  async #pump(): Promise<void> {
    try {
      for (;;) {
        if (this.#state === TERMINATE) return;
        const results = this.#results;
        // The word first, then the drain: a put after this read changes the
        // word, so the waits below cannot sleep through it.
        const seq = results.itemsSeq();
        if (this.#drain() > 0) {
          // Let the code awaiting these results run (and submit more).
          await null;
          continue;
        }
        if (this.#jobs.size === 0 && this.#backlog.length === 0) return;
        const end = performance.now() + SPIN_MS;
        let moved = false;
        do {
          for (let i = 0; i < 64; i++) {
            if (results.itemsSeq() !== seq) {
              moved = true;
              break;
            }
          }
        } while (!moved && performance.now() < end);
        if (moved) continue;
        // One parked waiter at most (a put wakes one): worker deaths,
        // cancellations and terminate() are handled where they are seen, and
        // the pump notices them when its slice ends (a parked wait keeps
        // Node's event loop alive, so it must not outlive the work).
        // A record the drain could not take yet (a producer growing the
        // ring holds its lock): look again shortly.
        const soon = results.hasRecords() || this.#backlog.length > 0;
        await results.waitItems(seq, soon ? 1 : SLICE);
      }
    } finally {
      this.#pumping = false;
      this.#updateRef();
    }
  }

  // ---- apply ----------------------------------------------------------------

  #checkFn(fn: unknown, what: string): void {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot ${what} as 'fn' must be a function: current value is ${show(fn)}`);
    }
  }

  #checkSignal(options: unknown, what: string): AbortSignal | undefined {
    const checked = checkOptions<AsyncTaskOptions<unknown>>(options, what, true);
    if (checked === undefined) return undefined;
    checkCallback(checked.callback, "callback", what);
    checkCallback(checked.errorCallback, "errorCallback", what);
    return checkSignal(checked.signal, what);
  }

  /**
   * Runs `fn(...args)` in a worker: Python's `apply_async`.
   *
   * @param fn The task function (see the class doc for how it is shipped).
   * @param args Its arguments: structured-clone values and this library's
   *   handles (queues, locks, …). @default {[]}
   * @param options `callback`, `errorCallback` and `signal`.
   * @returns The {@linkcode AsyncResult}.
   * @throws {ClosedError} after `close()` or `terminate()` ("Pool not running").
   * @throws {TypeError} when `fn` is not a function or an argument cannot
   *   be sent (naming where it sits, e.g. `args[1].cb`).
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * const seen: number[] = [];
   * const r = pool.applyAsync(async (x: number) => x * 2, [21], { callback: (v) => seen.push(v) });
   * assert.equal(await r.get(), 42);
   * assert.deepEqual(seen, [42]);
   * await pool.terminate();
   * ```
   */
  applyAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
    options?: AsyncTaskOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>> {
    let result: AsyncResult<Awaited<R>> | undefined;
    this.#apply(
      fn as AnyFn,
      args,
      options,
      "applyAsync",
      () => settleInto(result = new AsyncResult(options ?? undefined)),
    );
    return result!;
  }

  /**
   * Checks and submits one `fn(...args)` task. `start` is called once the
   * checks pass and gives the function that receives the outcome.
   */
  #apply(fn: AnyFn, args: unknown, options: TaskOptions | undefined, what: string, start: () => Settle): void {
    this.#checkRunning();
    this.#checkFn(fn, what);
    if (args !== undefined && !Array.isArray(args)) {
      throw new TypeError(`Cannot ${what} as 'args' must be an array: current value is ${show(args)}`);
    }
    const signal = this.#checkSignal(options, what);
    const fnId = this.#defs.idOf(fn);
    let settle = start();
    if (signal?.aborted) {
      settle(false, signal.reason);
      return;
    }
    if (!signal) {
      this.#submit(Kind.APPLY, fnId, args ?? [], renameArgs, settle);
      return;
    }
    let id = 0;
    const onAbort = () => {
      if (this.#cancel(id, true)) settle(false, signal.reason);
    };
    const inner = settle;
    settle = (ok, value) => {
      signal.removeEventListener("abort", onAbort);
      inner(ok, value);
    };
    id = this.#submit(Kind.APPLY, fnId, args ?? [], renameArgs, settle);
    signal.addEventListener("abort", onAbort, { once: true });
  }

  /**
   * Runs `fn(...args)` in a worker and waits for its result: Python's `apply`.
   *
   * @returns A Promise of what `fn` returned (awaited, if a Promise); rejects
   *   with a {@linkcode RemoteError} when `fn` threw, with an error when the
   *   worker died, or as {@linkcode Pool.applyAsync} throws.
   *
   * @example
   * ```ts
   * import { Pool, RemoteError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * await assert.rejects(pool.apply(() => { throw new TypeError("no"); }), RemoteError);
   * assert.equal(await pool.apply(() => "still working"), "still working");
   * await pool.terminate();
   * ```
   */
  apply<A extends unknown[], R>(fn: (...args: A) => R, args?: A, options?: TaskOptions): Promise<Awaited<R>> {
    // A throw in the executor rejects the Promise: nothing throws synchronously.
    return new Promise<Awaited<R>>((resolve, reject) => {
      this.#apply(fn as AnyFn, args, options, "apply", () => settleWith(resolve, reject));
    });
  }

  // ---- map ------------------------------------------------------------------

  #checkChunksize(chunksize: unknown, what: string): void {
    if (chunksize === undefined || chunksize === null) return;
    if (typeof chunksize !== "number") {
      throw new TypeError(
        `Cannot ${what} as 'chunksize' must be a positive integer: current value is ${show(chunksize)}`,
      );
    }
    if (!Number.isInteger(chunksize) || chunksize < 1) {
      throw new RangeError(
        `Cannot ${what} as 'chunksize' must be a positive integer: current value is ${show(chunksize)}`,
      );
    }
  }

  #checkIterable(iterable: unknown, what: string): void {
    if (!isIterable(iterable) && !isAsyncIterable(iterable)) {
      throw new TypeError(`Cannot ${what} as 'iterable' must be iterable: current value is ${show(iterable)}`);
    }
  }

  #mapAsync<R>(
    kind: number,
    what: string,
    fn: AnyFn,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | undefined,
    options: AsyncTaskOptions<R[]> | undefined,
  ): AsyncResult<R[]> {
    this.#checkRunning();
    this.#checkFn(fn, what);
    this.#checkIterable(iterable, what);
    this.#checkChunksize(chunksize, what);
    const signal = this.#checkSignal(options, what);
    const result = new AsyncResult<R[]>(options ?? undefined);
    if (signal?.aborted) {
      settleResult(result, false, signal.reason);
      return result;
    }
    const fnId = this.#defs.idOf(fn);
    if (isIterable(iterable)) {
      const items = Array.isArray(iterable) ? iterable : Array.from(iterable);
      this.#mapItems(kind, fnId, items, chunksize, result, signal);
      return result;
    }
    // An async iterable is collected first (Python's map takes a list).
    this.#feeders++;
    (async () => {
      const items: unknown[] = [];
      try {
        for await (const item of iterable) items.push(item);
      } finally {
        this.#feeders--;
      }
      if (this.#state === TERMINATE) throw new Error("Pool was terminated");
      this.#mapItems(kind, fnId, items, chunksize, result, signal);
    })().catch((error) => settleResult(result, false, error)).finally(() => this.#maybeStop());
    return result;
  }

  /**
   * Settles a chunked map's `result` once: the first failure (or abort of
   * `signal`, once `listen()` was called) cancels the chunks in `ids` still
   * queued, and an abort also replaces the workers running them; `drop()`
   * gives up without settling (submitting threw).
   */
  #settleOnce<R>(
    result: AsyncResult<R[]>,
    signal: AbortSignal | undefined,
    ids: number[],
  ): { finish: (ok: boolean, value: unknown) => void; listen: () => void; drop: () => void } {
    let settled = false;
    const onAbort = () => finish(false, signal!.reason, true);
    // An abort also stops the chunks that run; a failure lets them finish (as Python's map does).
    const finish = (ok: boolean, value: unknown, aborted = false): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (!ok) { for (const id of ids) this.#cancel(id, aborted); }
      settleResult(result, ok, value);
    };
    return {
      finish,
      listen: () => signal?.addEventListener("abort", onAbort, { once: true }),
      drop: () => {
        settled = true;
      },
    };
  }

  #mapItems<R>(
    kind: number,
    fnId: number,
    items: unknown[],
    chunksize: number | undefined,
    result: AsyncResult<R[]>,
    signal: AbortSignal | undefined,
  ): void {
    const n = items.length;
    if (n === 0) {
      settleResult(result, true, []);
      return;
    }
    const size = chunksize ?? defaultChunksize(n, this.#processes);
    if (kind === Kind.MAP && size >= BULK_MIN && this.#mapBulk(fnId, items, size, result, signal)) return;
    const parts: ArrayLike<unknown>[] = [];
    const ids: number[] = [];
    let left = Math.ceil(n / size);
    const once = this.#settleOnce(result, signal, ids);
    const finish = once.finish;
    try {
      for (let off = 0; off < n; off += size) {
        const end = Math.min(n, off + size);
        const at = off;
        const part = parts.length;
        parts.push([]);
        const payload = (kind === Kind.MAP ? asNumbers(items, off, end) : undefined) ??
          (size >= n ? items : items.slice(off, end));
        ids.push(this.#submit(kind, fnId, payload, renameItems(at), (ok, value) => {
          if (!ok) return finish(false, value);
          parts[part] = value as ArrayLike<unknown>;
          if (--left === 0) finish(true, concat(parts, n));
        }));
      }
    } catch (error) {
      once.drop();
      for (const id of ids) this.#cancel(id);
      throw error;
    }
    once.listen();
  }

  /**
   * `#mapItems` for items that are all numbers, in chunks of at least
   * `BULK_MIN`: the items are written once into the bulk area, each worker
   * reads its chunk there and writes number results back in place, and each
   * chunk's results are copied into the result array as the chunk finishes.
   * No codec and no fresh buffers: on a small VM, touching freshly allocated
   * memory (page faults) cost more than everything else a large map does.
   *
   * @returns `false` (nothing submitted) when an item is not a number or the area is full.
   */
  #mapBulk<R>(
    fnId: number,
    items: unknown[],
    size: number,
    result: AsyncResult<R[]>,
    signal: AbortSignal | undefined,
  ): boolean {
    const n = items.length;
    // The area is reused from its start once no worker can touch it.
    const area = this.#bulk.write(items, this.#jobs.hasBulk());
    if (!area) return false;
    const start = area.byteOffset / 8;
    // Filled first: an array of unboxed doubles, and not a slow dictionary (a bare large `new Array(n)` in V8).
    const out: unknown[] = new Array<number>(n).fill(0.5);
    const ids: number[] = [];
    let left = Math.ceil(n / size);
    const once = this.#settleOnce(result, signal, ids);
    const finish = once.finish;
    for (let off = 0; off < n; off += size) {
      const end = Math.min(n, off + size);
      const at = off;
      const id = this.#submit(Kind.MAP_BULK, fnId, [start + off, end - off], renameItems(at), (ok, value) => {
        if (!ok) return finish(false, value);
        // Number results sit in the area in place of the items; others came as an array.
        const got = value === BULK_RESULT ? area : value as ArrayLike<unknown>;
        const from = value === BULK_RESULT ? at : 0;
        for (let i = 0; i < end - at; i++) out[at + i] = got[from + i];
        if (--left === 0) finish(true, out);
      });
      this.#jobs.claimBulk(id);
      ids.push(id);
    }
    once.listen();
    return true;
  }

  /**
   * Runs `fn(item)` for each item, in chunks spread over the workers, and
   * resolves with the results in order: Python's `map`.
   *
   * @param fn The task function.
   * @param iterable The items (an array, any iterable, or an async iterable;
   *   it is read to its end first).
   * @param chunksize Items per task. @default {Python's: `ceil(length / (processes * 4))`}
   * @param options `signal`.
   * @returns A Promise of the results; rejects with the first error.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 2 });
   * assert.deepEqual(await pool.map((s: string) => s.toUpperCase(), ["a", "b"], 1), ["A", "B"]);
   * await pool.terminate();
   * ```
   */
  map<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: TaskOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync<Awaited<R>>(Kind.MAP, "map", fn as AnyFn, iterable, chunksize, options).get();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@linkcode Pool.map} returning an {@linkcode AsyncResult}: Python's `map_async`.
   *
   * @returns The {@linkcode AsyncResult} of the result array.
   * @throws {Error} after `close()` or `terminate()`.
   * @throws {TypeError} for a wrong argument, or an item that cannot be sent.
   * @throws {RangeError} when `chunksize` is not a positive integer.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 2 });
   * const r = pool.mapAsync((x: number) => x + 1, [1, 2, 3]);
   * await r.wait();
   * assert.deepEqual(await r.get(), [2, 3, 4]);
   * await pool.terminate();
   * ```
   */
  mapAsync<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: AsyncTaskOptions<Awaited<R>[]>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(Kind.MAP, "mapAsync", fn as AnyFn, iterable, chunksize, options);
  }

  /**
   * Like {@linkcode Pool.map}, with each item an argument array:
   * `fn(...item)`. Python's `starmap`.
   *
   * @returns A Promise of the results in order.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 2 });
   * assert.deepEqual(await pool.starmap((a: number, b: number) => Math.max(a, b), [[1, 5], [7, 2]]), [5, 7]);
   * await pool.terminate();
   * ```
   */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    iterable: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
    options?: TaskOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync<Awaited<R>>(Kind.STARMAP, "starmap", fn as AnyFn, iterable, chunksize, options).get();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@linkcode Pool.starmap} returning an {@linkcode AsyncResult}: Python's `starmap_async`.
   *
   * @returns The {@linkcode AsyncResult} of the result array.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 2 });
   * assert.deepEqual(await pool.starmapAsync((a: number, b: number) => a - b, [[5, 1]]).get(), [4]);
   * await pool.terminate();
   * ```
   */
  starmapAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    iterable: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
    options?: AsyncTaskOptions<Awaited<R>[]>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync(Kind.STARMAP, "starmapAsync", fn as AnyFn, iterable, chunksize, options);
  }

  // ---- imap -------------------------------------------------------------------

  /**
   * Runs `fn(item)` for each item and yields the results in order as they
   * come: Python's `imap`. The input is read as the results are consumed,
   * with a bounded number of chunks in flight, so it may be endless.
   *
   * @param chunksize Items per task. @default {1}
   * @returns An async iterable of the results. A task's error is thrown at
   *   its place; with `chunksize` 1 a later `next()` goes on with the next
   *   result, as in Python (a chunk of several items that fails, or an input
   *   that throws, ends the iteration there). As in Python, `next(timeout)`
   *   rejects with {@linkcode TimeoutError} when no result comes within
   *   `timeout` ms (the result is not lost: a later call returns it).
   * @throws {Error} after `close()` or `terminate()`.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * function* naturals() { for (let i = 0; ; i++) yield i; }
   * const pool = new Pool({ processes: 2 });
   * const got: number[] = [];
   * for await (const sq of pool.imap((x: number) => x * x, naturals())) {
   *   if (got.push(sq) === 5) break;
   * }
   * assert.deepEqual(got, [0, 1, 4, 9, 16]);
   * await pool.terminate();
   * ```
   */
  imap<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
  ): AsyncIterableIterator<Awaited<R>> {
    return this.#stream(fn as AnyFn, iterable, chunksize, true, "imap");
  }

  /**
   * Like {@linkcode Pool.imap}, yielding results in the order they finish:
   * Python's `imap_unordered`.
   *
   * @returns An async iterable of the results; `next(timeout)` as for
   *   {@linkcode Pool.imap}.
   *
   * @example
   * ```ts
   * import { Pool } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 2 });
   * const got: number[] = [];
   * for await (const x of pool.imapUnordered((x: number) => x * 10, [1, 2, 3])) got.push(x);
   * assert.deepEqual(got.sort((a, b) => a - b), [10, 20, 30]);
   * await pool.terminate();
   * ```
   */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
  ): AsyncIterableIterator<Awaited<R>> {
    return this.#stream(fn as AnyFn, iterable, chunksize, false, "imapUnordered");
  }

  #stream<R>(
    fn: AnyFn,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | undefined,
    ordered: boolean,
    what: string,
  ): AsyncIterableIterator<R> {
    this.#checkRunning();
    this.#checkFn(fn, what);
    this.#checkIterable(iterable, what);
    this.#checkChunksize(chunksize, what);
    const fnId = this.#defs.idOf(fn);
    this.#feeders++;
    const host: IMapHost = {
      submit: (chunk, at, settle) => this.#submit(Kind.MAP, fnId, chunk, renameItems(at), settle),
      cancel: (id) => this.#cancel(id),
      closed: () => this.#state === CLOSE,
      terminated: () => this.#state === TERMINATE,
      inputEnded: (it) => {
        this.#iterators.delete(it);
        this.#feeders--;
        this.#maybeStop();
      },
    };
    const it = new IMapIterator<R>(host, iterable, chunksize ?? 1, Math.max(8, this.#processes * 8), ordered, what);
    this.#iterators.add(it as IMapIterator<unknown>);
    void it.feed();
    return it;
  }

  // ---- lifecycle --------------------------------------------------------------

  /** Puts one `STOP` per worker once nothing more will be submitted. */
  #maybeStop(): void {
    if (this.#state !== CLOSE || this.#feeders > 0 || this.#stopsSent || this.#broken) return;
    this.#stopsSent = true;
    this.#putting = 0;
    for (let i = 0; i < this.#processes; i++) encodeTo([Kind.STOP], "task", this.#putRecord);
    this.#pumpSoon();
  }

  /** Starts the pump for records left in the backlog (it puts them as the ring takes them). */
  #pumpSoon(): void {
    if (this.#backlog.length > 0 && !this.#pumping) {
      this.#pumping = true;
      queueMicrotask(() => this.#pump());
    }
  }

  /**
   * Stops accepting tasks; the workers exit once the tasks already
   * submitted are done. The inputs of running `imap` iterators are then
   * read to their end (as Python does), their results kept for the
   * consumer. Idempotent.
   */
  close(): void {
    if (this.#state !== RUN) return;
    this.#state = CLOSE;
    for (const it of [...this.#iterators]) void it.feed();
    this.#maybeStop();
  }

  /**
   * Stops the workers at once; tasks not finished reject with an error.
   * On Deno a worker that runs JavaScript (a task that neither awaits nor
   * waits in this library) stops only once it does, or once its task
   * returns: the Promise then resolves after a second, and that worker
   * stops later (it no longer keeps the program alive).
   *
   * @returns A Promise that resolves once every worker has stopped.
   */
  terminate(): Promise<void> {
    if (this.#terminating) return this.#terminating;
    this.#state = TERMINATE;
    clearTimeout(this.#unrefTimer);
    this.#unrefTimer = undefined;
    const error = new Error("Pool was terminated before the task finished");
    const jobs = this.#jobs.clear();
    this.#backlog = [];
    const workers = [...this.#workers];
    for (const slot of workers) this.#stopWorker(slot);
    for (const settle of jobs) settle(false, error);
    // Stopping workers keep the program alive until they have stopped.
    this.#joining++;
    this.#updateRef();
    const ended = Promise.all(workers.map((w) => w.ended));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = terminateStops ? ended : Promise.race([
      ended,
      new Promise<void>((resolve) => timer = setTimeout(resolve, STOP_GRACE)),
    ]);
    this.#terminating = waited.then(() => {
      clearTimeout(timer);
      // Deno workers still running JavaScript: no longer waited for (their
      // end, when it comes, is still handled).
      for (const slot of workers) {
        if (slot.exited) continue;
        this.#workers.delete(slot);
        slot.handle.unref();
      }
      this.#joining--;
      this.#updateRef();
      this.#wakeJoiners();
    });
    return this.#terminating;
  }

  /**
   * Waits for the workers to exit. Call {@linkcode Pool.close} or
   * {@linkcode Pool.terminate} first.
   *
   * @returns A Promise that resolves once every worker has exited; rejects
   *   with an `Error` when the pool is still running.
   */
  async join(): Promise<void> {
    if (this.#state === RUN || this.#state === INIT) throw new Error("Pool is still running");
    if (this.#workers.size === 0) return;
    this.#joining++;
    this.#updateRef();
    try {
      await new Promise<void>((resolve) => this.#exitWaiters.push(resolve));
    } finally {
      this.#joining--;
      this.#updateRef();
    }
  }

  /** Terminates the pool when leaving an `await using` scope (as Python's `with Pool()` does). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }
}

/**
 * The chunks' results as one array. Not a bare `new Array(n)`: V8 keeps a
 * large one as a slow dictionary, many times slower to fill.
 */
function concat(parts: ArrayLike<unknown>[], n: number): unknown[] {
  if (parts.length === 1 && Array.isArray(parts[0]) && parts[0].length === n) return parts[0];
  if (parts.every((p) => p instanceof Float64Array)) {
    // All numbers: an array of unboxed doubles (filling it makes it one), written in place.
    const out = new Array<number>(n).fill(0.5);
    let k = 0;
    for (const part of parts as Float64Array[]) for (let i = 0; i < part.length; i++) out[k++] = part[i];
    return out;
  }
  const out: unknown[] = [];
  for (const part of parts) for (let i = 0; i < part.length; i++) out.push(part[i]);
  return out;
}

/** Rewrites `task[3]` (the payload in the task record) to `args` in a codec error. */
function renameArgs(error: unknown): unknown {
  if (error instanceof TypeError) error.message = error.message.replace(/task\[3\]/, "args");
  return error;
}

/** Rewrites `task[3][i]` (item `i` of a chunk starting at item `at`) to `iterable[at + i]`. */
function renameItems(at: number): (error: unknown) => unknown {
  return (error) => {
    if (error instanceof TypeError) {
      error.message = error.message.replace(/task\[3\]\[(\d+)\]/, (_, i) => `iterable[${at + Number(i)}]`);
    }
    return error;
  };
}
