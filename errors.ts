/**
 * The errors this library throws, one class per condition, each with its
 * `name` set. Inside a value that crosses threads (a queue item, a pipe
 * message, a task's result) they keep their class, so `instanceof` works
 * on the other side too; an error thrown by a thread or pool task arrives
 * as a {@linkcode RemoteError} carrying the remote `name`.
 *
 * @example Telling one failure from another
 * ```ts
 * import { EmptyError, TimeoutError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err: Error = new EmptyError();
 * assert.ok(err instanceof EmptyError);
 * assert.ok(!(err instanceof TimeoutError));
 * ```
 *
 * @module
 */

/**
 * Thrown when an item is asked for and the queue stays empty: by `getNowait()`,
 * or by `get()` once its `timeout` passes (Python's `queue.Empty`); then the
 * message says how many milliseconds it waited.
 *
 * @example
 * ```ts
 * import { EmptyError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err = new EmptyError();
 * assert.equal(err.name, "EmptyError");
 * assert.ok(err instanceof Error);
 * ```
 */
export class EmptyError extends Error {
  /**
   * Creates an `EmptyError`.
   *
   * @param message What was empty.
   */
  constructor(message = "The queue is empty") {
    super(message);
    this.name = "EmptyError";
  }
}

/**
 * Thrown when a bounded queue has no room: by `putNowait()`, or by `put()`
 * once its `timeout` passes (Python's `queue.Full`); then the message says
 * how many milliseconds it waited.
 *
 * @example
 * ```ts
 * import { FullError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new FullError().name, "FullError");
 * ```
 */
export class FullError extends Error {
  /**
   * Creates a `FullError`.
   *
   * @param message What was full.
   */
  constructor(message = "The queue is full") {
    super(message);
    this.name = "FullError";
  }
}

/**
 * Thrown when an object is used after it was closed: a queue after
 * `close()` (Python 3.13's `ShutDown`), a connection whose other end is closed
 * and drained (Python's `EOFError`), a pool after `close()`.
 *
 * When a value could not be delivered because of the close, it is kept in
 * {@linkcode ClosedError.value}.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err = new ClosedError("The queue is closed", { value: 42 });
 * assert.equal(err.value, 42);
 * ```
 */
export class ClosedError extends Error {
  /** The value that could not be sent because of the close, if any. */
  readonly value: unknown;
  /**
   * Creates a `ClosedError`.
   *
   * @param message What was closed.
   * @param options `value`: what could not be sent.
   */
  constructor(message = "The object is closed", options: { value?: unknown } = {}) {
    super(message);
    this.name = "ClosedError";
    this.value = options.value;
  }
}

/**
 * Thrown when the outcome of a cancelled {@linkcode Future} is asked for
 * (Python's `concurrent.futures.CancelledError`).
 *
 * @example
 * ```ts
 * import { CancelledError, Future } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const f = new Future();
 * f.cancel();
 * await assert.rejects(f.result(), CancelledError);
 * ```
 */
export class CancelledError extends Error {
  /**
   * Creates a `CancelledError`.
   *
   * @param message What was cancelled.
   */
  constructor(message = "The operation was cancelled") {
    super(message);
    this.name = "CancelledError";
  }
}

