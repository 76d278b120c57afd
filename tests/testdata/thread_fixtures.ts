// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/thread_test.ts. Workers import this module by URL, so it
// must stay free of side effects at its top level.

import {
  activeCount,
  cpuCount,
  currentThread,
  enumerate,
  type Event,
  getIdent,
  getNativeId,
  isMainThread,
  type Lock,
  mainThread,
  type Queue,
  Thread,
} from "../../mod.ts";

export const url: string = import.meta.url;

// A mailbox in shared memory: a thread writes a JSON text, the test reads it.
// Int32 0 holds the byte length (stored last), the text starts at byte 8.
const BOX_TEXT_AT = 8;

/** A fresh mailbox of `bytes` bytes. */
export function newBox(bytes = 1 << 16): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes);
}

/** Writes `value` (as JSON) into `box`. */
export function writeBox(box: SharedArrayBuffer, value: unknown): void {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  if (BOX_TEXT_AT + bytes.length > box.byteLength) throw new RangeError("box too small");
  new Uint8Array(box, BOX_TEXT_AT, bytes.length).set(bytes);
  Atomics.store(new Int32Array(box), 0, bytes.length);
}

/** What a thread wrote into `box`, or `undefined` if nothing yet. */
export function readBox(box: SharedArrayBuffer): unknown {
  const len = Atomics.load(new Int32Array(box), 0);
  if (len === 0) return undefined;
  return JSON.parse(new TextDecoder().decode(new Uint8Array(box, BOX_TEXT_AT, len).slice()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes `a + b` into `out[0]`. */
export function add(out: Int32Array, a: number, b: number): void {
  out[0] = a + b;
}

/** Waits `ms`, then writes `value` into `out[0]`: an awaited Promise target. */
export async function addLater(out: Int32Array, ms: number, value: number): Promise<void> {
  await sleep(ms);
  out[0] = value;
}

/** Sleeps for `ms` (a thread that stays alive for a while). */
export async function nap(ms: number): Promise<void> {
  await sleep(ms);
}

/**
 * Spins until `flag[0]` becomes non-zero (a thread busy in a loop, for
 * terminate); sets `flag[1]` (when there is one) to 1 once it spins.
 */
export function spinUntil(flag: Int32Array): void {
  if (flag.length > 1) Atomics.store(flag, 1, 1);
  while (Atomics.load(flag, 0) === 0) { /* busy */ }
}

/**
 * Holds `lock` for long stretches, adding to `cells[0]` all the while, in a
 * loop that never yields, until `cells[2]` is set; sets `cells[1]` once it
 * holds the lock the first time.
 */
export function countUnderLock(lock: Lock, cells: Int32Array): void {
  while (Atomics.load(cells, 2) === 0) {
    lock.acquireSync();
    Atomics.store(cells, 1, 1);
    for (let i = 0; i < 200_000 && Atomics.load(cells, 2) === 0; i++) Atomics.add(cells, 0, 1);
    lock.release();
  }
}

/**
 * Counts in `cells[0]` forever, waiting 1 ms on `event` (never set) between
 * counts: every turn passes through a library wait, where a stop request
 * ends the thread.
 */
export function countBetweenWaits(event: Event, cells: Int32Array): void {
  for (let i = 1;; i++) {
    event.waitSync(1);
    Atomics.store(cells, 0, i);
  }
}

/** Throws an error with a `code`, a custom field and a `cause`, as Node's system errors do. */
export function throwWithFields(): never {
  const cause = Object.assign(new RangeError("inner"), { code: "E_INNER" });
  throw Object.assign(new Error("outer", { cause }), { code: "E_OUTER", retries: 3, detail: { path: "/x" } });
}

/** A subclass that keeps the default name. */
export class Squarer extends Thread {
  constructor() {
    super({ module: url });
  }
}

/** Writes the default name of a new thread made here, and of a new `Squarer`, into `box`. */
export function defaultNames(box: SharedArrayBuffer): void {
  writeBox(box, [new Thread().name, new Squarer().name]);
}

/** Waits in `q.getSync()` for an item that never comes. */
export function getForever(q: Queue<number>): void {
  q.getSync();
}

/** Throws a `TypeError` from a named function, so the stack names it. */
export function throwTypeError(message: string): never {
  throw new TypeError(message);
}

/** Returns a Promise that rejects after a while. */
export async function rejectLater(message: string): Promise<void> {
  await sleep(10);
  throw new RangeError(message);
}

/** Reports what the thread knows of itself. */
export function whoAmI(box: SharedArrayBuffer): void {
  const me = currentThread();
  writeBox(box, {
    name: me.name,
    ident: me.ident,
    isMainThread,
    cpuCount: cpuCount(),
    activeCount: activeCount(),
    enumerate: enumerate().length,
  });
}

/** Starts a nested thread and reports what enumerate() and activeCount() see meanwhile. */
export async function startNested(box: SharedArrayBuffer): Promise<void> {
  const inner = new Thread({ target: nap, args: [300], module: url, name: "inner" });
  inner.start();
  const seen = { names: enumerate().map((t) => t.name), activeCount: activeCount(), innerIdent: inner.ident };
  await inner.join();
  writeBox(box, { ...seen, innerExitCode: inner.exitCode, afterJoin: enumerate().length });
}

/**
 * A deterministic description of a value, with the types of its parts, for
 * comparing what a thread received with what was sent. Objects are numbered
 * in the order met, so cycles and shared references show as `@n`.
 */
export function describe(value: unknown, seen: Map<object, number> = new Map()): string {
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "bigint":
      return `${value}n`;
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return String(value);
    case "object":
      break;
    default:
      return `<${typeof value}>`;
  }
  if (value === null) return "null";
  const known = seen.get(value);
  if (known !== undefined) return `@${known}`;
  const id = seen.size;
  seen.set(value, id);
  const d = (v: unknown) => describe(v, seen);
  if (Array.isArray(value)) return `#${id}[${value.map(d).join(",")}]`;
  if (value instanceof Map) return `#${id}Map{${[...value].map(([k, v]) => `${d(k)}=>${d(v)}`).join(",")}}`;
  if (value instanceof Set) return `#${id}Set{${[...value].map(d).join(",")}}`;
  if (value instanceof Date) return `#${id}Date(${value.getTime()})`;
  if (value instanceof RegExp) return `#${id}RegExp(/${value.source}/${value.flags})`;
  if (value instanceof Error) return `#${id}${value.name}(${JSON.stringify(value.message)})`;
  if (value instanceof ArrayBuffer) return `#${id}ArrayBuffer[${new Uint8Array(value).join(",")}]`;
  if (ArrayBuffer.isView(value)) {
    const items = value instanceof DataView
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : value as unknown as ArrayLike<unknown>;
    return `#${id}${value.constructor.name}[${Array.from(items, d).join(",")}]`;
  }
  const proto = Object.getPrototypeOf(value);
  const tag = proto === null ? "null-proto" : proto === Object.prototype ? "" : `<${proto.constructor?.name}>`;
  const entries = Object.keys(value).map((k) => `${JSON.stringify(k)}:${d((value as Record<string, unknown>)[k])}`);
  return `#${id}${tag}{${entries.join(",")}}`;
}

/** Writes {@linkcode describe} of the values it received into `box`. */
export function describeArgs(box: SharedArrayBuffer, ...values: unknown[]): void {
  writeBox(box, describe(values));
}

/** A plain object field of {@linkcode Counter}. */
export interface CounterConfig {
  label: string;
  steps: number[];
  nested: { deep: boolean };
}

/**
 * The seeds' "method two": a subclass that overrides `run()`. Its fields
 * travel to the worker, which rebuilds the instance and calls `run()`.
 */
export class Counter extends Thread {
  start0: number;
  config: CounterConfig;
  box: SharedArrayBuffer;
  tags: Map<string, number>;

  constructor(start0: number, config: CounterConfig, box: SharedArrayBuffer) {
    super({ module: url, name: `counter-${config.label}` });
    this.start0 = start0;
    this.config = config;
    this.box = box;
    this.tags = new Map([["a", 1]]);
  }

  /** Sums the steps from `start0` and reports what the rebuilt instance looks like. */
  override async run(): Promise<void> {
    await sleep(10);
    const total = this.config.steps.reduce((sum, x) => sum + x, this.start0);
    writeBox(this.box, {
      total,
      label: this.config.label,
      deep: this.config.nested.deep,
      tags: [...this.tags],
      name: this.name,
      ident: this.ident,
      alive: this.isAlive(),
      isCounter: this instanceof Counter,
      isThread: this instanceof Thread,
      current: currentThread().name,
      isMainThread,
    });
  }
}

/** A subclass whose `run()` throws. */
export class Failing extends Thread {
  reason: string;
  constructor(reason: string) {
    super({ module: url });
    this.reason = reason;
  }
  override run(): void {
    throw new Error(this.reason);
  }
}

/** A subclass with a `#private` field, which the rebuilt instance lacks. */
export class Secretive extends Thread {
  #secret = 41;
  out: Int32Array;
  constructor(out: Int32Array) {
    super({ module: url });
    this.out = out;
  }
  override run(): void {
    this.out[0] = this.#secret + 1;
  }
}

/** Starts a daemon thread that naps for `ms` and returns at once: its end must stop the daemon. */
export function startDaemonChild(box: SharedArrayBuffer, ms: number): void {
  const child = new Thread({ target: nap, args: [ms], module: url, daemon: true, name: "daemon-child" });
  child.start();
  writeBox(box, { ident: child.ident, alive: child.isAlive() });
}

/** Writes `value` into `out[0]`: a target that is the module's default export. */
export default function writeDefault(out: Int32Array, value: number): void {
  out[0] = value;
}

/** Records getIdent(), mainThread().ident, and 1 when the rest answers as in the main thread. */
export function identities(out: Int32Array): void {
  out[0] = getIdent();
  out[1] = mainThread().ident;
  out[2] = mainThread().name === "MainThread" && getNativeId() === getIdent() ? 1 : 0;
}
