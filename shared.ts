// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Numbers in shared memory: Python's `multiprocessing.Value` and `Array`,
 * named `SharedValue` and `SharedArray` here so they do not shadow
 * JavaScript's `Array`. Each lives in a `SharedArrayBuffer`; pass it in a
 * `Thread`'s `args` and both threads read and write the same memory.
 *
 * Reading or writing one element is atomic for the integer types (it uses
 * `Atomics.load`/`Atomics.store`; not `Uint8ClampedArray`), but
 * `v.value += 1` is a read followed by a write, and another thread can write
 * in between: hold `getLock()` around such updates, as in Python.
 *
 * The element type is given by a Python `array` typecode or a TypedArray
 * constructor:
 *
 * | typecode | TypedArray       | JavaScript value                      |
 * |----------|------------------|---------------------------------------|
 * | `b` `B`  | `Int8Array` `Uint8Array`     | number                    |
 * | `h` `H`  | `Int16Array` `Uint16Array`   | number                    |
 * | `i` `I`  | `Int32Array` `Uint32Array`   | number                    |
 * | `l` `L`  | `Int32Array` `Uint32Array`   | number (C `long`'s minimum size, so values stay numbers) |
 * | `q` `Q`  | `BigInt64Array` `BigUint64Array` | bigint                |
 * | `f` `d`  | `Float32Array` `Float64Array` | number                   |
 * | `c`      | `Uint8Array`     | a one-character string (a byte, code 0–255) |
 * | `u`      | `Uint32Array`    | a one-character string (any code point) |
 *
 * As with ctypes, integers wrap around when out of range (a `Uint8ClampedArray` clamps).
 *
 * @example A counter shared with a thread
 * ```ts
 * import * as mp from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const counter = new mp.SharedValue("i", 0);
 * const t = new mp.Thread({
 *   target: (counter: mp.SharedValue<"i">) => {
 *     for (let i = 0; i < 1000; i++) {
 *       counter.getLock().acquireSync();
 *       counter.value += 1;
 *       counter.getLock().release();
 *     }
 *   },
 *   args: [counter],
 * });
 * t.start();
 * for (let i = 0; i < 1000; i++) {
 *   await counter.getLock().acquire();
 *   counter.value += 1;
 *   counter.getLock().release();
 * }
 * await t.join();
 * assert.equal(counter.value, 2000);
 * ```
 *
 * @module
 */

import { VIEW_CLASSES } from "./_codec.ts";
import { pack, registerHandler, unpack } from "./_handles.ts";
import { checkOptions, show } from "./_options.ts";
import { Lock, RLock } from "./sync.ts";

/**
 * Python `array` typecodes understood by {@linkcode SharedValue} and {@linkcode SharedArray}.
 *
 * @example
 * ```ts
 * import { SharedValue, type Typecode } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const code: Typecode = "d";
 * assert.equal(new SharedValue(code, 1.5).value, 1.5);
 * ```
 */
export type Typecode = "b" | "B" | "h" | "H" | "i" | "I" | "l" | "L" | "q" | "Q" | "f" | "d" | "c" | "u";

/**
 * TypedArray constructors usable as a typecode.
 *
 * @example
 * ```ts
 * import { SharedArray, type TypedArrayConstructor } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const ctor: TypedArrayConstructor = Int16Array;
 * assert.ok(new SharedArray(ctor, 3).view instanceof Int16Array);
 * ```
 */
export type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/**
 * What a shared value or array holds its elements in.
 *
 * @example
 * ```ts
 * import { SharedArray, type SharedTypedArray } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const view: SharedTypedArray = new SharedArray("i", [1, 2, 3]).view;
 * assert.equal(view.length, 3);
 * ```
 */
export type SharedTypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A typecode or a TypedArray constructor.
 *
 * @example
 * ```ts
 * import { SharedValue, type ElementType } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const types: ElementType[] = ["i", Float64Array];
 * assert.equal(new SharedValue(types[1], 2.5).value, 2.5);
 * ```
 */
export type ElementType = Typecode | TypedArrayConstructor;

/**
 * The JavaScript type of an element of type `C`.
 *
 * @example
 * ```ts
 * import { SharedValue, type ElementOf } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const big: ElementOf<"q"> = new SharedValue("q", 5n).value;
 * assert.equal(big, 5n);
 * ```
 */
export type ElementOf<C extends ElementType> = C extends
  "q" | "Q" | BigInt64ArrayConstructor | BigUint64ArrayConstructor ? bigint
  : C extends "c" | "u" ? string
  : number;

/**
 * What may be written to an element of type `C`: bigint elements also take integer numbers.
 *
 * @example
 * ```ts
 * import { SharedValue, type InputOf } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const v = new SharedValue("q");
 * const input: InputOf<"q"> = 7; // a bigint element also takes an integer number
 * v.value = input;
 * assert.equal(v.value, 7n);
 * ```
 */
export type InputOf<C extends ElementType> = ElementOf<C> extends bigint ? bigint | number : ElementOf<C>;

/**
 * Options for {@linkcode SharedValue} and {@linkcode SharedArray}.
 *
 * @example
 * ```ts
 * import { SharedValue, type SharedOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: SharedOptions = { lock: false };
 * const v = new SharedValue("i", 0, options);
 * v.value += 1;
 * assert.equal(v.value, 1);
 * ```
 */
export interface SharedOptions {
  /**
   * `true`: create an {@linkcode RLock} for `getLock()` (Python's default);
   * a `Lock` or `RLock`: use that one; `false`: no lock.
   * @default {true}
   */
  lock?: boolean | Lock | RLock;
}

interface Kind {
  /** The typecode, or the constructor's name. */
  code: string;
  ctor: TypedArrayConstructor;
  /** "int", "bigint", "float", "char" (one byte) or "unichar". */
  kind: "int" | "bigint" | "float" | "char" | "unichar";
  /** Whether `Atomics.load/store` apply. */
  atomic: boolean;
}

const CODES: Record<string, [TypedArrayConstructor, Kind["kind"]]> = {
  b: [Int8Array, "int"],
  B: [Uint8Array, "int"],
  h: [Int16Array, "int"],
  H: [Uint16Array, "int"],
  i: [Int32Array, "int"],
  I: [Uint32Array, "int"],
  l: [Int32Array, "int"],
  L: [Uint32Array, "int"],
  q: [BigInt64Array, "bigint"],
  Q: [BigUint64Array, "bigint"],
  f: [Float32Array, "float"],
  d: [Float64Array, "float"],
  c: [Uint8Array, "char"],
  u: [Uint32Array, "unichar"],
};

/** The TypedArray constructors a typecode may be: the codec's view classes but `DataView` and `Float16Array`. */
const CTORS = VIEW_CLASSES.filter((c) => c !== DataView && c.name !== "Float16Array") as TypedArrayConstructor[];

function kindOf(type: unknown, what: string): Kind {
  if (typeof type === "string" && Object.hasOwn(CODES, type)) {
    const [ctor, kind] = CODES[type];
    return { code: type, ctor, kind, atomic: kind !== "float" };
  }
  if (typeof type === "function" && CTORS.includes(type as TypedArrayConstructor)) {
    const ctor = type as TypedArrayConstructor;
    const bigint = ctor === BigInt64Array || ctor === BigUint64Array;
    const float = ctor === Float32Array || ctor === Float64Array;
    return {
      code: ctor.name,
      ctor,
      kind: bigint ? "bigint" : float ? "float" : "int",
      atomic: !float && ctor !== Uint8ClampedArray,
    };
  }
  throw new TypeError(
    `Cannot create ${what} as 'typecode' must be one of b B h H i I l L q Q f d c u or a TypedArray constructor: current value is ${
      show(type)
    }`,
  );
}

function kindFromCode(code: string): Kind {
  return kindOf(Object.hasOwn(CODES, code) ? code : CTORS.find((c) => c.name === code), "a shared value");
}

/** Converts a JavaScript value to what the typed array stores; throws TypeError when it does not fit the type. */
function toRaw(k: Kind, v: unknown, what: string): number | bigint {
  switch (k.kind) {
    case "int":
      if (typeof v === "number" && Number.isInteger(v)) return v;
      if (typeof v === "boolean") return v ? 1 : 0;
      break;
    case "bigint":
      if (typeof v === "bigint") return v;
      if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
      break;
    case "float":
      if (typeof v === "number") return v;
      break;
    case "char":
      if (typeof v === "string" && v.length === 1 && v.charCodeAt(0) < 256) return v.charCodeAt(0);
      if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 256) return v;
      break;
    case "unichar":
      if (typeof v === "string" && v.length > 0 && [...v].length === 1) return v.codePointAt(0)!;
      break;
  }
  const expected = {
    int: "an integer",
    bigint: "a bigint or an integer",
    float: "a number",
    char: "a one-character string with a code below 256",
    unichar: "a one-character string",
  }[k.kind];
  throw new TypeError(
    `Cannot ${what} as the value must be ${expected} for typecode '${k.code}': current value is ${show(v)}`,
  );
}

