// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/queue_test.ts. Workers import this module by URL, so it
// must stay free of side effects at its top level.

import { ClosedError, type JoinableQueue, type Queue, type SimpleQueue } from "../../mod.ts";
import { setStopHook, type StopPoint } from "../../_ring.ts";

export const url: string = import.meta.url;

/**
 * A stress item: producer `p`, its sequence number `i`, padding of varying
 * length, and on every third item a `Map` (so the codec's structured form
 * mixes with its plain form in one ring).
 */
export interface Item {
  p: number;
  i: number;
  pad: string;
  m?: Map<string, number>;
}

/** Item `i` of producer `p`. */
export function makeItem(p: number, i: number): Item {
  const item: Item = { p, i, pad: padFor(i) };
  if (i % 3 === 1) item.m = new Map([["i", i]]);
  return item;
}

/** Whether `item` is intact: its padding, and its `Map` where it should have one. */
export function intact(item: Item): boolean {
  if (item.pad !== padFor(item.i)) return false;
  return item.i % 3 === 1 ? item.m instanceof Map && item.m.get("i") === item.i : item.m === undefined;
}

/** Padding whose length varies with `i`, so records wrap and the ring grows. */
export function padFor(i: number): string {
  return "x".repeat((i * 7919) % 700);
}

/** Puts `n` items of producer `p`, blocking (`putSync`) or awaiting (`put`). */
export async function produce(q: Queue<Item>, p: number, n: number, useAsync: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    const item = makeItem(p, i);
    if (useAsync) await q.put(item);
    else q.putSync(item);
  }
}

/**
 * Gets items until the queue is closed and drained, counting each in
 * `counts[p * n + i]`, checking padding, and counting in `counts[errorsAt]`
 * items seen out of order for their producer or damaged.
 */
