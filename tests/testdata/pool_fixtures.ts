// Copyright the @mpjs/multiprocessing authors. MIT license.
// Task functions for tests/pool_test.ts. Pool workers import this module by
// URL, so it must stay free of side effects at its top level.

import { currentProcess, Event, Lock, Queue } from "../../mod.ts";

export const url: string = import.meta.url;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `a + b`. */
export function add(a: number, b: number): number {
  return a + b;
}

/** `x * x`. */
export function square(x: number): number {
  return x * x;
}

/** `x * x`, after `ms` milliseconds. */
export async function slowSquare(x: number, ms: number): Promise<number> {
  await sleep(ms);
  return x * x;
}

/** {@linkcode slowSquare} taking its arguments as one array (for `imap`). */
export function slowSquareArgs([x, ms]: [number, number]): Promise<number> {
  return slowSquare(x, ms);
}

/** Sleeps `ms` milliseconds, then returns `value`. */
export async function nap(ms: number, value?: unknown): Promise<unknown> {
  await sleep(ms);
  return value;
}

/** Busy-waits `ms` milliseconds (holds its worker), then returns `value`. */
export function busy(ms: number, value?: unknown): unknown {
  const end = performance.now() + ms;
  while (performance.now() < end);
  return value;
}

/** Blocks its thread in a wait of this library for `ms` (on Deno, a stop request reaches a worker there, not in a raw Atomics.wait). */
export function park(ms: number): void {
  new Event().waitSync(ms);
}

/** Throws a TypeError. */
export function failWithTypeError(message: string): never {
  throw new TypeError(message);
}

/** Fails on `x === bad`, else returns `x`. */
export function failOn(x: number, bad: number): number {
  if (x === bad) throw new RangeError(`bad item ${x}`);
  return x;
}

/** Ends the worker it runs in, as `process.exit` does. */
export function exitWorker(code: number): void {
  // deno-lint-ignore no-explicit-any
  (globalThis as any).process.exit(code);
}

/** Crashes its worker with an uncaught error thrown from a timer. */
export function crashLater(): Promise<void> {
  setTimeout(() => {
    throw new Error("crash from a timer");
  }, 0);
  return sleep(10_000);
}

/** The worker's `{ name, ident }`. */
export function whoAmI(): { name: string; ident: number } {
  const { name, ident } = currentProcess();
  return { name, ident };
}

/**
 * Counts itself in `cells[0]` and holds its worker until `n` tasks have
 * counted themselves (or `ms` pass), then returns the worker's ident: `n`
 * tasks run at once only on `n` different workers.
 */
export function meet(cells: Int32Array, n: number, ms = 10_000): number {
  Atomics.add(cells, 0, 1);
  const end = performance.now() + ms;
  while (Atomics.load(cells, 0) < n && performance.now() < end);
  return currentProcess().ident;
}

let calls = 0;
/** How many times this function ran in this worker (module state survives between tasks). */
export function countCalls(): number {
  return ++calls;
}

/** Initializer: stores `value` for {@linkcode readInit}. */
export function setInit(value: unknown): void {
  // deno-lint-ignore no-explicit-any
  (globalThis as any).__poolInit = value;
}

/** What the initializer stored. */
export function readInit(): unknown {
  // deno-lint-ignore no-explicit-any
  return (globalThis as any).__poolInit;
}

/** An initializer that fails. */
export function badInit(): void {
  throw new Error("initializer says no");
}

/** Adds 1 to `cells[i]` (shared memory the test reads). */
export function bump(cells: Int32Array, i: number): number {
  return Atomics.add(cells, i, 1) + 1;
}

/** Returns something that cannot cross threads. */
export function returnFunction(): unknown {
  return { cb: () => 1 };
}

/** Puts `0 .. n-1` into `q` (the seed's `write`). */
export async function writeQueue(q: Queue<number>, n: number): Promise<number> {
  for (let i = 0; i < n; i++) await q.put(i);
  return n;
}

/** A new queue holding `x`, and a new lock held by this worker: handles made in a worker, returned. */
export function makeHandles(x: string): { q: Queue<string>; lock: Lock } {
  const q = new Queue<string>();
  q.putSync(x);
  const lock = new Lock();
  lock.acquireSync();
  return { q, lock };
}

/** Takes `n` items from `q` (the seed's `read`). */
export async function readQueue(q: Queue<number>, n: number): Promise<number[]> {
  const got: number[] = [];
  for (let i = 0; i < n; i++) got.push(await q.get());
  return got;
}

/** Echoes its arguments. */
export function echo(...args: unknown[]): unknown[] {
  return args;
}

/** `x * 2`, except a string for multiples of 1000 (a chunk whose results are not all numbers). */
export function doubleOrLabel(x: number): number | string {
  return x % 1000 === 999 ? `#${x}` : x * 2;
}

/** `x * 2`, as a Promise from item 1500 on (a chunk that turns asynchronous part-way). */
export function doubleLaterAsync(x: number): number | Promise<number> {
  return x < 1500 ? x * 2 : Promise.resolve(x * 2);
}

/** `-x`, throwing on `x === bad`. */
export function negateOrFail(x: number, bad = 2500): number {
  if (x === bad) throw new RangeError(`bad item ${x}`);
  return -x;
}

/**
 * Initializer: the first worker to take a task record after `cells[0]` is
 * set ends at once, before it records which task it took (through the pool
 * worker's fault-injection hook).
 */
export function dieAfterTake(cells: Int32Array): void {
  (globalThis as Record<symbol, unknown>)[Symbol.for("@mpjs/multiprocessing/pool.afterTake")] = () => {
    if (Atomics.load(cells, 0) === 1 && Atomics.compareExchange(cells, 1, 0, 1) === 0) {
      (globalThis as unknown as { process: { exit(code: number): void } }).process.exit(3);
    }
  };
}

/** Returns `value`, and ends its worker `ms` later from a timer (`Deno.exit` on Deno, else `process.exit`). */
export function exitLater(value: unknown, ms: number): unknown {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  setTimeout(() => g.Deno ? g.Deno.exit(4) : g.process.exit(4), ms);
  return value;
}

/**
 * Initializer: the first worker that passes `point` of the pool worker's
 * loop (through its fault-injection hook) while `cells[0]` is 1 clears it
 * and ends there; `cells[1]` counts those ends.
 */
export function dieAt(cells: Int32Array, point: string): void {
  (globalThis as Record<symbol, unknown>)[Symbol.for("@mpjs/multiprocessing/pool.atPoint")] = (at: string) => {
    if (at === point && Atomics.compareExchange(cells, 0, 1, 0) === 1) {
      Atomics.add(cells, 1, 1);
      (globalThis as unknown as { process: { exit(code: number): void } }).process.exit(3);
    }
  };
}
