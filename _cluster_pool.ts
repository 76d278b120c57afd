// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The caller's side of a cluster pool ({@linkcode ClusterPool}): the local
 * `Pool`'s methods, with the work done by worker processes
 * (`cluster_worker.ts`) anywhere that reach the same NATS server. The
 * messages and names are in `_cluster_pool_protocol.ts`.
 *
 * Invariants:
 * - Each task (one `apply`, or one chunk of a map) has an id unique in this
 *   pool object; it is in `#pending` from its submission until it settles,
 *   once: by its first result, by the server's "delivered `maxDeliver` times"
 *   advisory, by a cancel or by `terminate()`. Later results of the same id
 *   are answered (so their worker acknowledges the task) and dropped.
 * - A task's stream sequence is known once its publish is acknowledged; a
 *   task cancelled before then is deleted from the stream when it is.
 *
 * @module
 */

import { decode, encode } from "./_codec.ts";
import { ClosedError, RemoteError } from "./errors.ts";
import { AsyncResult, type AsyncTaskOptions, type TaskOptions } from "./pool.ts";
import { type Settle, settleResult } from "./_pool_tasks.ts";
import { specFor } from "./_pool_defs.ts";
import { checkCallback, checkOptions, checkSignal, show } from "./_options.ts";
import { sleep } from "./_cluster_names.ts";
import {
  type CancelMessage,
  type ConsumerLimits,
  ensurePoolStream,
  type FnRef,
  type PoolContext,
  type PoolNames,
  type ResultMessage,
  type TaskMessage,
} from "./_cluster_pool_protocol.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

/**
 * Options of {@linkcode Cluster.Pool}.
 *
 * @example
 * ```ts
 * import type { ClusterPoolOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterPoolOptions = { name: "render", module: "./tasks.ts", ackWait: 10_000 };
 * assert.equal(options.name, "render");
 * ```
 */
export interface ClusterPoolOptions {
  /** The pool's name: workers started with `--pool <name>` serve it. 1 to 200 letters, digits, `-` or `_`. */
  name: string;
  /**
   * The module that exports the task functions, as the workers find it:
   * a path relative to each worker's working directory (or absolute), or a
   * URL. Workers run only exports of modules named on their command line
   * (`--module`). Without it (and for anonymous functions) functions travel
   * as source, which only workers started with `--allow-source` run.
   */
  module?: string | URL;
  /**
   * How long a task may go without word from the worker holding it (it
   * reports progress every `ackWait / 3` while it lives) before the server
   * gives it to another worker, in milliseconds: what a dead worker costs.
   * Set on the server for the pool; the last caller to give it wins.
   * @default {30000}
   */
  ackWait?: number;
  /**
   * The most times a task is handed to a worker; a task delivered that
   * often without a result (its workers died running it) rejects with an
   * error that says so. `Infinity` for no limit.
   * @default {5}
   */
  maxDeliver?: number;
  /**
   * How many worker threads, over all worker processes, the default
   * `chunksize` of the map methods plans for: a map is cut into
   * `processes * 4` chunks, as Python's `Pool.map` does.
   * @default {8}
   */
  processes?: number;
  /** The most tasks (chunks) an `imap`/`imapUnordered` keeps in flight. @default {64} */
  maxInFlight?: number;
}

const RUN = 1;
const CLOSE = 2;
const TERMINATE = 3;
const EMPTY = new Uint8Array(0);

interface Pending {
  settle: Settle;
  seq: number;
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return v != null && typeof (v as Iterable<unknown>)[Symbol.iterator] === "function";
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return v != null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

function checkPositive(value: unknown, name: string, allowInfinity = false): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" ||
    !((allowInfinity && value === Infinity) || (Number.isFinite(value) && value >= 1 && Number.isInteger(value)))
  ) {
    throw new RangeError(
      `Cannot create cluster Pool as '${name}' must be a positive integer${
        allowInfinity ? " or Infinity" : ""
      }: current value is ${show(value)}`,
    );
  }
}

