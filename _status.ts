// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A thread's status cells, shared by the `Thread` object in the parent and
 * the worker that runs it, so that `isAlive()`, `exitCode`, `error` and
 * `joinSync()` need no message from the worker.
 *
 * @module
 */

import { RemoteError, type RemoteErrorInit } from "./errors.ts";

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
 */
export const STATE = 0;
export const EXIT_CODE = 1;
export const ERROR_LEN = 2;
/** Byte offset of the encoded error. */
export const ERROR_AT = 16;
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

/** The error recorded by {@linkcode writeExit}, if any; call after `STATE` is `DONE`. */
export function readError(status: SharedArrayBuffer): RemoteErrorInit | undefined {
  const len = Atomics.load(new Int32Array(status, 0, ERROR_AT / 4), ERROR_LEN);
  if (len === 0) return undefined;
  // Copied out first: TextDecoder does not read shared memory everywhere.
  return JSON.parse(new TextDecoder().decode(new Uint8Array(status, ERROR_AT, len).slice())) as RemoteErrorInit;
}
