// Copyright the @mpjs/multiprocessing authors. MIT license.
// A thread that makes a pool of its own (tests/pool_parts_test.ts).
import { Pool } from "../../mod.ts";

/** This module's URL (in the source tree or the npm build). */
export const url: string = import.meta.url;

/**
 * Pool initializer: records at `out[0]` how the next message from the
 * owner arrives: 1 as posted by the runtime, 2 handed on through the
 * worker's inbox (an event this library dispatched, so not trusted).
 */
export function hearOwner(out: Int32Array): void {
  // Node's workers hear their parent through node:worker_threads only.
  if (typeof globalThis.addEventListener !== "function") {
    out[0] = 1;
    return;
  }
  globalThis.addEventListener("message", (e) => {
    if (out[0] === 0) out[0] = e.isTrusted ? 1 : 2;
  });
}

/** A task whose argument (shared memory) travels by message. */
export function square(out: Int32Array, x: number): number {
  out[1] = x * x;
  return x * x;
}

/** Runs in a thread: makes a pool and runs one task in it. */
export async function nested(out: Int32Array): Promise<void> {
  const pool = new Pool({ processes: 1, module: import.meta.url, initializer: hearOwner, initargs: [out] });
  out[2] = await pool.apply(square, [out, 7]);
  await pool.terminate();
}