/**
 * A pool whose tasks run in worker processes on any machine that reaches the
 * NATS server: made by {@linkcode Cluster.Pool}, served by
 * `mpjs-worker <server> --pool <name> --module <file>` (`cluster_worker.ts`).
 * The local `Pool`'s methods and semantics; see the guide `docs/cluster.md`
 * for the delivery guarantees (a task may run more than once; each result
 * is given once).
 *
 * @example Without a server, the options are still checked
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   assert.throws(() => c.Pool({ name: "bad name" }), TypeError);
 *   const pool = c.Pool({ name: `doc_pool_${Date.now()}` });
 *   pool.close();
 *   await pool.join(); // nothing was submitted
 * }
 * ```
 */
export class ClusterPool {
  #ctx: PoolContext;
  #names: PoolNames;
  #name: string;
  #module: string | undefined;
  #limits: ConsumerLimits;
  #processes: number;
  #maxInFlight: number;
  #caller = crypto.randomUUID().replace(/-/g, "");
  #state = RUN;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #bySeq = new Map<number, number>();
  #ready: Promise<void> | undefined;
  #subs: { unsubscribe(): void }[] = [];
  #feeders = 0;
  #joiners: (() => void)[] = [];
  #terminating: Promise<void> | undefined;

  /** @internal Made by {@linkcode Cluster.Pool}. */
  constructor(ctx: PoolContext, names: PoolNames, options: ClusterPoolOptions) {
    this.#ctx = ctx;
    this.#names = names;
    this.#name = options.name;
    const { module, ackWait, maxDeliver, processes, maxInFlight } = options;
    if (module !== undefined && typeof module !== "string" && !(module instanceof URL)) {
      throw new TypeError(
        `Cannot create cluster Pool as 'module' must be a path or URL string: current value is ${show(module)}`,
      );
    }
    if (typeof module === "string" && module.trim() === "") {
      throw new TypeError(`Cannot create cluster Pool as 'module' must not be empty`);
    }
    if (ackWait !== undefined && (typeof ackWait !== "number" || !Number.isFinite(ackWait) || ackWait < 100)) {
      throw new RangeError(
        `Cannot create cluster Pool as 'ackWait' must be a finite number >= 100 (milliseconds): current value is ${
          show(ackWait)
        }`,
      );
    }
    checkPositive(maxDeliver, "maxDeliver", true);
    checkPositive(processes, "processes");
    checkPositive(maxInFlight, "maxInFlight");
    this.#module = module instanceof URL ? module.href : module;
    this.#limits = { ackWait: ackWait ?? 30_000, maxDeliver: maxDeliver ?? 5 };
    this.#processes = processes ?? 8;
    this.#maxInFlight = maxInFlight ?? 64;
  }

  /** The pool's name. */
  get name(): string {
    return this.#name;
  }

  /** The number of tasks (applies and map chunks) submitted here and not settled yet. */
  get pending(): number {
    return this.#pending.size;
  }

