// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/ring_test.ts. Workers import this module by URL, so it
// must stay free of side effects at its top level.

import { Ring, type RingMemory, RingStatus, setStopHook, type StopPoint, type Taken } from "../../_ring.ts";

export const url: string = import.meta.url;

/** `report[0]` of {@linkcode stopAt}: the thread stopped at its point. */
export const STOPPED = 1;
/** `report[0]` of {@linkcode stopAt}: the operation ended without passing the point. */
export const PASSED = 2;
/** `report[0]` of a waiter: about to wait for the lock. */
export const WAITING = 1;
/** `report[0]` of a waiter: its operation is done. */
export const DONE = 2;

/** Record `i`: `size` bytes, the first four holding `i`, the rest a pattern of `i`. */
export function record(i: number, size: number): Uint8Array {
  const a = new Uint8Array(size);
  for (let k = 4; k < size; k++) a[k] = (i * 7 + k) & 0xff;
  new DataView(a.buffer).setInt32(0, i);
  return a;
}

/** The number of a record made by {@linkcode record}, or -1 when its bytes are damaged. */
export function recordNumber(bytes: Uint8Array, length: number): number {
  if (length < 4) return -1;
  const i = new DataView(bytes.buffer, bytes.byteOffset).getInt32(0);
  for (let k = 4; k < length; k++) if (bytes[k] !== ((i * 7 + k) & 0xff)) return -1;
  return i;
}

/**
 * Puts record `i` of `size` bytes (op "put") or takes one (op "take") and
 * stops for ever at `point`, holding the ring's lock as a thread killed
 * there would. `report[0]` becomes {@linkcode STOPPED} there, or
 * {@linkcode PASSED} if the operation ended without passing the point.
 */
export function stopAt(
  memory: RingMemory,
  op: "put" | "take",
  point: StopPoint,
  i: number,
  size: number,
  report: Int32Array,
): void {
  const ring = Ring.from(memory);
  setStopHook((p) => {
    if (p !== point) return;
    Atomics.store(report, 0, STOPPED);
    Atomics.notify(report, 0);
    for (;;) Atomics.wait(report, 0, STOPPED);
  });
  if (op === "put") ring.put(record(i, size), 0, true);
  else ring.take(true);
  setStopHook(undefined);
  Atomics.store(report, 0, PASSED);
  Atomics.notify(report, 0);
}

/**
 * Puts record `i` of `size` bytes, waiting for the lock blocking (`sync`:
 * `put(…, true)`) or not (`async`: `putAsync` with no time for room).
 * `report[0]` becomes {@linkcode WAITING} just before, {@linkcode DONE}
 * after, with the put's result in `report[1]`.
 */
export async function putWaiter(
  memory: RingMemory,
  mode: "sync" | "async",
  i: number,
  size: number,
  report: Int32Array,
): Promise<void> {
  const ring = Ring.from(memory);
  const bytes = record(i, size);
  Atomics.store(report, 0, WAITING);
  const status = mode === "sync" ? ring.put(bytes, 0, true) : await ring.putAsync(bytes, 0, 0);
  Atomics.store(report, 1, status);
  Atomics.store(report, 0, DONE);
  Atomics.notify(report, 0);
}

/**
 * Takes one record, waiting for the lock as {@linkcode putWaiter} does.
 * `report[0]` becomes {@linkcode WAITING} just before, {@linkcode DONE}
 * after, with the record's number in `report[1]` (-1 when damaged, or the
 * negated status `EMPTY` / `CLOSED`).
 */
export async function takeWaiter(memory: RingMemory, mode: "sync" | "async", report: Int32Array): Promise<void> {
  const ring = Ring.from(memory);
  Atomics.store(report, 0, WAITING);
  const got = mode === "sync" ? ring.take(true) : await takeCopy(ring, 0);
  Atomics.store(report, 1, typeof got === "number" ? -got : recordNumber(got.bytes, got.length));
  Atomics.store(report, 0, DONE);
  Atomics.notify(report, 0);
}

/**
 * Takes one record with `takeAsync`, waiting up to `timeout` ms, copied out
 * of the scratch buffer; or the status.
 */
export async function takeCopy(ring: Ring, timeout: number, signal?: AbortSignal): Promise<Taken | number> {
  let got: Taken | undefined;
  const status = await ring.takeAsync(
    (t) => {
      got = { kind: t.kind, bytes: t.bytes.slice(0, t.length), length: t.length };
    },
    timeout,
    signal,
  );
  return got ?? status;
}

/**
 * Puts records `from`, `from + 1`, … (`n` of them, sizes cycling through
 * `sizes`), blocking (`sync`) or not (`async`) while a lock is taken or the
 * ring is full; then closes the ring when `close` is set.
 */
