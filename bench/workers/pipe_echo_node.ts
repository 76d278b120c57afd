// Copyright the @mpjs/multiprocessing authors. MIT license.
// The raw postMessage peer of bench/pipe.ts: echoes numbers (ping-pong),
// counts anything else (touching it, as a receiver would), and on `null`
// replies with the count.
import { parentPort } from "node:worker_threads";

let seen = 0;
let sum = 0;
parentPort!.on("message", (m: unknown) => {
  if (typeof m === "number") {
    parentPort!.postMessage(m);
    return;
  }
  if (m === null) {
    parentPort!.postMessage({ seen, sum });
    seen = 0;
    return;
  }
  seen++;
  sum += m instanceof Uint8Array ? m[0] : (m as { i: number }).i;
});
