// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * What a `Pool` (`pool.ts`) and its workers (`_pool_worker.ts`) share: the
 * layout of the pool's shared cells, the records that travel through its two
 * rings, and the few control messages. Types and constants only.
 *
 * ## Transport
 *
 * Two multi-producer, multi-consumer byte rings (`_ring.ts`) carry the work:
 * - the **task ring**: the pool's owner puts one record per task (an `apply`
 *   or one chunk of a `map`), each worker takes the next record itself when
 *   it is free, so a slow task never holds up the ones behind it;
 * - the **result ring**: each worker puts one record per finished task; the
 *   owner takes them.
 *
 * Records are codec bytes (`_codec.ts`) of an array:
 * - task: `[kind, id, fnId, payload]`: `kind` is `Kind.APPLY` (payload:
 *   the argument array), `Kind.MAP` (payload: the chunk's items),
 *   `Kind.MAP_BULK` (payload: `[start, count]`, where the chunk's
 *   numbers sit in the bulk area, see below), `Kind.STARMAP` (payload:
 *   the chunk's argument arrays) or
 *   `Kind.STOP` (a worker that takes it exits; `close()` puts one per
 *   worker after the last task). `kind | BY_MESSAGE` marks a task whose
 *   payload holds library handles (queues, locks, …) or shared memory
 *   (`SharedArrayBuffer`s, views of one): bytes would copy them, so the worker that takes the record asks for the payload with an
 *   {@linkcode ArgsRequest} and the owner posts it ({@linkcode ArgsReply}).
 * - result: `[id, status, value]`: `status` `Status.OK` with the return
 *   value (for a chunk, the array of return values), `Status.FAILED`
 *   with the error's `{ name, message, stack }`, `Status.OK_BULK` (a
 *   `MAP_BULK` chunk whose results are all numbers: they replaced its items
 *   in the bulk area) or `Status.SKIPPED` (cancelled before it started).
 *   Every task a worker takes ends with one result record, so the owner
 *   knows when a worker is done with a chunk in the bulk area.
 *
 * A chunk of 16 or more numbers (items, or results) travels as a
 * `Float64Array` ({@linkcode asNumbers}); a chunk is otherwise always an
 * array, so the two cannot be confused.
 *
 * A function is shipped once per worker, not once per task: the owner appends
 * each new function's {@linkcode FnSpec} to the definitions buffer before the
 * first task that names it by `fnId` (its index there), and each worker
 * reads and resolves a definition the first time it meets its `fnId`.
 *
 * ## Shared cells (`Int32Array` over `cells`)
 *
 * | index                       | written by                          | meaning                                          |
 * |-----------------------------|-------------------------------------|--------------------------------------------------|
 * | `DEFS_LEN`                  | owner, `Atomics.store`              | bytes of definitions published in `defs`         |
 * | `SPINNER`                   | workers, `Atomics.compareExchange`  | ident of the idle worker spinning for the next task, or 0 |
 * | `LOBBY_SEQ`                 | owner and workers, `Atomics.add`    | futex word of the lobby where idle workers park  |
 * | `LOBBY_WAITERS`             | workers, `Atomics.add/sub`          | how many are parked there                        |
 * | `WAKING`                    | waker `compareExchange` 0→1, lobby passers `store` 0 | a lobby wake-up is in flight      |
 * | `CANCEL + (id % CANCEL_N)`  | owner, `Atomics.store`              | `id` of a task cancelled before it started       |
 *
 * Each worker also has two cells of its own (`own`, a buffer per worker, not
 * per place in the pool: a worker being stopped may still run beside its
 * replacement):
 *
 * | index     | written by                       | meaning                                             |
 * |-----------|----------------------------------|-----------------------------------------------------|
 * | `CURRENT` | the worker; owner: `STOP_ASKED`  | id of the task it runs, 0 between tasks, `TAKING`   |
 * | `STATE`   | owner (`STARTING`), then worker  | `STARTING`, `READY` (initializer done), `STOPPED`   |
 *
 * Idle workers do not wait on the task ring itself: one spins for a moment
 * (`SPINNER`), the others park in the lobby. After putting a task the owner
 * wakes one of them only when nobody spins; a worker that takes a task and
 * sees more waiting wakes the next. So a task taken by the spinning worker
 * costs no futex wake, and the pool still widens to the load. A waker first
 * sets `WAKING` (0 → 1) and does nothing if it was set: until the woken
 * worker runs (tens of µs) every put would otherwise pay another futex wake.
 * Each worker clears `WAKING` in the lobby after reading `LOBBY_SEQ` and
 * again when it leaves, so a set flag always has a worker that will clear
 * it: either one parked on a word value that the wake-up changed (it
 * returns at once) or one that read it after the change (and cleared it).
 * A put held back meanwhile is not lost: the woken worker, once it has
 * cleared `WAKING` and taken a record (any record, `STOP` too), wakes the
 * next one itself if records are still waiting.
 *
 * ## A worker's end
 *
 * The owner handles a worker's end only once the runtime confirmed that the
 * worker can run no more code (its exit event; on Deno the owner never
 * terminates a worker that has not stopped itself, since Deno reports a
 * terminated worker's exit at once while it may still run), whatever
 * instruction it stopped at. Then, in this order:
 * - results it published settle their tasks (the result ring is drained);
 * - its `CURRENT` task is rejected. A worker stores `Own.TAKING` there
 *   before it takes a record and the task's id once it has decoded it. If
 *   it ended in between, the owner finds the task by elimination: the owner
 *   is the only producer of the task ring, so it knows the ids in put order,
 *   and the first `puts - size()` of them have been taken; of those, the
 *   tasks not settled and not the `CURRENT` of a worker still running were
 *   the dead worker's (it waits until no running worker is `TAKING`, so
 *   that none of them holds an unnamed task);
 * - the lobby cells it may have left set are cleared: `SPINNER` if it holds
 *   the worker's ident, and `WAKING` (a wake-up may have been meant for it),
 *   and the lobby is woken, so that the live workers look at the ring again
 *   (a count it left in `LOBBY_WAITERS` only costs a needless wake-up);
 * - a replacement starts, unless the worker took a `STOP` (`STOPPED`) or
 *   its initializer failed (still `STARTING`: the pool is broken). Once the
 *   `STOP`s were put, one more is put for each replacement, since the dead
 *   worker may have taken one (a `STOP` too many is left in the ring,
 *   harmless: every task was put before the first `STOP`).
 *
 * To stop one worker (its task was aborted) or all of them (`terminate()`,
 * or a broken pool), the owner asks through the thread status cells
 * (`_status.ts`): a worker stops at its event loop, in a wait of this
 * library, or before it takes its next record; Node and Bun also terminate
 * it at once. For an aborted task the owner first takes the task back
 * (`Own.STOP_ASKED`): a worker that finished it meanwhile and went on
 * is left alone, and a worker that is stopped that way can have taken no
 * other task.
 *
 * The `DEFS_LEN` store publishes definitions before any task naming them is put
 * (the ring's own `Atomics.store` of its tail orders the two). A cancelled
 * task is recognised by an exact `id` match, so a cell reused by a later id
 * only forgets an older cancellation (that task then runs and its result is
 * dropped), never cancels the wrong task.
 *
 * ## Bulk area
 *
 * `bulk` is a growable `SharedArrayBuffer` of float64 elements for `map`
 * chunks of many numbers: the owner writes all the items of such a map there
 * once (from element `start`, handed out upwards), puts one `MAP_BULK`
 * record per chunk, and the worker that takes one reads its items there and
 * writes each number result over its item. Plain reads and writes suffice:
 * the ring's `Atomics` publication of the task record orders the owner's
 * writes before the worker's reads, and that of the result record the
 * worker's writes before the owner's reads. The owner restarts the area
 * from element 0 only when no `MAP_BULK` task is outstanding (its result,
 * or its worker's death, seen), so no worker can still touch a reused part.
 * Only the owner grows the area.
 *
 * Definitions (`defs`, a growable `SharedArrayBuffer` only the owner writes)
 * are laid out, written and read in `_pool_defs.ts`; the bulk area is
 * handed out by `_pool_bulk.ts`.
 *
 * @module
 */

import type { RingMemory } from "./_ring.ts";

/** The kind of a task record (its first field). */
export const Kind = {
  /** Task kind: `fn(...args)`. */
  APPLY: 1,
  /** Task kind: `fn(item)` for each item of a chunk. */
  MAP: 2,
  /** Task kind: `fn(...args)` for each argument array of a chunk. */
  STARMAP: 3,
  /** Task kind: the worker that takes it exits. */
  STOP: 4,
  /**
   * Task kind: `fn(item)` for each item of a chunk of numbers held in the bulk
   * area (payload: `[start, count]`, in float64 elements); the worker writes
   * number results back in place.
   */
  MAP_BULK: 5,
  /** Flag on a task kind: the payload comes by message (it holds handles or shared memory). */
  BY_MESSAGE: 8,
} as const;

/** The status of a result record (its second field). */
export const Status = {
  /** Result status: the task returned. */
  OK: 0,
  /** Result status: the task threw. */
  FAILED: 1,
  /** Result status of a `MAP_BULK` task whose results are all numbers: they replaced its items in the bulk area. */
  OK_BULK: 2,
  /** Result status: the task was cancelled before it started and did not run. */
  SKIPPED: 3,
} as const;

/** Indexes of the shared cells (`Int32Array` over `cells`; see the table above). */
export const Cell = {
  /** Cell: bytes of published function definitions. */
  DEFS_LEN: 0,
  /** Cell: the ident of the idle worker that spins, 0 when none (one spins at a time). */
  SPINNER: 1,
  /** Cell: bumped (and notified) to wake a worker parked in the lobby. */
  LOBBY_SEQ: 2,
  /** Cell: how many idle workers are parked in the lobby. */
  LOBBY_WAITERS: 3,
  /** Cell: 1 from a lobby wake-up until a worker passes through the lobby (one wake-up in flight at a time). */
  WAKING: 4,
  /** First cancellation cell. */
  CANCEL: 16,
  /** Number of cancellation cells. */
  CANCEL_N: 1024,
} as const;

/** Indexes of a worker's own cells, and the special values of `CURRENT`. */
export const Own = {
  /** Own cell: the id of the running task, 0 when none, `Own.TAKING` while taking one. */
  CURRENT: 0,
  /** `CURRENT` while the worker takes a task record and has not yet recorded its id. */
  TAKING: -1,
  /**
   * `CURRENT` as the owner sets it (`compareExchange` from the id of the task
   * the worker runs) to stop the worker: its task was aborted. The worker
   * moves `CURRENT` to `TAKING` with a `compareExchange` from what it stored
   * last, so once the owner's exchange succeeded it takes no other record.
   */
  STOP_ASKED: -2,
  /** Own cell: the worker's state. */
  STATE: 1,
} as const;

/** Values of a worker's `STATE` cell. */
export const WorkerState = {
  /** Worker state: started, initializer not yet done. */
  STARTING: 0,
  /** Worker state: initializer done, taking tasks. */
  READY: 1,
  /** Worker state: took a `STOP` record and is exiting. */
  STOPPED: 2,
} as const;

/** The byte length of the shared cells. */
export const CELLS_BYTES: number = (Cell.CANCEL + Cell.CANCEL_N) * 4;
/** The byte length of a worker's own cells. */
export const OWN_BYTES: number = 8;

/**
 * A chunk of numbers as a `Float64Array` (which holds every number exactly,
 * `-0` and `NaN` included): the codec copies it as raw bytes instead of
 * encoding each item, several times faster for large chunks.
 */
export function asNumbers(items: ArrayLike<unknown>, from = 0, to: number = items.length): Float64Array | undefined {
  const n = to - from;
  if (n < 16 || typeof items[from] !== "number") return undefined;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = items[from + i];
    if (typeof v !== "number") return undefined;
    out[i] = v;
  }
  return out;
}

/** A task record: `[kind, id, fnId, payload]` (a `STOP` is `[Kind.STOP]`). */
export type TaskRecord = [kind: number, id: number, fnId: number, payload: unknown];

/** A result record: `[id, status, value]`. */
export type ResultRecord = [id: number, status: (typeof Status)[keyof typeof Status], value: unknown];

/** How a worker finds a function: a module export, or source text. */
export type FnSpec =
  | { kind: "module"; module: string; exportName: string }
  | { kind: "source"; source: string; name: string };

/** What a pool worker is started with (the first argument of its entry). */
export interface PoolWorkerConfig {
  /** The task ring's memory. */
  tasks: RingMemory;
  /** The result ring's memory. */
  results: RingMemory;
  /** The shared cells (see the table above). */
  cells: SharedArrayBuffer;
  /** The function definitions. */
  defs: SharedArrayBuffer;
  /** The bulk area: the numbers of `MAP_BULK` chunks (growable). */
  bulk: SharedArrayBuffer;
  /** This worker's own cells (`CURRENT`, `STATE`). */
  own: SharedArrayBuffer;
  /** Tasks after which the worker exits and is replaced; 0 for no limit. */
  maxTasks: number;
  /** The initializer, run once before the first task. */
  initializer: FnSpec | null;
}

/** Worker → owner: send the payload of task `id` (a `BY_MESSAGE` task). */
export interface ArgsRequest {
  type: "pool-args";
  id: number;
  [key: string]: unknown;
}

/** Owner → worker: the payload of task `id`, packed by `_handles.ts`; `missing` if it was cancelled. */
export interface ArgsReply {
  type: "pool-args";
  id: number;
  data: unknown;
  hasHandles: boolean;
  missing: boolean;
  [key: string]: unknown;
}