export async function produce(
  memory: RingMemory,
  mode: "sync" | "async",
  from: number,
  n: number,
  sizes: number[],
  close: boolean,
): Promise<void> {
  const ring = Ring.from(memory);
  for (let k = 0; k < n; k++) {
    const i = from + k;
    const bytes = record(i, sizes[i % sizes.length]);
    const status = mode === "sync" ? ring.putSync(bytes, 0, Infinity) : await ring.putAsync(bytes, 0, Infinity);
    if (status !== RingStatus.OK) throw new Error(`unexpected put result ${status}`);
  }
  if (close) ring.close();
}

/**
 * Takes records until the ring is closed and drained, blocking (`sync`) or
 * not (`async`), counting each number `i` in `counts[i]` and damaged or
 * out-of-order ones (for the same producer, numbers `per` apart) in
 * `counts[errorsAt]`.
 */
export async function consume(
  memory: RingMemory,
  mode: "sync" | "async",
  counts: Int32Array,
  per: number,
  errorsAt: number,
): Promise<void> {
  const ring = Ring.from(memory);
  const last = new Map<number, number>();
  for (;;) {
    const got = mode === "sync" ? ring.takeSync(Infinity) : await takeCopy(ring, Infinity);
    if (got === RingStatus.CLOSED) return;
    if (typeof got === "number") throw new Error(`unexpected take result ${got}`);
    const i = recordNumber(got.bytes, got.length);
    if (i < 0) {
      Atomics.add(counts, errorsAt, 1);
      continue;
    }
    const p = Math.floor(i / per);
    if ((last.get(p) ?? -1) >= i) Atomics.add(counts, errorsAt, 1);
    last.set(p, i);
    Atomics.add(counts, i, 1);
  }
}

/** `gate[k]` of {@linkcode pauseAt}: the thread waits at `points[k]`. */
export const PAUSED = 1;
/** `gate[k]` of {@linkcode pauseAt}: set by the test to let the thread go on. */
export const RELEASED = 2;

/**
 * Makes this thread wait at each of `points` the first time it passes it:
 * `gate[k]` becomes {@linkcode PAUSED} there, and the thread goes on once
 * `gate[k]` is {@linkcode RELEASED}.
 */
export function pauseAt(points: StopPoint[], gate: Int32Array): void {
  setStopHook((p) => {
    const k = points.indexOf(p);
    if (k < 0 || Atomics.load(gate, k) !== 0) return;
    Atomics.store(gate, k, PAUSED);
    Atomics.notify(gate, k);
    while (Atomics.load(gate, k) === PAUSED) Atomics.wait(gate, k, PAUSED);
  });
}

/** Blocks until `gate[k]` is `value`; throws after 15 s. */
export function awaitGate(gate: Int32Array, k: number, value: number): void {
  const end = performance.now() + 15_000;
  for (let v = Atomics.load(gate, k); v !== value; v = Atomics.load(gate, k)) {
    if (performance.now() > end) throw new Error(`gate ${k} never became ${value}`);
    Atomics.wait(gate, k, v, 100);
  }
}

/** Sets `gate[k]` to {@linkcode RELEASED}. */
export function release(gate: Int32Array, k: number): void {
  Atomics.store(gate, k, RELEASED);
  Atomics.notify(gate, k);
}

/** Sets `ready[0]` to 1 (the thread runs), sleeps `ms`, then puts record `i`. */
export function putLater(memory: RingMemory, ms: number, i: number, ready: Int32Array): void {
  Atomics.store(ready, 0, 1);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  Ring.from(memory).put(record(i, 8), 0, true);
}

/**
 * Puts record `i`, waiting at `put:counted` (the record is published, the
 * lock still held) and at `wake:unheard` as {@linkcode pauseAt} says.
 */
export function putPaused(memory: RingMemory, i: number, gate: Int32Array): void {
  pauseAt(["put:counted", "wake:unheard"], gate);
  Ring.from(memory).put(record(i, 8), 0, true);
  setStopHook(undefined);
}

/**
 * The conductor of the "count moved back" window (see "Wake-ups" in
 * `_ring.ts`): `producer` is a {@linkcode putPaused} thread's gate,
 * `consumer` the waiting thread's (`wait:counted`); `steps[0]` becomes 1 once
 * the record the producer published is taken, `steps[1]` once the second
 * put is made.
 */
export function conductMovedBack(memory: RingMemory, producer: Int32Array, consumer: Int32Array, steps: Int32Array) {
  const ring = Ring.from(memory);
  awaitGate(producer, 0, PAUSED); // record 1 is published, the producer has not looked for waiters yet
  const got = ring.take(true);
  if (typeof got === "number" || recordNumber(got.bytes, got.length) !== 1) throw new Error("record 1 not taken");
  Atomics.store(steps, 0, 1);
  Atomics.notify(steps, 0);
  awaitGate(consumer, 0, PAUSED); // the consumer is counted, has not read the bell
  release(producer, 0); // it moves the consumer's count, rings, and notify finds nobody parked
  awaitGate(producer, 1, PAUSED);
  release(consumer, 0); // it reads the rung bell, sees no new record and parks
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  ring.put(record(2, 8), 0, true); // sees nobody counted: no wake-up of its own
  Atomics.store(steps, 1, 1);
  release(producer, 1); // moves the count back, and must ring again
}
