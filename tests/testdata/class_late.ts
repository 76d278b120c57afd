// Copyright the @mpjs/multiprocessing authors. MIT license.
// A class registered only when the test asks (after a thread started), for tests/register_class_test.ts.
import { registerClass } from "../../mod.ts";

export const url: string = import.meta.url;

export class Late {
  constructor(public n: number) {}
}

export function registerLate(): void {
  registerClass(Late, { module: import.meta.url });
}
