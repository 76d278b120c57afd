// Copyright the @mpjs/multiprocessing authors. MIT license.
// A Thread subclass that is its module's default export, for tests/thread_test.ts.

import { Thread } from "../../mod.ts";

/** Writes `value` into `out[0]`. */
export default class DefaultWriter extends Thread {
  out: Int32Array;
  value: number;
  constructor(out: Int32Array, value: number) {
    super({ module: import.meta.url });
    this.out = out;
    this.value = value;
  }
  override run(): void {
    this.out[0] = this.value;
  }
}
