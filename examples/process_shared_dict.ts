// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Seed 003's `Manager().dict()` example: two processes each add a key to a
 * dictionary the main process then prints.
 *
 *     deno run -A examples/process_shared_dict.ts
 *
 * This library has no `Manager` yet. A `Queue` does the manager's job here:
 * each process sends its `[key, value]` entry and the main process builds the
 * dictionary from what arrives, once both processes have ended.
 */

import { isMainThread, Process, Queue } from "../mod.ts";

/** Python's `add_data(p_dict, key, value)`: `p_dict[key] = value`. */
export function addData(entries: Queue<[string, number]>, key: string, value: number): void {
  entries.putSync([key, value]);
}

if (isMainThread) {
  const entries = new Queue<[string, number]>();
  const first = new Process({ target: addData, args: [entries, "Darr_en1", 22], module: import.meta.url });
  const second = new Process({ target: addData, args: [entries, "Darr_en2", 44], module: import.meta.url });
  first.start();
  second.start();
  await first.join();
  await second.join();
  const processDict: Record<string, number> = {};
  while (!entries.empty()) {
    const [key, value] = entries.getNowait();
    processDict[key] = value;
  }
  // Sorted by key, so the output does not depend on which process ran first.
  const sorted = Object.fromEntries(Object.entries(processDict).sort(([a], [b]) => a.localeCompare(b)));
  console.log(JSON.stringify(sorted));
  entries.close();
}
