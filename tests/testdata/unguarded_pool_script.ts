// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/pool_test.ts in a child process. A module that makes a Pool
// at top level without an `isMainThread` guard: each pool worker imports this
// module to find the task, and must not make another pool from there.

import { Pool } from "../../mod.ts";

/** The task. */
export function double(x: number): number {
  return x * 2;
}

const pool = new Pool({ processes: 1, module: import.meta.url });
try {
  console.log(`result ${JSON.stringify(await pool.map(double, [1, 2]))}`);
} catch (error) {
  console.log(`failed: ${(error as Error).message}`);
} finally {
  await pool.terminate();
}
