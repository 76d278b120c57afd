// Copyright the @mpjs/multiprocessing authors. MIT license.
// start + join of a no-op Thread vs the runtime's raw Worker (start, then
// wait until the worker says it is done). Median µs per round, lower is better.
// A second case ships the no-op by module export, as real programs do: the
// worker then imports this module and, through it, the whole library.
//   deno run -A bench/thread.ts | bun bench/thread.ts | node npm/bench/thread.js

import { Worker as NodeWorker } from "node:worker_threads";
import { isMainThread, Thread } from "../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime = g.Deno?.version?.deno ? "deno" : g.Bun ? "bun" : "node";
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const ROUNDS = Number(g.process?.env?.BENCH_ROUNDS ?? 40);
const BLOCKS = 4;
const WARMUP = 3;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(impl: string, samples: number[], name = "start+join no-op"): void {
  const line = { case: name, impl, median: Math.round(median(samples)), unit: "µs", better: "lower" };
  console.log(`BENCH ${JSON.stringify(line)}`);
}

/** Times `round` (which resolves once the worker is done) and then lets the worker finish exiting. */
async function measure(round: () => Promise<() => Promise<void>>, warmup: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + Math.ceil(ROUNDS / BLOCKS); i++) {
    const t0 = performance.now();
    const settle = await round();
    const dt = (performance.now() - t0) * 1000;
    if (i >= warmup) samples.push(dt);
    await settle();
    await sleep(5);
  }
  return samples;
}

/** The no-op target (exported: the module-target case ships it by name). */
export function noop(): void {}

async function threadRound(): Promise<() => Promise<void>> {
  const t = new Thread({ target: noop });
  t.start();
  await t.join();
  return () => Promise.resolve();
}

async function moduleThreadRound(): Promise<() => Promise<void>> {
  const t = new Thread({ target: noop, module: import.meta.url });
  t.start();
  await t.join();
  return () => Promise.resolve();
}

const webUrl = new URL(`./workers/noop_web${ext}`, import.meta.url);
const nodeUrl = new URL(`./workers/noop_node${ext}`, import.meta.url);

function webWorkerRound(): Promise<() => Promise<void>> {
  return new Promise((resolve) => {
    const w = new g.Worker(webUrl, { type: "module" });
    w.onmessage = () => resolve(() => Promise.resolve(w.terminate()));
  });
}

function nodeWorkerRound(): Promise<() => Promise<void>> {
  return new Promise((resolve) => {
    const w = new NodeWorker(nodeUrl);
    const exited = new Promise<void>((r) => w.once("exit", () => r()));
    w.once("message", () => resolve(() => exited));
  });
}

if (isMainThread) {
  // Alternate the implementations so that drift in machine load hits all.
  const ours: number[] = [];
  const ourModule: number[] = [];
  const raw: number[] = [];
  const rawThreads: number[] = [];
  for (let block = 0; block < BLOCKS; block++) {
    const warmup = block === 0 ? WARMUP : 0;
    ours.push(...await measure(threadRound, warmup));
    ourModule.push(...await measure(moduleThreadRound, warmup));
    if (runtime === "node") raw.push(...await measure(nodeWorkerRound, warmup));
    else {
      raw.push(...await measure(webWorkerRound, warmup));
      if (runtime === "deno") rawThreads.push(...await measure(nodeWorkerRound, warmup));
    }
  }
  report("mpjs", ours);
  report("worker", raw);
  // Deno: daemon threads (and pool workers) run on node:worker_threads there; show that peer too.
  if (rawThreads.length) report("worker_threads", rawThreads);
  report("mpjs", ourModule, "start+join no-op, target by module export");
}
