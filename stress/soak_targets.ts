// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * What the soak runner's threads run (`soak.ts`). Workers import this
 * module by URL, so its top level has no side effects and imports little:
 * the `thread-starts` case starts a thread for each of its rounds.
 *
 * @module
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Queue } from "../mod.ts";

export const targetsUrl: string = import.meta.url;

/** A request to the server of the `fresh-reply-queues` case; `n < 0` asks it to collect its garbage first. */
export interface Request {
  n: number;
  reply: Queue<number>;
}

/** Runs a full garbage collection now, by whatever means this runtime offers. */
export function collectGarbage(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) return g.Bun.gc(true);
  if (!g.gc) {
    setFlagsFromString("--expose-gc");
    g.gc = runInNewContext("gc") as () => void;
  }
  g.gc();
}

/**
 * Answers each request on the queue it carries, with `2 * n`, until `null`.
 * It awaits each get, so that its event loop turns: that is where the
 * objects it dropped are finalized and their holds released.
 */
export async function answer(jobs: Queue<Request | null>): Promise<void> {
  for (let job = await jobs.get(); job !== null; job = await jobs.get()) {
    if (job.n < 0) collectGarbage();
    job.reply.putSync(job.n * 2);
  }
}

/** Puts `0, 1, …, n - 1` on `q`. */
export function produce(q: Queue<number>, n: number): void {
  for (let i = 0; i < n; i++) q.putSync(i);
}

/** The target of the `thread-starts` case: starts and ends. */
export function nothing(): void {}
