// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A custom object shared by a pool's workers (Python's
 * `BaseManager.register`): a word tally lives in the manager's server
 * thread, and every pool task adds its line's words to it through a proxy.
 * The server runs one call at a time, so the tally needs no lock.
 *
 *     deno run -A examples/manager_custom_object.ts
 *
 * The Python original would be:
 *
 *     class Tally:
 *         def __init__(self): self.counts = {}
 *         def add(self, words): ...
 *         def top(self, n): ...
 *
 *     BaseManager.register("Tally", Tally)
 *     with BaseManager() as manager, Pool() as pool:
 *         tally = manager.Tally()
 *         pool.starmap(count_line, [(tally, line) for line in LINES])
 *         print(tally.top(3))
 */

import { isMainThread, Manager, Pool, type ProxyOf } from "../mod.ts";

/** Counts words; lives in the manager's server thread. */
export class Tally {
  counts: Map<string, number> = new Map();

  /** Adds each word once; returns how many words the tally has seen in all. */
  add(words: string[]): number {
    for (const w of words) this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  /** The `n` most frequent words (ties by word), as `[word, count]` pairs. */
  top(n: number): [string, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
  }
}

// Every thread that imports this module registers the class; the manager's
// server imports it to build the object.
Manager.register("Tally", { module: import.meta.url, export: "Tally" });

const LINES = [
  "the quick brown fox jumps over the lazy dog",
  "the dog sleeps",
  "a fox and a dog are friends",
  "the end",
];

/** A pool task: adds one line's words to the shared tally. */
export function countLine(tally: ProxyOf<Tally>, line: string): number {
  return tally.addSync(line.split(" "));
}

if (isMainThread) {
  await using manager = new Manager();
  await using pool = new Pool({ processes: 2, module: import.meta.url });
  const tally = manager.create<Tally>("Tally");
  await pool.starmap(countLine, LINES.map((line) => [tally, line] as [ProxyOf<Tally>, string]));
  for (const [word, n] of await tally.top(3)) console.log(`${word}: ${n}`);
}
