// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Handle transfer: how this library's objects (queues, connections, locks,
 * shared values, …) cross to another thread inside `args`, wherever they sit
 * (and, through the same handlers, inside queue items and pipe messages:
 * see `_post.ts`).
 *
 * Each class registers a {@linkcode TransferHandler} (the shape comlink uses
 * for its transfer handlers): `canHandle` recognises an instance, `serialize`
 * turns it into structured-cloneable data (its `SharedArrayBuffer`s, ports),
 * and `deserialize` brings it back to life on the other side. The public
 * modules plug in here; nothing else knows about them.
 *
 * @module
 */

import { checkCloneable, CLASS_MARK, rebuildClasses, registeredClass, VIEW_CLASSES, type ViewClass } from "./_codec.ts";

/** How one class of handle crosses threads. */
export interface TransferHandler<T extends object = object, S = unknown> {
  /** A unique name, carried with the data. */
  readonly tag: string;
  /** Whether `value` is an instance this handler carries. */
  canHandle(value: unknown): value is T;
  /**
   * Structured-cloneable data from which `deserialize` rebuilds the handle.
   * May throw (a closed or moved object) with a message naming `path`.
   */
  serialize(value: T, path: string): S;
  /** Rebuilds the handle in the receiving thread. */
  deserialize(data: S): T;
  /** Objects in `data` to transfer rather than copy (message ports). */
  transferables?(data: S): Transferable[];
  /**
   * Whether the data is deposited anew for each item or message that carries
   * it and dropped once read (see `_post.ts`), rather than kept for the
   * program's life: for plain shared memory, which a program may make much
   * of and drop.
   */
  readonly once?: boolean;
  /**
   * For a handle that counts its copies in flight (a manager's proxy):
   * called with `1` as a value carrying it is prepared (before anyone can
   * read it; never while the encoder runs), and with `-1` when a queue item
   * carrying it then does not go in (full, closed, or a part of it cannot be
   * encoded): the count must not keep the copy that never left.
   */
  inFlight?(value: T, delta: 1 | -1): void;
  /**
   * Called once the data is on its way (a moved handle detaches here).
   * `to` is the ident of the receiving thread, when the sender knows it.
   */
  moved?(value: T, to?: number): void;
  /**
   * For a moved handle: the shared word that holds the ident of the thread
   * owning it (an index into an `Int32Array` over the buffer), which the
   * post office sets as it hands the handle over (see `_post_office.ts`).
   */
  owner?(data: S): OwnerWord;
}

/** A word in shared memory: an `Int32Array` index into the buffer. */
export type OwnerWord = [buffer: SharedArrayBuffer, index: number];

const handlers: TransferHandler[] = [];
const byTag = new Map<string, TransferHandler>();

/** Plugs a handle class into the transfer protocol. */
export function registerHandler<T extends object, S>(handler: TransferHandler<T, S>): void {
  if (byTag.has(handler.tag)) return;
  handlers.push(handler as unknown as TransferHandler);
  byTag.set(handler.tag, handler as unknown as TransferHandler);
}

/** The handler for `value`, if it is a library handle. */
export function handlerFor(value: unknown): TransferHandler | undefined {
  for (const h of handlers) if (h.canHandle(value)) return h;
  return undefined;
}

/** The handler registered under `tag`, if its module is loaded in this thread. */
export function handlerForTag(tag: string): TransferHandler | undefined {
  return byTag.get(tag);
}

/** The key that marks a serialized handle inside packed data. */
const MARK = "\u0000mpjs:handle";

/** Packed values, ready for `postMessage`. */
export interface Packed {
  /** The value, with each handle replaced by its serialized data. */
  data: unknown;
  /**
   * Whether `data` holds handles or instances of registered classes (and
   * so needs {@linkcode unpack}).
   */
  hasHandles: boolean;
  /** Ports and buffers to transfer. */
  transfer: Transferable[];
  /**
   * Call once `data` has been posted: moved handles detach. Pass the
   * receiving thread's ident when known, so handles can follow it.
   */
  commit(to?: number): void;
  /**
   * Call instead of posting when `data` will never be sent (a check only,
   * or a task dropped before its worker asked for it): handles that count
   * their copies in flight take theirs back.
   */
  giveBack(): void;
}

/**
 * Prepares `value` for `postMessage`: checks that everything in it can be
 * cloned and serializes the library handles found anywhere in it.
 *
 * @param path How to name `value` in errors (`"args"`).
 * @throws {TypeError} naming the path of a value that cannot cross.
 */
