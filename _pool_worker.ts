// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The worker side of a `Pool`: what each pool worker runs. The thread entry
 * (`_worker.ts`) calls {@linkcode poolWorkerMain} like any module target.
 *
 * The loop: take the next task record from the task ring, find its function
 * (resolved once per worker, see `_pool_protocol.ts`), run it (awaiting a
 * returned Promise), put the result record, repeat. When the ring is empty
 * one idle worker spins briefly for the next task (a hand-off seen by
 * spinning costs well under a microsecond, a futex wake tens of them); the
 * others park with `Atomics.waitAsync`, which keeps the worker's event loop
 * free for messages and for timers its tasks started.
 *
 * @module
 */

import { decodeReused, encodeTo, type Format } from "./_codec.ts";
import { DefsReader } from "./_pool_defs.ts";
import { unpack } from "./_handles.ts";
import { shareHandles } from "./_post.ts";
import { Ring, RingStatus } from "./_ring.ts";
import { importAsTarget, isIdentAlive, selfIdent } from "./_registry.ts";
import { type ParentPort, parentPort } from "./_runtime.ts";
import { STOP as STATUS_STOP, stopCells, stopIfAsked } from "./_status.ts";
import { POOL_IDLE_SPIN_MS as SPIN_MS, waitAsync } from "./_wait.ts";
import { compile, explainMissingVariable, type Fn, importTarget } from "./_target.ts";
import {
  type ArgsReply,
  asNumbers,
  Cell,
  type FnSpec,
  Kind,
  Own,
  type PoolWorkerConfig,
  Status,
  type TaskRecord,
  WorkerState,
} from "./_pool_protocol.ts";
import { RemoteError } from "./errors.ts";

/**
 * Fault injection for tests: a function stored on `globalThis` under this
 * symbol (by a pool's initializer) is called each time the worker has taken
 * a task record, before it records which task it runs.
 */
const AFTER_TAKE = Symbol.for("@mpjs/multiprocessing/pool.afterTake");
/**
 * Fault injection for tests: a function stored on `globalThis` under this
 * symbol (by a pool's initializer) is called with the name of each point of
 * the loop the worker passes (see {@linkcode FaultPoint}), so that a test
 * can end the worker there.
 */
const AT_POINT = Symbol.for("@mpjs/multiprocessing/pool.atPoint");

/**
 * The points of the worker loop where a test may end the worker: before it
 * takes a record (`CURRENT` is `TAKING`), right after it took one, once it
 * recorded the task's id, after it put a result, while it holds `SPINNER`,
 * once it is counted in the lobby, and right after the lobby woke it.
 */
export type FaultPoint = "take" | "taken" | "running" | "done" | "spinning" | "lobby" | "woken";

/** A resolved function, and how it was shipped (for error advice). */
interface Loaded {
  fn: Fn;
  bySource: boolean;
  name: string;
}

/**
 * Runs the pool worker loop until a `STOP` record, `maxTasks` tasks, or the
 * end of the worker.
 *
 * @param config The shared buffers and this worker's own cells.
 * @param initargs Arguments for the initializer.
 */
export async function poolWorkerMain(config: PoolWorkerConfig, initargs: unknown[]): Promise<void> {
  const worker = new PoolWorker(config);
  await worker.initialize(initargs);
  try {
    await worker.run();
  } catch (error) {
    // Marked dead as it stops: its ring operations refuse to go on. Quietly end.
    if (!isIdentAlive(selfIdent())) return;
    throw error;
  }
}

