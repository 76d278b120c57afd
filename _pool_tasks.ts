// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The pool owner's table of outstanding tasks: for each task id, who gets
 * its outcome, the payload a `BY_MESSAGE` task waits to send, and whether
 * its worker may still touch a chunk in the bulk area; plus the ids in the
 * order their records entered the task ring, for finding the task a worker
 * took when it died before naming it (see "A worker's end" in
 * `_pool_protocol.ts`).
 *
 * A task leaves the table in one place, {@linkcode TaskTable.finish}
 * (its result came, or its worker ended), or is dropped by
 * {@linkcode TaskTable.cancel}, which keeps its bulk claim: a worker may
 * still run it, and its result record (or its worker's end) releases it.
 *
 * @module
 */

import type { Packed } from "./_handles.ts";

/** Receives a task's outcome: its value, or the error it failed with. */
export type Settle = (ok: boolean, value: unknown) => void;

/** How the pools settle an `AsyncResult` (each registers its own here as it is made). */
const resultSettlers = new WeakMap<object, Settle>();

/** Called by `AsyncResult`'s constructor: `settle` settles that result. */
export function addResultSettler(result: object, settle: Settle): void {
  resultSettlers.set(result, settle);
}

/** Settles `result` (an `AsyncResult` from `pool.ts`) once: for the local pool and the cluster pool. */
export function settleResult(result: object, ok: boolean, value: unknown): void {
  resultSettlers.get(result)?.(ok, value);
}

/** The largest task id before ids start again from 1. */
const MAX_ID = 0x7fff_fff0;
/** Settled ids at the front of the put order are dropped in batches of at least this many. */
const TRIM_BATCH = 1024;

/** The error a task gets when its worker ended while running it. */
export function workerDied(name: string, cause: Error): Error {
  return new Error(`Pool worker ${name} died while running the task (${cause.message})`, { cause });
}

/** The outstanding tasks of a pool, and the order their records were put. */
export class TaskTable {
  #settles = new Map<number, Settle>();
  #payloads = new Map<number, Packed>();
  /** `MAP_BULK` tasks whose worker may still read or write their chunk. */
  #bulk = new Set<number>();
  #nextId = 1;
  /**
   * The ids of the task records in the order they entered the ring (0 for a
   * `STOP`), from record number `#base` on: the owner is the ring's only
   * producer, so the first `puts - ring size` of them have been taken.
   */
  #order: number[] = [];
  #base = 0;
  #puts = 0;

  /** How many tasks wait for their outcome. */
  get size(): number {
    return this.#settles.size;
  }

  /** A fresh task id (ids wrap around long before they could collide). */
  newId(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_ID ? 1 : id + 1;
    return id;
  }

  /** Registers task `id`: `settle` gets its outcome; `payload`, if any, waits for its worker's request. */
  add(id: number, settle: Settle, payload?: Packed): void {
    this.#settles.set(id, settle);
    if (payload) this.#payloads.set(id, payload);
  }

  /** Marks task `id` as a `MAP_BULK` chunk: the bulk area is not reused until it is finished. */
  claimBulk(id: number): void {
    this.#bulk.add(id);
  }

  /** Whether a worker may still touch a chunk in the bulk area. */
  hasBulk(): boolean {
    return this.#bulk.size > 0;
  }

  /** Whether task `id` still waits for its outcome. */
  has(id: number): boolean {
    return this.#settles.has(id);
  }

  /** Takes out the payload a worker asks for (`undefined` once cancelled). */
  takePayload(id: number): Packed | undefined {
    const packed = this.#payloads.get(id);
    this.#payloads.delete(id);
    return packed;
  }

  /**
   * Task `id` is over: its result came, or its worker ended. Drops
   * everything the table holds for it and returns who gets the outcome
   * (`undefined` when it was cancelled or finished before).
   */
  finish(id: number): Settle | undefined {
    // Most tasks have neither: the size checks skip two map lookups per result.
    if (this.#payloads.size > 0) this.#dropPayload(id);
    if (this.#bulk.size > 0) this.#bulk.delete(id);
    const settle = this.#settles.get(id);
    if (settle) this.#settles.delete(id);
    return settle;
  }

  /**
   * Drops task `id` before its outcome: a worker that has not started it
   * skips it. Its bulk claim stays until its worker is done with it.
   *
   * @returns `false` when it had finished or was dropped before.
   */
  cancel(id: number): boolean {
    if (!this.#settles.delete(id)) return false;
    this.#dropPayload(id);
    return true;
  }

  /** Drops the payload of task `id` that no worker took: its handles take back their copies in flight. */
  #dropPayload(id: number): void {
    const packed = this.#payloads.get(id);
    if (packed === undefined) return;
    this.#payloads.delete(id);
    packed.giveBack();
  }

  /** A worker stopped for task `id` touches its chunk no more. */
  releaseBulk(id: number): void {
    this.#bulk.delete(id);
  }

  /** Empties the table (the pool terminates) and returns who waited for an outcome. */
  clear(): Settle[] {
    const all = [...this.#settles.values()];
    this.#settles.clear();
    for (const packed of this.#payloads.values()) packed.giveBack();
    this.#payloads.clear();
    this.#bulk.clear();
    this.#order = [];
    return all;
  }

  /** Takes every outstanding task out (the pool broke) and returns who waited. */
  takeAll(): Settle[] {
    const all = [...this.#settles.values()];
    this.#settles.clear();
    return all;
  }

  /** A record for task `id` (0 for a `STOP`) entered the ring. */
  put(id: number): void {
    this.#puts++;
    this.#order.push(id);
  }

  /** Forgets the taken ids at the front of the put order whose tasks are over. */
  trim(ringSize: number): void {
    const order = this.#order;
    const taken = this.#puts - ringSize - this.#base;
    let k = 0;
    while (k < taken && k < order.length && !this.#settles.has(order[k])) k++;
    if (k > 0 && (k >= TRIM_BATCH || k === order.length)) {
      order.splice(0, k);
      this.#base += k;
    }
  }

  /** How many task records have been taken from the ring, ever, when it holds `ringSize` records. */
  taken(ringSize: number): number {
    return this.#puts - ringSize;
  }

  /**
   * The outstanding tasks among the first `taken` records put (a count from
   * {@linkcode TaskTable.taken}) that no live worker runs (`running`): those
   * a worker that died while taking a record may have held.
   */
  takenAndNotRunning(taken: number, running: Set<number>): number[] {
    const order = this.#order;
    const out: number[] = [];
    for (let k = 0; k < taken - this.#base && k < order.length; k++) {
      const id = order[k];
      if (id !== 0 && !running.has(id) && this.#settles.has(id)) out.push(id);
    }
    return out;
  }
}

/**
 * Waits until a call of the function this adds to `waiters` (whoever
 * settles the wait calls every function there), or until `ms` pass (then the
 * function is taken out again, so that polling with a timeout does not pile
 * them up). Resolves `true` when woken, `false` on timeout.
 */
export function waitInList(waiters: (() => void)[], ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wake = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const expire = () => {
      const at = waiters.indexOf(wake);
      if (at >= 0) waiters.splice(at, 1);
      resolve(false);
    };
    // Timers fire at once for delays past 2^31 - 1 ms: longer waits go in steps.
    const end = Date.now() + ms;
    const arm = () => {
      const left = end - Date.now();
      timer = left > MAX_DELAY ? setTimeout(arm, MAX_DELAY) : setTimeout(expire, Math.max(0, left));
    };
    if (ms !== Infinity) arm();
    waiters.push(wake);
  });
}

/** The longest delay a timer takes (about 24.8 days). */
const MAX_DELAY = 0x7fffffff;