/**
 * Thrown when a wait that has no "false" answer runs out of time:
 * `Connection.recv()` and `AsyncResult.get()` (Python's `TimeoutError`).
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TimeoutError().name, "TimeoutError");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Creates a `TimeoutError`.
   *
   * @param message What timed out.
   */
  constructor(message = "The operation timed out") {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Thrown by `Barrier.wait()` when the barrier is broken: it was aborted or
 * reset while threads waited, or a wait timed out (Python's
 * `threading.BrokenBarrierError`).
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new BrokenBarrierError().name, "BrokenBarrierError");
 * ```
 */
export class BrokenBarrierError extends Error {
  /**
   * Creates a `BrokenBarrierError`.
   *
   * @param message Why the barrier is broken.
   */
  constructor(message = "The barrier is broken") {
    super(message);
    this.name = "BrokenBarrierError";
  }
}

/**
 * Thrown by a managed dictionary (`DictProxy`) or a cluster dict when a key
 * is missing: `delete(key)`, `pop(key)` without a default, `popitem()` on an
 * empty dictionary (Python's `KeyError`). The message names the key.
 *
 * @example
 * ```ts
 * import { KeyError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err = new KeyError("'a'");
 * assert.equal(err.name, "KeyError");
 * assert.ok(err instanceof Error);
 * ```
 */
export class KeyError extends Error {
  /**
   * Creates a `KeyError`.
   *
   * @param message Which key was missing.
   */
  constructor(message = "The key is missing") {
    super(message);
    this.name = "KeyError";
  }
}

/**
 * Thrown by a managed list (`ListProxy`) when an index is out of range:
 * `get(i)`, `set(i, v)`, `pop(i)` (Python's `IndexError`).
 *
 * @example
 * ```ts
 * import { IndexError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err = new IndexError("list index out of range");
 * assert.equal(err.name, "IndexError");
 * assert.ok(err instanceof Error);
 * ```
 */
export class IndexError extends Error {
  /**
   * Creates an `IndexError`.
   *
   * @param message Which index was out of range.
   */
  constructor(message = "The index is out of range") {
    super(message);
    this.name = "IndexError";
  }
}

/**
 * Thrown by {@linkcode Connection.recvBytesInto} when the message does not
 * fit in the buffer after the offset (Python's
 * `multiprocessing.BufferTooShort`). The message has been received: it is
 * in `data`, as Python gives it in `e.args[0]`.
 *
 * @example
 * ```ts
 * import { BufferTooShort, Pipe } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * a.sendBytes(new Uint8Array([1, 2, 3]));
 * const e = await b.recvBytesInto(new Uint8Array(2)).catch((e) => e);
 * assert.ok(e instanceof BufferTooShort);
 * assert.deepEqual(e.data, new Uint8Array([1, 2, 3]));
 * a.close();
 * b.close();
 * ```
 */
export class BufferTooShort extends Error {
  /** The whole message that did not fit. */
  readonly data: Uint8Array;
  /**
   * Creates a `BufferTooShort`.
   *
   * @param data The message that did not fit.
   * @param message What did not fit where.
   */
  constructor(data: Uint8Array = new Uint8Array(0), message = "The message does not fit in the buffer") {
    super(message);
    this.name = "BufferTooShort";
    this.data = data;
  }
}

/**
 * The parts of an error that cross threads.
 *
 * @example
 * ```ts
 * import { RemoteError, type RemoteErrorInit } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const init: RemoteErrorInit = { name: "TypeError", message: "bad" };
 * assert.equal(new RemoteError(init).name, "TypeError");
 * ```
 */
export interface RemoteErrorInit {
  /** The remote error's `name`, e.g. `"TypeError"`. */
  name: string;
  /** The remote error's `message`. */
  message: string;
  /** The remote error's stack, as the remote thread printed it. */
  stack?: string;
  /** The remote error's `cause`: described in turn when it was an error, else the value itself. */
  cause?: unknown;
  /** The remote error's own other fields (`code`, `errno`, custom ones) whose values are plain data. */
  fields?: Record<string, unknown>;
}

/** Own fields of an error that are not carried elsewhere in its description. */
const OWN = new Set(["name", "message", "stack", "cause"]);

/** `value` when it survives JSON unchanged in kind (plain data), else `undefined`. */
function plain(value: unknown): unknown {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  if (typeof value !== "object") return undefined;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return undefined;
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return undefined;
  }
}

/**
 * An error raised in another thread, rebuilt here. It keeps the remote
 * `name`, `message` and `stack` (like Python's `RemoteTraceback`): `name` is
 * the remote one (`"TypeError"`, …), and {@linkcode RemoteError.remoteStack}
 * is the stack as the remote thread saw it. Its `cause` and its own fields
 * that are plain data (`code`, `errno`, custom ones) come along too, as
 * Python's pickled exceptions keep their attributes.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const err = new RemoteError({ name: "TypeError", message: "bad", stack: "TypeError: bad\n    at f" });
 * assert.equal(err.name, "TypeError");
 * assert.equal(err.message, "bad");
 * assert.ok(err instanceof RemoteError);
 * assert.match(err.remoteStack, /at f/);
 * ```
 */
export class RemoteError extends Error {
  /** The stack of the error in the thread that raised it. */
  readonly remoteStack: string;
  /**
   * Rebuilds a remote error from its parts.
   *
   * @param init The remote error's `name`, `message` and `stack`.
   */
  constructor(init: RemoteErrorInit) {
    super(init.message);
    for (const [key, value] of Object.entries(init.fields ?? {})) {
      if (!OWN.has(key)) {
        Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
      }
    }
    if ("cause" in init) {
      const cause = init.cause;
      const isInit = typeof cause === "object" && cause !== null && "name" in cause && "message" in cause;
      this.cause = isInit ? new RemoteError(cause as RemoteErrorInit) : cause;
    }
    this.name = init.name || "Error";
    this.remoteStack = init.stack ?? `${this.name}: ${init.message}`;
    this.stack = this.remoteStack;
  }

  /**
   * The parts of `error` that cross threads. Anything thrown, not only
   * `Error`s, is described.
   *
   * @param error What was thrown.
   * @returns Its name, message and stack; for an `Error` also its `cause`
   *   and its own other fields that are plain data (`code`, custom ones).
   *
   * @example
   * ```ts
   * import { RemoteError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual(RemoteError.describe("oops"), { name: "Error", message: "oops", stack: "Error: oops" });
   * ```
   */
  static describe(error: unknown): RemoteErrorInit {
    return describeError(error, 0);
  }
}

function describeError(error: unknown, depth: number): RemoteErrorInit {
  if (error instanceof Error) {
    const init: RemoteErrorInit = {
      name: error.name,
      message: error.message,
      stack: typeof error.stack === "string" ? error.stack : `${error.name}: ${error.message}`,
    };
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(error)) {
      if (OWN.has(key)) continue;
      const value = plain((error as unknown as Record<string, unknown>)[key]);
      if (value !== undefined) fields[key] = value;
    }
    if (Object.keys(fields).length > 0) init.fields = fields;
    if ("cause" in error && depth < 8) {
      const cause = error.cause;
      const described = cause instanceof Error ? describeError(cause, depth + 1) : plain(cause);
      if (described !== undefined || cause === undefined) init.cause = described;
    }
    return init;
  }
  let message: string;
  try {
    message = String(error);
  } catch {
    message = Object.prototype.toString.call(error); // no toString: Object.create(null)
  }
  return { name: "Error", message, stack: `Error: ${message}` };
}
