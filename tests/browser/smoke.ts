// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The page script of the browser test (`npm run test:browser`, see
 * `scripts/browser_test.mjs`): each check runs real work across Web Workers
 * in Chromium, from the built npm package bundled by esbuild as a user's
 * bundler would. The page's main thread cannot block, so it uses the async
 * methods only; the threads use the blocking ones. Results are left in
 * `globalThis.smokeResults` for the runner to read.
 *
 * @module
 */

import { isMainThread, Pipe, Pool, Queue, SharedValue, Thread } from "../../mod.ts";
import type { Connection } from "../../mod.ts";

/** Puts `n` numbered items, then `null`. */
export function produce(q: Queue<{ i: number } | null>, n: number): void {
  for (let i = 0; i < n; i++) q.putSync({ i });
  q.putSync(null);
}

/** Answers each number received with its double, until `null`. */
export function echo(conn: Connection<number | null>): void {
  for (let m = conn.recvSync(); m !== null; m = conn.recvSync()) conn.send(m * 2);
}

/** Adds 1 to `counter` `n` times under its lock. */
export function bump(counter: SharedValue<"i">, n: number): void {
  for (let i = 0; i < n; i++) {
    counter.getLock().acquireSync();
    counter.value += 1;
    counter.getLock().release();
  }
}

/** Throws, so that the thread ends with exit code 1. */
export function fail(): void {
  throw new Error("expected failure");
}

/** The square of `x` (a pool task). */
export function square(x: number): number {
  return x * x;
}

/** One check's outcome. */
export interface SmokeResult {
  name: string;
  ok: boolean;
  detail: string;
}

async function check(results: SmokeResult[], name: string, body: () => Promise<string | true>): Promise<void> {
  try {
    const r = await body();
    results.push({ name, ok: r === true, detail: r === true ? "" : r });
  } catch (error) {
    results.push({ name, ok: false, detail: String((error as Error)?.stack ?? error) });
  }
}

if (isMainThread && "document" in globalThis) {
  const results: SmokeResult[] = [];
  const module = import.meta.url;
  await check(results, "Queue: 10,000 items from a thread arrive once each, in order", async () => {
    const q = new Queue<{ i: number } | null>();
    const t = new Thread({ target: produce, args: [q, 10_000], module });
    t.start();
    let next = 0;
    for (let x = await q.get(); x !== null; x = await q.get()) {
      if (x.i !== next) return `item ${x.i} where ${next} was due`;
      next++;
    }
    await t.join();
    q.close();
    return next === 10_000 && t.exitCode === 0 ? true : `${next} items, exit code ${t.exitCode}`;
  });
  await check(results, "Pipe: a thread answers over a Connection", async () => {
    const [a, b] = Pipe<number | null>();
    const t = new Thread({ target: echo, args: [b], module });
    t.start();
    const got: number[] = [];
    for (const n of [1, 21, -0.5]) {
      a.send(n);
      got.push(await a.recv() as number);
    }
    a.send(null);
    await t.join();
    return got.join() === "2,42,-1" ? true : `got ${got.join()}`;
  });
  await check(results, "SharedValue and its Lock: two threads and the page add 3,000", async () => {
    const counter = new SharedValue("i", 0);
    const threads = [0, 1].map(() => new Thread({ target: bump, args: [counter, 1000], module }));
    for (const t of threads) t.start();
    for (let i = 0; i < 1000; i++) {
      await counter.getLock().acquire();
      counter.value += 1;
      counter.getLock().release();
    }
    for (const t of threads) await t.join();
    return counter.value === 3000 ? true : `counter is ${counter.value}`;
  });
  await check(results, "Thread: a target that throws ends with exit code 1", async () => {
    const t = new Thread({ target: fail, module });
    t.start();
    await t.join();
    return t.exitCode === 1 ? true : `exit code ${t.exitCode}`;
  });
  await check(results, "Pool: map and apply on two workers", async () => {
    const pool = new Pool({ processes: 2, module });
    try {
      const squares = await pool.map(square, [1, 2, 3, 4, 5]);
      const one = await pool.apply(square, [12]);
      return squares.join() === "1,4,9,16,25" && one === 144 ? true : `map ${squares.join()}, apply ${one}`;
    } finally {
      await pool.terminate();
    }
  });
  (globalThis as unknown as { smokeResults: SmokeResult[] }).smokeResults = results;
}