export function pack(value: unknown, path: string): Packed {
  const found = new Map<object, { handler: TransferHandler; data: unknown }>();
  const transfer: Transferable[] = [];
  // `marked`: a registered class's instance (or a -0, which postMessage keeps) is in `value`.
  const marked = checkCloneable(value, path, (v, p) => {
    const handler = handlerFor(v);
    if (!handler) return false;
    const data = handler.serialize(v, p);
    found.set(v, { handler, data });
    if (handler.transferables) transfer.push(...handler.transferables(data));
    return true;
  });
  for (const [v, { handler }] of found) handler.inFlight?.(v, 1);
  const commit = (to?: number) => {
    for (const [v, { handler }] of found) handler.moved?.(v, to);
  };
  const giveBack = () => {
    for (const [v, { handler }] of found) handler.inFlight?.(v, -1);
  };
  if (found.size === 0 && !marked) return { data: value, hasHandles: false, transfer, commit, giveBack };
  return { data: replace(value, found, new Map()), hasHandles: true, transfer, commit, giveBack };
}

function replace(
  v: unknown,
  found: Map<object, { handler: TransferHandler; data: unknown }>,
  memo: Map<object, unknown>,
): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (memo.has(v)) return memo.get(v);
  const h = found.get(v);
  if (h) {
    // One marker per handle, however often it occurs: it is rebuilt once, as the same object.
    const marker = { [MARK]: h.handler.tag, data: h.data };
    memo.set(v, marker);
    return marker;
  }
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    memo.set(v, out);
    for (const x of v) out.push(replace(x, found, memo));
    return out;
  }
  if (v instanceof Map) {
    const out = new Map();
    memo.set(v, out);
    for (const [k, x] of v) out.set(replace(k, found, memo), replace(x, found, memo));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set();
    memo.set(v, out);
    for (const x of v) out.add(replace(x, found, memo));
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  let out: Record<string, unknown> = {};
  if (proto !== Object.prototype && proto !== null) {
    const entry = registeredClass(v);
    if (entry === undefined) return v;
    out = { [CLASS_MARK]: entry.key };
  }
  memo.set(v, out);
  for (const k of Object.keys(v)) out[k] = replace((v as Record<string, unknown>)[k], found, memo);
  return out;
}

/** Rebuilds the handles and the registered classes' instances in data made by {@linkcode pack}. */
export function unpack(data: unknown, hasHandles: boolean): unknown {
  return hasHandles ? rebuildClasses(revive(data, new Map())) : data;
}

/**
 * Rebuilds in place. `seen` maps each object met to what stands for it: a
 * container to itself, a handle's marker to the handle rebuilt from it. A
 * marker met twice (one handle named twice in a message) is rebuilt once:
 * a handle that counts its copies (a manager's proxy) must not get two from
 * one crossing.
 */
function revive(v: unknown, seen: Map<object, unknown>): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (seen.has(v)) return seen.get(v);
  const tag = (v as Record<string, unknown>)[MARK];
  if (typeof tag === "string") {
    const handler = byTag.get(tag);
    if (!handler) throw new Error(`Cannot rebuild a '${tag}' in this thread: its module is not loaded`);
    const handle = handler.deserialize((v as { data: unknown }).data);
    seen.set(v, handle);
    return handle;
  }
  seen.set(v, v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = revive(v[i], seen);
  } else if (v instanceof Map) {
    for (const [k, x] of [...v]) {
      const k2 = revive(k, seen);
      if (k2 !== k) v.delete(k);
      v.set(k2, revive(x, seen));
    }
  } else if (v instanceof Set) {
    for (const x of [...v]) {
      const x2 = revive(x, seen);
      if (x2 !== x) {
        v.delete(x);
        v.add(x2);
      }
    }
  } else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
    for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = revive((v as Record<string, unknown>)[k], seen);
  }
  return v;
}

// Shared memory itself: a `SharedArrayBuffer`, or a typed array or
// `DataView` over one, stays shared wherever it sits, as with structured
// clone (which `postMessage` uses for `args`). In queue items and pipe
// messages it travels as a handle; encoded as bytes, it would arrive as a
// copy, or as `{}`.

registerHandler<SharedArrayBuffer, SharedArrayBuffer>({
  tag: "SharedArrayBuffer",
  once: true,
  canHandle: (v): v is SharedArrayBuffer => v instanceof SharedArrayBuffer,
  serialize: (v) => v,
  deserialize: (buffer) => buffer,
});

/** A view over shared memory: its buffer, byte offset, length in elements (bytes for a `DataView`) and class index. */
type SharedViewData = [SharedArrayBuffer, number, number, number];

registerHandler<ArrayBufferView, SharedViewData>({
  tag: "SharedArrayBuffer view",
  once: true,
  canHandle: (v): v is ArrayBufferView =>
    ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer && VIEW_CLASSES.includes(v.constructor as ViewClass),
  serialize: (v) => [
    v.buffer as SharedArrayBuffer,
    v.byteOffset,
    v instanceof DataView ? v.byteLength : (v as unknown as { length: number }).length,
    VIEW_CLASSES.indexOf(v.constructor as ViewClass),
  ],
  deserialize: ([buffer, offset, length, k]) => new VIEW_CLASSES[k](buffer, offset, length),
});
