// Copyright the @mpjs/multiprocessing authors. MIT license.
// Queue throughput: one producer (the main thread) → one consumer thread with
// small objects and with 16 MiB Float64Arrays, and 4 producer × 4 consumer
// threads; ours against raw postMessage to a worker (node:worker_threads,
// structured clone) in the same run. Python's multiprocessing.Queue peer:
// bench/queue.py. For large items, the "alloc+copy only" row bounds what any
// receiver can reach on this machine: a fresh array filled by a copy, and
// nothing else (a thread allocating and filling 16 MiB arrays in a loop).
//   deno run -A bench/queue.ts | bun bench/queue.ts | node npm/bench/queue.js

import { Worker as NodeWorker } from "node:worker_threads";
import { isMainThread, Queue, Thread } from "../mod.ts";
import { copyShared } from "../_codec.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const env = (k: string, d: number) => Number(g.process?.env?.[k] ?? d);
const SMALL_N = env("BENCH_SMALL_N", 200_000);
const BIG_N = env("BENCH_BIG_N", 12);
const MPMC_N = env("BENCH_MPMC_N", 200_000);
const REPS = env("BENCH_REPS", 5);
const BIG_BYTES = 16 * 1024 * 1024;
/** Which cases to run (comma-separated: small, big, mpmc); all by default. */
const CASES: string = g.process?.env?.BENCH_CASES ?? "small,big,mpmc";

type Small = { i: number; s: string };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(c: string, impl: string, samples: number[], unit: string): void {
  const m = median(samples);
  const line = {
    case: c,
    impl,
    median: unit === "GB/s" ? Number(m.toFixed(3)) : Math.round(m),
    unit,
    better: "higher",
  };
  console.log(`BENCH ${JSON.stringify(line)}`);
}

function waitAtLeast(cell: Int32Array, index: number, value: number): void {
  for (let v = Atomics.load(cell, index); v < value; v = Atomics.load(cell, index)) Atomics.wait(cell, index, v, 100);
}

// ---- thread targets -----------------------------------------------------------

/** Consumes `reps` rounds of `n` items, bumping `done[0]` after each round. */
export function consumeRounds(q: Queue<Small | Float64Array>, n: number, reps: number, done: Int32Array): void {
  let sum = 0;
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < n; k++) {
      const x = q.getSync();
      sum += x instanceof Float64Array ? x[0] : x.i;
    }
    Atomics.add(done, 0, 1);
    Atomics.notify(done, 0);
  }
  if (sum < 0) throw new Error("unreachable");
}

/** Waits for `flags[0]` to become `round`, then puts `n` small items, then bumps `flags[1]`. */
export function produceRounds(q: Queue<Small | null>, n: number, reps: number, flags: Int32Array): void {
  for (let r = 1; r <= reps; r++) {
    waitAtLeast(flags, 0, r);
    for (let i = 0; i < n; i++) q.putSync({ i, s: "hello" });
    Atomics.add(flags, 1, 1);
    Atomics.notify(flags, 1);
  }
}

/** Gets items until the queue is closed; a `null` ends a round: it bumps `flags[2]`. */
export function consumeUntilClosed(q: Queue<Small | null>, flags: Int32Array): void {
  let sum = 0;
  for (;;) {
    let x: Small | null;
    try {
      x = q.getSync();
    } catch {
      break; // closed
    }
    if (x === null) {
      Atomics.add(flags, 2, 1);
      Atomics.notify(flags, 2);
    } else {
      sum += x.i;
    }
  }
  if (sum < 0) throw new Error("unreachable");
}

/**
 * What any receiver of large items must do: `n` times per round, a new
 * array the size of `src`, filled from it (a `SharedArrayBuffer`, as our
 * consumer copies out of the ring), allocated the way the library allocates
 * its copies out of shared memory (`copyShared`: not zeroed first where the
 * runtime allows it). Bumps `done[0]` after each round.
 */
export function allocCopyRounds(src: SharedArrayBuffer, n: number, reps: number, done: Int32Array): void {
  const from = new Uint8Array(src);
  let sum = 0;
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < n; k++) {
      sum += copyShared(from)[k];
    }
    Atomics.add(done, 0, 1);
    Atomics.notify(done, 0);
  }
  if (sum < 0) throw new Error("unreachable");
}

// ---- cases ----------------------------------------------------------------------

async function oursOneToOne(n: number, reps: number, make: (i: number) => Small | Float64Array): Promise<number[]> {
  const q = new Queue<Small | Float64Array>(make(0) instanceof Float64Array ? 2 : 0);
  const done = new Int32Array(new SharedArrayBuffer(4));
  const t = new Thread({ target: consumeRounds, args: [q, n, reps + 1, done], module: import.meta.url });
  t.start();
  const secs: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) q.putSync(make(i));
    waitAtLeast(done, 0, r + 1);
    if (r > 0) secs.push((performance.now() - t0) / 1000); // round 0 warms up
  }
  await t.join();
  return secs;
}

