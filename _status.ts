// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A thread's status cells, shared by the `Thread` object in the parent and
 * the worker that runs it, so that `isAlive()`, `exitCode`, `error` and
 * `joinSync()` need no message from the worker.
 *
 * @module
 */

import { RemoteError, type RemoteErrorInit } from "./errors.ts";
import { markDead, selfIdent, watchStop } from "./_registry.ts";
import { exitWorker } from "./_runtime.ts";

/**
 * Layout of a thread's status cells (an `Int32Array` over a growable
 * `SharedArrayBuffer`), written by the worker when its target ends and by
 * the parent when it terminates the worker or sees it die:
 *
 * - `STATE`: `RUNNING`, then `DONE` (stored last, with `Atomics.store`, and
 *   notified: readers that see `DONE` see the fields below).
 * - `EXIT_CODE`: the exit code.
 * - `ERROR_LEN`: length in bytes of the error at byte `ERROR_AT`, or 0: its
 *   `name`, `message` and `stack` as UTF-8 JSON. (JSON rather than the value
 *   codec: a worker that runs a no-op target then never loads msgpackr.)
 * - `STOP`: 0, or the exit code a stop was requested with (`TERMINATED`,
 *   `KILLED`): written once by the parent (`compareExchange` from 0), read by
 *   the worker at its library waits and when the "stop" message arrives.
 * - `EXITING`: 1 once the thread's code called `process.exit(code)` (or
 *   `Deno.exit`), with `EXIT_CODE` holding that code (stored first): the
 *   runtime ends the worker, and whoever records its end uses that code.
 */
export const STATE = 0;
export const EXIT_CODE = 1;
export const ERROR_LEN = 2;
export const STOP = 3;
export const EXITING = 4;
/** Byte offset of the encoded error. */
export const ERROR_AT = 20;
export const RUNNING = 1;
export const DONE = 2;
/** Python reports a process stopped by SIGTERM as exit code -15, by SIGKILL as -9. */
export const TERMINATED = -15;
export const KILLED = -9;

/**
 * Records that a thread ended: exit code, error (if any), then `DONE`.
 * Used by the worker itself and by a parent that saw it die.
 */
export function writeExit(status: SharedArrayBuffer, code: number, error?: unknown): void {
  // A fixed-length view: `new Int32Array(status)` throws once an error of
  // odd length has grown the buffer to a size that is not a multiple of 4.
  const cells = new Int32Array(status, 0, ERROR_AT / 4);
  if (Atomics.load(cells, STATE) === DONE) return;
  if (error !== undefined) {
    const bytes = new TextEncoder().encode(JSON.stringify(RemoteError.describe(error)));
    if (ERROR_AT + bytes.length > status.byteLength && status.growable) {
      status.grow(Math.min(status.maxByteLength, ERROR_AT + bytes.length));
    }
    if (ERROR_AT + bytes.length <= status.byteLength) {
      new Uint8Array(status, ERROR_AT, bytes.length).set(bytes);
      Atomics.store(cells, ERROR_LEN, bytes.length);
    }
  }
  Atomics.store(cells, EXIT_CODE, code);
  Atomics.store(cells, STATE, DONE);
  Atomics.notify(cells, STATE);
}

/** Called by the worker as its code calls `process.exit(code)`: see `EXITING`. */
export function markExiting(status: SharedArrayBuffer, code: number): void {
  const cells = new Int32Array(status, 0, ERROR_AT / 4);
  Atomics.store(cells, EXIT_CODE, code);
  Atomics.store(cells, EXITING, 1);
}

/** The code the thread's own `process.exit` asked for, or `undefined` when it did not call it. */
export function exitCodeAsked(status: SharedArrayBuffer): number | undefined {
  const cells = new Int32Array(status, 0, ERROR_AT / 4);
  return Atomics.load(cells, EXITING) === 1 ? Atomics.load(cells, EXIT_CODE) : undefined;
}

/** The error recorded by {@linkcode writeExit}, if any; call after `STATE` is `DONE`. */
export function readError(status: SharedArrayBuffer): RemoteErrorInit | undefined {
  const len = Atomics.load(new Int32Array(status, 0, ERROR_AT / 4), ERROR_LEN);
  if (len === 0) return undefined;
  // Copied out first: TextDecoder does not read shared memory everywhere.
  return JSON.parse(new TextDecoder().decode(new Uint8Array(status, ERROR_AT, len).slice())) as RemoteErrorInit;
}

// ## Stopping a thread
//
// A thread is marked dead (its locks become recoverable) only once it can
// run no more code. Where the runtime's terminate() stops a worker at any
// instruction and reports it (Node, Bun), the parent marks the death when the
// runtime confirms it. Deno's terminate() stops a worker only at its next
// turn of the event loop, and says nothing: there the worker stops itself,
// at the first of three points, and marks its own death just before it
// closes (`exitWorker` ends it at once, so no user code runs in between):
// - the parent's "stop" message, handled by the worker's event loop (the
//   worker is idle, or awaiting);
// - any wait in this library (`_wait.ts` checks `STOP` at the start of a wait
//   and parks in slices of `SLICE` ms in a stoppable worker), and every
//   put and take of a queue (`isSelfAliveHint` in `_registry.ts`);
// - never, while the worker runs JavaScript that neither yields nor waits in
//   this library: then it keeps running and keeps what it holds.
// Node and Bun follow the same protocol (the parent also terminates the
// worker there), so a worker that reaches one of the points first reports
// its own end.

/** The calling worker's own status cells, once it runs a thread. */
let own: { status: SharedArrayBuffer; cells: Int32Array; onExit: (code: number) => void } | undefined;

/**
 * Called by the worker entry before the target runs: these are the thread's
 * own cells; `onExit` tells the parent, just before the worker stops itself.
 */
export function adoptStatus(status: SharedArrayBuffer, onExit: (code: number) => void): void {
  own = { status, cells: new Int32Array(status, 0, ERROR_AT / 4), onExit };
  watchStop(own.cells, STOP, stopIfAsked);
}

/** The cells the calling thread watches for a stop request, or `undefined` (main thread, pool worker). */
export function stopCells(): Int32Array | undefined {
  return own?.cells;
}

/** Asks the thread with these status cells to stop with `code`; the first request wins. */
export function requestStop(status: SharedArrayBuffer, code: number): void {
  const cells = new Int32Array(status, 0, ERROR_AT / 4);
  Atomics.compareExchange(cells, STOP, 0, code);
  Atomics.notify(cells, STOP);
}

/**
 * Ends the calling thread at once if its parent asked it to stop: marks it
 * dead, records the requested exit code, and closes the worker. Returns when
 * no stop was asked for.
 */
export function stopIfAsked(): void {
  if (own === undefined) return;
  const code = Atomics.load(own.cells, STOP);
  if (code === 0) return;
  markDead(selfIdent());
  writeExit(own.status, code);
  own.onExit(code);
  exitWorker(code);
}