  #setUp(): Promise<void> {
    this.#ready ??= (async () => {
      const { nc } = this.#ctx;
      this.#subs.push(nc.subscribe(this.#names.resultSubject(this.#caller), {
        callback: (_e, m) => this.#onResult(m.data, () => m.respond(EMPTY)),
      }));
      this.#subs.push(nc.subscribe(this.#names.advisory, {
        callback: (_e, m) => {
          try {
            const a = JSON.parse(new TextDecoder().decode(m.data)) as { stream_seq: number; deliveries: number };
            this.#onPoison(a.stream_seq, a.deliveries);
          } catch { /* not an advisory */ }
        },
      }));
      await nc.flush();
      this.#limits = await ensurePoolStream(this.#ctx, this.#names, this.#limits);
    })().catch((e) => {
      this.#ready = undefined;
      throw e;
    });
    return this.#ready;
  }

  #onResult(data: Uint8Array, answer: () => void): void {
    let r: ResultMessage;
    try {
      r = decode(data) as ResultMessage;
    } catch {
      answer();
      return;
    }
    answer();
    if (r.ok) this.#settle(r.id, true, r.value);
    else this.#settle(r.id, false, new RemoteError(r.error));
  }

  #onPoison(seq: number, deliveries: number): void {
    const id = this.#bySeq.get(seq);
    if (id === undefined) return;
    this.#settle(
      id,
      false,
      new Error(
        `The cluster pool task was delivered ${deliveries} times (maxDeliver ${this.#limits.maxDeliver}) without a result: the workers that took it died or stopped before finishing it`,
      ),
    );
    void this.#ctx.jsm.streams.deleteMessage(this.#names.stream, seq, false).catch(() => {});
  }

  #settle(id: number, ok: boolean, value: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return; // a later result of a task already settled
    this.#pending.delete(id);
    if (p.seq) this.#bySeq.delete(p.seq);
    p.settle(ok, value);
    this.#wakeJoiners();
  }

  #wakeJoiners(): void {
    if (this.#pending.size === 0 && this.#feeders === 0) { for (const w of this.#joiners.splice(0)) w(); }
  }

  // ---- submitting -------------------------------------------------------------

  #checkRunning(): void {
    if (this.#state !== RUN) throw new ClosedError("Pool not running");
    if (this.#ctx.nc.isClosed()) throw new ClosedError("Pool not running: the cluster connection is closed");
  }

  #ref(fn: unknown, what: string): FnRef {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot ${what} as 'fn' must be a function: current value is ${show(fn)}`);
    }
    const spec = specFor(fn as AnyFn, this.#module, "function");
    return spec.kind === "module" ? { module: spec.module, name: spec.exportName } : {
      source: spec.source,
      name: spec.name,
    };
  }

  #checkOptions(options: unknown, what: string): AbortSignal | undefined {
    const checked = checkOptions<AsyncTaskOptions<unknown>>(options, what, true);
    if (checked === undefined) return undefined;
    checkCallback(checked.callback, "callback", what);
    checkCallback(checked.errorCallback, "errorCallback", what);
    return checkSignal(checked.signal, what);
  }

  /** The task's bytes; throws `TypeError` naming the bad value, or `RangeError` when too large. */
  #encode(id: number, kind: TaskMessage["kind"], fn: FnRef, data: unknown[], path: string): Uint8Array {
    const task: TaskMessage = {
      caller: this.#caller,
      id,
      kind,
      fn,
      data: encode(data, path),
      ackWait: this.#limits.ackWait,
    };
    const bytes = encode(task, "task");
    const max = this.#ctx.nc.info?.max_payload ?? 1 << 20;
    if (bytes.length > max - 1024) {
      throw new RangeError(
        `Cannot submit the task: it is ${bytes.length} bytes, more than the server's max_payload (${max}); use a smaller chunksize`,
      );
    }
    return bytes;
  }

  /** Sends encoded tasks, in order; each settles through `#pending`. */
  #send(id: number, bytes: Uint8Array, settle: Settle): void {
    this.#pending.set(id, { settle, seq: 0 });
    void this.#publish(id, bytes).catch((e) => this.#settle(id, false, e));
  }

  async #publish(id: number, bytes: Uint8Array): Promise<void> {
    await this.#setUp();
    const subject = this.#names.taskSubject(this.#caller);
    for (let pause = 10;; pause = Math.min(pause * 2, 1_000)) {
      if (!this.#pending.has(id)) return; // cancelled before it was sent
      try {
        const ack = await this.#ctx.js.publish(subject, bytes, { msgID: `${this.#caller}.${id}`, timeout: 5_000 });
        if (this.#pending.has(id)) {
          this.#pending.get(id)!.seq = ack.seq;
          this.#bySeq.set(ack.seq, id);
        } else {
          await this.#ctx.jsm.streams.deleteMessage(this.#names.stream, ack.seq, false).catch(() => {});
        }
        return;
      } catch (e) {
        if (this.#ctx.nc.isClosed()) throw new ClosedError("Cannot submit the task: the cluster connection is closed");
        if (this.#state === TERMINATE) return;
        await sleep(pause); // a lost connection: the same message id is stored once
        void e;
      }
    }
  }

  /** Settles the tasks `ids` with `reason` and tells the workers running them to stop. */
  #cancel(ids: number[], reason: unknown): void {
    const seqs: number[] = [];
    const live: number[] = [];
    for (const id of ids) {
      const p = this.#pending.get(id);
      if (!p) continue;
      live.push(id);
      if (p.seq) seqs.push(p.seq);
      this.#settle(id, false, reason);
    }
    if (live.length === 0) return;
    const message: CancelMessage = { caller: this.#caller, ids: live };
    try {
      this.#ctx.nc.publish(this.#names.cancel, encode(message));
    } catch { /* closed */ }
    for (const seq of seqs) {
      void this.#ctx.jsm.streams.deleteMessage(this.#names.stream, seq, false).catch(() => {});
    }
  }

  /**
   * Runs `fn(...args)` on a worker: Python's `apply_async`.
   *
   * @param fn An export of the pool's `module` (sent by name), or a
   *   self-contained function (sent as source; needs `--allow-source` workers).
   * @param args Structured-clone values. @default {[]}
   * @param options `callback`, `errorCallback`, `signal`.
   * @returns The {@linkcode AsyncResult}.
   * @throws {ClosedError} after `close()` or `terminate()`.
   * @throws {TypeError} when `fn` is not a function or an argument cannot be sent.
   */
  applyAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    args?: A,
    options?: AsyncTaskOptions<Awaited<R>>,
  ): AsyncResult<Awaited<R>> {
    const result = new AsyncResult<Awaited<R>>(options ?? undefined);
    this.#apply(fn, args, options, "applyAsync", (ok, value) => settleResult(result, ok, value));
    return result;
  }

  /**
   * Runs `fn(...args)` on a worker and waits for its result: Python's `apply`.
   *
   * @returns A Promise of the result; rejects with a {@linkcode RemoteError}
   *   (with `host` and `pid` of the worker) when `fn` threw, or as
   *   {@linkcode ClusterPool.applyAsync} throws.
   */
  apply<A extends unknown[], R>(fn: (...args: A) => R, args?: A, options?: TaskOptions): Promise<Awaited<R>> {
    return new Promise<Awaited<R>>((resolve, reject) => {
      this.#apply(fn, args, options, "apply", (ok, value) => ok ? resolve(value as Awaited<R>) : reject(value));
    });
  }

  #apply(fn: unknown, args: unknown, options: unknown, what: string, settle: Settle): void {
    this.#checkRunning();
    const ref = this.#ref(fn, what);
    if (args !== undefined && !Array.isArray(args)) {
      throw new TypeError(`Cannot ${what} as 'args' must be an array: current value is ${show(args)}`);
    }
    const signal = this.#checkOptions(options, what);
    const id = this.#nextId++;
    const bytes = this.#encode(id, "apply", ref, args ?? [], "args");
    if (signal?.aborted) return settle(false, signal.reason);
    if (!signal) return this.#send(id, bytes, settle);
    const onAbort = () => this.#cancel([id], signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    this.#send(id, bytes, (ok, value) => {
      signal.removeEventListener("abort", onAbort);
      settle(ok, value);
    });
  }

  // ---- maps -------------------------------------------------------------------

  #checkMap(fn: unknown, iterable: unknown, chunksize: unknown, what: string): FnRef {
    this.#checkRunning();
    const ref = this.#ref(fn, what);
    if (!isIterable(iterable) && !isAsyncIterable(iterable)) {
      throw new TypeError(`Cannot ${what} as 'iterable' must be iterable: current value is ${show(iterable)}`);
    }
    if (chunksize !== undefined && chunksize !== null) {
      if (typeof chunksize !== "number" || !Number.isInteger(chunksize) || chunksize < 1) {
        const E = typeof chunksize === "number" ? RangeError : TypeError;
        throw new E(`Cannot ${what} as 'chunksize' must be a positive integer: current value is ${show(chunksize)}`);
      }
    }
    return ref;
  }

  #mapAsync<R>(
    kind: "map" | "star",
    what: string,
    fn: unknown,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number | undefined,
    options: AsyncTaskOptions<R[]> | undefined,
  ): AsyncResult<R[]> {
    const ref = this.#checkMap(fn, iterable, chunksize, what);
    const signal = this.#checkOptions(options, what);
    const result = new AsyncResult<R[]>(options ?? undefined);
    if (signal?.aborted) {
      settleResult(result, false, signal.reason);
      return result;
    }
    const run = (items: unknown[]) => this.#mapItems<R>(kind, ref, items, chunksize, signal);
    if (isIterable(iterable)) {
      const items = Array.isArray(iterable) ? iterable : Array.from(iterable);
      run(items).then((v) => settleResult(result, true, v), (e) => settleResult(result, false, e));
      return result;
    }
    this.#feeders++;
    (async () => {
      const items: unknown[] = [];
      try {
        for await (const item of iterable) items.push(item);
      } finally {
        this.#feeders--;
      }
      if (this.#state === TERMINATE) throw new Error("Pool was terminated");
      return await run(items);
    })().then((v) => settleResult(result, true, v), (e) => settleResult(result, false, e)).finally(() =>
      this.#wakeJoiners()
    );
    return result;
  }

  /** Cuts `items` into chunks, sends them all (or none, when one cannot be sent), and gathers the results. */
  #mapItems<R>(
    kind: "map" | "star",
    ref: FnRef,
    items: unknown[],
    chunksize: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<R[]> {
    const n = items.length;
    if (n === 0) return Promise.resolve([]);
    const size = chunksize ?? Math.max(1, Math.ceil(n / (this.#processes * 4)));
    const encoded: { id: number; bytes: Uint8Array }[] = [];
    for (let start = 0; start < n; start += size) {
      const id = this.#nextId++;
      const chunk = items.slice(start, start + size);
      encoded.push({ id, bytes: this.#encode(id, kind, ref, chunk, kind === "map" ? "iterable chunk" : "args") });
    }
    return new Promise<R[]>((resolve, reject) => {
      const parts: unknown[][] = new Array(encoded.length);
      let left = encoded.length;
      let finished = false;
      const ids = encoded.map((e) => e.id);
      const onAbort = () => fail(signal!.reason);
      const fail = (error: unknown) => {
        if (finished) return;
        finished = true;
        signal?.removeEventListener("abort", onAbort);
        this.#cancel(ids, error);
        reject(error);
      };
      encoded.forEach(({ id, bytes }, i) => {
        this.#send(id, bytes, (ok, value) => {
          if (finished) return;
          if (!ok) return fail(value);
          parts[i] = value as unknown[];
          if (--left === 0) {
            finished = true;
            signal?.removeEventListener("abort", onAbort);
            resolve(parts.flat() as R[]);
          }
        });
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * `fn` applied to every item, in order: Python's `map_async`.
   *
   * @param chunksize Items per task. @default {⌈length / (processes × 4)⌉}
   * @param options `callback`, `errorCallback`, `signal` (cancels every chunk).
   * @returns The {@linkcode AsyncResult} of the results array; the first
   *   chunk that fails rejects it and cancels the others.
   */
  mapAsync<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: AsyncTaskOptions<Awaited<R>[]>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync("map", "mapAsync", fn, iterable, chunksize, options);
  }

  /**
   * `fn` applied to every item, in order: Python's `map`.
   *
   * @param chunksize Items per task (one stream message). @default {⌈length / (processes × 4)⌉}
   * @param options `signal` cancels every chunk.
   * @returns A Promise of the results, each once.
   */
  map<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: TaskOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync<Awaited<R>>("map", "map", fn, iterable, chunksize, options).get();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** `fn(...args)` for every argument list, in order: Python's `starmap_async`. */
  starmapAsync<A extends unknown[], R>(
    fn: (...args: A) => R,
    iterable: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
    options?: AsyncTaskOptions<Awaited<R>[]>,
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapAsync("star", "starmapAsync", fn, iterable, chunksize, options);
  }

  /** `fn(...args)` for every argument list, in order: Python's `starmap`. */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    iterable: Iterable<A> | AsyncIterable<A>,
    chunksize?: number,
    options?: TaskOptions,
  ): Promise<Awaited<R>[]> {
    try {
      return this.#mapAsync<Awaited<R>>("star", "starmap", fn, iterable, chunksize, options).get();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Results of `fn` over `iterable` in order, as they come: Python's `imap`.
   * Reads the input lazily and keeps at most `maxInFlight` chunks in flight,
   * so an endless generator is fine. Leaving the loop early cancels the
   * chunks in flight.
   *
   * @param chunksize Items per task. @default {1}
   */
  imap<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: TaskOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    const ref = this.#checkMap(fn, iterable, chunksize, "imap");
    const signal = this.#checkOptions(options, "imap");
    return this.#imap(ref, iterable, chunksize ?? 1, true, signal) as AsyncIterableIterator<Awaited<R>>;
  }

  /** As {@linkcode ClusterPool.imap}, with results in the order they finish: Python's `imap_unordered`. */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    chunksize?: number,
    options?: TaskOptions,
  ): AsyncIterableIterator<Awaited<R>> {
    const ref = this.#checkMap(fn, iterable, chunksize, "imapUnordered");
    const signal = this.#checkOptions(options, "imapUnordered");
    return this.#imap(ref, iterable, chunksize ?? 1, false, signal) as AsyncIterableIterator<Awaited<R>>;
  }

  async *#imap(
    ref: FnRef,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    chunksize: number,
    ordered: boolean,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<unknown> {
    const source = isAsyncIterable(iterable)
      ? iterable[Symbol.asyncIterator]()
      : (iterable as Iterable<unknown>)[Symbol.iterator]();
    interface Slot {
      id: number;
      done: boolean;
      ok: boolean;
      value: unknown;
    }
    const inflight: Slot[] = [];
    let wake: (() => void) | undefined;
    let exhausted = false;
    const onAbort = () => this.#cancel(inflight.map((s) => s.id), signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) throw signal.reason;
      for (;;) {
        while (!exhausted && inflight.length < this.#maxInFlight) {
          const chunk: unknown[] = [];
          while (chunk.length < chunksize) {
            const r = await source.next();
            if (r.done) {
              exhausted = true;
              break;
            }
            chunk.push(r.value);
          }
          if (chunk.length === 0) break;
          // Started while running, it goes on after close() (as Python's imap does), not after terminate().
          if (this.#state === TERMINATE) throw new Error("Pool was terminated before the imap finished");
          const id = this.#nextId++;
          const bytes = this.#encode(id, "map", ref, chunk, "iterable chunk");
          const slot: Slot = { id, done: false, ok: false, value: undefined };
          inflight.push(slot);
          this.#send(id, bytes, (ok, value) => {
            slot.done = true;
            slot.ok = ok;
            slot.value = value;
            wake?.();
          });
        }
        if (inflight.length === 0) return;
        const at = ordered ? (inflight[0].done ? 0 : -1) : inflight.findIndex((s) => s.done);
        if (at < 0) {
          await new Promise<void>((r) => wake = r);
          wake = undefined;
          continue;
        }
        const [slot] = inflight.splice(at, 1);
        if (!slot.ok) throw slot.value;
        yield* slot.value as unknown[];
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#cancel(inflight.map((s) => s.id), new Error("imap was left before its end"));
      await (source as { return?: () => unknown }).return?.();
    }
  }

  // ---- life cycle -------------------------------------------------------------

  /** Stops accepting tasks; those submitted still run. Idempotent. */
  close(): void {
    if (this.#state === RUN) this.#state = CLOSE;
  }

  /**
   * Waits until every task submitted here has settled. Call
   * {@linkcode ClusterPool.close} or {@linkcode ClusterPool.terminate} first.
   *
   * @throws {Error} (rejects) when the pool is still running.
   */
  async join(): Promise<void> {
    if (this.#state === RUN) throw new Error("Pool is still running");
    if (this.#pending.size > 0 || this.#feeders > 0) await new Promise<void>((r) => this.#joiners.push(r));
    await this.#terminating;
  }

  /**
   * Stops at once: tasks not finished reject, the tasks of this pool object
   * still in the stream are removed, and workers running them are told to
   * stop them.
   */
  terminate(): Promise<void> {
    if (this.#terminating) return this.#terminating;
    this.#state = TERMINATE;
    const error = new Error("Pool was terminated before the task finished");
    const settles = [...this.#pending.values()].map((p) => p.settle);
    this.#pending.clear();
    this.#bySeq.clear();
    for (const settle of settles) settle(false, error);
    const { nc, jsm } = this.#ctx;
    this.#terminating = (async () => {
      if (!nc.isClosed() && this.#ready) {
        try {
          nc.publish(this.#names.cancel, encode({ caller: this.#caller, ids: "all" } satisfies CancelMessage));
          await this.#ready.catch(() => {});
          await jsm.streams.purge(this.#names.stream, { filter: this.#names.taskSubject(this.#caller) });
        } catch { /* the connection is going: the tasks time out on their own */ }
      }
      for (const sub of this.#subs.splice(0)) sub.unsubscribe();
      this.#wakeJoiners();
    })();
    return this.#terminating;
  }

  /** Terminates the pool when leaving an `await using` scope, as the local `Pool` does. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }
}
