// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A downloader and an analyser process connected by a `Queue` (seed 001):
 * the downloader puts the data it "downloads", the analyser collects it and
 * prints it.
 *
 *     deno run -A examples/queue_download_analyse.ts
 *
 * The seed's analyser stops when it sees the queue empty, which races with
 * the downloader (it may look before anything was put, or between two puts),
 * and it forgets to pass the queue to the processes. Here both run at once,
 * the queue is passed in `args`, and the downloader closes the queue when it
 * is done, so the analyser's `for await` ends exactly after the last item.
 */

import { isMainThread, Process, Queue } from "../mod.ts";

/** Simulates downloading data: puts each piece in the queue, then closes it. */
export async function downloadFromWeb(q: Queue<number>): Promise<void> {
  const data = [11, 22, 33, 44];
  for (const piece of data) await q.put(piece);
  q.close(); // no more data: the analyser's loop ends once it has read everything
  console.log("--the downloader has downloaded the data and put it in the queue--");
}

/** Processes the data: collects everything from the queue and prints it. */
export async function analysisData(q: Queue<number>): Promise<void> {
  const waitingAnalysisData: number[] = [];
  for await (const data of q) waitingAnalysisData.push(data);
  console.log(JSON.stringify(waitingAnalysisData));
}

if (isMainThread) {
  // 1. Create a queue. 2. Pass it to both processes.
  const q = new Queue<number>();
  const p1 = new Process({ target: downloadFromWeb, args: [q], module: import.meta.url });
  const p2 = new Process({ target: analysisData, args: [q], module: import.meta.url });
  p1.start();
  p2.start();
  await p1.join();
  await p2.join();
}
