// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A CPU-bound `map` on every core: counts the primes below each of a list
 * of limits, first on one worker, then on a pool of `cpuCount()` workers,
 * and prints the speed-up (about the number of cores, when they are free).
 *
 *     deno run -A examples/pool_map_speedup.ts [limit, default 300000]
 */

import process from "node:process";
import { cpuCount, isMainThread, Pool } from "../mod.ts";

/** The number of primes below `n` (trial division: deliberately CPU-bound). */
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

async function timed(processes: number, limits: number[]): Promise<[number[], number]> {
  const pool = new Pool({ processes, module: import.meta.url });
  await pool.apply(countPrimes, [10]); // the workers are up and the function is loaded
  const t0 = performance.now();
  const counts = await pool.map(countPrimes, limits, 1);
  const ms = performance.now() - t0;
  pool.close();
  await pool.join();
  return [counts, ms];
}

if (isMainThread) {
  const arg = Number(process.argv[process.argv.length - 1]);
  const limit = Number.isInteger(arg) && arg > 10 ? arg : 300_000;
  const cores = cpuCount();
  const limits = Array.from({ length: cores * 4 }, () => limit);
  const [one, t1] = await timed(1, limits);
  const [many, tn] = await timed(cores, limits);
  console.log(`primes below ${limit}: ${one[0]}`);
  console.log(`same results: ${JSON.stringify(one) === JSON.stringify(many)}`);
  console.log(`1 worker: ${t1.toFixed(0)} ms, ${cores} workers: ${tn.toFixed(0)} ms`);
  console.log(`speed-up: ${(t1 / tn).toFixed(2)}x on ${cores} cores`);
}
