// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The value codec: how values become bytes in shared memory and back, and
 * which values may cross threads at all.
 *
 * Encoding uses msgpackr in structured-clone mode (cycles, shared references,
 * `Map`, `Set`, `Date`, `RegExp`, `Error`, typed arrays, `BigInt`,
 * `undefined`), chosen by measurement: ~0.45 µs to encode and ~0.3 µs to
 * decode a small object on every runtime, against ~27 µs for Deno's
 * `node:v8` serializer.
 *
 * Before encoding, {@linkcode checkCloneable} walks the value so that
 * something that cannot cross (a function, a symbol, an instance of a class
 * not registered with `registerClass`) fails with a `TypeError` naming where
 * it sits, and nothing is written.
 *
 * Instances of registered classes cross as their own fields: the encoder is
 * given a copy in which each instance is a plain object with a
 * {@linkcode CLASS_MARK} key naming its class, wrapped in one root extension
 * ({@linkcode EXT_MARKED}) whose reader, once the whole value is decoded
 * (cycles included), gives each marked object its prototype back in place.
 * In place, because msgpackr rebuilds a cycle on a placeholder object that
 * an extension's reader never sees.
 *
 * @module
 */

// "msgpackr/pack" is the plain-JS build: the main entry also loads streams and
// the optional native string extractor, which costs ~20 ms per worker start
// and measured no faster for the small messages that cross threads here.
import { addExtension, Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE } from "msgpackr/pack";
import { bytesToOverwrite } from "./_runtime.ts";
import {
  BrokenBarrierError,
  CancelledError,
  ClosedError,
  EmptyError,
  FullError,
  IndexError,
  KeyError,
  TimeoutError,
} from "./errors.ts";

const packr = new Packr({ structuredClone: true, moreTypes: true });

/**
 * The msgpackr extension type codes this library uses, in one table so that
 * no two collide (msgpackr keeps one reader per code: a second one would
 * silently replace the first). msgpackr's own structured-clone codes are
 * lowercase letters.
 */
export const EXT = {
  /** An `Error` (here). */
  ERROR: 0x45, // "E"
  /** A `Float16Array` (here). */
  FLOAT16: 0x46, // "F"
  /** A library handle's reference (`_post.ts`). */
  HANDLE: 0x48, // "H"
  /** A value copied with marked registered-class instances (here). */
  MARKED: 0x4d, // "M"
  /** `-0` (here). */
  NEGATIVE_ZERO: 0x4e, // "N"
  /** Boxed primitives (here): Boolean, Number, String, BigInt. */
  BOXED_BOOLEAN: 0x4f, // "O"
  BOXED_NUMBER: 0x50, // "P"
  BOXED_STRING: 0x51, // "Q"
  BOXED_BIGINT: 0x53, // "S"
  /** A manager proxy inside a value bound for its own manager (`_manager_protocol.ts`). */
  MANAGER_REF: 0x52, // "R"
} as const;

/**
 * Stands for `-0` in a value handed to the structured-clone encoder:
 * MessagePack writes `-0` as the integer 0, and structured clone keeps it.
 * See {@linkcode markNegativeZeros}.
 */
class NegativeZero {}
const NEGATIVE_ZERO = new NegativeZero();
/** The msgpackr extension type of {@linkcode NegativeZero}. */
const EXT_NEGATIVE_ZERO = EXT.NEGATIVE_ZERO;
addExtension({ Class: NegativeZero, type: EXT_NEGATIVE_ZERO, write: () => 0, read: () => -0 });

