// Copyright the @mpjs/multiprocessing authors. MIT license.
// Test helpers: run a script of this repository in a child process of the
// runtime running the tests (Deno, Bun, or Node on the npm build).

import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** The runtime running the tests. */
export const runtime: "deno" | "bun" | "node" = g.Deno?.version?.deno ? "deno" : g.Bun ? "bun" : "node";

/**
 * The file at `path` (relative to the repository root, written with `.ts`)
 * as this copy of the tests sees it: in the npm build the tests and the
 * scripts they run are compiled to `.js`.
 */
export function repoFile(path: string): string {
  const compiled = import.meta.url.endsWith(".js");
  const rel = compiled ? path.replace(/\.ts$/, ".js") : path;
  return fileURLToPath(new URL(`../${rel}`, import.meta.url));
}

/** The root directory of this copy of the repository (or of the npm build). */
export const rootDir: string = fileURLToPath(new URL("../", import.meta.url));

/** The command line that runs the script `file` with the current runtime. */
export function commandFor(file: string, args: string[] = []): [string, string[]] {
  if (runtime === "deno") return [g.Deno.execPath(), ["run", "-A", file, ...args]];
  return [process.execPath, [file, ...args]];
}

/** How a child process ended. */
export interface RunResult {
  /** Exit code, or `null` if it was killed (see `timedOut`). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  elapsed: number;
  /** Whether it was killed because it ran past `timeout`. */
  timedOut: boolean;
}

/**
 * Runs a script of this repository (path relative to the root, with `.ts`)
 * with the current runtime and collects its output. Kills it after
 * `timeout` ms.
 */
export function runScript(path: string, args: string[] = [], timeout = 30_000): Promise<RunResult> {
  const [cmd, argv] = commandFor(repoFile(path), args);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: rootDir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeout);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, elapsed: performance.now() - started, timedOut });
    });
  });
}

/** The non-empty lines of `text`. */
export function lines(text: string): string[] {
  return text.split(/\r?\n/).filter((l) => l.trim() !== "");
}

/** `n` Int32 cells in shared memory, for threads to report into. */
export function sharedInts(n = 1): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits (polling) until `f()` is true; rejects after `ms`. */
export async function eventually(f: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await sleep(5);
  }
}

/**
 * The share of one core this process used while `during()` ran, the lowest
 * of up to `tries` runs (it stops once a run is under `enough`). A waiter
 * that spins uses the CPU in every run; a one-off such as the garbage
 * collection of an earlier test's data does not.
 */
export async function cpuShare(during: () => Promise<unknown>, enough = 0.25, tries = 3): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < tries && best >= enough; i++) {
    const before = process.cpuUsage();
    const t0 = performance.now();
    await during();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000 / (performance.now() - t0));
  }
  return best;
}

/** Timeouts every waiting method must refuse with a RangeError. */
export const INVALID_TIMEOUTS: unknown[] = [-1, NaN, Infinity, -Infinity, "10"];