function fromRaw(k: Kind, raw: number | bigint): unknown {
  if (k.kind === "char" || k.kind === "unichar") return String.fromCodePoint(raw as number);
  return raw;
}

type ViewConstructor = new (buffer: SharedArrayBuffer, offset: number, length: number) => SharedTypedArray;

function viewOf(k: Kind, buffer: SharedArrayBuffer, length: number): SharedTypedArray {
  return new (k.ctor as unknown as ViewConstructor)(buffer, 0, length);
}

function load(k: Kind, view: SharedTypedArray, i: number): number | bigint {
  // deno-lint-ignore no-explicit-any
  return k.atomic ? Atomics.load(view as any, i) : view[i];
}

function store(k: Kind, view: SharedTypedArray, i: number, raw: number | bigint): void {
  // deno-lint-ignore no-explicit-any
  if (k.atomic) Atomics.store(view as any, i, raw as any);
  else (view as Float64Array)[i] = raw as number;
}

function makeLock(option: unknown, what: string): Lock | RLock | undefined {
  if (option === undefined || option === true) return new RLock();
  if (option === false) return undefined;
  if (option instanceof Lock || option instanceof RLock) return option;
  throw new TypeError(
    `Cannot create ${what} as 'lock' must be a boolean, a Lock or an RLock: current value is ${show(option)}`,
  );
}