// Structured-clone values msgpackr does not carry as they are: boxed
// primitives (it writes them as plain objects) and `Float16Array` (its
// typed-array extension has no code for it, and decoding fails).
/** Extension types of `new Boolean()`, `new Number()`, `new String()`, `Object(1n)` ("b" is msgpackr's). */
const BOXED: [new (...args: never[]) => object, number][] = [
  [Boolean, EXT.BOXED_BOOLEAN],
  [Number, EXT.BOXED_NUMBER],
  [String, EXT.BOXED_STRING],
  [BigInt as unknown as new () => object, EXT.BOXED_BIGINT],
];
for (const [Class, type] of BOXED) {
  addExtension({ Class, type, write: (v: object) => v.valueOf(), read: (x: unknown) => Object(x) });
}
// Errors: msgpackr keeps only name, message and cause, and rebuilds an
// AggregateError with its message in place of its errors. Structured clone
// keeps the stack too; here an AggregateError keeps its errors as well.
/**
 * The classes an error is rebuilt as, by name (the built-in ones and this
 * library's); any other name gives an `Error` of that name.
 */
const ERROR_CLASSES: Record<string, new (message: string) => Error> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
  EmptyError,
  FullError,
  ClosedError,
  TimeoutError,
  BrokenBarrierError,
  CancelledError,
  KeyError,
  IndexError,
};
/** What crosses of an error: name, message, stack, `[cause]` when it has one, errors of an AggregateError. */
type ErrorData = [string, string, string | undefined, [unknown] | undefined, unknown[] | undefined];
addExtension({
  Class: Error,
  type: EXT.ERROR,
  write: (e: Error): ErrorData => [
    e.name,
    e.message,
    e.stack,
    "cause" in e ? [e.cause] : undefined,
    e instanceof AggregateError ? e.errors : undefined,
  ],
  read: ([name, message, stack, cause, errors]: ErrorData): Error => {
    const e = errors !== undefined
      ? new AggregateError(errors, message)
      : new (Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name] : Error)(message);
    if (e.name !== name) e.name = name;
    const own = { writable: true, configurable: true, enumerable: false };
    if (cause !== undefined) Object.defineProperty(e, "cause", { ...own, value: cause[0] });
    if (stack !== undefined) Object.defineProperty(e, "stack", { ...own, value: stack });
    return e;
  },
});

/** A typed-array class or `DataView`. */
export type ViewClass = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => ArrayBufferView;
const Float16 = (globalThis as { Float16Array?: ViewClass }).Float16Array;
/**
 * The typed-array classes and `DataView` this runtime has (Node 20 has no
 * `Float16Array`): the one list by whose indexes raw queue records
 * (`_ring.ts`) and views over shared memory (`_handles.ts`) name a view's
 * class. The threads of a program all run on one runtime, so the indexes
 * agree between them.
 */
