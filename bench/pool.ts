// Copyright the @mpjs/multiprocessing authors. MIT license.
// Pool dispatch: ours against piscina, tinypool and workerpool, each with 2
// workers, in the same run (Python's multiprocessing.Pool peer: bench/pool.py):
// - "apply round trip": one no-op task at a time, awaited (median µs);
// - "100k concurrent applyAsync": 100,000 no-op tasks submitted at once, one
//   task each (no batching by the caller), all awaited (tasks/s);
// - "map no-op 1M": a map of the no-op over 1,000,000 numbers (items/s); the
//   peers have no map, so they get what a map does: the items cut into
//   Python's default number of chunks (processes * 4), one task per chunk;
// - "CPU-bound map speed-up": counting primes for 8 limits on 2 workers
//   against the same work done on one thread just before (x).
//   deno run -A bench/pool.ts | bun bench/pool.ts | node npm/bench/pool.js

import { fileURLToPath } from "node:url";
import { isMainThread, Pool } from "../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const env = (k: string, d: number) => Number(g.process?.env?.[k] ?? d);
const ROUND_TRIPS = env("BENCH_ROUND_TRIPS", 5_000);
const CONCURRENT = env("BENCH_CONCURRENT", 100_000);
const MAP_N = env("BENCH_MAP_N", 1_000_000);
const PRIMES_LIMIT = env("BENCH_PRIMES_LIMIT", 150_000);
const REPS = env("BENCH_REPS", 5);
const PROCESSES = 2;

/** The no-op task: returns its argument. */
export function noop(x: unknown): unknown {
  return x;
}

