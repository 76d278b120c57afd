// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `currentThread()` and `enumerate()` (seed 002): the calling thread's name
 * and ident, renaming the main thread, and the list of running threads.
 *
 *     deno run -A examples/thread_current.ts
 */

import { currentThread, enumerate, isMainThread, Thread } from "../mod.ts";

/** Says which thread it runs in. */
export async function whoAmI(): Promise<void> {
  const me = currentThread();
  console.log(`in a thread: name=${me.name} ident=${me.ident} isMainThread=${isMainThread}`);
  // Stay alive a while, so the main thread sees both threads in enumerate().
  await new Promise((resolve) => setTimeout(resolve, 500));
}

if (isMainThread) {
  const main = currentThread();
  console.log(`ident: ${main.ident}`);
  console.log(`name: ${main.name}`);
  main.name = "my main thread";
  console.log(`main thread started: ${currentThread().name}`);

  const threads = ["reader", "writer"].map((name) => new Thread({ target: whoAmI, module: import.meta.url, name }));
  for (const t of threads) t.start();
  console.log(`enumerate: ${enumerate().map((t) => `${t.name}#${t.ident}`).join(", ")}`);
  for (const t of threads) await t.join();
  console.log(`enumerate after join: [${enumerate().join(", ")}]`);
}
