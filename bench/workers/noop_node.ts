// Copyright the @mpjs/multiprocessing authors. MIT license.
// The raw node:worker_threads peer of bench/thread.ts: says it is done and ends.
import { parentPort } from "node:worker_threads";
parentPort!.postMessage("done");