/** One pool worker: takes task records, runs them and puts their results. */
class PoolWorker {
  #config: PoolWorkerConfig;
  #tasks: Ring;
  #results: Ring;
  #cells: Int32Array;
  #own: Int32Array;
  #defs: DefsReader;
  #bulk: SharedArrayBuffer;
  #loaded: (Loaded | Promise<Loaded>)[] = [];
  #argsWaiters = new Map<number, (reply: ArgsReply) => void>();
  #port: ParentPort = parentPort();
  #me = 0;
  #afterTake: (() => void) | undefined;
  #at: ((point: FaultPoint) => void) | undefined;
  #putRecord = (bytes: Uint8Array, start: number, end: number, format: Format): void => {
    this.#results.put(bytes, format, true, start, end);
  };

  constructor(config: PoolWorkerConfig) {
    this.#config = config;
    this.#tasks = Ring.from(config.tasks);
    this.#results = Ring.from(config.results);
    this.#cells = new Int32Array(config.cells);
    this.#own = new Int32Array(config.own);
    this.#defs = new DefsReader(config.defs, this.#cells);
    this.#bulk = config.bulk;
    this.#port.onMessage((m) => {
      if (m.type !== "pool-args") return;
      const reply = m as ArgsReply;
      this.#argsWaiters.get(reply.id)?.(reply);
      this.#argsWaiters.delete(reply.id);
    });
  }

  /** Runs the initializer, then says the worker is ready (`WorkerState.READY`). */
  async initialize(initargs: unknown[]): Promise<void> {
    const initializer = this.#config.initializer;
    if (initializer) {
      const init = await resolve(initializer);
      try {
        await init.fn(...initargs);
      } catch (error) {
        throw init.bySource ? explainMissingVariable(error, init.name, "Pool") : error;
      }
    }
    Atomics.store(this.#own, Own.STATE, WorkerState.READY);
    // Read once the initializer has run: it is where a test installs the hooks.
    this.#afterTake = (globalThis as Record<symbol, unknown>)[AFTER_TAKE] as (() => void) | undefined;
    this.#at = (globalThis as Record<symbol, unknown>)[AT_POINT] as ((point: FaultPoint) => void) | undefined;
    this.#me = selfIdent();
  }

  /** The function with definition index `fnId`, resolving it on first use. */
  #load(fnId: number): Loaded | Promise<Loaded> {
    const loaded = this.#loaded;
    while (loaded.length <= fnId) {
      const spec = this.#defs.next();
      if (!spec) throw new Error(`Pool worker has no function definition ${fnId}`);
      loaded.push(resolve(spec));
    }
    return loaded[fnId];
  }

  /** Takes and runs tasks until a `STOP` record or `maxTasks` tasks. */
  async run(): Promise<void> {
    let done = 0;
    // What this worker stored in CURRENT last.
    let current = 0;
    for (;;) {
      // Asked to stop (the pool terminated): no more records. The owner also
      // posts "stop", which an idle worker gets at its event loop.
      stopIfAsked();
      // Until the id of what it takes is recorded, this worker may hold a
      // task the owner cannot name: if it dies meanwhile, the owner finds the
      // task by elimination (see `_pool_protocol.ts`). The exchange fails
      // when the owner took the last task back to stop this worker.
      if (Atomics.compareExchange(this.#own, Own.CURRENT, current, Own.TAKING) !== current) stopOnRequest();
      current = Own.TAKING;
      if (this.#at) this.#at("take");
      const taken = this.#tasks.take(true);
      if (typeof taken === "number") {
        Atomics.store(this.#own, Own.CURRENT, current = 0);
        if (taken === RingStatus.CLOSED) return;
        await idle(this.#tasks, this.#cells, this.#me, this.#at);
        continue;
      }
      if (this.#afterTake) this.#afterTake();
      if (this.#at) this.#at("taken");
      const record = decodeReused(taken.bytes, taken.length, taken.kind as Format) as TaskRecord;
      // Before anything else, STOP included: a wake-up the owner held back
      // (one in flight at a time) relies on this one (see `_pool_protocol.ts`).
      wakeNext(this.#tasks, this.#cells);
      const kind = record[0];
      if (kind === Kind.STOP) {
        Atomics.store(this.#own, Own.CURRENT, current = 0);
        Atomics.store(this.#own, Own.STATE, WorkerState.STOPPED);
        return;
      }
      const id = record[1];
      Atomics.store(this.#own, Own.CURRENT, current = id);
      if (this.#at) this.#at("running");
      if (Atomics.load(this.#cells, Cell.CANCEL + (id % Cell.CANCEL_N)) !== id) {
        let payload = record[3];
        let skip = false;
        if (kind & Kind.BY_MESSAGE) {
          const reply = await new Promise<ArgsReply>((res) => {
            this.#argsWaiters.set(id, res);
            this.#port.post({ type: "pool-args", id });
          });
          skip = reply.missing;
          if (!skip && reply.hasHandles) {
            // Each handle class registers how it is rebuilt when its module loads.
            await import("./mod.ts");
            payload = unpack(reply.data, true);
          } else {
            payload = reply.data;
          }
        }
        if (skip) {
          this.#putSkipped(id);
        } else {
          const running = this.#runTask(kind & ~Kind.BY_MESSAGE, id, record[2], payload);
          if (running) await running;
        }
      } else {
        this.#putSkipped(id);
      }
      if (this.#at) this.#at("done");
      if (this.#config.maxTasks > 0 && ++done >= this.#config.maxTasks) return;
    }
  }

  /** Runs one task; returns a Promise only when something had to be awaited. */
  #runTask(kind: number, id: number, fnId: number, payload: unknown): void | Promise<void> {
    let got: Loaded | Promise<Loaded>;
    try {
      got = this.#load(fnId);
    } catch (error) {
      return this.#putFailure(id, error);
    }
    if (got instanceof Promise) {
      return got.then((f) => this.#runWith(f, kind, id, payload), (error) => this.#putFailure(id, error));
    }
    return this.#runWith(got, kind, id, payload);
  }

  #runWith(f: Loaded, kind: number, id: number, payload: unknown): void | Promise<void> {
    const fn = f.fn;
    let value: unknown;
    try {
      if (kind === Kind.APPLY) {
        value = fn(...payload as unknown[]);
        if (isThenable(value)) {
          return Promise.resolve(value).then((v) => this.#putResult(id, v), (error) => this.#fail(f, id, error));
        }
      } else if (kind === Kind.MAP_BULK) {
        const [start, count] = payload as [number, number];
        const items = new Float64Array(this.#bulk, start * 8, count);
        // Number results replace their items in place: no copy, nothing to encode.
        for (let i = 0; i < count; i++) {
          const r = fn(items[i]);
          if (typeof r === "number") {
            items[i] = r;
            continue;
          }
          // Another kind of result: the chunk's results travel as an array.
          const out: unknown[] = Array.from(items.subarray(0, i));
          if (isThenable(r)) return this.#finishChunk(f, Kind.MAP, id, items, out, i, r);
          out.push(r);
          return this.#restOfChunk(f, Kind.MAP, id, items, out, i + 1);
        }
        return this.#putBulkDone(id);
      } else {
        // Filled by push: a large `new Array(n)` is a slow dictionary in V8.
        return this.#restOfChunk(f, kind, id, payload as ArrayLike<unknown>, [], 0);
      }
    } catch (error) {
      return this.#fail(f, id, error);
    }
    this.#putResult(id, value);
  }

  /** Runs a chunk's items from `at` on, after the results `out` of the ones before. */
  #restOfChunk(
    f: Loaded,
    kind: number,
    id: number,
    items: ArrayLike<unknown>,
    out: unknown[],
    at: number,
  ): void | Promise<void> {
    const fn = f.fn;
    try {
      for (let i = at; i < items.length; i++) {
        const r = kind === Kind.MAP ? fn(items[i]) : fn(...items[i] as unknown[]);
        if (isThenable(r)) return this.#finishChunk(f, kind, id, items, out, i, r);
        out.push(r);
      }
    } catch (error) {
      return this.#fail(f, id, error);
    }
    this.#putResult(id, asNumbers(out) ?? out);
  }

  /** The rest of a chunk, once one of its items returned a Promise. */
  async #finishChunk(
    f: Loaded,
    kind: number,
    id: number,
    items: ArrayLike<unknown>,
    out: unknown[],
    at: number,
    pending: PromiseLike<unknown>,
  ): Promise<void> {
    try {
      out.push(await pending);
    } catch (error) {
      return this.#fail(f, id, error);
    }
    // The rest runs synchronously again until the next item that returns a Promise.
    return this.#restOfChunk(f, kind, id, items, out, at + 1);
  }

  #fail(f: Loaded, id: number, error: unknown): void {
    this.#putFailure(id, f.bySource ? explainMissingVariable(error, f.name, "Pool") : error);
  }

  #putResult(id: number, value: unknown): void {
    try {
      // Handles and shared memory in a result cross as in queue items.
      encodeTo([id, Status.OK, value], "r", this.#putRecord, shareHandles);
    } catch (error) {
      // The return value cannot cross (a function, a class instance, …).
      if (error instanceof TypeError) {
        error.message = error.message.replace(/^Cannot send r\[2\]/, "Cannot send the result");
      }
      this.#putFailure(id, error);
    }
  }

  #putBulkDone(id: number): void {
    encodeTo([id, Status.OK_BULK, null], "r", this.#putRecord);
  }

  #putSkipped(id: number): void {
    encodeTo([id, Status.SKIPPED, null], "r", this.#putRecord);
  }

  #putFailure(id: number, error: unknown): void {
    encodeTo([id, Status.FAILED, RemoteError.describe(error)], "error", this.#putRecord);
  }
}

/**
 * Ends this worker once its stop request arrives: the owner sets `CURRENT`
 * to `STOP_ASKED` and then, in the same turn, the stop cell.
 */
function stopOnRequest(): never {
  const stop = stopCells()!;
  for (;;) {
    stopIfAsked();
    Atomics.wait(stop, STATUS_STOP, 0, 10);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function";
}

/** Resolves a shipped function. */
async function resolve(spec: FnSpec): Promise<Loaded> {
  if (spec.kind === "module") {
    return {
      fn: await importTarget(spec.module, spec.exportName, importAsTarget),
      bySource: false,
      name: spec.exportName,
    };
  }
  return { fn: compile(spec.source, spec.name), bySource: true, name: spec.name };
}

/**
 * Waits for the next task record: one idle worker spins for a moment, the
 * others (and the spinner, after its moment) park.
 */
async function idle(
  tasks: Ring,
  cells: Int32Array,
  me: number,
  at: ((point: FaultPoint) => void) | undefined,
): Promise<void> {
  const seq = tasks.itemsSeq();
  if (tasks.hasRecords()) return;
  // Marked with this worker's ident: if it ends while spinning, the owner clears the cell.
  if (Atomics.compareExchange(cells, Cell.SPINNER, 0, me) === 0) {
    try {
      if (at) at("spinning");
      const end = performance.now() + SPIN_MS;
      do {
        for (let i = 0; i < 100; i++) if (tasks.itemsSeq() !== seq) return;
      } while (performance.now() < end);
    } finally {
      Atomics.store(cells, Cell.SPINNER, 0);
    }
  }
  // Park in the lobby (see _pool_protocol.ts): counted first, then the
  // re-check, so a put either is seen here or wakes someone.
  Atomics.add(cells, Cell.LOBBY_WAITERS, 1);
  try {
    const lobby = Atomics.load(cells, Cell.LOBBY_SEQ);
    // A wake-up that bumped the word before the load above is used up (this
    // wait will not sleep through it): let the next put wake someone.
    Atomics.store(cells, Cell.WAKING, 0);
    if (tasks.hasRecords()) return;
    if (at) at("lobby");
    await waitAsync(cells, Cell.LOBBY_SEQ, lobby);
    if (at) at("woken");
  } finally {
    Atomics.sub(cells, Cell.LOBBY_WAITERS, 1);
    // Woken (or leaving): the wake-up in flight, if any, has arrived.
    Atomics.store(cells, Cell.WAKING, 0);
  }
}

/**
 * Called after taking a task: when more are waiting and nobody is spinning
 * for them, wakes one parked worker (which wakes the next in turn), so the
 * pool widens to the load without the owner waking anyone for a task that a
 * spinning worker takes anyway.
 */
function wakeNext(tasks: Ring, cells: Int32Array): void {
  if (
    tasks.hasRecords() && Atomics.load(cells, Cell.SPINNER) === 0 && Atomics.load(cells, Cell.LOBBY_WAITERS) > 0 &&
    Atomics.load(cells, Cell.WAKING) === 0 && Atomics.compareExchange(cells, Cell.WAKING, 0, 1) === 0
  ) {
    Atomics.add(cells, Cell.LOBBY_SEQ, 1);
    Atomics.notify(cells, Cell.LOBBY_SEQ, 1);
  }
}
