// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Creating threads (seed 002, `threading.Thread(target=sing)`): two
 * functions run at the same time in two threads, and `enumerate()` lists the
 * threads that are running.
 *
 *     deno run -A examples/thread_create.ts
 *
 * Python's `time.sleep(1)` becomes a short `await sleep(100)`. The threads
 * import this module to find `sing` and `dance`, so the main program is
 * guarded by `if (isMainThread)` (Python's `if __name__ == "__main__":`).
 */

import { activeCount, enumerate, isMainThread, Thread } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sings three times, pausing between verses. */
export async function sing(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    console.log("singing", i);
    await sleep(100);
  }
}

/** Dances three times without a pause. */
export function dance(): void {
  for (let i = 0; i < 3; i++) {
    console.log("dancing", i);
  }
}

if (isMainThread) {
  const t1 = new Thread({ target: sing, module: import.meta.url });
  const t2 = new Thread({ target: dance, module: import.meta.url });
  t1.start();
  t2.start();
  // Python prints the main thread too; enumerate() lists the threads started here.
  console.log(`running: ${enumerate().map(String).join(", ")}`);
  console.log(`activeCount: ${activeCount()}`);
  // No join: like Python, the program waits for its non-daemon threads.
}
