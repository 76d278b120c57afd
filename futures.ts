// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Python's `concurrent.futures` on this library's {@linkcode Pool}:
 * {@linkcode ProcessPoolExecutor} (and its alias
 * {@linkcode ThreadPoolExecutor}), {@linkcode Future}, {@linkcode asCompleted}
 * and {@linkcode wait}.
 *
 * ```ts
 * import { asCompleted, ProcessPoolExecutor } from "@mpjs/multiprocessing";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
 * const futures = [1, 2, 3].map((n) => executor.submit((x: number) => x * x, n));
 * for await (const f of asCompleted(futures)) console.log(await f.result());
 * ```
 *
 * **States.** A future is *pending* in the executor's backlog, *running*
 * once it is handed to a pool worker, then *finished* (with a result or an
 * exception); only a pending future can be cancelled. The executor hands a
 * task to the pool only when a worker is free (at most `maxWorkers` at once),
 * so *running* means a worker has it, and `cancel()` never stops work that
 * started (as in Python).
 *
 * **Threads.** Futures live in the thread that made the executor: their
 * outcomes arrive on its event loop, so every wait is async. Tasks run in
 * worker threads with their own globals (as Python's processes do), shipped
 * as {@linkcode Pool} ships them: by `module` export or self-contained source.
 *
 * @module
 */

import { CancelledError, TimeoutError } from "./errors.ts";
import { Pool, type PoolOptions } from "./pool.ts";
import { checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";
import { checkCloneable } from "./_codec.ts";
import { handlerFor } from "./_handles.ts";
import { cpuCount, writeStderr } from "./_runtime.ts";

/**
 * `wait()` returns when any future finishes or is cancelled.
 *
 * @example
 * ```ts
 * import { FIRST_COMPLETED, Future, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const done = new Future<number>();
 * done.setResult(1);
 * const r = await wait([done, new Future()], { returnWhen: FIRST_COMPLETED });
 * assert.equal(r.done.size, 1);
 * ```
 */
export const FIRST_COMPLETED = "FIRST_COMPLETED";
/**
 * `wait()` returns when any future finishes by raising an exception (or when all finish).
 *
 * @example
 * ```ts
 * import { FIRST_EXCEPTION, Future, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const failed = new Future();
 * failed.setException(new Error("no"));
 * const r = await wait([failed, new Future()], { returnWhen: FIRST_EXCEPTION });
 * assert.equal(r.notDone.size, 1);
 * ```
 */
export const FIRST_EXCEPTION = "FIRST_EXCEPTION";
/**
 * `wait()` returns when all futures finish or are cancelled.
 *
 * @example
 * ```ts
 * import { ALL_COMPLETED, Future, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const f = new Future();
 * f.cancel();
 * assert.equal((await wait([f], { returnWhen: ALL_COMPLETED })).done.size, 1);
 * ```
 */
export const ALL_COMPLETED = "ALL_COMPLETED";

/**
 * When {@linkcode wait} returns: one of the three constants.
 *
 * @example
 * ```ts
 * import { FIRST_COMPLETED, type ReturnWhen } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const when: ReturnWhen = FIRST_COMPLETED;
 * assert.equal(when, "FIRST_COMPLETED");
 * ```
 */
export type ReturnWhen = typeof FIRST_COMPLETED | typeof FIRST_EXCEPTION | typeof ALL_COMPLETED;

/**
 * Options for waiting on one future: {@linkcode Future.result}, {@linkcode Future.exception}.
 *
 * @example
 * ```ts
 * import { Future, type FutureWaitOptions, TimeoutError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: FutureWaitOptions = { timeout: 5 };
 * await assert.rejects(new Future().result(options), TimeoutError);
 * ```
 */
export interface FutureWaitOptions {
  /** How long to wait, in ms. @default {undefined} (no limit) */
  timeout?: number;
  /** Stops waiting (the future is not cancelled). */
  signal?: AbortSignal;
}

const PENDING = 0;
const RUNNING = 1;
const CANCELLED = 2;
const FINISHED = 3;
type State = typeof PENDING | typeof RUNNING | typeof CANCELLED | typeof FINISHED;
const STATE_NAMES = ["pending", "running", "cancelled", "finished"] as const;

/**
 * Python's `concurrent.futures.Future`: the eventual outcome of a task
 * submitted to an executor. Executors make them; a test or another executor
 * may make one and settle it with {@linkcode Future.setResult} or
 * {@linkcode Future.setException}.
 *
 * @example
 * ```ts
 * import { ProcessPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
 * const future = executor.submit((a: number, b: number) => a + b, 2, 3);
 * assert.equal(await future.result(), 5);
 * assert.equal(future.done(), true);
 * assert.equal(await future.exception(), undefined);
 * ```
 */
export class Future<R = unknown> {
  #state: State = PENDING;
  #ok = false;
  #value: unknown;
  // Typed loosely so that a Future<string> is a Future<unknown> (callbacks get `this`).
  // deno-lint-ignore no-explicit-any
  #callbacks: ((future: any) => void)[] = [];

  /**
   * Attempts to cancel the task: possible only while it is pending.
   *
   * @returns `true` when the future is (now or already) cancelled; `false`
   *   when it is running or finished.
   *
   * @example
   * ```ts
   * import { CancelledError, Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future<number>();
   * assert.equal(f.cancel(), true);
   * assert.equal(f.cancelled(), true);
   * await assert.rejects(f.result(), CancelledError);
   * ```
   */
  cancel(): boolean {
    if (this.#state === RUNNING || this.#state === FINISHED) return false;
    if (this.#state === CANCELLED) return true;
    this.#state = CANCELLED;
    this.#notify();
    return true;
  }

  /**
   * Whether the future was cancelled.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Future().cancelled(), false);
   * ```
   */
  cancelled(): boolean {
    return this.#state === CANCELLED;
  }

  /**
   * Whether a worker is running the task now.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future();
   * f.setRunningOrNotifyCancel();
   * assert.equal(f.running(), true);
   * ```
   */
  running(): boolean {
    return this.#state === RUNNING;
  }

  /**
   * Whether the future is cancelled or finished.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future<string>();
   * f.setResult("ok");
   * assert.equal(f.done(), true);
   * ```
   */
  done(): boolean {
    return this.#state === CANCELLED || this.#state === FINISHED;
  }

  /**
   * Waits for the outcome and returns the result.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns What the task returned; rejects with the task's error (a
   *   `RemoteError` for a task that threw in a worker), with
   *   {@linkcode CancelledError} when cancelled, with
   *   {@linkcode TimeoutError} when not done in time, or with the signal's
   *   reason.
   *
   * @example
   * ```ts
   * import { Future, TimeoutError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future<number>();
   * await assert.rejects(f.result({ timeout: 10 }), TimeoutError);
   * setTimeout(() => f.setResult(42), 5);
   * assert.equal(await f.result(), 42);
   * ```
   */
  async result(options?: FutureWaitOptions): Promise<R> {
    await this.#wait(options, "Future.result()");
    if (this.#state === CANCELLED) throw new CancelledError("The future was cancelled");
    if (!this.#ok) throw this.#value;
    return this.#value as R;
  }

  /**
   * Waits for the outcome and returns the error the task ended with.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The error, or `undefined` when the task returned normally;
   *   rejects as {@linkcode Future.result} does when cancelled, on timeout
   *   or on abort.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future();
   * f.setException(new RangeError("bad"));
   * assert.ok((await f.exception()) instanceof RangeError);
   * ```
   */
  async exception(options?: FutureWaitOptions): Promise<unknown> {
    await this.#wait(options, "Future.exception()");
    if (this.#state === CANCELLED) throw new CancelledError("The future was cancelled");
    return this.#ok ? undefined : this.#value;
  }

  /**
   * Calls `fn(future)` once the future is cancelled or finished; at once
   * when it already is. An error thrown by `fn` is printed and ignored, as
   * Python logs it.
   *
   * @param fn The callback.
   * @throws {TypeError} when `fn` is not a function.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future<number>();
   * const seen: boolean[] = [];
   * f.addDoneCallback((done) => seen.push(done.done()));
   * f.setResult(1);
   * assert.deepEqual(seen, [true]);
   * ```
   */
  addDoneCallback(fn: (future: Future<R>) => void): void {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot add a done callback as 'fn' must be a function: current value is ${show(fn)}`);
    }
    if (this.done()) this.#call(fn);
    else this.#callbacks.push(fn);
  }

  /**
   * For executors: marks a pending future running, or reports that it was
   * cancelled.
   *
   * @returns `false` when the future was cancelled (do not run the task),
   *   `true` when it is now running.
   * @throws {Error} when the future is already running or finished.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future();
   * f.cancel();
   * assert.equal(f.setRunningOrNotifyCancel(), false);
   * ```
   */
  setRunningOrNotifyCancel(): boolean {
    if (this.#state === CANCELLED) return false;
    if (this.#state !== PENDING) throw new Error(`Cannot run the future: it is ${STATE_NAMES[this.#state]}`);
    this.#state = RUNNING;
    return true;
  }

  /**
   * For executors and tests: finishes the future with `result`.
   *
   * @param result The result.
   * @throws {Error} when the future is already cancelled or finished.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future<string>();
   * f.setResult("done");
   * assert.equal(await f.result(), "done");
   * ```
   */
  setResult(result: R): void {
    this.#finish(true, result, "setResult");
  }

  /**
   * For executors and tests: finishes the future with `error`.
   *
   * @param error The error.
   * @throws {Error} when the future is already cancelled or finished.
   *
   * @example
   * ```ts
   * import { Future } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const f = new Future();
   * f.setException(new Error("failed"));
   * await assert.rejects(f.result(), /failed/);
   * ```
   */
  setException(error: unknown): void {
    this.#finish(false, error, "setException");
  }

  /** `<Future state=running>`. */
  toString(): string {
    if (this.#state !== FINISHED) return `<Future state=${STATE_NAMES[this.#state]}>`;
    return `<Future state=finished ${this.#ok ? "returned" : "raised"} ${describe(this.#value)}>`;
  }

  #finish(ok: boolean, value: unknown, what: string): void {
    if (this.done()) throw new Error(`Cannot ${what} on the future: it is ${STATE_NAMES[this.#state]}`);
    this.#state = FINISHED;
    this.#ok = ok;
    this.#value = value;
    if (!ok) failures.add(this);
    this.#notify();
  }

  #notify(): void {
    const waiters = waiting.get(this);
    waiting.delete(this);
    if (waiters !== undefined) { for (const wake of waiters) wake(); }
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const fn of callbacks) this.#call(fn);
  }

  // deno-lint-ignore no-explicit-any
  #call(fn: (future: any) => void): void {
    try {
      fn(this);
    } catch (error) {
      writeStderr(`Exception calling a done callback of ${this}:\n${describeError(error)}\n`);
    }
  }

  /** Resolves once done; rejects on timeout or abort. */
  #wait(options: FutureWaitOptions | undefined, what: string): Promise<void> {
    const o = checkOptions<FutureWaitOptions>(options, what, false, "call ");
    const ms = checkTimeout(o?.timeout, what);
    const signal = checkSignal(o?.signal, what, "call ");
    signal?.throwIfAborted();
    if (this.done()) return Promise.resolve();
    return untilAny([this], ms, signal, () => this.done(), `${what} waited ${ms} ms and the future is not done`);
  }
}

// deno-lint-ignore no-explicit-any
type AnyFuture = Future<any>;

/** Functions to call when a future is done (added by {@linkcode subscribe}, called once). */
const waiting = new WeakMap<AnyFuture, Set<() => void>>();
/** The futures that finished with an exception. */
const failures = new WeakSet<AnyFuture>();

/** Adds `wake` to `f`'s waiters; returns the function that takes it out again. */
function subscribe(f: AnyFuture, wake: () => void): () => void {
  let set = waiting.get(f);
  if (set === undefined) waiting.set(f, set = new Set());
  set.add(wake);
  return () => set.delete(wake);
}

/**
 * Waits until `ready()` holds, re-checking it whenever one of `futures`
 * settles; rejects with {@linkcode TimeoutError} (`message`) after `ms` or
 * with the signal's reason.
 */
function untilAny(
  futures: Iterable<AnyFuture>,
  ms: number,
  signal: AbortSignal | undefined,
  ready: () => boolean,
  message: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const unsubscribes: (() => void)[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = (error?: unknown) => {
      for (const u of unsubscribes) u();
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => end(signal!.reason);
    const check = () => {
      if (ready()) end();
    };
    for (const f of futures) unsubscribes.push(subscribe(f, check));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (ms !== Infinity) {
      const deadline = Date.now() + ms;
      const arm = () => {
        const left = deadline - Date.now();
        timer = left > MAX_DELAY ? setTimeout(arm, MAX_DELAY) : setTimeout(() => end(new TimeoutError(message)), left);
      };
      arm();
    }
    check();
  });
}

/** The longest delay a timer takes (about 24.8 days). */
const MAX_DELAY = 0x7fffffff;

function describe(value: unknown): string {
  if (value instanceof Error) return value.name;
  return typeof value === "object" && value !== null ? value.constructor?.name ?? "object" : typeof value;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.stack ?? `${error.name}: ${error.message}` : String(error);
}

function checkFutures(fs: unknown, what: string): Set<AnyFuture> {
  if (fs === null || typeof fs !== "object" || typeof (fs as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new TypeError(`Cannot call ${what} as 'fs' must be an iterable of futures: current value is ${show(fs)}`);
  }
  const set = new Set<AnyFuture>();
  let i = 0;
  for (const f of fs as Iterable<unknown>) {
    if (!(f instanceof Future)) {
      throw new TypeError(`Cannot call ${what} as fs[${i}] is not a Future: current value is ${show(f)}`);
    }
    set.add(f);
    i++;
  }
  return set;
}

/**
 * Options for {@linkcode wait}.
 *
 * @example
 * ```ts
 * import { Future, type FuturesWaitOptions, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: FuturesWaitOptions = { timeout: 5 };
 * assert.equal((await wait([new Future()], options)).notDone.size, 1);
 * ```
 */
export interface FuturesWaitOptions {
  /** How long to wait, in ms; then it returns what is done so far. @default {undefined} (no limit) */
  timeout?: number;
  /** When to return. @default {"ALL_COMPLETED"} */
  returnWhen?: ReturnWhen;
  /** Stops waiting: rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * What {@linkcode wait} returns: Python's `DoneAndNotDoneFutures`.
 *
 * @example
 * ```ts
 * import { type DoneAndNotDone, Future, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const f = new Future<number>();
 * f.setResult(1);
 * const r: DoneAndNotDone<number> = await wait([f]);
 * assert.ok(r.done.has(f));
 * ```
 */
export interface DoneAndNotDone<R> {
  /** The futures that finished or were cancelled. */
  done: Set<Future<R>>;
  /** The others. */
  notDone: Set<Future<R>>;
}

/**
 * Python's `concurrent.futures.wait`: waits until the futures in `fs`
 * reach `returnWhen` or `timeout` passes, and returns them split into done
 * and not done (a timeout is not an error).
 *
 * @param fs The futures (duplicates count once).
 * @param options `timeout` (ms), `returnWhen` and `signal`.
 * @returns The futures, done and not done.
 *
 * @example
 * ```ts
 * import { FIRST_COMPLETED, ProcessPoolExecutor, wait } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
 * const quick = executor.submit(() => "quick");
 * const slow = executor.submit(() => new Promise((r) => setTimeout(() => r("slow"), 500)));
 * const { done } = await wait([quick, slow], { returnWhen: FIRST_COMPLETED });
 * assert.ok(done.has(quick));
 * ```
 */
export async function wait<R>(fs: Iterable<Future<R>>, options?: FuturesWaitOptions): Promise<DoneAndNotDone<R>> {
  const what = "wait()";
  const all = checkFutures(fs, what) as Set<Future<R>>;
  const o = checkOptions<FuturesWaitOptions>(options, what, false, "call ");
  const ms = checkTimeout(o?.timeout, what);
  const signal = checkSignal(o?.signal, what, "call ");
  const returnWhen = o?.returnWhen === undefined ? ALL_COMPLETED : o.returnWhen;
  if (returnWhen !== FIRST_COMPLETED && returnWhen !== FIRST_EXCEPTION && returnWhen !== ALL_COMPLETED) {
    throw new TypeError(
      `Cannot call wait() as 'returnWhen' must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED: current value is ${
        show(returnWhen)
      }`,
    );
  }
  signal?.throwIfAborted();
  const list = [...all];
  const ready = () => {
    let done = 0;
    for (const f of list) {
      if (!f.done()) continue;
      if (returnWhen === FIRST_COMPLETED) return true;
      if (returnWhen === FIRST_EXCEPTION && failures.has(f)) return true;
      done++;
    }
    return done === list.length;
  };
  try {
    await untilAny(list, ms, signal, ready, "");
  } catch (error) {
    if (!(error instanceof TimeoutError)) throw error;
  }
  const result: DoneAndNotDone<R> = { done: new Set(), notDone: new Set() };
  for (const f of list) (f.done() ? result.done : result.notDone).add(f);
  return result;
}

/**
 * Options for {@linkcode asCompleted}.
 *
 * @example
 * ```ts
 * import { asCompleted, type AsCompletedOptions, Future, TimeoutError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: AsCompletedOptions = { timeout: 5 };
 * await assert.rejects(asCompleted([new Future()], options).next(), TimeoutError);
 * ```
 */
export interface AsCompletedOptions {
  /**
   * How long, in ms from the call, all the futures may take; past it the
   * iteration throws {@linkcode TimeoutError}. @default {undefined} (no limit)
   */
  timeout?: number;
  /** Stops the iteration: it throws the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Python's `concurrent.futures.as_completed`: yields the futures of `fs`
 * as they finish or are cancelled, those already done first (duplicates
 * once).
 *
 * @param fs The futures.
 * @param options `timeout` (ms, for all of them, from the call) and `signal`.
 * @returns An async iterator of the futures; it throws
 *   {@linkcode TimeoutError} when some are not done in time.
 * @throws {TypeError} when `fs` is not an iterable of futures.
 *
 * @example
 * ```ts
 * import { asCompleted, ProcessPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
 * const futures = [30, 1].map((ms) => executor.submit((t: number) => new Promise<number>((r) => setTimeout(() => r(t), t)), ms));
 * const order: number[] = [];
 * for await (const f of asCompleted(futures)) order.push(await f.result());
 * assert.deepEqual(order.sort((a, b) => a - b), [1, 30]);
 * ```
 */
export function asCompleted<R>(
  fs: Iterable<Future<R>>,
  options?: AsCompletedOptions,
): AsyncIterableIterator<Future<R>> {
  const what = "asCompleted()";
  const pending = checkFutures(fs, what) as Set<Future<R>>;
  const o = checkOptions<AsCompletedOptions>(options, what, false, "call ");
  const ms = checkTimeout(o?.timeout, what);
  const signal = checkSignal(o?.signal, what, "call ");
  const deadline = Date.now() + ms;
  const total = pending.size;
  async function* iterate(): AsyncGenerator<Future<R>> {
    signal?.throwIfAborted();
    for (const f of [...pending]) {
      if (f.done()) {
        pending.delete(f);
        yield f;
      }
    }
    while (pending.size > 0) {
      const left = Math.max(0, deadline - Date.now());
      await untilAny(
        pending,
        ms === Infinity ? Infinity : left,
        signal,
        () => [...pending].some((f) => f.done()),
        `asCompleted() waited ${ms} ms: ${pending.size} (of ${total}) futures unfinished`,
      );
      for (const f of [...pending]) {
        if (f.done()) {
          pending.delete(f);
          yield f;
        }
      }
    }
  }
  return iterate();
}

/**
 * Options for {@linkcode ProcessPoolExecutor}.
 *
 * @example
 * ```ts
 * import { type ExecutorOptions, ProcessPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: ExecutorOptions = { maxWorkers: 1 };
 * await using executor = new ProcessPoolExecutor(options);
 * assert.equal(await executor.submit(() => 1).result(), 1);
 * ```
 */
export interface ExecutorOptions<I extends unknown[] = unknown[]> extends Omit<PoolOptions<I>, "processes"> {
  /** How many workers run tasks at once (the pool's `processes`). @default {cpuCount()} */
  maxWorkers?: number;
}

/**
 * Options for {@linkcode ProcessPoolExecutor.map}.
 *
 * @example
 * ```ts
 * import { type ExecutorMapOptions, ProcessPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
 * const options: ExecutorMapOptions = { chunksize: 2 };
 * const out: number[] = [];
 * for await (const x of executor.map((n: number) => n + 1, [1, 2, 3], options)) out.push(x);
 * assert.deepEqual(out, [2, 3, 4]);
 * ```
 */
export interface ExecutorMapOptions {
  /**
   * How long, in ms from the call, the results may take; past it the
   * iteration throws {@linkcode TimeoutError}. @default {undefined} (no limit)
   */
  timeout?: number;
  /** Items sent to a worker as one task. @default {1} */
  chunksize?: number;
}

/**
 * Options for {@linkcode ProcessPoolExecutor.shutdown}.
 *
 * @example
 * ```ts
 * import { ProcessPoolExecutor, type ShutdownOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const executor = new ProcessPoolExecutor({ maxWorkers: 1 });
 * const options: ShutdownOptions = { wait: true, cancelFutures: true };
 * await executor.shutdown(options);
 * assert.throws(() => executor.submit(() => 1), /after shutdown/);
 * ```
 */
export interface ShutdownOptions {
  /** Wait for every submitted task to finish (and the workers to end). @default {true} */
  wait?: boolean;
  /** Cancel the tasks that have not started. @default {false} */
  cancelFutures?: boolean;
}

/** A submitted unit of work: the future, and how to hand it to the pool. */
interface WorkItem {
  future: AnyFuture;
  start: (pool: Pool, settle: (ok: boolean, value: unknown) => void) => void;
}

/**
 * Python's `concurrent.futures.ProcessPoolExecutor`, on a {@linkcode Pool}
 * of worker threads: `submit` returns a {@linkcode Future}, `map` yields
 * results in order, `shutdown` (or `await using`) ends it.
 *
 * @example
 * ```ts
 * import { ProcessPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
 * const results: number[] = [];
 * for await (const r of executor.map((x: number) => x * x, [1, 2, 3])) results.push(r);
 * assert.deepEqual(results, [1, 4, 9]);
 * ```
 */
export class ProcessPoolExecutor {
  #pool: Pool;
  #maxWorkers: number;
  #backlog: WorkItem[] = [];
  #running = 0;
  #shutdown = false;
  #idle: (() => void)[] = [];
  #closing: Promise<void> | undefined;

  /**
   * Starts the executor and its workers.
   *
   * @param options `maxWorkers`, `initializer`, `initargs`, `maxTasksPerChild`, `module`.
   * @throws {TypeError} when `options` is not an object, or as {@linkcode Pool}'s constructor.
   * @throws {RangeError} when `maxWorkers` is not a positive integer.
   */
  // deno-lint-ignore no-explicit-any
  constructor(options: ExecutorOptions<any[]> = {}) {
    const o = checkOptions<ExecutorOptions>(options, `${new.target.name}`, false, "create ") ?? {};
    const { maxWorkers } = o;
    if (
      maxWorkers !== undefined && (typeof maxWorkers !== "number" || !Number.isInteger(maxWorkers) || maxWorkers < 1)
    ) {
      throw new RangeError(
        `Cannot create ${new.target.name} as 'maxWorkers' must be a positive integer: current value is ${
          show(maxWorkers)
        }`,
      );
    }
    const poolOptions: PoolOptions = {
      processes: maxWorkers,
      initializer: o.initializer,
      initargs: o.initargs,
      maxTasksPerChild: o.maxTasksPerChild,
      module: o.module,
    };
    this.#pool = new Pool(poolOptions);
    this.#maxWorkers = maxWorkers ?? cpuCount();
  }

  /**
   * Schedules `fn(...args)` and returns its future. The task starts when a
   * worker is free.
   *
   * @param fn The task function (by `module` export, or self-contained).
   * @param args Its arguments.
   * @returns The future of its result.
   * @throws {Error} after `shutdown()`.
   * @throws {TypeError} when `fn` is not a function or an argument cannot be
   *   sent (naming where it sits).
   *
   * @example
   * ```ts
   * import { ProcessPoolExecutor } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using executor = new ProcessPoolExecutor({ maxWorkers: 1 });
   * assert.equal(await executor.submit((a: number, b: number) => Math.max(a, b), 3, 7).result(), 7);
   * ```
   */
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): Future<Awaited<R>> {
    const what = `${this.constructor.name}.submit()`;
    this.#checkOpen(what);
    checkFn(fn, what);
    checkArgs(args);
    const future = new Future<Awaited<R>>();
    this.#enqueue({
      future: future as AnyFuture,
      start: (pool, settle) =>
        pool.applyAsync(fn, args, { callback: (v) => settle(true, v), errorCallback: (e) => settle(false, e) }),
    });
    return future;
  }

  /**
   * Python's `Executor.map`: `fn` applied to the items of `iterables` taken
   * in step (`fn(a[i], b[i], …)`, stopping at the shortest), all submitted
   * at once; the results come in order.
   *
   * @param fn The task function.
   * @param iterables One or more iterables of arguments, optionally followed
   *   by an options object (`timeout` in ms from the call, `chunksize`).
   * @returns An async iterator of the results in order; it throws the first
   *   task error it reaches, or {@linkcode TimeoutError}. Leaving the loop
   *   early cancels the tasks that have not started.
   * @throws {Error} after `shutdown()`.
   * @throws {TypeError} when `fn` is not a function, an argument is not
   *   iterable or cannot be sent.
   * @throws {RangeError} when `chunksize` is not a positive integer.
   *
   * @example
   * ```ts
   * import { ProcessPoolExecutor } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using executor = new ProcessPoolExecutor({ maxWorkers: 2 });
   * const out: number[] = [];
   * for await (const p of executor.map((b: number, e: number) => b ** e, [2, 3, 4], [5, 2, 1], { chunksize: 2 })) {
   *   out.push(p);
   * }
   * assert.deepEqual(out, [32, 9, 4]);
   * ```
   */
  map<R>(
    // deno-lint-ignore no-explicit-any
    fn: (...args: any[]) => R,
    ...iterables: (Iterable<unknown> | ExecutorMapOptions)[]
  ): AsyncIterableIterator<Awaited<R>> {
    const what = `${this.constructor.name}.map()`;
    this.#checkOpen(what);
    checkFn(fn, what);
    let options: ExecutorMapOptions | undefined;
    const last = iterables[iterables.length - 1];
    if (iterables.length > 1 && !isIterable(last)) options = iterables.pop() as ExecutorMapOptions;
    const o = checkOptions<ExecutorMapOptions>(options, what, false, "call ");
    const ms = checkTimeout(o?.timeout, what);
    const chunksize = o?.chunksize === undefined ? 1 : o.chunksize;
    if (typeof chunksize !== "number" || !Number.isInteger(chunksize) || chunksize < 1) {
      throw new RangeError(
        `Cannot call ${what} as 'chunksize' must be a positive integer: current value is ${show(chunksize)}`,
      );
    }
    if (iterables.length === 0) throw new TypeError(`Cannot call ${what} without an iterable of arguments`);
    const iterators = iterables.map((it, i) => {
      if (!isIterable(it)) {
        throw new TypeError(`Cannot call ${what} as iterables[${i}] is not iterable: current value is ${show(it)}`);
      }
      return (it as Iterable<unknown>)[Symbol.iterator]();
    });
    const calls: unknown[][] = [];
    for (;;) {
      const step = iterators.map((it) => it.next());
      if (step.some((s) => s.done)) break;
      calls.push(step.map((s) => s.value));
    }
    checkArgs(calls);
    const futures: Future<unknown[]>[] = [];
    for (let i = 0; i < calls.length; i += chunksize) {
      const chunk = calls.slice(i, i + chunksize);
      const future = new Future<unknown[]>();
      futures.push(future);
      this.#enqueue({
        future: future as AnyFuture,
        start: (pool, settle) =>
          pool.starmapAsync(fn, chunk as unknown[][], chunk.length, {
            callback: (v) => settle(true, v),
            errorCallback: (e) => settle(false, e),
          }),
      });
    }
    const deadline = Date.now() + ms;
    async function* results(): AsyncGenerator<Awaited<R>> {
      try {
        for (const f of futures) {
          const timeout = ms === Infinity ? undefined : Math.max(0, deadline - Date.now());
          for (const r of await f.result({ timeout })) yield r as Awaited<R>;
        }
      } finally {
        for (const f of futures) f.cancel();
      }
    }
    return results();
  }

  /**
   * Ends the executor: no more tasks are accepted. With `cancelFutures`,
   * the tasks that have not started are cancelled; with `wait` (the
   * default), resolves once every other task has finished and the workers
   * have ended, otherwise at once (they end in the background).
   *
   * @param options `wait` and `cancelFutures`.
   *
   * @example
   * ```ts
   * import { ProcessPoolExecutor } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const executor = new ProcessPoolExecutor({ maxWorkers: 1 });
   * const f = executor.submit(() => 1);
   * await executor.shutdown();
   * assert.equal(f.done(), true);
   * assert.throws(() => executor.submit(() => 2), /after shutdown/);
   * ```
   */
  async shutdown(options?: ShutdownOptions): Promise<void> {
    const what = `${this.constructor.name}.shutdown()`;
    const o = checkOptions<ShutdownOptions>(options, what, false, "call ");
    for (const key of ["wait", "cancelFutures"] as const) {
      const v = o?.[key];
      if (v !== undefined && typeof v !== "boolean") {
        throw new TypeError(`Cannot call ${what} as '${key}' must be a boolean: current value is ${show(v)}`);
      }
    }
    const wait = o?.wait ?? true;
    const cancelFutures = o?.cancelFutures ?? false;
    this.#shutdown = true;
    if (cancelFutures) {
      for (const item of this.#backlog) item.future.cancel();
      this.#backlog = [];
    }
    this.#closing ??= (async () => {
      while (this.#running > 0 || this.#backlog.length > 0) {
        await new Promise<void>((resolve) => this.#idle.push(resolve));
      }
      this.#pool.close();
      await this.#pool.join();
    })();
    if (wait) await this.#closing;
  }

  /** `await using`: {@linkcode ProcessPoolExecutor.shutdown} with `wait`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  #checkOpen(what: string): void {
    if (this.#shutdown) throw new Error(`Cannot call ${what}: cannot schedule new futures after shutdown`);
  }

  #enqueue(item: WorkItem): void {
    this.#backlog.push(item);
    this.#dispatch();
  }

  /** Hands tasks to the pool while a worker is free; a cancelled one is dropped. */
  #dispatch(): void {
    while (this.#running < this.#maxWorkers && this.#backlog.length > 0) {
      const item = this.#backlog.shift()!;
      if (!item.future.setRunningOrNotifyCancel()) continue;
      this.#running++;
      let settled = false;
      const settle = (ok: boolean, value: unknown) => {
        if (settled) return;
        settled = true;
        this.#running--;
        if (ok) item.future.setResult(value);
        else item.future.setException(value);
        this.#dispatch();
      };
      try {
        item.start(this.#pool, settle);
      } catch (error) {
        settle(false, error);
      }
    }
    if (this.#running === 0 && this.#backlog.length === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const wake of idle) wake();
    }
  }
}

/**
 * Python's `ThreadPoolExecutor`, the same executor here: every task runs in
 * a worker thread with its own globals (share state through this library's
 * objects).
 *
 * @example
 * ```ts
 * import { ThreadPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using executor = new ThreadPoolExecutor({ maxWorkers: 1 });
 * assert.equal(await executor.submit((s: string) => s.toUpperCase(), "hi").result(), "HI");
 * ```
 */
export const ThreadPoolExecutor: typeof ProcessPoolExecutor = ProcessPoolExecutor;
/**
 * The type of a {@linkcode ThreadPoolExecutor}: a {@linkcode ProcessPoolExecutor}.
 *
 * @example
 * ```ts
 * import { ProcessPoolExecutor, ThreadPoolExecutor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const executor: ThreadPoolExecutor = new ThreadPoolExecutor({ maxWorkers: 1 });
 * assert.ok(executor instanceof ProcessPoolExecutor);
 * await executor.shutdown();
 * ```
 */
export type ThreadPoolExecutor = ProcessPoolExecutor;

function checkFn(fn: unknown, what: string): void {
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot call ${what} as 'fn' must be a function: current value is ${show(fn)}`);
  }
}

/** Refuses arguments that cannot cross threads (this library's handles can). */
function checkArgs(args: unknown[]): void {
  checkCloneable(args, "args", (v) => handlerFor(v) !== undefined);
}

function isIterable(v: unknown): boolean {
  return (typeof v === "object" && v !== null || typeof v === "string") &&
    typeof (v as Iterable<unknown>)[Symbol.iterator] === "function";
}
