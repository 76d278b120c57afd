// Copyright the @mpjs/multiprocessing authors. MIT license.
// The raw Web Worker peer of bench/thread.ts: says it is done and ends.
// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
scope.postMessage("done");
if (typeof scope.close === "function") scope.close();
