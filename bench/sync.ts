// Copyright the @mpjs/multiprocessing authors. MIT license.
// Synchronization primitives (sync.ts) against a plain Atomics baseline:
//   - uncontended Lock.acquireSync() + release(): ns per pair
//   - contended hand-off between two threads: a ping-pong over two locks used
//     as binary semaphores, median µs per one-way hand-off
//   - Event set → wake: a ping-pong over two events, median µs one way
// The "atomics" rows do the same with bare Atomics (compareExchange/store;
// Atomics.wait/notify with no spinning). Python's peer is bench/sync.py.
//   deno run -A bench/sync.ts | bun bench/sync.ts | node npm/bench/sync.js

import { Event, isMainThread, Lock, Thread } from "../mod.ts";

/** The other side of the lock ping-pong: takes `ping`, gives `pong`, `n` times. */
export function lockPong(ping: Lock, pong: Lock, n: number): void {
  for (let i = 0; i < n; i++) {
    ping.acquireSync();
    pong.release();
  }
}

/** The other side of the event ping-pong. */
export function eventPong(ping: Event, pong: Event, n: number): void {
  for (let i = 0; i < n; i++) {
    ping.waitSync();
    ping.clear();
    pong.set();
  }
}

/** The other side of the bare-Atomics ping-pong: `c[0]` is ping, `c[1]` is pong. */
export function atomicsPong(c: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    while (Atomics.load(c, 0) === 0) Atomics.wait(c, 0, 0);
    Atomics.store(c, 0, 0);
    Atomics.store(c, 1, 1);
    Atomics.notify(c, 1, 1);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(c: string, impl: string, value: number, unit: string): void {
  const digits = value < 10 ? 3 : value < 100 ? 2 : 1;
  const line = { case: c, impl, median: Number(value.toFixed(digits)), unit, better: "lower" };
  console.log(`BENCH ${JSON.stringify(line)}`);
}

const UNCONTENDED = "uncontended acquire+release";
const HANDOFF = "contended hand-off";
const EVENT = "Event set→wake";

function uncontended(): void {
  const N = 2_000_000;
  const lock = new Lock();
  const raw = new Int32Array(new SharedArrayBuffer(16));
  const ours: number[] = [];
  const base: number[] = [];
  for (let round = 0; round < 7; round++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) {
      lock.acquireSync();
      lock.release();
    }
    ours.push(((performance.now() - t0) * 1e6) / N);
    t0 = performance.now();
    for (let i = 0; i < N; i++) {
      if (Atomics.compareExchange(raw, 0, 0, 1) !== 0) throw new Error("held");
      Atomics.store(raw, 0, 0);
    }
    base.push(((performance.now() - t0) * 1e6) / N);
  }
  report(UNCONTENDED, "mpjs", median(ours.slice(2)), "ns");
  report(UNCONTENDED, "atomics", median(base.slice(2)), "ns");
}

const BATCH = 200;
const BATCHES = 150;
const WARM = 20;

/** Runs `pong` in a thread for `rounds` round trips; `ping()` does one; returns µs per one-way hand-off. */
async function pingPong(
  // deno-lint-ignore no-explicit-any
  target: (...args: any[]) => void,
  args: unknown[],
  ping: () => void,
): Promise<number> {
  const rounds = (BATCHES + WARM) * BATCH;
  const t = new Thread({ target, args: [...args, rounds], module: import.meta.url });
  t.start();
  const samples: number[] = [];
  for (let b = 0; b < BATCHES + WARM; b++) {
    const t0 = performance.now();
    for (let i = 0; i < BATCH; i++) ping();
    if (b >= WARM) samples.push(((performance.now() - t0) * 1000) / (2 * BATCH));
  }
  await t.join();
  return median(samples);
}

async function handOff(): Promise<void> {
  const ping = new Lock();
  const pong = new Lock();
  ping.acquireSync();
  pong.acquireSync();
  const ours = await pingPong(lockPong, [ping, pong], () => {
    ping.release();
    pong.acquireSync();
  });
  report(HANDOFF, "mpjs", ours, "µs");
  const c = new Int32Array(new SharedArrayBuffer(8));
  report(HANDOFF, "atomics", await atomicsPingPong(c), "µs");
}

function atomicsPingPong(c: Int32Array): Promise<number> {
  return pingPong(atomicsPong, [c], () => {
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0, 1);
    while (Atomics.load(c, 1) === 0) Atomics.wait(c, 1, 0);
    Atomics.store(c, 1, 0);
  });
}

async function eventWake(): Promise<void> {
  const ping = new Event();
  const pong = new Event();
  const ours = await pingPong(eventPong, [ping, pong], () => {
    ping.set();
    pong.waitSync();
    pong.clear();
  });
  report(EVENT, "mpjs", ours, "µs");
  const c = new Int32Array(new SharedArrayBuffer(8));
  report(EVENT, "atomics", await atomicsPingPong(c), "µs");
}

if (isMainThread) {
  uncontended();
  await handOff();
  await eventWake();
}