export const VIEW_CLASSES: ViewClass[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  ...(Float16 ? [Float16] : []),
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
] as ViewClass[];
if (Float16 !== undefined) {
  addExtension({
    Class: Float16,
    type: EXT.FLOAT16,
    pack: (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
    // `bytes` is a view of the buffer being decoded: copy it.
    unpack: (bytes: Uint8Array) => new Float16(copyBytes(bytes, 0, bytes.length).buffer as ArrayBuffer),
  });
}

// ---------------------------------------------------------------------------
// Registered classes
// ---------------------------------------------------------------------------

/** A class whose instances cross threads as their own fields (see `registerClass` in thread.ts). */
export interface ClassEntry {
  /** `name@module`: what a marked copy carries. */
  readonly key: string;
  readonly name: string;
  readonly module: string;
  readonly proto: object;
}

const classByProto = new Map<object, ClassEntry>();
const classByKey = new Map<string, ClassEntry>();

/** The key that names an instance's class in a marked copy (see the module doc). */
export const CLASS_MARK = "\u0000mpjs:class";

/**
 * Registers `proto`'s class under `name` and `module`. Registering the same
 * class again the same way does nothing.
 *
 * @throws {TypeError} when the class or the key is already registered otherwise.
 */
export function addClass(proto: object, name: string, module: string): void {
  const key = `${name}@${module}`;
  const had = classByProto.get(proto);
  if (had !== undefined) {
    if (had.key === key) return;
    throw new TypeError(`Cannot register class ${name}: it is already registered as ${had.name} from ${had.module}`);
  }
  if (classByKey.has(key)) {
    throw new TypeError(`Cannot register class ${name}: another class is already registered as ${name} from ${module}`);
  }
  const entry: ClassEntry = { key, name, module, proto };
  classByProto.set(proto, entry);
  classByKey.set(key, entry);
}

/** The registration of `v`'s own class (not a base class's), if any. */
export function registeredClass(v: object): ClassEntry | undefined {
  return classByProto.size === 0 ? undefined : classByProto.get(Object.getPrototypeOf(v));
}

/** The modules of the classes registered in this thread, for a new thread to import before it runs. */
export function classModules(): string[] {
  return [...new Set([...classByKey.values()].map((e) => e.module))];
}

/**
 * Gives each object marked with {@linkcode CLASS_MARK} under `v` its class's
 * prototype, in place (so every reference to it, cycles included, sees it).
 * Errors are not looked inside.
 *
 * @throws {TypeError} when a marked class is not registered in this thread.
 */
export function rebuildClasses(v: unknown, seen: Set<object> = new Set()): unknown {
  if (typeof v !== "object" || v === null || seen.has(v)) return v;
  seen.add(v);
  if (Array.isArray(v)) {
    for (const x of v) rebuildClasses(x, seen);
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      rebuildClasses(k, seen);
      rebuildClasses(x, seen);
    }
  } else if (v instanceof Set) {
    for (const x of v) rebuildClasses(x, seen);
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const fields = v as Record<string, unknown>;
    for (const k of Object.keys(fields)) rebuildClasses(fields[k], seen);
    if (Object.hasOwn(fields, CLASS_MARK)) {
      const key = fields[CLASS_MARK] as string;
      const entry = classByKey.get(key);
      if (entry === undefined) {
        const at = key.lastIndexOf("@");
        throw new TypeError(
          `Cannot rebuild an instance of ${key.slice(0, at)} in this thread: its class is not registered here. ` +
            `A thread imports the modules of the classes registered before it started; import ${
              key.slice(at + 1)
            } in this thread (registerClass runs at its top level) before receiving such values`,
        );
      }
      delete fields[CLASS_MARK];
      Object.setPrototypeOf(v, entry.proto);
    }
  }
  return v;
}

/** A marked copy (see the module doc), written as one root extension. */
class Marked {
  constructor(readonly value: unknown) {}
}
/** The msgpackr extension type of {@linkcode Marked}. */
const EXT_MARKED = EXT.MARKED;
addExtension({
  Class: Marked,
  type: EXT_MARKED,
  write: (m: Marked) => m.value,
  read: (value: unknown) => rebuildClasses(value),
});

function isNegativeZero(x: unknown): boolean {
  return x === 0 && 1 / (x as number) < 0;
}

/**
 * A copy of `v` with every `-0` replaced by {@linkcode NEGATIVE_ZERO} and
 * every instance of a registered class by a plain object of its fields
 * marked with {@linkcode CLASS_MARK}, made only for values that hold either
 * (rare): arrays, plain objects, `Map`s and `Set`s are copied, keeping
 * cycles and shared references; everything else (binary data, which keeps
 * `-0` in its bytes, dates, errors, this library's handles) is the same
 * object.
 */
function markCopy(v: unknown, copies: Map<object, unknown>): unknown {
  if (typeof v !== "object" || v === null) return isNegativeZero(v) ? NEGATIVE_ZERO : v;
  const done = copies.get(v);
  if (done !== undefined) return done;
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    copies.set(v, out);
    for (let i = 0; i < v.length; i++) out[i] = markCopy(v[i], copies);
    return out;
  }
  if (v instanceof Map) {
    // Keys need nothing: a Map stores a -0 key as 0.
    const out = new Map();
    copies.set(v, out);
    for (const [k, x] of v) out.set(markCopy(k, copies), markCopy(x, copies));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set();
    copies.set(v, out);
    for (const x of v) out.add(markCopy(x, copies));
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  let out: Record<string, unknown>;
  if (proto === Object.prototype) out = {};
  else if (proto === null) out = Object.create(null);
  else {
    const entry = registeredClass(v);
    if (entry === undefined) return v;
    out = { [CLASS_MARK]: entry.key };
  }
  copies.set(v, out);
  for (const key of Object.keys(v)) out[key] = markCopy((v as Record<string, unknown>)[key], copies);
  return out;
}

