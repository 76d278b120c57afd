// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A single-producer single-consumer message channel in one growable
 * `SharedArrayBuffer`: the transport under `Connection` (and free for any
 * module that needs a one-way, one-writer, one-reader stream of messages).
 *
 * ## API
 *
 * - `SpscChannel.create(capacity?)` → the channel's {@linkcode SpscMemory};
 *   send it to the other thread (in a handle's serialized data) and wrap it
 *   on both sides with `new SpscChannel(memory)`. Each wrapper is used as the producer *or*
 *   the consumer, by one thread at a time; a side may move to another thread
 *   (its ring position lives in the header, see below), as long as the old
 *   wrapper is no longer used.
 * - Producer: `send(value, path, hook?)` (never waits: the buffer grows),
 *   `sendBytes(bytes)`, `end()` (an end-of-stream mark after everything
 *   sent; idempotent).
 * - Consumer: `ready()` (a message or the end mark is waiting), `ended()`
 *   (the end mark is next), `recv()` / `recvBytes(maxLength?)` (take the next
 *   message, or return {@linkcode NONE} when there is none and {@linkcode EOF}
 *   at the end mark, which is never consumed), `waitSync(timeout)` /
 *   `wait(timeout, signal?)` (one wait for the producer: `waitSync` first
 *   watches for an adaptive while (a `Watch` of `_wait.ts`), then both
 *   wait with `_wait.ts`, spin then park; they may return early, so the
 *   caller loops and re-checks its own conditions, such as the producer's
 *   thread having died), `wakeConsumers()` (wake this side's parked waits,
 *   e.g. when the caller closes its end).
 * - Limits: a channel's data buffer grows to at most {@linkcode MAX_BYTES}
 *   (1 GiB, reserved as address space only); a single message up to ~512 MiB.
 *
 * ## Layout
 *
 * Two buffers: the header words below, in a `SharedArrayBuffer` of their own
 * ({@linkcode HEADER_BYTES} bytes), and the rings, in a growable one. Bun
 * (JavaScriptCore) makes every access through a view of a growable buffer
 * slower, even a fixed-length view (measured: an `Atomics` operation 17 ns
 * against 6 ns), and every message touches the header words.
 *
 * | byte offset | index (Int32) | written by | Atomics op | meaning |
 * |-------------|---------------|------------|------------|---------|
 * | 0           | `W`           | producer   | `store`, then `notify` if `R_WAIT` > 0 | bytes published (u32, wraps); the consumer's futex word |
 * | 4           | `W_BASE`      | producer   | `store` on a jump | byte offset of the producer's ring |
 * | 8           | `W_LOG2`      | producer   | `store` on a jump | log2 of the producer's ring capacity |
 * | 12          | `W_START`     | producer   | `store` on a jump | value of `W` at the producer's ring start |
 * | 256         | `R`           | consumer   | `store` | bytes released (u32, wraps) |
 * | 260–268     | `R_BASE`, `R_LOG2`, `R_START` | consumer | `store` on a jump | the consumer's ring, as for the producer |
 * | 512         | `R_WAIT`      | consumer   | `add`/`sub` around a park | how many consumer waits may be parked |
 * | data 0      | —             | producer   | plain writes, published by `W` | the first ring (`capacity` bytes), in the data buffer |
 *
 * `W`, `R` and `R_WAIT` sit 256 bytes apart, so that the two sides do not
 * invalidate each other's line more than the hand-off needs: a plain
 * `SharedArrayBuffer` is only 8- or 16-byte aligned, so words 64 bytes apart
 * may share a line (measured on Deno, one-way small messages: medians of six
 * processes 1.4 M/s with 64 bytes apart, 1.9 M/s with 256).
 *
 * ## Frames
 *
 * A ring holds records framed as `_record.ts` lays them out (`[kind][length][payload, padded to 8]`),
 * never split by the ring's end. Kinds carry values (`Kind.STRUCTURED` /
 * `Kind.PLAIN` from the codec; `NUMBER`, `STRING`, `TRUE`, … are fast forms
 * of primitives, since a codec call costs ~0.3 µs on either side and a round
 * trip is worth ~1 µs), raw `BYTES`, and three marks:
 * - `WRAP`: the rest of the ring is unused, continue at its start.
 * - `JUMP`: continue in a new, larger ring at byte `length` with capacity
 *   `2 ** (kind >>> 8)`. The producer grows the buffer (`grow()` is seen by
 *   every thread) rather than wait when the next frame does not fit; the old
 *   ring is left behind, so the buffer grows by at most a factor of ~2 over
 *   the largest backlog.
 * - `EOF`: nothing follows.
 *
 * ## Why it is correct
 *
 * The producer writes frames with plain stores, then publishes them with
 * `Atomics.store(W)`; the consumer reads `W` with `Atomics.load` before it
 * reads the frames (sequentially consistent atomics order the plain accesses
 * around them). Symmetrically the consumer publishes space with
 * `Atomics.store(R)` after it has copied a frame out. Free space is
 * `capacity - (W - max(R, W_START))`, and the producer always keeps 8 bytes
 * free so that a `JUMP` or `EOF` mark fits. Waking: a consumer that parks
 * first adds to `R_WAIT`, then waits on `W`; the producer stores `W`, then
 * reads `R_WAIT` and notifies when it is non-zero. Either the producer sees
 * the waiter, or the waiter's compare sees the new `W` (Dekker's pattern
 * under sequential consistency), so no wake-up is lost, and a producer
 * facing no waiter pays no `notify`.
 *
 * Views are fixed-length (`new Uint8Array(buffer, base, capacity)`): V8
 * accesses length-tracking views of growable buffers ~20× slower.
 *
 * @module
 */

