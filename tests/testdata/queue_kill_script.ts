// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/queue_test.ts in a child process: a producer blocked in
// putSync() on a full queue is killed, then room frees up. Nothing of the
// killed thread may run after that: it must print no "Exception in thread".

import { isMainThread, Queue, Thread } from "../../mod.ts";

/** Puts numbers for ever, blocking while the queue is full; says when it is blocked. */
export function produce(q: Queue<number>, ready: Int32Array): void {
  for (let i = 0;; i++) {
    if (q.full()) Atomics.store(ready, 0, 1);
    q.putSync(i);
  }
}

if (isMainThread) {
  const q = new Queue<number>(2);
  const ready = new Int32Array(new SharedArrayBuffer(4));
  const t = new Thread({ target: produce, args: [q, ready], module: import.meta.url, name: "Producer" });
  t.start();
  while (Atomics.load(ready, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 100)); // parked in putSync
  await t.kill();
  await t.join();
  console.log(`killed: exitCode ${t.exitCode}`);
  // Room frees up: a producer that still ran would wake and put.
  q.getNowait();
  q.getNowait();
  await new Promise((resolve) => setTimeout(resolve, 500));
  console.log(`qsize after: ${q.qsize()}`);
  q.close();
}
