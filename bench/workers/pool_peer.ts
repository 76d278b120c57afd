// Copyright the @mpjs/multiprocessing authors. MIT license.
// The task functions of bench/pool.ts for the piscina and tinypool peers
// (each exports them by name; `default` is the no-op).

/** The no-op task: returns its argument. */
export function noop(x: unknown): unknown {
  return x;
}

export default noop;

/** One chunk of a map: the no-op over each item. */
export function mapNoop(items: unknown[]): unknown[] {
  return items.map(noop);
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