/**
 * Checks `value` (see {@linkcode checkCloneable}) and encodes it with the
 * structured-clone encoder; the result is msgpackr's buffer, valid until
 * the next encoding.
 */
function packStructured(value: unknown, path: string, hook?: ObjectHook): Uint8Array {
  if (typeof value !== "object" && typeof value !== "function" && typeof value !== "symbol" || value === null) {
    return packr.pack(isNegativeZero(value) ? NEGATIVE_ZERO : value);
  }
  const marked = checkCloneable(value, path, hook);
  return packr.pack(marked ? new Marked(markCopy(value, new Map())) : value);
}

/**
 * The encoder for plain trees (see {@linkcode isPlainTree}): standard
 * MessagePack maps and arrays, no reference tracking. It measured 2–5×
 * faster than the structured-clone packr for small objects, which is most of
 * what crosses a queue.
 */
const plainPackr = new Packr({ useRecords: false, moreTypes: true });

/** How bytes were encoded; the decoder must be told (see {@linkcode encodeTo}). */
export type Format = typeof STRUCTURED | typeof PLAIN;
/** Bytes made by the structured-clone encoder. */
export const STRUCTURED = 0;
/** Bytes made by the plain-tree encoder. */
export const PLAIN = 1;

/** Plain trees larger than this many objects are checked with a `Set` for shared references. */
const SEEN_LIST_MAX = 16;

/**
 * Whether `v` is a plain tree: primitives (see {@linkcode isPlainPrimitive}),
 * arrays and objects whose prototype is `Object.prototype` or
 * `null`, with no object reached twice (so no cycles or shared references).
 * Such values encode the same with the plain encoder as with structured
 * clone, and need no further checks. Anything else returns `false`, and the
 * caller takes the full path (which also names what cannot cross).
 */
function isPlainTree(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return isPlainPrimitive(v);
  // One record of what was seen serves every walk, unless a getter met on
  // the way starts another walk (then that one gets its own).
  const seen = spareSeen ?? { list: [], n: 0, set: undefined };
  spareSeen = undefined;
  try {
    return plainNode(v, seen);
  } finally {
    if (seen.n > 0) {
      seen.list.fill(undefined, 0, seen.n); // let the objects go
      seen.n = 0;
    }
    seen.set = undefined;
    spareSeen = seen;
  }
}

let spareSeen: Seen | undefined = { list: [], n: 0, set: undefined };

/** Objects met so far: a short list, or past {@linkcode SEEN_LIST_MAX} a `Set`. */
interface Seen {
  list: (object | undefined)[];
  n: number;
  set: Set<object> | undefined;
}

/** Records `o` as seen; `false` when it was seen before. */
function firstVisit(o: object, seen: Seen): boolean {
  if (seen.set) {
    if (seen.set.has(o)) return false;
    seen.set.add(o);
    return true;
  }
  const list = seen.list;
  const n = seen.n;
  for (let i = 0; i < n; i++) if (list[i] === o) return false;
  list[n] = o;
  seen.n = n + 1;
  if (n + 1 > SEEN_LIST_MAX) seen.set = new Set(list.slice(0, n + 1) as object[]);
  return true;
}

/**
 * Whether the tree under `o` is plain. Each object is recorded by its
 * parent before the walk goes down into it, and the root only once it is
 * found to have an object inside (only then can it be reached again), so a
 * flat object such as `{ i, s }` records nothing. A second visit of any
 * object (a cycle or a shared reference) makes the tree not plain.
 */