/** The CPU-bound task: primes below `n` by trial division. */
export function countPrimes(n: number): number {
  let count = 0;
  for (let i = 2; i < n; i++) {
    let prime = true;
    for (let d = 2; d * d <= i; d++) {
      if (i % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(c: string, impl: string, samples: number[], unit: string, better: "lower" | "higher"): void {
  const m = median(samples);
  const digits = unit === "x" || unit === "µs" ? 2 : 0;
  console.log(`BENCH ${JSON.stringify({ case: c, impl, median: Number(m.toFixed(digits)), unit, better })}`);
}

/** What each implementation offers to the cases. */
interface Impl {
  name: string;
  /** One no-op task. */
  run(x: number): Promise<unknown>;
  /** The no-op mapped over `items`. */
  map(items: number[]): Promise<unknown[]>;
  /** `countPrimes` for each limit, one task each. */
  primes(limits: number[]): Promise<unknown[]>;
  close(): Promise<void>;
}

/** Python's default chunking, for the peers that have no map. */
function chunks(items: number[], processes: number): number[][] {
  const per = processes * 4;
  const size = Math.max(1, Math.floor(items.length / per) + (items.length % per ? 1 : 0));
  const out: number[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function mpjs(): Promise<Impl> {
  const pool = new Pool({ processes: PROCESSES, module: import.meta.url });
  return Promise.resolve({
    name: "mpjs",
    run: (x) => pool.apply(noop, [x]),
    map: (items) => pool.map(noop, items),
    primes: (limits) => pool.map(countPrimes, limits, 1),
    close: () => pool.terminate(),
  });
}

const peerFile = fileURLToPath(new URL(`./workers/pool_peer${ext}`, import.meta.url));

async function piscina(): Promise<Impl> {
  const { Piscina } = await import("piscina");
  const pool = new Piscina({ filename: peerFile, minThreads: PROCESSES, maxThreads: PROCESSES });
  return {
    name: "piscina",
    run: (x) => pool.run(x, { name: "noop" }),
    map: async (items) =>
      (await Promise.all(chunks(items, PROCESSES).map((c) => pool.run(c, { name: "mapNoop" })))).flat(),
    primes: (limits) => Promise.all(limits.map((n) => pool.run(n, { name: "countPrimes" }))),
    close: () => pool.destroy(),
  };
}

async function tinypool(): Promise<Impl> {
  const { Tinypool } = await import("tinypool");
  const pool = new Tinypool({ filename: peerFile, minThreads: PROCESSES, maxThreads: PROCESSES });
  return {
    name: "tinypool",
    run: (x) => pool.run(x, { name: "noop" }),
    map: async (items) =>
      (await Promise.all(chunks(items, PROCESSES).map((c) => pool.run(c, { name: "mapNoop" })))).flat(),
    primes: (limits) => Promise.all(limits.map((n) => pool.run(n, { name: "countPrimes" }))),
    close: () => pool.destroy(),
  };
}

async function workerpool(): Promise<Impl> {
  const wp = (await import("workerpool")).default;
  const script = fileURLToPath(new URL(`./workers/pool_workerpool${ext}`, import.meta.url));
  const pool = wp.pool(script, { minWorkers: PROCESSES, maxWorkers: PROCESSES, workerType: "thread" });
  return {
    name: "workerpool",
    run: (x) => pool.exec("noop", [x]),
    map: async (items) => (await Promise.all(chunks(items, PROCESSES).map((c) => pool.exec("mapNoop", [c])))).flat(),
    primes: (limits) => Promise.all(limits.map((n) => pool.exec("countPrimes", [n]))),
    close: async () => {
      await pool.terminate();
    },
  };
}

async function measure(impl: Impl): Promise<void> {
  // Warm up: workers started, functions loaded, code paths compiled.
  for (let i = 0; i < 2000; i++) await impl.run(i);
  await impl.map(Array.from({ length: 10_000 }, (_, i) => i));
  // The CPU-bound task too, here and on this thread: its first, not yet
  // optimised runs must not count.
  const limits = Array.from({ length: 8 }, () => PRIMES_LIMIT);
  await impl.primes(limits);
  for (const n of limits) countPrimes(n);

  // The median of single round trips: on a shared machine a few tasks wait
  // for a descheduled thread, which would dominate a mean.
  const rt: number[] = [];
  for (let i = 0; i < ROUND_TRIPS * REPS; i++) {
    const t0 = performance.now();
    await impl.run(i);
    rt.push((performance.now() - t0) * 1000);
  }
  report("apply round trip", impl.name, rt, "µs", "lower");

  // Peers take seconds per 100k tasks: one run each keeps the script short.
  const tput: number[] = [];
  for (let r = 0; r < (impl.name === "mpjs" ? REPS : 1); r++) {
    const t0 = performance.now();
    const all: Promise<unknown>[] = new Array(CONCURRENT);
    for (let i = 0; i < CONCURRENT; i++) all[i] = impl.run(i);
    await Promise.all(all);
    tput.push(CONCURRENT / ((performance.now() - t0) / 1000));
  }
  report("100k concurrent applyAsync", impl.name, tput, "tasks/s", "higher");

  const items = Array.from({ length: MAP_N }, (_, i) => i);
  const mp: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    const out = await impl.map(items);
    const s = (performance.now() - t0) / 1000;
    if (out.length !== MAP_N || out[MAP_N - 1] !== MAP_N - 1) throw new Error(`${impl.name}: wrong map result`);
    mp.push(MAP_N / s);
  }
  report("map no-op 1M", impl.name, mp, "items/s", "higher");

  // Each pool run is paired with the same work on this thread timed just
  // before it: on a shared VM the machine's speed drifts over seconds, and a
  // baseline taken once at the start skews every ratio after it.
  const sp: number[] = [];
  for (let r = 0; r < REPS; r++) {
    let t0 = performance.now();
    for (const n of limits) countPrimes(n);
    const single = performance.now() - t0;
    t0 = performance.now();
    await impl.primes(limits);
    sp.push(single / (performance.now() - t0));
  }
  report("CPU-bound map speed-up", impl.name, sp, "x", "higher");
}

if (isMainThread) {
  const only = g.process?.env?.BENCH_IMPLS?.split(",");
  for (const make of [mpjs, piscina, tinypool, workerpool]) {
    const name = make.name;
    if (only && !only.includes(name)) continue;
    if (name === "workerpool" && g.Bun) {
      // Its worker threads never answer on Bun (1.4): the first task hangs.
      console.error("workerpool skipped: it hangs on Bun");
      continue;
    }
    let impl: Impl | undefined;
    try {
      impl = await make();
      await measure(impl);
    } catch (error) {
      console.error(`${name} skipped: ${(error as Error)?.stack ?? error}`);
    } finally {
      await impl?.close().catch(() => {});
    }
  }
  // A peer may leave a handle behind; the measurements are done.
  g.process?.exit?.(0);
}
