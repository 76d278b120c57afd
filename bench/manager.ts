// Copyright the @mpjs/multiprocessing authors. MIT license.
// Manager: the cost of one proxy call. dict set and get from a thread
// (blocking, one timestamp per call: median) and from the main thread
// (async), list.append and a registered object's method from a thread, two
// threads calling one dict at once (calls/s), and the CPU the process uses
// while a manager and a client thread sit idle. Python's Manager() peer:
// bench/manager.py.
//   deno run -A bench/manager.ts | bun bench/manager.ts | node npm/bench/manager.js

import process from "node:process";
import { type DictProxy, Event, isMainThread, type ListProxy, Manager, type ProxyOf, Thread } from "../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const env = (k: string, d: number) => Number(g.process?.env?.[k] ?? d);
const N = env("BENCH_MANAGER_N", 50_000);
const ASYNC_N = env("BENCH_MANAGER_ASYNC_N", 20_000);
const HAMMER_N = env("BENCH_MANAGER_HAMMER_N", 100_000);

/** The registered class of the custom-object case. */
export class Counter {
  n = 0;
  increment(by: number): number {
    return this.n += by;
  }
}
Manager.register("BenchCounter", { module: import.meta.url, export: "Counter" });

function median(xs: Float64Array): number {
  const s = Float64Array.from(xs).sort();
  return s[s.length >> 1];
}

function report(c: string, impl: string, value: number, unit: string, better: "lower" | "higher"): void {
  const digits = unit === "µs" || unit === "%" ? 3 : 0;
  console.log(`BENCH ${JSON.stringify({ case: c, impl, median: Number(value.toFixed(digits)), unit, better })}`);
}

/** Times `n` calls of `call`, one timestamp each; returns the median in µs. */
function timeEach(n: number, call: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 5000); i++) call(i);
  const samples = new Float64Array(n);
  let prev = performance.now();
  for (let i = 0; i < n; i++) {
    call(i);
    const now = performance.now();
    samples[i] = now - prev;
    prev = now;
  }
  return median(samples) * 1000;
}

/** Thread target: the blocking cases; medians (µs) go to `out`. */
export function syncCases(
  d: DictProxy<string, number>,
  l: ListProxy<number>,
  counter: ProxyOf<Counter>,
  out: Float64Array,
  n: number,
): void {
  out[0] = timeEach(n, (i) => d.setSync("k", i));
  out[1] = timeEach(n, () => d.getSync("k"));
  out[2] = timeEach(n, (i) => l.appendSync(i));
  out[3] = timeEach(n, () => counter.incrementSync(1));
}

/** Thread target: `n` blocking sets once `go` is set; the time taken (ms) goes to `out[slot]`. */
export function hammer(d: DictProxy<string, number>, go: Int32Array, out: Float64Array, slot: number, n: number): void {
  d.setSync(`warm${slot}`, 0);
  Atomics.add(go, 1, 1);
  Atomics.wait(go, 0, 0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) d.setSync(`k${slot}`, i);
  out[slot] = performance.now() - t0;
}

/** Thread target: one call, then idle until `stop` is set. */
export async function idle(d: DictProxy<string, number>, stop: Event): Promise<void> {
  await d.set("idle", 1);
  await stop.wait();
}

async function main(): Promise<void> {
  await using manager = new Manager();
  const d = manager.dict<string, number>();
  const l = manager.list<number>();
  const counter = manager.create<Counter>("BenchCounter");
  await d.set("k", 0);

  const out = new Float64Array(new SharedArrayBuffer(8 * 4));
  const t = new Thread({ target: syncCases, args: [d, l, counter, out, N], module: import.meta.url });
  t.start();
  await t.join();
  if (t.exitCode !== 0) throw t.error;
  report("dict.set from a thread (sync)", "mpjs", out[0], "µs", "lower");
  report("dict.get from a thread (sync)", "mpjs", out[1], "µs", "lower");
  report("list.append from a thread (sync)", "mpjs", out[2], "µs", "lower");
  report("custom method from a thread (sync)", "mpjs", out[3], "µs", "lower");

  const asyncEach = async (n: number, call: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < Math.min(n, 2000); i++) await call(i);
    const samples = new Float64Array(n);
    let prev = performance.now();
    for (let i = 0; i < n; i++) {
      await call(i);
      const now = performance.now();
      samples[i] = now - prev;
      prev = now;
    }
    return median(samples) * 1000;
  };
  report("dict.set from main (async)", "mpjs", await asyncEach(ASYNC_N, (i) => d.set("k", i)), "µs", "lower");
  report("dict.get from main (async)", "mpjs", await asyncEach(ASYNC_N, () => d.get("k")), "µs", "lower");

  const go = new Int32Array(new SharedArrayBuffer(8));
  const times = new Float64Array(new SharedArrayBuffer(16));
  const hammers = [0, 1].map((slot) =>
    new Thread({ target: hammer, args: [d, go, times, slot, HAMMER_N], module: import.meta.url })
  );
  for (const h of hammers) h.start();
  while (Atomics.load(go, 1) < 2) await new Promise((r) => setTimeout(r, 5));
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  for (const h of hammers) await h.join();
  const wall = Math.max(times[0], times[1]) / 1000;
  report("2 threads on one dict", "mpjs", (2 * HAMMER_N) / wall, "calls/s", "higher");

  // Idle: the server and a client thread that made a call, then waits.
  const stop = new Event();
  const sleeper = new Thread({ target: idle, args: [d, stop], module: import.meta.url });
  sleeper.start();
  await new Promise((r) => setTimeout(r, 500));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  const c1 = process.cpuUsage(c0);
  const elapsed = (performance.now() - t0) * 1000;
  report("idle CPU (manager + idle client)", "mpjs", (100 * (c1.user + c1.system)) / elapsed, "%", "lower");
  stop.set();
  await sleeper.join();
}

if (isMainThread) await main();