function plainNode(o: object, seen: Seen, recorded = false): boolean {
  if (Array.isArray(o)) {
    for (let i = 0; i < o.length; i++) {
      const r = plainMember(o, o[i], seen, recorded);
      if (r === NOT_PLAIN) return false;
      if (r === OBJECT) recorded = true;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) return false;
  // for-in allocates nothing (Object.keys would); it also meets inherited
  // enumerable keys, as the plain encoder does, which can only make the
  // check stricter.
  let count = 0;
  for (const key in o) {
    // The plain encoder writes maps with a 16-bit size.
    if (++count > 0xffff) return false;
    const r = plainMember(o, (o as Record<string, unknown>)[key], seen, recorded);
    if (r === NOT_PLAIN) return false;
    if (r === OBJECT) recorded = true;
  }
  return true;
}

/** What {@linkcode plainMember} found. */
const NOT_PLAIN = 0;
const PRIMITIVE = 1;
const OBJECT = 2;

/**
 * Checks `x`, a member of `parent`: a primitive that crosses as it is, a
 * plain tree (then `parent` has been recorded as well, if it was not yet),
 * or neither.
 */
function plainMember(parent: object, x: unknown, seen: Seen, parentRecorded: boolean): number {
  if (typeof x === "object") {
    if (x === null) return PRIMITIVE;
    if (!parentRecorded) firstVisit(parent, seen);
    return firstVisit(x, seen) && plainNode(x, seen, true) ? OBJECT : NOT_PLAIN;
  }
  return isPlainPrimitive(x) ? PRIMITIVE : NOT_PLAIN;
}

/**
 * Whether `x` (not an object) is written by the plain encoder as structured
 * clone would carry it: not a `bigint`, a function, a symbol, or `-0` (see
 * {@linkcode NegativeZero}).
 */
function isPlainPrimitive(x: unknown): boolean {
  if (typeof x === "number") return !isNegativeZero(x);
  return typeof x !== "bigint" && typeof x !== "function" && typeof x !== "symbol";
}

/**
 * Called for each object the walk meets; returns `true` when it has dealt
 * with the object (a library handle) and the walk must not look inside.
 */
export type ObjectHook = (value: object, path: string) => boolean;

/** Built-in classes whose instances structured clone carries as they are. */
function isBuiltinLeaf(v: object): boolean {
  return v instanceof Date || v instanceof RegExp || v instanceof ArrayBuffer ||
    v instanceof SharedArrayBuffer || ArrayBuffer.isView(v) || v instanceof Boolean ||
    v instanceof Number || v instanceof String || v instanceof BigInt;
}

function keyPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Throws a `TypeError` naming the first place in `value` that cannot be
 * cloned to another thread. `hook` is given every object first (for
 * library handles).
 *
 * @param path How to name `value` in the message (`"args"`, `"item"`).
 * @returns Whether `value` holds a `-0` or an instance of a registered
 *   class (the encoder must then be given a marked copy: see the module doc).
 * @throws {TypeError} naming the path of the first value that cannot cross.
 */
export function checkCloneable(value: unknown, path: string, hook?: ObjectHook): boolean {
  const walk: Walk = { hook, seen: new Set(), marked: false };
  visit(value, path, walk);
  return walk.marked;
}

/**
 * What a {@linkcode checkCloneable} walk carries: its hook, the objects
 * seen, and whether a `-0` or a registered class's instance was met.
 */
interface Walk {
  hook: ObjectHook | undefined;
  seen: Set<object>;
  marked: boolean;
}

function visit(v: unknown, path: string, walk: Walk): void {
  switch (typeof v) {
    case "function":
      throw new TypeError(
        `Cannot send ${path} to another thread: it is a function${
          v.name ? ` (${v.name})` : ""
        }, and functions cannot be cloned`,
      );
    case "symbol":
      throw new TypeError(`Cannot send ${path} to another thread: it is a symbol, and symbols cannot be cloned`);
    case "object":
      break;
    case "number":
      if (isNegativeZero(v)) walk.marked = true;
      return;
    default:
      return;
  }
  if (v === null || walk.seen.has(v)) return;
  walk.seen.add(v);
  if (walk.hook?.(v, path)) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) visit(v[i], `${path}[${i}]`, walk);
    return;
  }
  if (v instanceof Map) {
    let i = 0;
    for (const [k, x] of v) {
      visit(k, `${path}.keys()[${i}]`, walk);
      visit(x, `${path}.get(${typeof k === "string" ? JSON.stringify(k) : `keys()[${i}]`})`, walk);
      i++;
    }
    return;
  }
  if (v instanceof Set) {
    let i = 0;
    for (const x of v) visit(x, `${path}.values()[${i++}]`, walk);
    return;
  }
  if (isBuiltinLeaf(v)) return;
  const proto = Object.getPrototypeOf(v);
  if (v instanceof Error) {
    // Errors cross as name, message, stack and cause (and an AggregateError's errors).
    if ("cause" in v) visit((v as Error).cause, `${path}.cause`, walk);
    if (v instanceof AggregateError) visit(v.errors, `${path}.errors`, walk);
    return;
  }
  if (proto !== Object.prototype && proto !== null) {
    if (registeredClass(v) !== undefined) walk.marked = true;
    else {
      const name = proto?.constructor?.name;
      throw new TypeError(
        `Cannot send ${path} to another thread: it is an instance of ${
          name || "an unnamed class"
        }, and class instances cannot be cloned (only plain objects, arrays, Map, Set, Date, RegExp, Error, typed arrays, ArrayBuffer and this library's handles) unless their class is registered: call registerClass(${
          name || "TheClass"
        }, { module: import.meta.url }) at the top level of the module that defines it, or send a plain object`,
      );
    }
  }
  for (const key of Object.keys(v)) visit((v as Record<string, unknown>)[key], keyPath(path, key), walk);
}

