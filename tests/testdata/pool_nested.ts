// Copyright the @mpjs/multiprocessing authors. MIT license.
// A thread that makes a pool of its own (tests/pool_parts_test.ts).
import { Pool } from "../../mod.ts";

/** This module's URL (in the source tree or the npm build). */
export const url: string = import.meta.url;

/** A task whose argument (shared memory) travels by message. */
export function square(out: Int32Array, x: number): number {
  out[1] = x * x;
  return x * x;
}

/** Runs in a thread: makes a pool and runs one task in it. */
export async function nested(out: Int32Array): Promise<void> {
  const pool = new Pool({ processes: 1, module: import.meta.url });
  out[2] = await pool.apply(square, [out, 7]);
  await pool.terminate();
}
