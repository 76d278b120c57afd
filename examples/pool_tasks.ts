// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Tasks handed to a pool (seed 001, "进程池"): two tasks that each take a
 * second run on the pool's workers at the same time, so both are done after
 * about one second, not two. The workers are reused: the pool keeps them
 * for the next tasks.
 *
 *     deno run -A examples/pool_tasks.ts [seconds per task, default 1]
 *
 * The task functions are exported from this module and the pool is given
 * `module: import.meta.url`: each worker imports this module (so the main
 * program is guarded with `isMainThread`, as Python guards it with
 * `if __name__ == "__main__"`) and looks the functions up by name.
 */

import process from "node:process";
import { isMainThread, Pool } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Task one: starts, works for `ms` milliseconds, finishes. */
export async function task1(ms: number): Promise<void> {
  console.log("task one started");
  await sleep(ms);
  console.log("task one done");
}

/** Task two: starts, works for `ms` milliseconds, finishes. */
export async function task2(ms: number): Promise<void> {
  console.log("task two started");
  await sleep(ms);
  console.log("task two done");
}

if (isMainThread) {
  const arg = Number(process.argv[process.argv.length - 1]);
  const ms = Number.isFinite(arg) && arg > 0 ? arg * 1000 : 1000;
  const pool = new Pool({ processes: 2, module: import.meta.url });
  const t0 = performance.now();
  const r1 = pool.applyAsync(task1, [ms]);
  const r2 = pool.applyAsync(task2, [ms]);
  pool.close(); // no more tasks: the workers exit once these are done
  await pool.join();
  console.log(`both done: ${r1.successful() && r2.successful()}`);
  // About one task length (plus the workers' start), not two: they overlapped.
  console.log(`elapsed ${Math.round(performance.now() - t0)} ms for two ${ms} ms tasks`);
}