import {
  copyBytes,
  copyShared,
  decodeShared,
  encodeTo,
  encodeWith,
  type ObjectHook,
  PLAIN,
  STRUCTURED,
} from "./_codec.ts";
import { Kind, KIND_WORD, LENGTH_WORD, RECORD_HEADER, recordBytes } from "./_record.ts";
import { now, waitAsync, waitSync, Watch } from "./_wait.ts";

/** Int32 index of the producer's published byte count. */
const W = 0;
const W_BASE = 1;
const W_LOG2 = 2;
const W_START = 3;
/** Int32 index of the consumer's released byte count. */
const R = 64;
const R_BASE = R + 1;
const R_LOG2 = R + 2;
const R_START = R + 3;
/** Int32 index of the count of parked consumer waits. */
const R_WAIT = 128;
/** Bytes of a channel's header buffer. */
const HEADER_BYTES = (R_WAIT + 1) * 4;
/** What `#peek` returns when no frame is waiting. */
const NO_FRAME = -1;
/** Strings up to this many UTF-16 units travel as raw units, longer ones through the codec. */
const SHORT_STRING = 256;
/** The first ring's default capacity (bytes). */
const DEFAULT_CAPACITY = 1 << 16;
/** The largest ring (it must also fit in {@linkcode MAX_BYTES}). */
const MAX_LOG2 = 29;
/**
 * How far a channel's buffer may grow. Only address space is reserved up
 * front, but it is finite (~128 TiB): at 1 GiB a program can hold ~60 000
 * channels at once.
 */
const MAX_BYTES = 2 ** 30;

/** Returned by the consumer's `recv` when no message is waiting. */
export const NONE: unique symbol = Symbol("mpjs.spsc.none");
/** Returned by the consumer's `recv` at the end-of-stream mark. */
export const EOF: unique symbol = Symbol("mpjs.spsc.eof");

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

