// Copyright the @mpjs/multiprocessing authors. MIT license.
// The task functions of the cluster pool benchmark (bench/workers/cluster_pool.ts), served by its workers.

/** The smallest task: `x + 1`. */
export function inc(x: number): number {
  return x + 1;
}

/** The number of primes in `[lo, hi)` by trial division: work for a CPU. */
export function countPrimes(range: [number, number]): number {
  let count = 0;
  for (let n = Math.max(2, range[0]); n < range[1]; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}