function checkSharedOptions(options: unknown, what: string): SharedOptions {
  return checkOptions<SharedOptions>(options, `create ${what}`) ?? {};
}

function noLock(what: string): Error {
  return new Error(`${what} was created with { lock: false } and has no lock`);
}

/** What a shared value or array sends to another thread. */
interface Wire {
  code: string;
  buffer: SharedArrayBuffer;
  length: number;
  lock: unknown;
}

/**
 * Python's `multiprocessing.Value`: one number (or character) in shared
 * memory, with a lock for compound updates.
 *
 * @typeParam C The typecode, which fixes the type of `.value`.
 *
 * @example
 * ```ts
 * import { SharedValue } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const v = new SharedValue("d", 1.5);
 * v.value *= 2;
 * assert.equal(v.value, 3);
 * const big = new SharedValue("q", 2n ** 40n);
 * assert.equal(big.value, 1099511627776n);
 * ```
 */
export class SharedValue<C extends ElementType = ElementType> {
  #kind: Kind;
  #view: SharedTypedArray;
  #lock: Lock | RLock | undefined;

  static {
    registerHandler<SharedValue, Wire>({
      tag: "SharedValue",
      canHandle: (v): v is SharedValue => v instanceof SharedValue,
      serialize: (v, path) => ({
        code: v.#kind.code,
        buffer: v.#view.buffer as SharedArrayBuffer,
        length: 1,
        lock: v.#lock ? pack(v.#lock, `${path}.lock`).data : null,
      }),
      deserialize: (data) => {
        const v = new SharedValue("B", undefined, { lock: false }) as SharedValue;
        v.#kind = kindFromCode(data.code);
        v.#view = viewOf(v.#kind, data.buffer, 1);
        v.#lock = data.lock === null ? undefined : unpack(data.lock, true) as Lock | RLock;
        return v;
      },
    });
  }