/** A view set over one ring. */
class Ring {
  readonly base: number;
  readonly cap: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  constructor(buffer: SharedArrayBuffer, base: number, cap: number) {
    this.base = base;
    this.cap = cap;
    this.u8 = new Uint8Array(buffer, base, cap);
    this.u16 = new Uint16Array(buffer, base, cap >>> 1);
    this.i32 = new Int32Array(buffer, base, cap >>> 2);
    this.f64 = new Float64Array(buffer, base, cap >>> 3);
  }
}

/** A channel's shared memory: send it to the other thread and wrap it with `new SpscChannel(memory)`. */
export interface SpscMemory {
  /** The header words ({@linkcode HEADER_BYTES} bytes). */
  header: SharedArrayBuffer;
  /** The rings (growable). */
  data: SharedArrayBuffer;
}

/**
 * One side's view of a single-producer single-consumer channel; see the
 * module documentation for the layout and protocol.
 */
export class SpscChannel {
  /** The channel's shared memory. */
  readonly memory: SpscMemory;
  #data: SharedArrayBuffer;
  #h: Int32Array;
  // Producer state (valid on the producer side).
  #w = 0;
  #wStart = 0;
  #wRing: Ring | undefined;
  #rSeen = 0;
  #ended = false;
  // Consumer state (valid on the consumer side).
  #r = 0;
  #rStart = 0;
  #rRing: Ring | undefined;
  #wSeen = 0;
  /** The consumer's watch before it parks (`_wait.ts`). */
  #watch = new Watch();
  /** Payload offset (in the consumer's ring) and length of the frame at `#r`, set by `#peek`. */
  #off = 0;
  #len = 0;

  /**
   * A new channel's memory.
   *
   * @param capacity Bytes in the first ring, a power of two ≥ 64.
   */
  static create(capacity: number = DEFAULT_CAPACITY): SpscMemory {
    if (!Number.isInteger(capacity) || capacity < 64 || capacity > 2 ** MAX_LOG2 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(
        `Cannot create a channel as 'capacity' must be a power of two from 64 to 2**29: current value is ${capacity}`,
      );
    }
    const memory: SpscMemory = {
      header: new SharedArrayBuffer(HEADER_BYTES),
      data: new SharedArrayBuffer(capacity, { maxByteLength: MAX_BYTES }),
    };
    const h = new Int32Array(memory.header);
    h[W_BASE] = h[R_BASE] = 0;
    h[W_LOG2] = h[R_LOG2] = log2(capacity);
    return memory;
  }

  /** Wraps memory made by {@linkcode SpscChannel.create}, on either side. */
  constructor(memory: SpscMemory) {
    this.memory = memory;
    this.#data = memory.data;
    this.#h = new Int32Array(memory.header);
  }

  // --- producer ------------------------------------------------------------

