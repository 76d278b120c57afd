// Copyright the @mpjs/multiprocessing authors. MIT license.
// The cluster pool's cases of `npm run bench -- cluster`, on the server
// bench/cluster.ts started, with worker processes from cluster_worker.ts
// (one thread each):
//   - "pool: CPU-bound map": countPrimes over 200 ranges below 3,000,000 with
//     one worker process, then two (the ratio is the speed-up);
//   - "pool: apply round trip": one awaited apply at a time;
//   - "pool: unbatched tasks": applies all in flight, one task each;
//   - "pool: map of small items": inc over 1,000,000 numbers, chunks of
//     50,000, against the local Pool with two threads.
// BENCH_POOL_CONCURRENCY=<n> starts the workers with --concurrency <n>.

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect } from "../../cluster.ts";
import { Pool } from "../../pool.ts";
import { countPrimes, inc } from "./cluster_pool_tasks.ts";

type Report = (c: string, impl: string, value: number, unit: string, better: "higher" | "lower") => void;

const ext = import.meta.url.endsWith(".js") ? "js" : "ts";
const TASKS = fileURLToPath(new URL(`./cluster_pool_tasks.${ext}`, import.meta.url));
const WORKER = fileURLToPath(new URL(`../../cluster_worker.${ext}`, import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function startWorker(url: string, pool: string): Promise<ChildProcess> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const args = [
    WORKER,
    url,
    "--pool",
    pool,
    "--module",
    TASKS,
    "--processes",
    "1",
    ...(process.env.BENCH_POOL_CONCURRENCY ? ["--concurrency", process.env.BENCH_POOL_CONCURRENCY] : []),
  ];
  const child = deno
    ? spawn(deno.execPath(), ["run", "-A", ...args], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      err += s;
      if (err.includes("mpjs-worker: serving")) resolve(child);
    });
    child.once("exit", () => reject(new Error(`the worker exited: ${err}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Runs the cases, `reps` times each, and reports the medians. */
export async function poolCases(url: string, report: Report, reps: number): Promise<void> {
  const name = `bench_pool_${Date.now()}`;
  await using cluster = await connect({ servers: url });
  await using pool = cluster.Pool({ name, module: TASKS, processes: 2 });
  const ranges: [number, number][] = Array.from({ length: 200 }, (_, i) => [i * 15_000, (i + 1) * 15_000]);
  const cpu = async () => {
    await pool.map(countPrimes, ranges.slice(0, 8), 1); // warm: the threads load the module
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await pool.map(countPrimes, ranges, 4);
      samples.push(performance.now() - t0);
    }
    return median(samples);
  };
  const workers = [await startWorker(url, name)];
  try {
    const one = await cpu();
    workers.push(await startWorker(url, name));
    const two = await cpu();
    report("pool: CPU-bound map (200 ranges below 3e6)", "mpjs", two, "ms", "lower");
    report("pool: CPU-bound map (200 ranges below 3e6)", "mpjs, 1 worker process", one, "ms", "lower");

    const trips: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 300; i++) await pool.apply(inc, [i]);
      trips.push(((performance.now() - t0) * 1000) / 300);
    }
    report("pool: apply round trip", "mpjs", median(trips), "µs", "lower");

    const unbatched: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 3_000 }, (_, i) => pool.apply(inc, [i])));
      unbatched.push(3_000 / ((performance.now() - t0) / 1000));
    }
    report("pool: unbatched tasks (3,000 applies in flight)", "mpjs", median(unbatched), "tasks/s", "higher");

    const items = Array.from({ length: 1_000_000 }, (_, i) => i);
    const rate = async (map: () => Promise<unknown[]>) => {
      const samples: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        const out = await map();
        if (out.length !== items.length) throw new Error("lost results");
        samples.push(items.length / ((performance.now() - t0) / 1000));
      }
      return median(samples);
    };
    const small = "pool: map of 1,000,000 small items, 2 worker processes";
    report(small, "mpjs", await rate(() => pool.map(inc, items, 50_000)), "items/s", "higher");
    await using local = new Pool({ processes: 2 });
    report(small, "local Pool, 2 threads", await rate(() => local.map(inc, items)), "items/s", "higher");
  } finally {
    await Promise.all(workers.map(stop));
  }
}