/**
 * Encodes `value` to bytes. The result is a fresh copy the caller owns.
 *
 * @param path How to name the value in errors.
 * @param hook See {@linkcode checkCloneable}.
 * @throws {TypeError} when `value` cannot cross threads.
 */
export function encode(value: unknown, path = "value", hook?: ObjectHook): Uint8Array {
  // pack() returns a view of msgpackr's reusable buffer: copy it out.
  const bytes = packStructured(value, path, hook);
  return copyBytes(bytes, 0, bytes.length);
}

/**
 * A copy of `bytes[start..end)` that the caller owns, for bytes an encoder
 * handed out that must outlive the call. Not `bytes.slice()`: on Node and Bun
 * the encoder's buffer is a `Buffer`, whose `slice` makes a view, and the
 * next encoding writes over it (pool task records kept for a retry came out
 * cut short in about one run in four of 10 x 100k tasks on Bun).
 */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}

/**
 * A copy of `view`, a view of shared memory, in memory the caller owns (see
 * `bytesToOverwrite`). Not `view.slice()`: Bun copies a view of a growable
 * shared buffer ~4× slower that way.
 */
export function copyShared(view: Uint8Array): Uint8Array {
  const own = bytesToOverwrite(view.length);
  own.set(view);
  return own;
}

/**
 * Encodes `value` and hands the bytes to `write` without an extra copy; the
 * bytes are only valid during the call.
 *
 * @throws {TypeError} when `value` cannot cross threads.
 */
export function encodeWith<R>(value: unknown, path: string, write: (bytes: Uint8Array) => R, hook?: ObjectHook): R {
  return write(packStructured(value, path, hook));
}

/**
 * Receives encoded bytes: `bytes[start..end)`, valid only during the call
 * (the encoder's own buffer, reused by the next encoding).
 */
export type EncodedWriter<R> = (bytes: Uint8Array, start: number, end: number, format: Format) => R;

/**
 * Encodes `value` with the fastest encoder that carries it faithfully and
 * hands the bytes and their {@linkcode Format} to `write`; the reader must
 * decode them with the same format ({@linkcode decodeReused},
 * {@linkcode decodeShared}).
 *
 * @throws {TypeError} when `value` cannot cross threads.
 */