  #producerRing(): Ring {
    if (!this.#wRing) {
      const h = this.#h;
      this.#w = Atomics.load(h, W) >>> 0;
      this.#wStart = Atomics.load(h, W_START) >>> 0;
      this.#rSeen = Atomics.load(h, R) >>> 0;
      this.#wRing = new Ring(this.#data, Atomics.load(h, W_BASE) >>> 0, 1 << Atomics.load(h, W_LOG2));
    }
    return this.#wRing;
  }

  /** Bytes of the producer's ring in use, by the consumer's last published position seen. */
  #used(): number {
    const r = ((this.#rSeen - this.#wStart) | 0) >= 0 ? this.#rSeen : this.#wStart;
    return (this.#w - r) >>> 0;
  }

  /**
   * Makes room for a frame of `kind` with a `length`-byte payload and writes
   * its header; returns the payload's byte offset in the (possibly new)
   * producer ring. Nothing is published until {@linkcode #publish}.
   */
  #reserve(kind: number, length: number): number {
    let ring = this.#producerRing();
    const n = recordBytes(length);
    let pos = (this.#w - this.#wStart) & (ring.cap - 1);
    let skip = ring.cap - pos < n ? ring.cap - pos : 0;
    if (this.#used() + skip + n + RECORD_HEADER > ring.cap) {
      this.#rSeen = Atomics.load(this.#h, R) >>> 0;
      if (this.#used() + skip + n + RECORD_HEADER > ring.cap) {
        ring = this.#jump(ring, pos, n);
        pos = 0;
        skip = 0;
      }
    }
    if (skip) {
      ring.i32[pos >>> 2] = Kind.WRAP;
      this.#w = (this.#w + skip) >>> 0;
      pos = 0;
    }
    ring.i32[(pos >>> 2) + KIND_WORD] = kind;
    ring.i32[(pos >>> 2) + LENGTH_WORD] = length;
    this.#w = (this.#w + n) >>> 0;
    return pos + RECORD_HEADER;
  }

  /**
   * Grows the buffer, leaves a `JUMP` mark at `pos` and moves to a new ring
   * holding the `n`-byte frame: twice the old ring, or just big enough when
   * twice does not fit in what is left of the address range.
   */
  #jump(old: Ring, pos: number, n: number): Ring {
    const base = (this.#data.byteLength + 63) & ~63;
    let least = 6;
    while (2 ** least < n + RECORD_HEADER) least++;
    let lg = Math.max(least, log2(old.cap) + 1);
    if (lg > MAX_LOG2 || base + 2 ** lg > MAX_BYTES) lg = least;
    if (lg > MAX_LOG2 || base + 2 ** lg > MAX_BYTES) {
      throw new RangeError(
        `Cannot send a message of ${n - RECORD_HEADER} bytes: the channel's buffer cannot grow to hold it (at most ${
          MAX_BYTES / 2 ** 20
        } MiB in all, ${(base / 2 ** 20).toFixed(0)} MiB used)`,
      );
    }
    const cap = 2 ** lg;
    this.#data.grow(base + cap);
    old.i32[pos >>> 2] = Kind.JUMP | (lg << 8);
    old.i32[(pos >>> 2) + 1] = base | 0;
    this.#w = (this.#w + RECORD_HEADER) >>> 0;
    this.#wStart = this.#w;
    const h = this.#h;
    Atomics.store(h, W_BASE, base | 0);
    Atomics.store(h, W_LOG2, lg);
    Atomics.store(h, W_START, this.#wStart | 0);
    const ring = new Ring(this.#data, base, cap);
    this.#wRing = ring;
    return ring;
  }

  #publish(): void {
    const h = this.#h;
    Atomics.store(h, W, this.#w | 0);
    if (Atomics.load(h, R_WAIT) !== 0) Atomics.notify(h, W);
  }

  #assertOpen(): void {
    if (this.#ended) throw new Error("Cannot send on a channel after its end mark");
  }

  /**
   * Sends a value: primitives in their fast forms, anything else encoded by
   * the codec. Never waits.
   *
   * @param path How to name the value in errors.
   * @param hook Passed to the codec (e.g. `shareHandles`).
   * @throws {TypeError} when the value cannot be encoded; nothing is sent.
   * @throws {RangeError} when the message is too large for any buffer.
   */
  send(value: unknown, path: string, hook?: ObjectHook): void {
    this.#assertOpen();
    switch (typeof value) {
      case "number": {
        const off = this.#reserve(Kind.NUMBER, 8);
        this.#wRing!.f64[off >>> 3] = value;
        break;
      }
      case "string": {
        const len = value.length;
        if (len > SHORT_STRING) {
          this.#sendEncoded(value, path, hook);
          return;
        }
        const off = this.#reserve(Kind.STRING, len * 2);
        const u16 = this.#wRing!.u16;
        const at = off >>> 1;
        for (let i = 0; i < len; i++) u16[at + i] = value.charCodeAt(i);
        break;
      }
      case "boolean":
        this.#reserve(value ? Kind.TRUE : Kind.FALSE, 0);
        break;
      case "undefined":
        this.#reserve(Kind.UNDEFINED, 0);
        break;
      default:
        if (value === null) {
          this.#reserve(Kind.NULL, 0);
          break;
        }
        this.#sendEncoded(value, path, hook);
        return;
    }
    this.#publish();
  }

  #sendEncoded(value: unknown, path: string, hook?: ObjectHook): void {
    encodeTo(value, path, (bytes, start, end, format) => {
      const off = this.#reserve(format === PLAIN ? Kind.PLAIN : Kind.STRUCTURED, end - start);
      this.#wRing!.u8.set(bytes.subarray(start, end), off);
    }, hook);
    this.#publish();
  }

  /** Sends raw bytes, copied once into the ring. Never waits. */
  sendBytes(bytes: Uint8Array): void {
    this.#assertOpen();
    const off = this.#reserve(Kind.BYTES, bytes.length);
    this.#wRing!.u8.set(bytes, off);
    this.#publish();
  }

  /** Puts the end-of-stream mark after everything sent. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#reserve(Kind.EOF, 0);
    this.#ended = true;
    this.#publish();
  }

  // --- consumer ------------------------------------------------------------

  #consumerRing(): Ring {
    if (!this.#rRing) {
      const h = this.#h;
      this.#r = this.#wSeen = Atomics.load(h, R) >>> 0;
      this.#rStart = Atomics.load(h, R_START) >>> 0;
      this.#rRing = new Ring(this.#data, Atomics.load(h, R_BASE) >>> 0, 1 << Atomics.load(h, R_LOG2));
    }
    return this.#rRing;
  }

  /**
   * The kind of the frame at the consumer's position (following `WRAP` and
   * `JUMP` marks), with its payload's place in `#off`/`#len`; `NO_FRAME` if none.
   */
  #peek(): number {
    let ring = this.#consumerRing();
    if (this.#r === this.#wSeen) {
      this.#wSeen = Atomics.load(this.#h, W) >>> 0;
      if (this.#r === this.#wSeen) return NO_FRAME;
    }
    for (;;) {
      const pos = (this.#r - this.#rStart) & (ring.cap - 1);
      const word = ring.i32[(pos >>> 2) + KIND_WORD];
      const kind = word & 0xff;
      if (kind === Kind.WRAP) {
        this.#r = (this.#r + ring.cap - pos) >>> 0;
        continue;
      }
      if (kind === Kind.JUMP) {
        const base = ring.i32[(pos >>> 2) + 1] >>> 0;
        const lg = word >>> 8;
        this.#r = (this.#r + RECORD_HEADER) >>> 0;
        this.#rStart = this.#r;
        ring = new Ring(this.#data, base, 2 ** lg);
        this.#rRing = ring;
        const h = this.#h;
        Atomics.store(h, R_BASE, base | 0);
        Atomics.store(h, R_LOG2, lg);
        Atomics.store(h, R_START, this.#rStart | 0);
        continue;
      }
      this.#off = pos + RECORD_HEADER;
      this.#len = ring.i32[(pos >>> 2) + LENGTH_WORD] >>> 0;
      return kind;
    }
  }

  /** Releases the frame at the consumer's position. */
  #consume(): void {
    this.#r = (this.#r + recordBytes(this.#len)) >>> 0;
    Atomics.store(this.#h, R, this.#r | 0);
  }

  /** Whether a message or the end mark is waiting. */
  ready(): boolean {
    this.#consumerRing();
    return this.#r !== this.#wSeen || (this.#wSeen = Atomics.load(this.#h, W) >>> 0) !== this.#r;
  }

  /** Whether the end mark is the next frame. */
  ended(): boolean {
    return this.#peek() === Kind.EOF;
  }

  /**
   * Takes the next message: its value (a `Uint8Array` for bytes messages),
   * {@linkcode NONE} when nothing is waiting, {@linkcode EOF} at the end mark.
   */
  recv(): unknown {
    const kind = this.#peek();
    if (kind === NO_FRAME) return NONE;
    if (kind === Kind.EOF) return EOF;
    const ring = this.#rRing!;
    const value = kind === Kind.BYTES
      ? this.#copyOut(ring)
      : kind === Kind.STRUCTURED || kind === Kind.PLAIN
      ? decodeShared(this.#data, ring.base + this.#off, this.#len, kind === Kind.STRUCTURED ? STRUCTURED : PLAIN)
      : this.#primitive(kind);
    this.#consume();
    return value;
  }

  /**
   * Takes the next message as bytes: raw for bytes messages, the encoded
   * form for values. {@linkcode NONE} / {@linkcode EOF} as for `recv`.
   *
   * @throws {Error} when it is longer than `maxLength`; it stays in the channel.
   */
  recvBytes(maxLength: number = Infinity): Uint8Array | typeof NONE | typeof EOF {
    const kind = this.#peek();
    if (kind === NO_FRAME) return NONE;
    if (kind === Kind.EOF) return EOF;
    const ring = this.#rRing!;
    const raw = kind === Kind.BYTES || kind === Kind.STRUCTURED;
    // A fast-form primitive or a plain-form value: hand out the structured
    // form the codec makes of it, so that every value reads back as one format.
    const encoded = raw ? undefined : encodeWith(
      kind === Kind.PLAIN ? decodeShared(this.#data, ring.base + this.#off, this.#len, PLAIN) : this.#primitive(kind),
      "value",
      (b) => copyBytes(b, 0, b.length),
    );
    const length = encoded ? encoded.length : this.#len;
    if (length > maxLength) {
      throw new Error(
        `Cannot receive the next message: it is ${length} bytes, longer than maxLength (${maxLength})`,
      );
    }
    const out = encoded ?? this.#copyOut(ring);
    this.#consume();
    return out;
  }

  /** A fresh copy of the payload at the consumer's position. */
  #copyOut(ring: Ring): Uint8Array {
    return copyShared(ring.u8.subarray(this.#off, this.#off + this.#len));
  }

  /** The value of the fast-form frame of `kind` at the consumer's position. */
  #primitive(kind: number): unknown {
    const ring = this.#rRing!;
    switch (kind) {
      case Kind.NUMBER:
        return ring.f64[this.#off >>> 3];
      case Kind.STRING: {
        const at = this.#off >>> 1;
        return String.fromCharCode.apply(null, ring.u16.subarray(at, at + (this.#len >>> 1)) as unknown as number[]);
      }
      case Kind.TRUE:
        return true;
      case Kind.FALSE:
        return false;
      case Kind.NULL:
        return null;
      default:
        return undefined;
    }
  }

  /** Wakes the consumer's parked waits, so that they re-check their own conditions. */
  wakeConsumers(): void {
    Atomics.notify(this.#h, W);
  }

  /**
   * One blocking wait for the producer: returns when something may have
   * been sent, after `timeout` ms, or on a spurious wake-up. Callers loop.
   */
  waitSync(timeout: number): void {
    const h = this.#h;
    this.#consumerRing();
    const seen = this.#r | 0;
    if (Atomics.load(h, W) !== seen) return;
    const t0 = now();
    if (this.#watch.watch(h, W, seen, timeout)) return;
    Atomics.add(h, R_WAIT, 1);
    try {
      waitSync(h, W, seen, Math.max(0, timeout - (now() - t0)));
    } finally {
      Atomics.sub(h, R_WAIT, 1);
    }
  }

  /**
   * The Promise twin of {@linkcode SpscChannel.waitSync}; rejects with the
   * signal's reason when `signal` aborts.
   */
  async wait(timeout: number, signal?: AbortSignal): Promise<void> {
    const h = this.#h;
    this.#consumerRing();
    const seen = this.#r | 0;
    if (Atomics.load(h, W) !== seen) return;
    Atomics.add(h, R_WAIT, 1);
    try {
      await waitAsync(h, W, seen, timeout, signal);
    } finally {
      Atomics.sub(h, R_WAIT, 1);
    }
  }
}
