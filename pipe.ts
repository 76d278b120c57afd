// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Pipe()` and `Connection`: Python's `multiprocessing.Pipe`, a pair of
 * connected ends, duplex by default, in shared memory.
 *
 * Each direction is a single-producer single-consumer channel: `send`
 * copies the message into a growable ring and never waits; `recv` spins
 * briefly, then parks, so a reply is seen within a microsecond or two while
 * an idle end uses no CPU.
 *
 * An end belongs to one thread. Passed in a `Thread`'s `args`, or inside a
 * queue item or a pipe message, it moves there (the sender's copy is
 * detached, like a transferred `MessagePort`); when its thread ends, the end
 * is closed. Messages may hold this library's other handles too (`Queue`,
 * `Lock`, `SharedValue`, …), which stay shared; they travel as queue items'
 * do (see "Handles inside items" in `queue.ts`'s docs, including what is
 * kept in memory). When the other end is closed and
 * everything it sent has been received, `recv` throws `ClosedError`
 * (Python's `EOFError`).
 *
 * @example A duplex pipe between the main thread and a worker
 * ```ts
 * import { Pipe, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [here, there] = Pipe();
 * const t = new Thread({
 *   target: (conn: { recvSync(): unknown; send(v: unknown): void }) => conn.send(`echo ${conn.recvSync()}`),
 *   args: [there],
 * });
 * t.start();
 * here.send("hi");
 * assert.equal(await here.recv(), "echo hi");
 * await t.join();
 * here.close();
 * ```
 *
 * @module
 */

import { BufferTooShort, ClosedError, TimeoutError } from "./errors.ts";
import { registerHandler } from "./_handles.ts";
import { readerClosed, shareHandlesWith } from "./_post.ts";
import { isIdentAlive, selfIdent } from "./_registry.ts";
import { EOF, NONE, SpscChannel, type SpscMemory } from "./_spsc.ts";
import { assertCanBlock, now, SLICE } from "./_wait.ts";
import { checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";
import type { Thread } from "./thread.ts";

/**
 * Layout of a pipe's state cells (an `Int32Array` over a small
 * `SharedArrayBuffer` shared by both ends; `end` is 0 or 1):
 *
 * | index         | written by                               | Atomics op | meaning |
 * |---------------|------------------------------------------|------------|---------|
 * | `OWNER + end` | `Pipe()`; the sender of a move (`compareExchange`), the receiver (`store`), the post office for an end in transit (`store`, see `_post_office.ts`) | `store` / `compareExchange` | ident of the thread holding the end (from the move on, the receiving thread's; in transit inside an item, the post office's, until a reader asks for it); `-ident` while in transit from a sender that did not name the receiver; 0 once the post office closed it (its reader gone) |
 * | `CLOSED + end`| the end's holder in `close()`, after its end-of-stream mark | `store` | 1 once closed |
 *
 * An end counts as closed when its `CLOSED` cell is set or its owner's
 * thread is dead (`_registry.ts`); a reader parked on its channel re-checks
 * that every `SLICE` ms (`_wait.ts`), since a dead thread cannot wake it.
 */
const OWNER = 0;
const CLOSED = 2;
const STATE_INTS = 4;

/**
 * Options for {@linkcode Connection.recv} and {@linkcode Connection.recvSync}.
 *
 * @example Give up after a while
 * ```ts
 * import { Pipe, type RecvOptions, TimeoutError } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * const options: RecvOptions = { timeout: 10, signal: AbortSignal.timeout(1000) };
 * await assert.rejects(b.recv(options), TimeoutError);
 * a.close();
 * b.close();
 * ```
 */
export interface RecvOptions {
  /**
   * Milliseconds to wait for a message before rejecting with `TimeoutError`.
   * @default {undefined} (no limit)
   */
  timeout?: number;
  /** Rejects with the signal's reason when it aborts; nothing is received. */
  signal?: AbortSignal;
}

/**
 * Options for {@linkcode Connection.recvBytes} and {@linkcode Connection.recvBytesSync}.
 *
 * @example Refuse messages that are too long
 * ```ts
 * import { Pipe, type RecvBytesOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * a.sendBytes(new Uint8Array(100));
 * const options: RecvBytesOptions = { maxLength: 10, timeout: 1000 };
 * assert.throws(() => b.recvBytesSync(options), /longer than maxLength/);
 * assert.equal(b.recvBytesSync().length, 100); // still there
 * a.close();
 * b.close();
 * ```
 */
export interface RecvBytesOptions extends RecvOptions {
  /**
   * The longest message accepted, in bytes: a longer one is left in the
   * pipe and the call fails with an `Error`.
   * @default {undefined} (no limit)
   */
  maxLength?: number;
}

/** What crosses to another thread when an end moves (see `_handles.ts`). */
interface ConnectionData {
  state: SharedArrayBuffer;
  end: number;
  /** The channel this end reads (absent on a write-only end). */
  incoming?: SpscMemory;
  /** The channel this end writes (absent on a read-only end). */
  outgoing?: SpscMemory;
}

/**
 * What {@linkcode Connection.sendBytes} sends bytes from: a buffer or any
 * view of one (a typed array, a `DataView`); only the view's bytes are sent.
 *
 * @example
 * ```ts
 * import { type BytesSource, Pipe } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * const sources: BytesSource[] = [new ArrayBuffer(2), new Float32Array(1), new DataView(new ArrayBuffer(8), 4)];
 * for (const s of sources) a.sendBytes(s);
 * assert.deepEqual([0, 1, 2].map(() => b.recvBytesSync().length), [2, 4, 4]);
 * a.close();
 * b.close();
 * ```
 */
export type BytesSource = ArrayBuffer | SharedArrayBuffer | ArrayBufferView;

/** Set by `Connection.#make` for the constructor: only `Pipe()` and moves build ends. */
let building: ConnectionData | undefined;
/** `Connection.#make`, for `Pipe()`. */
let make: (data: ConnectionData) => Connection;
/** Whether `recv` on `conn` would not wait (set by Connection's static block). */
let readable: (conn: Connection, what: string) => boolean;
/** Waits until `conn` is readable, `ms` pass (false) or `signal` aborts (set by Connection's static block). */
let untilReadable: (conn: Connection, ms: number, signal: AbortSignal, what: string) => Promise<boolean>;

function ownerAlive(owner: number): boolean {
  return owner !== 0 && isIdentAlive(owner < 0 ? -owner : owner);
}

function checkMaxLength(options: RecvBytesOptions, what: string): number {
  const maxLength = checkOptions<RecvBytesOptions>(options, what, false, "call ")?.maxLength;
  if (maxLength === undefined) return Infinity;
  if (typeof maxLength !== "number" || !Number.isInteger(maxLength) || maxLength < 0) {
    throw new RangeError(
      `Cannot call ${what} as 'maxLength' must be an integer >= 0: current value is ${show(maxLength)}`,
    );
  }
  return maxLength;
}

/** A receive's options: its timeout (ms, `Infinity` for none) and signal. */
function checkRecvOptions(options: RecvOptions, what: string): { ms: number; signal: AbortSignal | undefined } {
  const checked = checkOptions<RecvOptions>(options, what, false, "call ");
  return { ms: checkTimeout(checked?.timeout, what), signal: checkSignal(checked?.signal, what, "call ") };
}

function checkPollTimeout(timeout: number | null, what: string): number {
  return timeout === null ? Infinity : checkTimeout(timeout, what);
}

function eofError(): ClosedError {
  return new ClosedError(
    "Cannot receive: the other end of the pipe is closed (or its thread ended) and nothing is left to receive",
  );
}

function timeoutError(what: string, ms: number): TimeoutError {
  return new TimeoutError(`${what} timed out after ${ms} ms with nothing to receive`);
}

/**
 * One end of a {@linkcode Pipe}: Python's `multiprocessing.connection.Connection`.
 *
 * Values are structured-clone values, which may hold this library's
 * handles (an end sent this way moves; see the module docs). `send` never
 * waits; `recv` waits for the next message, in order. Only
 * {@linkcode Pipe} creates connections.
 *
 * @typeParam T The type of the values received.
 *
 * @example Send values and bytes, then see the end of the stream
 * ```ts
 * import { ClosedError, Pipe } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = Pipe();
 * a.send({ n: 1 });
 * a.sendBytes(new Uint8Array([1, 2, 3]));
 * a.close();
 * assert.deepEqual(b.recvSync(), { n: 1 });
 * assert.deepEqual(b.recvBytesSync(), new Uint8Array([1, 2, 3]));
 * assert.throws(() => b.recvSync(), ClosedError);
 * b.close();
 * ```
 */
export class Connection<T = unknown> {
  #data: ConnectionData;
  #state: Int32Array;
  #end: number;
  #in: SpscChannel | undefined;
  #out: SpscChannel | undefined;
  #closed = false;
  #moved = false;
  /**
   * The codec hook for this end's messages: handles ride along (`_post.ts`),
   * but not this pipe's own ends; an end inside follows the other end until
   * received (closed with it).
   */
  #hook = (v: object, path: string): boolean => {
    if (v instanceof Connection && v.#data.state === this.#data.state) {
      throw new TypeError(`Cannot send ${path} through its own pipe: it is one of that pipe's ends`);
    }
    this.#share ??= shareHandlesWith({
      buffer: this.#data.state,
      owner: OWNER + 1 - this.#end,
      closed: CLOSED + 1 - this.#end,
    });
    return this.#share(v, path);
  };
  #share: ((v: object, path: string) => boolean) | undefined;
  /** Async receives run one after another, in call order. */
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /**
   * Not for use: connections come from {@linkcode Pipe}.
   *
   * @throws {TypeError} always, when called directly.
   */
  constructor() {
    const data = building;
    building = undefined;
    if (!data) throw new TypeError("Cannot create a Connection with 'new': call Pipe() for a connected pair");
    this.#data = data;
    this.#state = new Int32Array(data.state);
    this.#end = data.end;
    this.#in = data.incoming ? new SpscChannel(data.incoming) : undefined;
    this.#out = data.outgoing ? new SpscChannel(data.outgoing) : undefined;
  }

  static #make<T>(data: ConnectionData): Connection<T> {
    building = data;
    return new Connection<T>();
  }

  static {
    make = (data) => Connection.#make(data);
    readable = (conn, what) => conn.#readyOrEnded(conn.#reader(what));
    untilReadable = (conn, ms, signal, what) => {
      const channel = conn.#reader(what);
      if (conn.#readyOrEnded(channel)) return Promise.resolve(true);
      return conn.#pollAsync(channel, ms === Infinity ? Infinity : now() + ms, signal);
    };
    registerHandler<Connection, ConnectionData>({
      tag: "Connection",
      canHandle: (value): value is Connection => value instanceof Connection,
      serialize: (conn, path) => {
        if (conn.#moved) {
          throw new TypeError(`Cannot send ${path}: this Connection was already moved to another thread`);
        }
        if (conn.closed) throw new TypeError(`Cannot send ${path}: this Connection is closed`);
        return conn.#data;
      },
      deserialize: (data) => {
        const conn = Connection.#make(data);
        Atomics.store(conn.#state, OWNER + data.end, selfIdent());
        return conn;
      },
      moved: (conn, to) => {
        conn.#moved = true;
        // The end now lives or dies with the receiving thread (which may have
        // claimed it already). When the sender does not say which thread
        // that is, the end is in transit until claimed.
        const me = selfIdent();
        Atomics.compareExchange(conn.#state, OWNER + conn.#end, me, to ?? -me);
      },
      owner: (data) => [data.state, OWNER + data.end],
    });
  }

  /**
   * Whether this end is closed (by `close()` or by moving it to another
   * thread). Python's `Connection.closed`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.close();
   * assert.equal(a.closed, true);
   * assert.equal(b.closed, false);
   * b.close();
   * ```
   */
  get closed(): boolean {
    return this.#closed || this.#moved || Atomics.load(this.#state, CLOSED + this.#end) !== 0;
  }

  /**
   * Whether this end can receive: `false` for the second end of `Pipe(false)`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [r, w] = Pipe(false);
   * assert.deepEqual([r.readable, w.readable], [true, false]);
   * r.close();
   * w.close();
   * ```
   */
  get readable(): boolean {
    return this.#in !== undefined;
  }

  /**
   * Whether this end can send: `false` for the first end of `Pipe(false)`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [r, w] = Pipe(false);
   * assert.deepEqual([r.writable, w.writable], [false, true]);
   * r.close();
   * w.close();
   * ```
   */
  get writable(): boolean {
    return this.#out !== undefined;
  }

  /** Throws unless this end is usable by this thread. */
  #assertOpen(what: string): void {
    if (this.#moved) {
      throw new Error(
        `Cannot call Connection.${what}: this end was moved to another thread (passed in 'args'); use it there`,
      );
    }
    if (this.#closed) throw new ClosedError(`Cannot call Connection.${what}: this end of the pipe is closed`);
  }

  #reader(what: string): SpscChannel {
    this.#assertOpen(what);
    if (!this.#in) {
      throw new Error(
        `Cannot call Connection.${what} on a write-only end: the second end of Pipe(false) only sends`,
      );
    }
    return this.#in;
  }

  #writer(what: string): SpscChannel {
    this.#assertOpen(what);
    if (!this.#out) {
      throw new Error(
        `Cannot call Connection.${what} on a read-only end: the first end of Pipe(false) only receives`,
      );
    }
    return this.#out;
  }

  /** Whether the other end is closed or its thread is dead. */
  #peerGone(): boolean {
    const peer = 1 - this.#end;
    return Atomics.load(this.#state, CLOSED + peer) !== 0 || !ownerAlive(Atomics.load(this.#state, OWNER + peer));
  }

  /**
   * Sends a value to the other end. Never waits: the pipe's buffer grows as
   * needed. Python's `Connection.send`.
   *
   * @param value Any structured-clone value, which may hold this library's
   *   handles anywhere inside (a `Connection` end in it moves to the
   *   receiving thread; see the module docs).
   * @throws {TypeError} when `value` cannot be cloned (naming where the bad
   *   part sits), or holds one of this pipe's own ends; nothing is sent.
   * @throws {ClosedError} when the other end is closed (its `value` is the
   *   value) or this end is closed.
   * @throws {Error} on the read-only end of `Pipe(false)`, or on an end
   *   moved to another thread.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.send(new Map([["k", [1, 2n]]]));
   * assert.deepEqual(b.recvSync(), new Map([["k", [1, 2n]]]));
   * assert.throws(() => a.send(() => 1), TypeError);
   * a.close();
   * b.close();
   * ```
   *
   * @example An end sent inside a message moves
   * ```ts
   * import { type Connection, Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [ctl, ctlThere] = Pipe<{ reply: Connection<string> }>();
   * const [mine, theirs] = Pipe<string>();
   * ctl.send({ reply: theirs });
   * assert.equal(theirs.closed, true); // detached here
   * const { reply } = ctlThere.recvSync(); // in a real program: another thread
   * reply.send("hi");
   * assert.equal(mine.recvSync(), "hi");
   * for (const c of [ctl, ctlThere, mine, reply]) c.close();
   * ```
   */
  send(value: T): void {
    const out = this.#writer("send()");
    if (this.#peerGone()) {
      throw new ClosedError("Cannot send: the other end of the pipe is closed (or its thread ended)", { value });
    }
    out.send(value, "value", this.#hook);
  }

  /**
   * Sends bytes as one message, copied once. Python's `send_bytes`.
   *
   * @param buffer The bytes: an `ArrayBuffer`, `SharedArrayBuffer` or view.
   * @param offset Where to start, in bytes. @default {0}
   * @param size How many bytes. @default {the rest of the buffer}
   * @throws {TypeError} when `buffer` is not bytes.
   * @throws {RangeError} when `offset`/`size` are not integers ≥ 0 within the buffer.
   * @throws {ClosedError} when either end is closed.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.sendBytes(new TextEncoder().encode("hello world"), 6, 5);
   * assert.equal(new TextDecoder().decode(b.recvBytesSync()), "world");
   * a.close();
   * b.close();
   * ```
   */
  sendBytes(buffer: BytesSource, offset?: number, size?: number): void {
    const out = this.#writer("sendBytes()");
    let bytes: Uint8Array;
    if (ArrayBuffer.isView(buffer)) {
      bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } else if (buffer instanceof ArrayBuffer || buffer instanceof SharedArrayBuffer) {
      bytes = new Uint8Array(buffer);
    } else {
      throw new TypeError(
        `Cannot call Connection.sendBytes() as 'buffer' must be an ArrayBuffer, SharedArrayBuffer or ArrayBuffer view: current value is ${
          String(buffer)
        }`,
      );
    }
    const n = bytes.length;
    const start = offset ?? 0;
    if (typeof start !== "number" || !Number.isInteger(start) || start < 0 || start > n) {
      throw new RangeError(
        `Cannot call Connection.sendBytes() as 'offset' must be an integer from 0 to the buffer's ${n} bytes: current value is ${
          String(offset)
        }`,
      );
    }
    const count = size ?? n - start;
    if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || start + count > n) {
      throw new RangeError(
        `Cannot call Connection.sendBytes() as 'size' must be an integer from 0 to the ${
          n - start
        } bytes after 'offset': current value is ${String(size)}`,
      );
    }
    if (this.#peerGone()) {
      throw new ClosedError("Cannot send: the other end of the pipe is closed (or its thread ended)");
    }
    out.sendBytes(bytes.subarray(start, start + count));
  }

  /**
   * Receives the next message, waiting for it without blocking the event
   * loop. A bytes message arrives as a `Uint8Array`. Python's `recv`.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns A Promise of the value. It rejects with `ClosedError` when the
   *   other end is closed and everything it sent has been received (or this
   *   end is closed), `TimeoutError` after `timeout`, the signal's reason on
   *   abort (nothing is taken), `RangeError` for a bad `timeout`.
   *
   * @example
   * ```ts
   * import { Pipe, TimeoutError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe<string>();
   * setTimeout(() => a.send("later"), 10);
   * assert.equal(await b.recv(), "later");
   * await assert.rejects(b.recv({ timeout: 10 }), TimeoutError);
   * a.close();
   * b.close();
   * ```
   */
  recv(options: RecvOptions = {}): Promise<T> {
    return this.#receive("recv()", options, Infinity, false) as Promise<T>;
  }

  /**
   * The blocking twin of {@linkcode Connection.recv} (not on a browser's
   * main thread).
   *
   * @param options `timeout` (ms); `signal` is checked before waiting.
   * @returns The value.
   * @throws {ClosedError} when the other end is closed and drained, or this end is closed.
   * @throws {TimeoutError} after `timeout` ms without a message.
   * @throws {RangeError} for a bad `timeout`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * b.send([1, "two"]);
   * assert.deepEqual(a.recvSync({ timeout: 1000 }), [1, "two"]);
   * a.close();
   * b.close();
   * ```
   */
  recvSync(options: RecvOptions = {}): T {
    return this.#receiveSync("recvSync()", options, Infinity, false) as T;
  }

  /**
   * Receives the next message as bytes: a bytes message as sent, a value
   * message in its encoded form. Python's `recv_bytes`.
   *
   * @param options `maxLength` (a longer message stays in the pipe and the
   *   call fails), `timeout` (ms) and `signal`.
   * @returns A Promise of a fresh `Uint8Array`; rejects as
   *   {@linkcode Connection.recv} does, and with `Error` when the message is
   *   longer than `maxLength`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.sendBytes(new Uint8Array(8));
   * await assert.rejects(b.recvBytes({ maxLength: 4 }));
   * assert.equal((await b.recvBytes()).length, 8);
   * a.close();
   * b.close();
   * ```
   */
  recvBytes(options: RecvBytesOptions = {}): Promise<Uint8Array> {
    let max: number;
    try {
      max = checkMaxLength(options, "Connection.recvBytes()");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#receive("recvBytes()", options, max, true) as Promise<Uint8Array>;
  }

  /**
   * The blocking twin of {@linkcode Connection.recvBytes}.
   *
   * @param options `maxLength`, `timeout` (ms); `signal` is checked before waiting.
   * @returns A fresh `Uint8Array`.
   * @throws {Error} when the message is longer than `maxLength` (it stays in the pipe).
   * @throws {ClosedError} / {TimeoutError} / {RangeError} as {@linkcode Connection.recvSync}.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.sendBytes(new Uint16Array([1, 2]).buffer);
   * assert.equal(b.recvBytesSync({ maxLength: 4 }).length, 4);
   * a.close();
   * b.close();
   * ```
   */
  recvBytesSync(options: RecvBytesOptions = {}): Uint8Array {
    const max = checkMaxLength(options, "Connection.recvBytesSync()");
    return this.#receiveSync("recvBytesSync()", options, max, true) as Uint8Array;
  }

  /**
   * Receives the next message as bytes into `buffer`, from byte `offset`
   * on (Python's `recv_bytes_into`).
   *
   * @param buffer Where to write: an `ArrayBuffer`, a `SharedArrayBuffer`
   *   or a view over one (a typed array, a `DataView`).
   * @param offset Byte offset into `buffer` (of the view, for a view).
   * @param options `timeout` (ms) and `signal`.
   * @returns A Promise of the message's length in bytes. It rejects with
   *   {@linkcode BufferTooShort} (the message, received, in its `data`)
   *   when the message does not fit after `offset`; with `TypeError` for a
   *   `buffer` that is not one of the above, or `RangeError` for an
   *   `offset` outside it, before anything is received; otherwise as
   *   {@linkcode Connection.recv}.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.sendBytes(new Uint8Array([7, 8]));
   * const buf = new Uint8Array(4);
   * assert.equal(await b.recvBytesInto(buf, 1), 2);
   * assert.deepEqual(buf, new Uint8Array([0, 7, 8, 0]));
   * a.close();
   * b.close();
   * ```
   */
  async recvBytesInto(
    buffer: ArrayBufferLike | ArrayBufferView,
    offset = 0,
    options: RecvOptions = {},
  ): Promise<number> {
    const target = bytesTarget(buffer, offset, "Connection.recvBytesInto()");
    return copyInto(target, await this.#receive("recvBytesInto()", options, Infinity, true) as Uint8Array);
  }

  /**
   * The blocking twin of {@linkcode Connection.recvBytesInto}.
   *
   * @param buffer Where to write (see {@linkcode Connection.recvBytesInto}).
   * @param offset Byte offset into `buffer`.
   * @param options `timeout` (ms); `signal` is checked before waiting.
   * @returns The message's length in bytes.
   * @throws {BufferTooShort} when the message does not fit (it is in the error's `data`).
   * @throws {TypeError} / {RangeError} for a bad `buffer` or `offset`, before anything is received.
   * @throws {ClosedError} / {TimeoutError} as {@linkcode Connection.recvSync}.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * a.sendBytes(new Uint8Array([1, 2, 3]));
   * const buf = new ArrayBuffer(8);
   * assert.equal(b.recvBytesIntoSync(buf), 3);
   * assert.deepEqual(new Uint8Array(buf, 0, 3), new Uint8Array([1, 2, 3]));
   * a.close();
   * b.close();
   * ```
   */
  recvBytesIntoSync(buffer: ArrayBufferLike | ArrayBufferView, offset = 0, options: RecvOptions = {}): number {
    const target = bytesTarget(buffer, offset, "Connection.recvBytesIntoSync()");
    return copyInto(target, this.#receiveSync("recvBytesIntoSync()", options, Infinity, true) as Uint8Array);
  }

  #take(channel: SpscChannel, maxLength: number, bytes: boolean): unknown {
    return bytes ? channel.recvBytes(maxLength) : channel.recv();
  }

  #receiveSync(what: string, options: RecvOptions, maxLength: number, bytes: boolean): unknown {
    const { ms, signal } = checkRecvOptions(options, `Connection.${what}`);
    const channel = this.#reader(what);
    if (signal?.aborted) throw signal.reason;
    let got = this.#take(channel, maxLength, bytes);
    if (got === EOF) throw eofError();
    if (got !== NONE) return got;
    assertCanBlock(`Connection.${what}`);
    const deadline = ms === Infinity ? Infinity : now() + ms;
    for (;;) {
      got = this.#arrived(channel, maxLength, bytes);
      if (got !== NONE) return got;
      const left = deadline - now();
      if (left <= 0) throw timeoutError(`Connection.${what}`, ms);
      channel.waitSync(Math.min(left, SLICE));
    }
  }

  /** After a wait: the next message, `NONE`, or throws at the end of the stream. */
  #arrived(channel: SpscChannel, maxLength: number, bytes: boolean): unknown {
    let got = this.#take(channel, maxLength, bytes);
    if (got === NONE && this.#peerGone()) {
      // Whatever the other end sent before it closed or died is published
      // by now: take it, or report the end.
      got = this.#take(channel, maxLength, bytes);
      if (got === NONE) throw eofError();
    }
    if (got === EOF) throw eofError();
    return got;
  }

  #receive(what: string, options: RecvOptions, maxLength: number, bytes: boolean): Promise<unknown> {
    let ms: number;
    let signal: AbortSignal | undefined;
    let channel: SpscChannel;
    try {
      ({ ms, signal } = checkRecvOptions(options, `Connection.${what}`));
      channel = this.#reader(what);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#pending === 0) {
      let got: unknown;
      try {
        got = this.#take(channel, maxLength, bytes);
      } catch (error) {
        return Promise.reject(error);
      }
      if (got === EOF) return Promise.reject(eofError());
      if (got !== NONE) return Promise.resolve(got);
    }
    const deadline = ms === Infinity ? Infinity : now() + ms;
    this.#pending++;
    const run = this.#tail.then(() => this.#receiveAsync(what, channel, deadline, ms, signal, maxLength, bytes));
    const done = () => {
      this.#pending--;
    };
    this.#tail = run.then(done, done);
    return run;
  }

  async #receiveAsync(
    what: string,
    channel: SpscChannel,
    deadline: number,
    ms: number,
    signal: AbortSignal | undefined,
    maxLength: number,
    bytes: boolean,
  ): Promise<unknown> {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      this.#assertOpen(what);
      const got = this.#arrived(channel, maxLength, bytes);
      if (got !== NONE) return got;
      const left = deadline - now();
      if (left <= 0) throw timeoutError(`Connection.${what}`, ms);
      await channel.wait(Math.min(left, SLICE), signal);
    }
  }

  /**
   * Whether a message (or the end of the stream) is waiting, waiting up to
   * `timeout` ms for one. Python's `poll`; `null` waits without limit, as
   * Python's `poll(None)`.
   *
   * @param timeout Milliseconds. @default {0}
   * @returns A Promise of `true` when `recv` would not wait (a message, or
   *   the other end closed); rejects on a closed or write-only end and with
   *   `RangeError` for a bad `timeout`.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * assert.equal(await b.poll(), false);
   * a.send(1);
   * assert.equal(await b.poll(100), true);
   * a.close();
   * b.close();
   * ```
   */
  poll(timeout: number | null = 0): Promise<boolean> {
    let channel: SpscChannel;
    let ms: number;
    try {
      ms = checkPollTimeout(timeout, "Connection.poll()");
      channel = this.#reader("poll()");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#readyOrEnded(channel)) return Promise.resolve(true);
    if (ms === 0) return Promise.resolve(false);
    return this.#pollAsync(channel, ms === Infinity ? Infinity : now() + ms);
  }

  async #pollAsync(channel: SpscChannel, deadline: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      const left = deadline - now();
      if (left <= 0) return false;
      await channel.wait(Math.min(left, SLICE), signal);
      this.#assertOpen("poll()");
      if (this.#readyOrEnded(channel)) return true;
    }
  }

  /**
   * The blocking twin of {@linkcode Connection.poll}.
   *
   * @param timeout Milliseconds, or `null` for no limit. @default {0}
   * @returns `true` when `recvSync` would not wait.
   * @throws {RangeError} for a bad `timeout`.
   * @throws {ClosedError} on a closed end; {Error} on a write-only end.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * assert.equal(b.pollSync(5), false);
   * a.close();
   * assert.equal(b.pollSync(), true); // recvSync() would throw ClosedError at once
   * b.close();
   * ```
   */
  pollSync(timeout: number | null = 0): boolean {
    const ms = checkPollTimeout(timeout, "Connection.pollSync()");
    const channel = this.#reader("pollSync()");
    if (this.#readyOrEnded(channel)) return true;
    if (ms === 0) return false;
    assertCanBlock("Connection.pollSync()");
    const deadline = ms === Infinity ? Infinity : now() + ms;
    for (;;) {
      const left = deadline - now();
      if (left <= 0) return false;
      channel.waitSync(Math.min(left, SLICE));
      if (this.#readyOrEnded(channel)) return true;
    }
  }

  #readyOrEnded(channel: SpscChannel): boolean {
    return channel.ready() || this.#peerGone();
  }

  /**
   * Closes this end, for every holder: the other end receives what was
   * sent before, then `ClosedError`; sending to this end throws
   * `ClosedError`. Idempotent; a no-op on an end moved to another thread.
   *
   * @example
   * ```ts
   * import { ClosedError, Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * b.close();
   * assert.throws(() => a.send("anyone?"), ClosedError);
   * assert.throws(() => b.recvSync(), ClosedError);
   * a.close();
   * ```
   */
  close(): void {
    if (this.#closed || this.#moved) return;
    this.#closed = true;
    this.#out?.end();
    Atomics.store(this.#state, CLOSED + this.#end, 1);
    // Wake this end's own parked receives so they see the close.
    this.#in?.wakeConsumers();
    // Ends inside messages never to be received here are closed too.
    if (this.#in) readerClosed();
  }

  /**
   * Receives messages until the other end is closed and drained.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe<number>();
   * for (const n of [1, 2, 3]) a.send(n);
   * a.close();
   * const got: number[] = [];
   * for await (const n of b) got.push(n);
   * assert.deepEqual(got, [1, 2, 3]);
   * b.close();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      let value: T;
      try {
        value = await this.recv();
      } catch (error) {
        if (error instanceof ClosedError) return;
        throw error;
      }
      yield value;
    }
  }

  /**
   * Closes this end when leaving a `using` scope.
   *
   * @example
   * ```ts
   * import { Pipe } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const [a, b] = Pipe();
   * {
   *   using end = a;
   *   end.send(1);
   * }
   * assert.equal(a.closed, true);
   * b.close();
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A pair of connected {@linkcode Connection}s: Python's
 * `multiprocessing.Pipe`. With `duplex` (the default) both ends send and
 * receive; with `duplex = false` the first end only receives and the second
 * only sends (`const [r, w] = Pipe(false)`).
 *
 * @param duplex Whether both ends send and receive. @default {true}
 * @returns The two ends.
 *
 * @example A one-way pipe
 * ```ts
 * import { Pipe } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [r, w] = Pipe<string>(false);
 * w.send("one way");
 * assert.equal(r.recvSync(), "one way");
 * assert.throws(() => r.send("back"), /read-only/);
 * r.close();
 * w.close();
 * ```
 */
export function Pipe<T = unknown>(duplex: boolean = true): [Connection<T>, Connection<T>] {
  const state = new SharedArrayBuffer(STATE_INTS * 4);
  const cells = new Int32Array(state);
  cells[OWNER] = cells[OWNER + 1] = selfIdent();
  const toFirst = SpscChannel.create();
  if (!duplex) {
    return [
      make({ state, end: 0, incoming: toFirst }) as Connection<T>,
      make({ state, end: 1, outgoing: toFirst }) as Connection<T>,
    ];
  }
  const toSecond = SpscChannel.create();
  return [
    make({ state, end: 0, incoming: toFirst, outgoing: toSecond }) as Connection<T>,
    make({ state, end: 1, incoming: toSecond, outgoing: toFirst }) as Connection<T>,
  ];
}

/** The bytes of `buffer` from `offset` on, checked (nothing is received before). */
function bytesTarget(buffer: unknown, offset: unknown, what: string): Uint8Array {
  let bytes: Uint8Array;
  if (buffer instanceof ArrayBuffer || buffer instanceof SharedArrayBuffer) bytes = new Uint8Array(buffer);
  else if (ArrayBuffer.isView(buffer)) bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  else {
    throw new TypeError(
      `Cannot call ${what} as 'buffer' must be an ArrayBuffer, a SharedArrayBuffer or a view over one: current value is ${
        show(buffer)
      }`,
    );
  }
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
    throw new RangeError(
      `Cannot call ${what} as 'offset' must be an integer from 0 to the buffer's ${bytes.length} bytes: current value is ${
        show(offset)
      }`,
    );
  }
  return bytes.subarray(offset);
}

/** Copies a received message into `target`: its length, or `BufferTooShort` when it does not fit. */
function copyInto(target: Uint8Array, message: Uint8Array): number {
  if (message.length > target.length) {
    throw new BufferTooShort(
      message,
      `Cannot receive into the buffer: the message is ${message.length} bytes, the buffer has ${target.length} after the offset`,
    );
  }
  target.set(message);
  return message.length;
}

// ## connection.wait

/** What {@linkcode connection.wait} watches: a pipe end (ready to read) or a thread (ready once ended). */
export type Waitable = Connection<unknown> | Thread<never[]>;

/** Checks the list and the timeout of a wait; `null` or omitted waits without limit. */
function waitList(objects: unknown, timeout: unknown, what: string): { list: Waitable[]; ms: number } {
  if (!Array.isArray(objects)) {
    throw new TypeError(`Cannot call ${what} as 'objects' must be an array: current value is ${show(objects)}`);
  }
  objects.forEach((o, i) => {
    if (o instanceof Connection) return;
    if (isThread(o)) {
      if (o.ident === null) throw new Error(`Cannot call ${what}: objects[${i}] is a Thread that was never started`);
      return;
    }
    throw new TypeError(
      `Cannot call ${what} as objects[${i}] must be a Connection or a Thread: current value is ${show(o)}`,
    );
  });
  const ms = timeout === null || timeout === undefined ? Infinity : checkTimeout(timeout as number, what);
  return { list: objects as Waitable[], ms };
}

/** A `Thread`, recognised without importing thread.ts (which would load it into every pipe user). */
function isThread(o: unknown): o is Thread<never[]> {
  return typeof o === "object" && o !== null && typeof (o as Thread).isAlive === "function" &&
    typeof (o as Thread).join === "function" && "ident" in o && "exitCode" in o;
}

function readyOnes(list: Waitable[], what: string): Waitable[] {
  return list.filter((o) => o instanceof Connection ? readable(o, what) : !o.isAlive());
}

/**
 * Python's `multiprocessing.connection`: {@linkcode connection.wait} over
 * several pipe ends and threads at once.
 *
 * @example A server over several pipes
 * ```ts
 * import { connection, Pipe } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const [a1, b1] = Pipe();
 * const [a2, b2] = Pipe();
 * setTimeout(() => a2.send("two"), 10);
 * const ready = await connection.wait([b1, b2], 5000);
 * assert.deepEqual(ready, [b2]);
 * assert.equal(await b2.recv(), "two");
 * for (const c of [a1, b1, a2, b2]) c.close();
 * ```
 */
export const connection: {
  /**
   * Waits until at least one of `objects` is ready, or `timeout` ms pass:
   * a `Connection` is ready when `recv` would not wait (a message, or the
   * other end closed), a `Thread` once it has ended (Python's sentinel).
   * Python's `multiprocessing.connection.wait`.
   *
   * @param objects Pipe ends (readable) and started threads.
   * @param timeout Milliseconds; `null` or omitted waits without limit.
   * @returns A Promise of the ready objects, in the order given (empty
   *   when `timeout` passed); rejects with `TypeError` for a list that
   *   holds anything else, `Error` for a thread never started or an end
   *   that is closed or write-only, `RangeError` for a bad `timeout`.
   */
  wait(objects: Waitable[], timeout?: number | null): Promise<Waitable[]>;
  /**
   * The blocking twin of {@linkcode connection.wait} (not on a browser's
   * main thread). It cannot park on several objects at once: it checks
   * them, then sleeps in slices that grow from 0.05 to 10 ms, so it may
   * see a change up to 10 ms late.
   *
   * @param objects Pipe ends (readable) and started threads.
   * @param timeout Milliseconds; `null` or omitted waits without limit.
   * @returns The ready objects, in the order given (empty when `timeout` passed).
   */
  waitSync(objects: Waitable[], timeout?: number | null): Waitable[];
} = {
  async wait(objects, timeout) {
    const what = "connection.wait()";
    const { list, ms } = waitList(objects, timeout, what);
    let ready = readyOnes(list, what);
    if (ready.length > 0 || ms === 0) return ready;
    const end = now() + ms;
    for (;;) {
      // One wait per object; the first to end stops the others.
      const left = end - now();
      const controller = new AbortController();
      const waits = list.map((o) =>
        o instanceof Connection
          ? untilReadable(o, left, controller.signal, "wait()")
          : o.join({ timeout: left === Infinity ? undefined : left, signal: controller.signal })
      );
      try {
        await Promise.race(waits.map((p) => p.catch(() => {})));
      } finally {
        controller.abort();
        await Promise.allSettled(waits);
      }
      ready = readyOnes(list, what);
      if (ready.length > 0 || now() >= end) return ready;
    }
  },

  waitSync(objects, timeout) {
    const what = "connection.waitSync()";
    const { list, ms } = waitList(objects, timeout, what);
    const end = now() + ms;
    let slice = 0.05;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      const ready = readyOnes(list, what);
      const left = end - now();
      if (ready.length > 0 || left <= 0) return ready;
      assertCanBlock(what);
      Atomics.wait(nap, 0, 0, Math.min(left, slice));
      slice = Math.min(10, slice * 2);
    }
  },
};
