// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Python's `multiprocessing` and `threading` for TypeScript on Deno, Bun,
 * Node and browsers: `Thread`/`Process`, locks and shared values, `Queue`,
 * `Pipe` and `Pool`, on Web Workers with `SharedArrayBuffer` and `Atomics`.
 *
 * Import it the way Python code imports `multiprocessing as mp`:
 *
 * @example Run a function in another thread
 * ```ts
 * import * as mp from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const t = new mp.Process({ target: (a: number, b: number) => console.log(a + b), args: [1, 2] });
 * t.start();
 * await t.join();
 * assert.equal(t.exitCode, 0);
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./thread.ts";
export * from "./queue.ts";
export * from "./sync.ts";
export * from "./shared.ts";
export * from "./pipe.ts";
export * from "./pool.ts";
export * from "./futures.ts";
export * from "./manager.ts";
