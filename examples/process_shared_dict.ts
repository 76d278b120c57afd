// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Seed 003's `Manager().dict()` example: two processes each add a key to a
 * dictionary kept by a manager, which the main process then prints.
 *
 *     deno run -A examples/process_shared_dict.ts
 *
 * The Python original:
 *
 *     def add_data(p_dict, key, value):
 *         p_dict[key] = value
 *
 *     if __name__ == "__main__":
 *         process_dict = Manager().dict()
 *         first_process = Process(target=add_data, args=(process_dict, "Darr_en1", 22))
 *         ...
 *         print(process_dict)
 *
 * `p_dict[key] = value` becomes `pDict.setSync(key, value)` (a process may
 * block). The manager's server thread is a daemon: the program ends without
 * a `shutdown()`, as Python's does. The dictionary prints as JSON, sorted by
 * key, so the output does not depend on which process ran first.
 */

import { type DictProxy, isMainThread, Manager, Process } from "../mod.ts";

/** Python's `add_data(p_dict, key, value)`: `p_dict[key] = value`. */
export function addData(pDict: DictProxy<string, number>, key: string, value: number): void {
  pDict.setSync(key, value);
}

if (isMainThread) {
  const processDict = new Manager().dict<string, number>();
  const firstProcess = new Process({ target: addData, args: [processDict, "Darr_en1", 22], module: import.meta.url });
  const secondProcess = new Process({ target: addData, args: [processDict, "Darr_en2", 44], module: import.meta.url });
  firstProcess.start();
  secondProcess.start();
  await firstProcess.join();
  await secondProcess.join();

  const items = (await processDict.items()).sort(([a], [b]) => a.localeCompare(b));
  console.log(JSON.stringify(Object.fromEntries(items)));
}
