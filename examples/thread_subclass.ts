// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Subclassing `Thread` and overriding `run()` (seed 002, `class
 * MyThread(threading.Thread)`). The worker rebuilds the object from its
 * fields and calls `run()`, so the class is exported and passes
 * `module: import.meta.url` to `super()`.
 *
 *     deno run -A examples/thread_subclass.ts
 */

import { isMainThread, Thread } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A thread that counts to `count`, printing its name each time. */
export class MyThread extends Thread {
  count: number;

  constructor(name: string, count = 5) {
    super({ module: import.meta.url });
    this.name = name;
    this.count = count;
  }

  override async run(): Promise<void> {
    for (let i = 0; i < this.count; i++) {
      console.log(this.name, i);
      await sleep(30);
    }
  }
}

if (isMainThread) {
  const t1 = new MyThread("thread-1");
  const t2 = new MyThread("thread-2");
  t1.start();
  t2.start();
  await t1.join();
  await t2.join();
  console.log(`both done: ${t1.exitCode} ${t2.exitCode}`);
}
