// Copyright the @mpjs/multiprocessing authors. MIT license.
// The raw postMessage peer of bench/queue.ts: counts the messages it is sent
// (touching each, as a queue consumer would) and says "done" after `n`.
import { parentPort } from "node:worker_threads";

let n = 0;
let seen = 0;
let sum = 0;
parentPort!.on("message", (m: unknown) => {
  if (typeof m === "object" && m !== null && "expect" in m) {
    n = (m as { expect: number }).expect;
    seen = 0;
    parentPort!.postMessage("ready");
    return;
  }
  sum += m instanceof Float64Array ? m[0] : (m as { i: number }).i;
  if (++seen === n) parentPort!.postMessage({ done: sum });
});
