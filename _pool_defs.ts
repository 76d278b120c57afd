// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The pool's function definitions: each function a pool runs is shipped to
 * each worker once, not once per task. The owner appends a function's
 * {@linkcode FnSpec} to the definitions buffer the first time a task names
 * it, and a task names it by its index there (`fnId`); a worker reads the
 * definitions up to the one it meets. Both sides use this file, so the
 * layout is written in one place.
 *
 * Layout (`defs`, a growable `SharedArrayBuffer` only the owner writes):
 * records of a 4-byte little-endian length and the codec bytes of a
 * `FnSpec`, each padded to 4 bytes. The owner publishes the bytes written
 * with an `Atomics.store` of `Cell.DEFS_LEN` before it puts any task that
 * names them (the ring's own `Atomics.store` of its tail orders the two).
 *
 * @module
 */

import { decode, encode } from "./_codec.ts";
import { Cell, type FnSpec } from "./_pool_protocol.ts";

/** Largest size of the definitions buffer. */
const DEFS_MAX = 64 << 20;

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

/** How a function is shipped: by name from `module` when there is one, else by its source text. */
export function specFor(fn: AnyFn, module: string | undefined, what: string): FnSpec {
  const name = fn.name;
  if (name.startsWith("bound ")) {
    throw new TypeError(
      `Cannot ship ${what} '${name}' to the pool: a bound function has no source to ship; export a function and pass 'module'`,
    );
  }
  if (module && name) return { kind: "module", module, exportName: name };
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(
      `Cannot ship ${what} '${name}' to the pool: it is a native function and has no source to ship; export a function and pass 'module'`,
    );
  }
  return { kind: "source", source, name };
}

/** The owner's side: publishes definitions and gives each function its `fnId`. */
export class FnDefs {
  /** The shared buffer the workers get. */
  readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(1 << 12, { maxByteLength: DEFS_MAX });
  #cells: Int32Array;
  #module: string | undefined;
  #length = 0;
  #count = 0;
  #byFn = new WeakMap<AnyFn, number>();
  #byKey = new Map<string, number>();

  /**
   * @param cells The pool's shared cells (`Cell.DEFS_LEN` is published there).
   * @param module Where functions are looked up by name, if anywhere.
   */
  constructor(cells: Int32Array, module: string | undefined) {
    this.#cells = cells;
    this.#module = module;
  }

  /** How `fn` is shipped (see {@linkcode specFor}). */
  specFor(fn: AnyFn, what: string): FnSpec {
    return specFor(fn, this.#module, what);
  }

  /** The definition index of `fn`, publishing its definition the first time. */
  idOf(fn: AnyFn): number {
    const known = this.#byFn.get(fn);
    if (known !== undefined) return known;
    const spec = this.specFor(fn, "function");
    const key = spec.kind === "module" ? `m:${spec.exportName}` : `s:${spec.source}`;
    let id = this.#byKey.get(key);
    if (id === undefined) {
      this.#append(encode(spec, "function"));
      id = this.#count++;
      this.#byKey.set(key, id);
    }
    this.#byFn.set(fn, id);
    return id;
  }

  #append(bytes: Uint8Array): void {
    const defs = this.buffer;
    const at = this.#length;
    const end = at + ((4 + bytes.length + 3) & ~3);
    if (end > defs.byteLength) {
      if (end > DEFS_MAX) throw new RangeError("Cannot ship more functions to the pool: 64 MiB of definitions");
      defs.grow(Math.min(DEFS_MAX, Math.max(end, defs.byteLength * 2)));
    }
    new DataView(defs).setUint32(at, bytes.length, true);
    new Uint8Array(defs).set(bytes, at + 4);
    this.#length = end;
    Atomics.store(this.#cells, Cell.DEFS_LEN, end);
  }
}

/** A worker's side: reads the published definitions in order. */
export class DefsReader {
  #defs: SharedArrayBuffer;
  #cells: Int32Array;
  #read = 0;

  /**
   * @param defs The definitions buffer.
   * @param cells The pool's shared cells.
   */
  constructor(defs: SharedArrayBuffer, cells: Int32Array) {
    this.#defs = defs;
    this.#cells = cells;
  }

  /** The next published definition, or `undefined` when none is left. */
  next(): FnSpec | undefined {
    const end = Atomics.load(this.#cells, Cell.DEFS_LEN);
    const at = this.#read;
    if (at >= end) return undefined;
    const len = new DataView(this.#defs).getUint32(at, true);
    this.#read += (4 + len + 3) & ~3;
    return decode(new Uint8Array(this.#defs).slice(at + 4, at + 4 + len)) as FnSpec;
  }
}
