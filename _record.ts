// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The record framing of the two shared-memory transports, `_ring.ts` (many
 * producers, many consumers: queues, the pool) and `_spsc.ts` (one producer,
 * one consumer: pipes), and the record kinds both use.
 *
 * ## Framing
 *
 * A record is 8-byte aligned: two int32 header words, then the payload,
 * padded to a multiple of 8 bytes.
 *
 * | byte | word          | meaning                                                        |
 * |------|---------------|----------------------------------------------------------------|
 * | 0    | `KIND_WORD`   | a {@linkcode Kind} (low 8 bits; marks may carry more above)    |
 * | 4    | `LENGTH_WORD` | payload bytes (u32); marks may use it for something else       |
 * | 8    | —             | payload, then padding to {@linkcode recordBytes}`(length)`     |
 *
 * The header never straddles the end of a transport's area (areas are
 * multiples of 8 bytes); a transport may let a payload wrap (`_ring.ts`) or
 * keep it whole (`_spsc.ts`).
 *
 * ## Items
 *
 * {@linkcode writeItem} / {@linkcode readItem} turn a queue item into a
 * record and back: the codec's two formats are the kinds `STRUCTURED` and
 * `PLAIN` (so a codec format is a record kind as it is), large binary values
 * skip the codec and are copied as they are.
 *
 * @module
 */

import { decodeReused, encodeTo, type Format, PLAIN, STRUCTURED, VIEW_CLASSES, type ViewClass } from "./_codec.ts";
import { shareHandles } from "./_post.ts";

/** Bytes of a record header. */
export const RECORD_HEADER = 8;
/** Int32 index, within a record, of its kind. */
export const KIND_WORD = 0;
/** Int32 index, within a record, of its payload length. */
export const LENGTH_WORD = 1;

/** Bytes of an 8-aligned record holding `length` payload bytes. */
export function recordBytes(length: number): number {
  return (RECORD_HEADER + length + 7) & ~7;
}

/**
 * Record kinds, one numbering for both transports. Kinds fit in 8 bits; a
 * `JUMP` mark carries more above them.
 */
export const Kind = {
  /** Bytes made by the codec's structured-clone encoder (its `STRUCTURED` format). */
  STRUCTURED: STRUCTURED as 0,
  /** Bytes made by the codec's plain-tree encoder (its `PLAIN` format). */
  PLAIN: PLAIN as 1,
  /** An `ArrayBuffer` copied as it is; typed arrays and `DataView` follow, in `VIEW_CLASSES` order. */
  ARRAY_BUFFER: 2,
  /** Raw bytes (`Connection.sendBytes`). */
  BYTES: 32,
  /** A number, as a float64. */
  NUMBER: 33,
  /** A short string, as UTF-16 code units. */
  STRING: 34,
  UNDEFINED: 35,
  NULL: 36,
  TRUE: 37,
  FALSE: 38,
  /** Mark: the rest of the area is unused, go on at its start. */
  WRAP: 0x40,
  /** Mark: go on in another area (see `_spsc.ts`). */
  JUMP: 0x41,
  /** Mark: the end of the stream. */
  EOF: 0x42,
  /**
   * Flag on a codec kind: the payload ends with a list of the moved handles
   * (`Connection` ends) inside the item, which its taker claims before it
   * lets go of the queue (see {@linkcode movedIds}).
   */
  MOVES: 0x80,
} as const;

/** Binary values at least this large skip the codec and are copied as they are. */
const RAW_MIN = 4096;

/** The raw record kind for a large binary value, or `Kind.STRUCTURED` (encode it). */
function rawKind(value: unknown): number {
  if (typeof value !== "object" || value === null) return Kind.STRUCTURED;
  if (value instanceof ArrayBuffer) return value.byteLength >= RAW_MIN ? Kind.ARRAY_BUFFER : Kind.STRUCTURED;
  if (!ArrayBuffer.isView(value) || !(value.buffer instanceof ArrayBuffer) || value.byteLength < RAW_MIN) {
    return Kind.STRUCTURED;
  }
  const k = VIEW_CLASSES.indexOf((value as object).constructor as ViewClass);
  return k < 0 ? Kind.STRUCTURED : Kind.ARRAY_BUFFER + 1 + k;
}

/**
 * Encodes `value` and hands the record's payload (`bytes[start..end)`) and
 * kind to `write` (the bytes are valid only during the call). Large
 * `ArrayBuffer`s and typed arrays are copied as they are, without the
 * codec: one copy in, one copy out. Handles inside are shared through the
 * post office (`_post.ts`).
 *
 * @throws {TypeError} when `value` cannot be sent (nothing is written).
 */
export function writeItem<R>(
  value: unknown,
  write: (bytes: Uint8Array, start: number, end: number, kind: number) => R,
): R {
  const kind = rawKind(value);
  if (kind === Kind.ARRAY_BUFFER) {
    return write(new Uint8Array(value as ArrayBuffer), 0, (value as ArrayBuffer).byteLength, kind);
  }
  if (kind !== Kind.STRUCTURED) {
    const v = value as ArrayBufferView;
    return write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 0, v.byteLength, kind);
  }
  return encodeTo(value, "item", write, shareHandles);
}

/**
 * The payload `bytes[start..end)` of a record, with the moved-handle
 * ids `ids` listed after it (kind flag `MOVES`): `[payload][padding to
 * 4][ids, int32 each][count][payload length]`. For the write callback of
 * {@linkcode writeItem} when the item held such handles
 * (`heldOwnedIds()` of `_post.ts`).
 */
export function withMovedIds(bytes: Uint8Array, start: number, end: number, ids: number[]): Uint8Array {
  const at = (end - start + 3) & ~3;
  const out = new Uint8Array(at + 4 * (ids.length + 2));
  out.set(bytes.subarray(start, end));
  const words = new DataView(out.buffer);
  for (let k = 0; k < ids.length; k++) words.setInt32(at + 4 * k, ids[k], true);
  words.setInt32(out.length - 8, ids.length, true);
  words.setInt32(out.length - 4, end - start, true);
  return out;
}

/**
 * The moved-handle ids listed at the end of a payload of a kind flagged
 * `MOVES` (the first `length` bytes of `bytes`).
 */
export function movedIds(bytes: Uint8Array, length: number): number[] {
  const words = new DataView(bytes.buffer, bytes.byteOffset, length);
  const n = words.getInt32(length - 8, true);
  const at = length - 8 - 4 * n;
  const ids: number[] = [];
  for (let k = 0; k < n; k++) ids.push(words.getInt32(at + 4 * k, true));
  return ids;
}

/**
 * Rebuilds the value of a record of `kind` whose payload is the first
 * `length` bytes of `bytes` (for codec kinds, `bytes` may be a scratch
 * buffer: this decodes at once; raw kinds keep `bytes.buffer`).
 */
export function readItem(kind: number, bytes: Uint8Array, length: number): unknown {
  if ((kind & Kind.MOVES) !== 0) {
    length = new DataView(bytes.buffer, bytes.byteOffset, length).getInt32(length - 4, true);
    kind &= ~Kind.MOVES;
  }
  if (kind === Kind.STRUCTURED || kind === Kind.PLAIN) return decodeReused(bytes, length, kind as Format);
  if (kind === Kind.ARRAY_BUFFER) return bytes.buffer;
  const ctor = VIEW_CLASSES[kind - Kind.ARRAY_BUFFER - 1];
  const size = ctor === DataView ? 1 : (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return new ctor(bytes.buffer as ArrayBuffer, 0, bytes.length / size);
}
