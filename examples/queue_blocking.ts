// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Blocking `put` and `get` (seed 002): a `put` on a full queue and a `get`
 * on an empty queue wait. In the seed they wait for ever (the program hangs
 * after "before blocking"); here they wait `timeout` ms and then fail with
 * `FullError` / `EmptyError`, the way Python's `put(item, timeout=…)` raises
 * `queue.Full`.
 *
 *     deno run -A examples/queue_blocking.ts [timeout in ms, default 1000]
 */

import process from "node:process";
import { EmptyError, FullError, isMainThread, Queue } from "../mod.ts";

if (isMainThread) {
  const arg = Number(process.argv[process.argv.length - 1]);
  const timeout = Number.isFinite(arg) && arg >= 0 ? arg : 1000;

  // put: the queue takes 3 items; the 4th put waits for room.
  const q1 = new Queue<number | string>(3);
  await q1.put(1);
  await q1.put("2");
  await q1.put("3");
  console.log("before blocking on put");
  try {
    await q1.put("4", { timeout });
    console.log("after blocking on put");
  } catch (e) {
    if (!(e instanceof FullError)) throw e;
    console.log(`put waited ${timeout} ms: the queue is still full (FullError)`);
  }

  // get: items come out first in, first out; a get on the empty queue waits.
  const q2 = new Queue<number | string>(3);
  await q2.put(1);
  await q2.put("2");
  console.log(await q2.get());
  console.log(await q2.get());
  console.log("before blocking on get");
  try {
    await q2.get({ timeout });
    console.log("after blocking on get");
  } catch (e) {
    if (!(e instanceof EmptyError)) throw e;
    console.log(`get waited ${timeout} ms: the queue is still empty (EmptyError)`);
  }
  console.log(`qsize: ${q1.qsize()} ${q2.qsize()}, full: ${q1.full()}, empty: ${q2.empty()}`);
}
