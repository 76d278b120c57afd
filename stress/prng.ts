// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A small seeded pseudo-random generator (sfc32, seeded through
 * splitmix32) for the chaos runner: the same seed gives the same choices of
 * which thread to kill, when, and what each thread does, on every runtime.
 *
 * @module
 */

/** Mixes two 32-bit numbers into one (splitmix32 finaliser). */
export function mix(a: number, b = 0): number {
  let z = (Math.imul(a | 0, 0x9e3779b9) + Math.imul(b | 0, 0x85ebca6b) + 0x6d2b79f5) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** A seeded generator of 32-bit numbers and the choices built on them. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** @param seed Any integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    this.#a = mix(seed, 1);
    this.#b = mix(seed, 2);
    this.#c = mix(seed, 3);
    this.#d = mix(seed, 4) | 1;
    for (let i = 0; i < 12; i++) this.next();
  }

  /** The next number in [0, 2^32). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A number in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** `true` with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)];
  }

  /** A seed for an independent generator (a thread's own choices). */
  fork(): number {
    return this.next();
  }
}
