// Copyright the @mpjs/multiprocessing authors. MIT license.
// Task functions served by the cluster pool tests' worker processes (`--module`).
import process from "node:process";

export function square(x: number): number {
  return x * x;
}

export function add(a: number, b: number): number {
  return a + b;
}

/** `x * x` after `ms` milliseconds. */
export async function slowSquare(x: number, ms = 20): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return x * x;
}

/** The id of the worker process that ran it. */
export function whoAmI(): number {
  return process.pid;
}

export function boom(message: string): never {
  throw new TypeError(message);
}

/** Kills the whole worker process running it: a poison task. */
export function killSelf(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

/** Waits `ms` milliseconds. */
export async function sleepFor(ms: number): Promise<string> {
  await new Promise((r) => setTimeout(r, ms));
  return "slept";
}