  /**
   * Creates a shared value.
   *
   * @param typecode A Python typecode (`"i"`, `"d"`, `"q"`, …) or a TypedArray constructor.
   * @param initial The first value. @default {0}
   * @param options `lock`: `true` (a new `RLock`), a `Lock`/`RLock`, or `false`.
   * @throws {TypeError} for an unknown typecode, a value that does not fit
   *   the type (`1.5` for `"i"`), or a bad `lock` option.
   */
  constructor(typecode: C, initial?: InputOf<C>, options?: SharedOptions) {
    const what = "SharedValue";
    this.#kind = kindOf(typecode, what);
    const opts = checkSharedOptions(options, what);
    const k = this.#kind;
    const raw = initial === undefined ? (k.kind === "bigint" ? 0n : 0) : toRaw(k, initial, `create ${what}`);
    this.#view = viewOf(k, new SharedArrayBuffer(8), 1);
    store(k, this.#view, 0, raw);
    this.#lock = makeLock(opts.lock, what);
  }

  /** The typecode (or TypedArray name) this value was created with. */
  get typecode(): string {
    return this.#kind.code;
  }

  /**
   * The value. Reads and writes are each atomic for integer types; use
   * `getLock()` around read-modify-write updates such as `+=`.
   *
   * @throws {TypeError} (on set) when the value does not fit the type.
   */
  get value(): ElementOf<C> {
    return fromRaw(this.#kind, load(this.#kind, this.#view, 0)) as ElementOf<C>;
  }
  /**
   * Stores a new value, atomically for integer types.
   *
   * @param v The value, of the typecode's kind: an integer (or boolean) for an integer type, a `bigint` or an integer
   * for `"q"` and `"Q"`, a number for a float type, a one-character string for `"c"` and `"u"`.
   * @throws {TypeError} when the value does not fit the type.
   */
  set value(v: InputOf<C>) {
    store(this.#kind, this.#view, 0, toRaw(this.#kind, v, "set SharedValue.value"));
  }

  /**
   * The lock that guards this value (Python's `get_lock()`).
   *
   * @returns The `RLock` created for it, or the lock passed in `options`.
   * @throws {Error} when the value was created with `{ lock: false }`.
   *
   * @example
   * ```ts
   * import { SharedValue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const v = new SharedValue("i", 1);
   * {
   *   using _ = v.getLock().scopedSync();
   *   v.value += 1;
   * }
   * assert.equal(v.value, 2);
   * assert.throws(() => new SharedValue("i", 0, { lock: false }).getLock(), /no lock/);
   * ```
   */
  getLock(): Lock | RLock {
    if (!this.#lock) throw noLock("This SharedValue");
    return this.#lock;
  }

  /**
   * The raw shared memory (Python's `get_obj()`): a typed array of length 1
   * over the value's bytes, with no locking.
   *
   * @returns The typed array.
   *
   * @example
   * ```ts
   * import { SharedValue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const v = new SharedValue(Int32Array, 7);
   * assert.equal(v.getObj()[0], 7);
   * ```
   */
  getObj(): SharedTypedArray {
    return this.#view;
  }

  /** `SharedValue('i', 3)`, as Python's `repr` would say `c_int(3)`. */
  toString(): string {
    return `SharedValue(${JSON.stringify(this.#kind.code)}, ${show(this.value)})`;
  }
}

/**
 * Python's `multiprocessing.Array`: a fixed-length array of numbers (or
 * characters) in shared memory, with a lock for compound updates.
 *
 * Indexes may be negative, counting from the end as in Python.
 *
 * @typeParam C The typecode, which fixes the element type.
 *
 * @example
 * ```ts
 * import { SharedArray } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const a = new SharedArray("i", [1, 2, 3]);
 * a.set(0, 10);
 * assert.equal(a.get(-1), 3);
 * assert.deepEqual([...a], [10, 2, 3]);
 * const zeros = new SharedArray(Float64Array, 4);
 * assert.deepEqual(zeros.toArray(), [0, 0, 0, 0]);
 * ```
 */
export class SharedArray<C extends ElementType = ElementType> {
  #kind: Kind;
  #view: SharedTypedArray;
  #lock: Lock | RLock | undefined;

  static {
    registerHandler<SharedArray, Wire>({
      tag: "SharedArray",
      canHandle: (v): v is SharedArray => v instanceof SharedArray,
      serialize: (v, path) => ({
        code: v.#kind.code,
        buffer: v.#view.buffer as SharedArrayBuffer,
        length: v.#view.length,
        lock: v.#lock ? pack(v.#lock, `${path}.lock`).data : null,
      }),
      deserialize: (data) => {
        const a = new SharedArray("B", 0, { lock: false }) as SharedArray;
        a.#kind = kindFromCode(data.code);
        a.#view = viewOf(a.#kind, data.buffer, data.length);
        a.#lock = data.lock === null ? undefined : unpack(data.lock, true) as Lock | RLock;
        return a;
      },
    });
  }

  /**
   * Creates a shared array.
   *
   * @param typecode A Python typecode or a TypedArray constructor.
   * @param sizeOrInitial The length (filled with zeros), or the initial
   *   elements (any iterable; a string for `"c"` and `"u"`).
   * @param options `lock`: `true` (a new `RLock`), a `Lock`/`RLock`, or `false`.
   * @throws {RangeError} when the size is not an integer ≥ 0.
   * @throws {TypeError} for an unknown typecode or an element that does not fit.
   */
  constructor(typecode: C, sizeOrInitial: number | Iterable<InputOf<C>>, options?: SharedOptions) {
    const what = "SharedArray";
    const k = kindOf(typecode, what);
    this.#kind = k;
    const opts = checkSharedOptions(options, what);
    let items: unknown[] | undefined;
    let length: number;
    if (typeof sizeOrInitial === "number") {
      if (!Number.isInteger(sizeOrInitial) || sizeOrInitial < 0 || sizeOrInitial > 2 ** 31) {
        throw new RangeError(
          `Cannot create ${what} as 'size' must be an integer >= 0: current value is ${show(sizeOrInitial)}`,
        );
      }
      length = sizeOrInitial;
    } else if (
      sizeOrInitial !== null && typeof (sizeOrInitial as Iterable<unknown>)?.[Symbol.iterator] === "function"
    ) {
      items = [...sizeOrInitial as Iterable<unknown>];
      length = items.length;
    } else {
      throw new TypeError(
        `Cannot create ${what} as 'sizeOrInitial' must be a length or an iterable of elements: current value is ${
          show(sizeOrInitial)
        }`,
      );
    }
    const bytes = Math.max(8, Math.ceil((length * k.ctor.BYTES_PER_ELEMENT) / 8) * 8);
    const view = viewOf(k, new SharedArrayBuffer(bytes), length);
    if (items) {
      for (let i = 0; i < length; i++) {
        view[i] = toRaw(k, items[i], `create ${what} (element ${i})`) as never;
      }
    }
    this.#view = view;
    this.#lock = makeLock(opts.lock, what);
  }

  /** The typecode (or TypedArray name) this array was created with. */
  get typecode(): string {
    return this.#kind.code;
  }

  /** The number of elements. */
  get length(): number {
    return this.#view.length;
  }

  /**
   * A typed array over the shared memory (no locking; for `"c"` the bytes,
   * for `"u"` the code points).
   */
  get view(): SharedTypedArray {
    return this.#view;
  }

  #index(i: number, what: string): number {
    const n = this.#view.length;
    if (typeof i !== "number" || !Number.isInteger(i) || i < -n || i >= n) {
      throw new RangeError(
        `Cannot ${what} as the index must be an integer in [-${n}, ${n}): current value is ${show(i)}`,
      );
    }
    return i < 0 ? i + n : i;
  }

  /**
   * The element at `index` (negative counts from the end).
   *
   * @param index An integer in `[-length, length)`.
   * @returns The element.
   * @throws {RangeError} when `index` is out of range.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const a = new SharedArray("c", "hi");
   * assert.equal(a.get(1), "i");
   * assert.throws(() => a.get(2), RangeError);
   * ```
   */
  get(index: number): ElementOf<C> {
    const i = this.#index(index, "get SharedArray element");
    return fromRaw(this.#kind, load(this.#kind, this.#view, i)) as ElementOf<C>;
  }

  /**
   * Writes the element at `index` (negative counts from the end).
   *
   * @param index An integer in `[-length, length)`.
   * @param value A value of the array's type.
   * @throws {RangeError} when `index` is out of range.
   * @throws {TypeError} when `value` does not fit the type.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const a = new SharedArray("q", 2);
   * a.set(-1, 5n);
   * assert.deepEqual(a.toArray(), [0n, 5n]);
   * ```
   */
  set(index: number, value: InputOf<C>): void {
    const i = this.#index(index, "set SharedArray element");
    store(this.#kind, this.#view, i, toRaw(this.#kind, value, "set SharedArray element"));
  }

  /**
   * The lock that guards this array (Python's `get_lock()`).
   *
   * @returns The `RLock` created for it, or the lock passed in `options`.
   * @throws {Error} when the array was created with `{ lock: false }`.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const a = new SharedArray("i", 3);
   * a.getLock().acquireSync();
   * a.set(0, a.get(0) + 1);
   * a.getLock().release();
   * assert.equal(a.get(0), 1);
   * ```
   */
  getLock(): Lock | RLock {
    if (!this.#lock) throw noLock("This SharedArray");
    return this.#lock;
  }

  /**
   * The raw shared memory (Python's `get_obj()`): the same typed array as
   * {@linkcode SharedArray.view}.
   *
   * @returns The typed array.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const a = new SharedArray("i", [4, 5]);
   * assert.equal(a.getObj(), a.view);
   * ```
   */
  getObj(): SharedTypedArray {
    return this.#view;
  }

  /**
   * The elements, one by one (a live view: each is read when reached).
   *
   * @returns An iterator over the elements.
   */
  *[Symbol.iterator](): IterableIterator<ElementOf<C>> {
    for (let i = 0; i < this.#view.length; i++) {
      yield fromRaw(this.#kind, load(this.#kind, this.#view, i)) as ElementOf<C>;
    }
  }

  /**
   * A copy of the elements in a plain array (Python's `a[:]`).
   *
   * @returns A new array.
   *
   * @example
   * ```ts
   * import { SharedArray } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual(new SharedArray("u", "héllo").toArray().join(""), "héllo");
   * ```
   */
  toArray(): ElementOf<C>[] {
    return [...this];
  }

  /** `SharedArray('i', [1, 2, 3])`. */
  toString(): string {
    return `SharedArray(${JSON.stringify(this.#kind.code)}, [${this.toArray().map((v) => show(v)).join(", ")}])`;
  }
}
