// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/spsc_test.ts and tests/wait_test.ts. Workers import this module by URL, so it must stay
// free of side effects at its top level.

import { SpscChannel, type SpscMemory } from "../../_spsc.ts";
import { notify } from "../../_wait.ts";

export const url: string = import.meta.url;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Sets `ready[0]` to 1: the thread runs. */
function started(ready: Int32Array): void {
  Atomics.store(ready, 0, 1);
  Atomics.notify(ready, 0);
}

/** Says it runs in `ready[0]`, sleeps `ms`, then sends `value` on the channel (as its producer). */
export function sendLater(memory: SpscMemory, ms: number, value: unknown, ready: Int32Array): void {
  started(ready);
  sleepSync(ms);
  new SpscChannel(memory).send(value, "value");
}

/** Sends `0 .. n-1`, with values of growing size every `every` messages, then the end mark. */
export function sendMany(memory: SpscMemory, n: number, every: number): void {
  const ch = new SpscChannel(memory);
  for (let i = 0; i < n; i++) ch.send(i % every === 0 ? { i, pad: "x".repeat(i % 5000) } : i, "value");
  ch.end();
}

/**
 * Says it runs in `ready[0]`, sleeps `ms`, then stores 1 in `cell[0]` and
 * wakes its waiters with `_wait.ts`'s `notify`.
 */
export function notifyLater(cell: Int32Array, ms: number, ready: Int32Array): void {
  started(ready);
  sleepSync(ms);
  Atomics.store(cell, 0, 1);
  notify(cell, 0);
}
