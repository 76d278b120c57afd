// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A bounded `Queue` (seed 000): `put`, `full()`, `qsize()`, a `put` that
 * times out on a full queue, `putNowait`, and reading with `getNowait` after
 * checking `empty()`.
 *
 *     deno run -A examples/queue_full_demo.ts [put timeout in ms, default 2000]
 *
 * Python's `timeout=2` (seconds) becomes `{ timeout: 2000 }` (milliseconds),
 * `queue.Full` becomes `FullError`, and `put_nowait` becomes `putNowait`.
 */

import process from "node:process";
import { isMainThread, Queue } from "../mod.ts";

if (isMainThread) {
  const arg = Number(process.argv[process.argv.length - 1]);
  const timeout = Number.isFinite(arg) && arg >= 0 ? arg : 2000;

  const q = new Queue<string>(3); // holds at most three messages
  await q.put("message 1");
  await q.put("message 2");
  console.log(q.full()); // false
  await q.put("message 3");
  console.log(q.full()); // true

  // The queue is full, so both of these fail: the first after waiting
  // `timeout` ms, the second at once.
  try {
    await q.put("message 4", { timeout });
  } catch (e) {
    console.log(`${(e as Error).name}: ${(e as Error).message}`);
    console.log("the queue is full");
  }
  try {
    q.putNowait("message 4");
  } catch (e) {
    console.log(`${(e as Error).name}: ${(e as Error).message}`);
    console.log("the queue is full");
  }

  // The recommended way: check for room first, then write.
  if (!q.full()) q.putNowait("message 4");

  // And check for messages first, then read.
  console.log(`qsize: ${q.qsize()}`);
  for (let i = 0; i < 3; i++) {
    if (!q.empty()) console.log(q.getNowait());
  }
}