export async function consume(
  q: Queue<Item>,
  counts: Int32Array,
  n: number,
  errorsAt: number,
  mode: "sync" | "async" | "iterate",
): Promise<void> {
  const last = new Map<number, number>();
  const check = (item: Item) => {
    Atomics.add(counts, item.p * n + item.i, 1);
    if ((last.get(item.p) ?? -1) >= item.i || !intact(item)) Atomics.add(counts, errorsAt, 1);
    last.set(item.p, item.i);
  };
  if (mode === "iterate") {
    for await (const item of q) check(item);
    return;
  }
  for (;;) {
    let item: Item;
    try {
      item = mode === "sync" ? q.getSync() : await q.get();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    check(item);
  }
}

/** Byte `k` of large item `i`. */
function byteOf(i: number, k: number): number {
  return (i * 31 + k) & 0xff;
}

/** A large item numbered `i`: its first 4 bytes hold `i`, the rest a pattern. */
export function bigItem(i: number, size: number): Uint8Array {
  const a = new Uint8Array(size);
  for (let k = 4; k < size; k += 4093) a[k] = byteOf(i, k);
  a[size - 1] = byteOf(i, size - 1);
  new DataView(a.buffer).setInt32(0, i);
  return a;
}

/** The number of a large item, or -1 when its bytes are damaged. */
export function checkBigItem(a: Uint8Array, size: number): number {
  if (!(a instanceof Uint8Array) || a.length !== size) return -1;
  const i = new DataView(a.buffer, a.byteOffset).getInt32(0);
  for (let k = 4; k < size; k += 4093) if (a[k] !== byteOf(i, k)) return -1;
  if (a[size - 1] !== byteOf(i, size - 1)) return -1;
  return i;
}

/**
 * Puts large items 0, 1, 2, … for ever, storing in `done[0]` how many puts
 * have completed. For being terminated in the middle of a put.
 */
export function putForever(q: Queue<Uint8Array>, size: number, done: Int32Array): void {
  const a = bigItem(0, size);
  for (let i = 0;; i++) {
    const b = bigItem(i, 64);
    a.set(b.subarray(0, 4));
    for (let k = 4; k < size; k += 4093) a[k] = (i * 31 + k) & 0xff;
    a[size - 1] = (i * 31 + size - 1) & 0xff;
    q.putSync(a);
    Atomics.store(done, 0, i + 1);
  }
}

/**
 * Gets large items for ever, marking `seen[i]` for each and counting damaged
 * ones in `seen[0]` (item numbers start at 1). For being terminated in the
 * middle of a get.
 */
export function getForever(q: Queue<Uint8Array>, size: number, seen: Int32Array): void {
  for (;;) {
    const i = checkBigItem(q.getSync(), size);
    if (i < 1) Atomics.add(seen, 0, 1);
    else Atomics.add(seen, i, 1);
  }
}

/**
 * Waits in `getSync()` and reports in `out[0]`: 1 = got an item, 2 = ClosedError, 3 = other error;
 * `out[1]` (when there) becomes 1 just before it calls `getSync()`.
 */
export function getAndReport(q: Queue, out: Int32Array): void {
  if (out.length > 1) Atomics.store(out, 1, 1);
  try {
    q.getSync();
    Atomics.store(out, 0, 1);
  } catch (error) {
    Atomics.store(out, 0, error instanceof ClosedError ? 2 : 3);
  }
  Atomics.notify(out, 0);
}

/** Gets `n` items, marking each done after a short pause. */
export async function work(q: JoinableQueue<number>, n: number, out: Int32Array): Promise<void> {
  for (let k = 0; k < n; k++) {
    const x = await q.get();
    await new Promise((r) => setTimeout(r, 2));
    Atomics.add(out, 0, x);
    q.taskDone();
  }
}

/** Echoes items from `inbox` to `outbox` (each transformed) until `inbox` is closed. */
export async function echo(inbox: Queue<unknown>, outbox: SimpleQueue<unknown>): Promise<void> {
  for await (const x of inbox) await outbox.put({ echo: x });
}

/** Gets one item and puts back its length and a checksum of sampled bytes. */
export function measure(box: { inbox: Queue<Uint8Array>; outbox: Queue<number[]> }): void {
  const a = box.inbox.getSync();
  let sum = 0;
  for (let k = 0; k < a.length; k += 65521) sum = (sum + a[k]) | 0;
  box.outbox.putSync([a.length, sum, a[a.length - 1]]);
}

/** Says it is ready in `ready[0]`, then blocks in `getSync()` until an item arrives; for measuring idle CPU. */
export function idleGet(q: Queue, ready: Int32Array): unknown {
  Atomics.store(ready, 0, 1);
  return q.getSync();
}

/**
 * Gets one item per round until `q` is closed: waits for round `r` in
 * `go[0]`, counts itself in `parked[0]`, gets with `getSync()` (or `get()`
 * when `useAsync`), then counts the item in `got[0]`.
 */
export async function getPerRound(
  q: Queue<number>,
  go: Int32Array,
  parked: Int32Array,
  got: Int32Array,
  useAsync: boolean,
): Promise<void> {
  for (let r = 1;; r++) {
    while (Atomics.load(go, 0) < r) await new Promise((resolve) => setTimeout(resolve, 2));
    Atomics.add(parked, 0, 1);
    try {
      if (useAsync) await q.get();
      else q.getSync();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    Atomics.add(got, 0, 1);
  }
}

/** Gets `{ sab, view, dv }` and writes through all three, then says what it got. */
export function writeShared(
  q: Queue<{ sab: SharedArrayBuffer; view: Int32Array; dv: DataView }>,
  done: Queue<string>,
): void {
  const { sab, view, dv } = q.getSync();
  new Int32Array(sab)[0] = 1;
  view[0] = 2;
  dv.setInt32(0, 3, true);
  done.putSync(`${sab.constructor.name} ${view.constructor.name}(${view.length}) at ${view.byteOffset}`);
}

/**
 * Takes an item with `getSync()` and stops for ever at the ring's stop point
 * `point`, as a thread killed there would; `report[0]` becomes 1 there.
 */
export function takeAndStop(q: Queue, point: StopPoint, report: Int32Array): void {
  setStopHook((p) => {
    if (p !== point) return;
    Atomics.store(report, 0, 1);
    Atomics.notify(report, 0);
    for (;;) Atomics.wait(report, 0, 1);
  });
  q.getSync();
}