export function encodeTo<R>(value: unknown, path: string, write: EncodedWriter<R>, hook?: ObjectHook): R {
  if (isPlainTree(value)) {
    // msgpackr's reuse mode: the bytes stay in its buffer, with no view made
    // for them (a Buffer's subarray costs 40-85 ns of a ~250 ns put), and
    // the next encoding starts at the same place: a writer that keeps them
    // copies them (copyBytes). `position` is reset to their start, `offset`
    // is their end.
    const target = plainPackr.pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE);
    return write(target, plainPackr.position, plainPackr.offset, PLAIN);
  }
  // No reuse mode here: with shared references msgpackr returns a new buffer
  // that does not say where the encoding sits.
  const bytes = packStructured(value, path, hook);
  return write(bytes, 0, bytes.length, STRUCTURED);
}

/**
 * Decodes bytes made by {@linkcode encode}. `bytes` must not be a view of
 * shared memory that may change: copy it out first (see {@linkcode decodeShared}).
 */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/**
 * This thread's buffer for copies out of shared memory that are decoded at
 * once (a ring's records, a pipe's messages): allocating a fresh
 * `Uint8Array` per message costs ~1.2 µs on Deno (measured: 24 bytes, against
 * 36 ns on Node and 5 ns on Bun), more than the rest of a small receive.
 */
let scratchBytes = new Uint8Array(1 << 12);
/** {@linkcode scratchBytes} as words. */
let scratchInts = new Int32Array(scratchBytes.buffer);
/** Copies larger than this get a buffer of their own, not a bigger scratch buffer. */
const SCRATCH_MAX = 1 << 20;
/** Whether the scratch buffer is being decoded (a decode that reaches another must not reuse it). */
let scratchBusy = false;

/**
 * This thread's scratch buffer, with room for `length` bytes (and the
 * padding of a last word), to copy into and then decode with
 * {@linkcode decodeReused}; `undefined` when `length` is too large or the
 * buffer is being decoded: copy into a buffer of your own then.
 */
export function scratch(length: number): Uint8Array | undefined {
  if (length > SCRATCH_MAX || scratchBusy) return undefined;
  if (length + 3 > scratchBytes.length) {
    let n = scratchBytes.length;
    while (n < length + 3) n *= 2;
    scratchBytes = new Uint8Array(n);
    scratchInts = new Int32Array(scratchBytes.buffer);
  }
  return scratchBytes;
}

/** The buffer {@linkcode scratch} last returned, as words. */
export function scratchWords(): Int32Array {
  return scratchInts;
}

/**
 * Copies `length` bytes at `offset` out of shared memory and decodes them;
 * the value shares no memory with the copy.
 */
export function decodeShared(
  buffer: SharedArrayBuffer,
  offset: number,
  length: number,
  format: Format = STRUCTURED,
): unknown {
  const view = new Uint8Array(buffer, offset, length);
  const reused = scratch(length);
  if (reused === undefined) return (format === PLAIN ? plainPackr : packr).unpack(copyShared(view));
  reused.set(view);
  return decodeReused(reused, length, format);
}

/** Decodes with `copyBuffers`, so nothing decoded shares memory with the source. */
const copyingPackr = new Packr({ structuredClone: true, moreTypes: true, copyBuffers: true });

/**
 * Decodes the first `length` bytes of `bytes`, a buffer the caller reuses
 * (a per-thread scratch buffer holding a copy made from shared memory): the
 * value shares no memory with `bytes`, and reusing one buffer spares an
 * allocation and lets the decoder keep its view of it.
 */
export function decodeReused(bytes: Uint8Array, length: number, format: Format = STRUCTURED): unknown {
  const busy = scratchBusy;
  if (bytes === scratchBytes) scratchBusy = true;
  try {
    // Plain trees hold no binary data, so nothing decoded can share memory with `bytes`.
    return (format === PLAIN ? plainPackr : copyingPackr).unpack(bytes, length);
  } finally {
    scratchBusy = busy;
  }
}
