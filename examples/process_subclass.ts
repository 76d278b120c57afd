// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Creating processes, method two (seed 004): subclass `Process`, add your own
 * fields in the constructor after `super()`, and override `run()`.
 *
 *     deno run -A examples/process_subclass.ts
 *
 * The class is exported and passes `module: import.meta.url` to `super()`:
 * the new process imports this module, rebuilds the object from its fields
 * (any cloneable values, including plain objects) and calls `run()`.
 */

import { isMainThread, Process } from "../mod.ts";

/** A process that adds up a list of numbers and reports the sum. */
export class MyProcess extends Process {
  label: string;
  job: { numbers: number[]; scale: number };

  constructor(label: string, numbers: number[], scale: number) {
    super({ module: import.meta.url, name: `sum-${label}` });
    this.label = label;
    this.job = { numbers, scale };
  }

  override run(): void {
    const total = this.job.numbers.reduce((a, b) => a + b, 0) * this.job.scale;
    console.log(`${this.name}: ${this.label} = ${total}`);
  }
}

if (isMainThread) {
  const processes = [new MyProcess("small", [1, 2, 3], 1), new MyProcess("large", [10, 20, 30], 10)];
  for (const p of processes) p.start();
  for (const p of processes) await p.join();
  console.log(`exit codes: ${processes.map((p) => p.exitCode).join(", ")}`);
}
