// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Process attributes (seed 004): `name`, `pid`, `isAlive()` and `daemon`.
 * A daemon process ends with its parent, and `daemon` must be set before
 * `start()`.
 *
 *     deno run -A examples/process_attributes.ts
 */

import { isMainThread, Process } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Works for `ms` milliseconds. */
export async function work(ms: number): Promise<void> {
  await sleep(ms);
}

/** Works for ever (well, far longer than the main program lives). */
export async function forever(): Promise<void> {
  for (;;) {
    await sleep(50);
  }
}

if (isMainThread) {
  const p = new Process({ target: work, args: [100], module: import.meta.url, name: "worker-1" });
  console.log(`name: ${p.name}`);
  console.log(`pid before start: ${p.pid}`);
  console.log(`alive before start: ${p.isAlive()}`);
  p.start();
  console.log(`pid: ${typeof p.pid === "number" ? "a number" : p.pid}`);
  console.log(`alive while running: ${p.isAlive()}`);
  await p.join();
  console.log(`alive after join: ${p.isAlive()}`);
  console.log(`exitCode: ${p.exitCode}`);

  const d = new Process({ target: forever, module: import.meta.url, name: "background" });
  d.daemon = true; // must be set before start()
  d.start();
  try {
    d.daemon = false;
  } catch (e) {
    console.log(`setting daemon after start: ${(e as Error).message}`);
  }
  await d.join(100);
  console.log(`daemon alive: ${d.isAlive()}`);
  console.log("main ends; the daemon process ends with it");
}
