// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Python's `concurrent.futures` as most modern Python code uses it: submit
 * jobs to a `ProcessPoolExecutor`, handle each result as soon as it is
 * ready with `asCompleted`, and cancel what is no longer needed.
 *
 *     deno run -A examples/executor_as_completed.ts
 *
 * Each job "downloads" a page (it sleeps for a time that depends on the
 * page) and counts its words. Results come in the order the jobs finish,
 * not the order they were submitted.
 */

import { asCompleted, isMainThread, ProcessPoolExecutor } from "../mod.ts";

const PAGES: Record<string, [delayMs: number, text: string]> = {
  "a.example": [300, "one two three four"],
  "b.example": [50, "alpha beta"],
  "c.example": [150, "x y z"],
};

/** Fetches `url` (simulated) and counts the words on it. */
export async function countWords(url: string, delayMs: number, text: string): Promise<[string, number]> {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  return [url, text.split(" ").length];
}

if (isMainThread) {
  await using executor = new ProcessPoolExecutor({ maxWorkers: 3, module: import.meta.url });
  const futures = Object.entries(PAGES).map(([url, [delay, text]]) => executor.submit(countWords, url, delay, text));
  for await (const future of asCompleted(futures)) {
    const [url, words] = await future.result();
    console.log(`${url}: ${words} words`);
  }
  // A job submitted while every worker is busy waits in the backlog, where it can still be cancelled.
  const busy = [1, 2, 3].map(() => executor.submit(countWords, "slow.example", 200, "a b"));
  const extra = executor.submit(countWords, "never.example", 0, "unused");
  console.log(`cancelled the extra job: ${extra.cancel()}`);
  console.log(`busy jobs done: ${(await Promise.all(busy.map((f) => f.result()))).length}`);
}