/** The bound for large items: fresh memory filled by a copy, in a thread like our consumer (see allocCopyRounds). */
async function allocCopyOnly(n: number, reps: number): Promise<number[]> {
  const src = new SharedArrayBuffer(BIG_BYTES);
  new Float64Array(src).fill(1.5);
  const done = new Int32Array(new SharedArrayBuffer(4));
  const t = new Thread({ target: allocCopyRounds, args: [src, n, reps + 1, done], module: import.meta.url });
  const secs: number[] = [];
  let t0 = performance.now();
  t.start();
  for (let r = 0; r <= reps; r++) {
    waitAtLeast(done, 0, r + 1);
    const t1 = performance.now();
    if (r > 0) secs.push((t1 - t0) / 1000); // round 0 warms up (and starts the thread)
    t0 = t1;
  }
  await t.join();
  return secs;
}

async function postMessageOneToOne(
  n: number,
  reps: number,
  make: (i: number) => Small | Float64Array,
): Promise<number[]> {
  const w = new NodeWorker(new URL(`./workers/queue_sink_node${ext}`, import.meta.url));
  let next: ((m: unknown) => void) | undefined;
  w.on("message", (m) => next?.(m));
  const receive = () => new Promise<unknown>((r) => (next = r));
  const secs: number[] = [];
  for (let r = 0; r <= reps; r++) {
    w.postMessage({ expect: n });
    await receive();
    const done = receive();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) w.postMessage(make(i));
    await done;
    if (r > 0) secs.push((performance.now() - t0) / 1000);
  }
  await w.terminate();
  return secs;
}

async function oursManyToMany(p: number, c: number, total: number, reps: number): Promise<number[]> {
  const q = new Queue<Small | null>();
  const flags = new Int32Array(new SharedArrayBuffer(12)); // round, producers done, consumers done
  const per = Math.floor(total / p);
  const threads = [
    ...Array.from(
      { length: c },
      () => new Thread({ target: consumeUntilClosed, args: [q, flags], module: import.meta.url }),
    ),
    ...Array.from(
      { length: p },
      () => new Thread({ target: produceRounds, args: [q, per, reps + 1, flags], module: import.meta.url }),
    ),
  ];
  for (const t of threads) t.start();
  await new Promise((r) => setTimeout(r, 300)); // let them start
  const secs: number[] = [];
  for (let r = 1; r <= reps + 1; r++) {
    const t0 = performance.now();
    Atomics.store(flags, 0, r);
    Atomics.notify(flags, 0);
    waitAtLeast(flags, 1, r * p);
    for (let k = 0; k < c; k++) q.putSync(null);
    waitAtLeast(flags, 2, r * c);
    if (r > 1) secs.push((performance.now() - t0) / 1000);
  }
  q.close();
  for (const t of threads) await t.join();
  return secs;
}

if (isMainThread) {
  const small = (i: number): Small => ({ i, s: "hello" });
  const bigArray = new Float64Array(BIG_BYTES / 8).fill(1.5);
  const big = (i: number) => {
    bigArray[0] = i;
    return bigArray;
  };
  const perSec = (n: number) => (s: number) => n / s;
  const gbPerSec = (n: number) => (s: number) => (n * BIG_BYTES) / s / 1e9;

  if (CASES.includes("small")) {
    report("1→1 small {i,s}", "mpjs", (await oursOneToOne(SMALL_N, REPS, small)).map(perSec(SMALL_N)), "items/s");
    report(
      "1→1 small {i,s}",
      "postMessage",
      (await postMessageOneToOne(SMALL_N, REPS, small)).map(perSec(SMALL_N)),
      "items/s",
    );
  }
  if (CASES.includes("big")) {
    report("1→1 16 MiB Float64Array", "mpjs", (await oursOneToOne(BIG_N, 3, big)).map(gbPerSec(BIG_N)), "GB/s");
    report(
      "1→1 16 MiB Float64Array",
      "postMessage",
      (await postMessageOneToOne(BIG_N, 3, big)).map(gbPerSec(BIG_N)),
      "GB/s",
    );
    report("1→1 16 MiB Float64Array", "alloc+copy only", (await allocCopyOnly(BIG_N, 3)).map(gbPerSec(BIG_N)), "GB/s");
  }
  if (CASES.includes("mpmc")) {
    report("4×4 small {i,s}", "mpjs", (await oursManyToMany(4, 4, MPMC_N, 3)).map(perSec(MPMC_N)), "items/s");
  }
}
