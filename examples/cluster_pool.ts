// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A CPU-bound map spread over worker processes with `cluster.Pool`: count
 * the primes below 2,000,000 in 200 ranges, first with one worker process,
 * then with two, and print the speed-up.
 *
 *     nats-server -js &                                                     # the server
 *     deno run -A cluster_worker.ts nats://127.0.0.1:4222 --pool primes \
 *       --module examples/cluster_pool.ts --processes 1                     # on each machine
 *     deno run -A examples/cluster_pool.ts map                              # the caller
 *
 * `npm run demo:cluster` (no arguments) starts a throw-away server and the
 * worker processes itself. The server's address comes from `NATS_URL`
 * (default `nats://127.0.0.1:4222`).
 *
 * This file is also the module the workers serve: their threads import it
 * and call `countPrimes`, so the program's own code is guarded by
 * `isMainThread`.
 */

import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isMainThread } from "../mod.ts";
import { connect } from "../cluster.ts";
import { INSTALL_HINT, natsServerPath, startNatsServer } from "./cluster_server.ts";

/** The number of primes in `[lo, hi)`, by trial division: work for a CPU. */
export function countPrimes(range: [number, number]): number {
  let count = 0;
  for (let n = Math.max(2, range[0]); n < range[1]; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

const LIMIT = 2_000_000;
const RANGES: [number, number][] = Array.from({ length: 200 }, (_, i) => [i * LIMIT / 200, (i + 1) * LIMIT / 200]);
const HERE = fileURLToPath(import.meta.url);
const WORKER = fileURLToPath(new URL(`../cluster_worker.${HERE.endsWith(".js") ? "js" : "ts"}`, import.meta.url));

/** Maps `countPrimes` over the ranges on whatever workers serve "primes"; returns [primes, seconds]. */
async function run(url: string): Promise<[number, number]> {
  await using cluster = await connect({ servers: url, storage: "memory" });
  await using pool = cluster.Pool({ name: "primes", module: HERE });
  const started = performance.now();
  const counts = await pool.map(countPrimes, RANGES, 4);
  return [counts.reduce((a, b) => a + b, 0), (performance.now() - started) / 1000];
}

/** Starts a worker process serving "primes" with one thread; resolves once it serves. */
function startWorker(url: string): Promise<ChildProcess> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const args = [WORKER, url, "--pool", "primes", "--module", HERE, "--processes", "1", "--storage", "memory"];
  const child = deno
    ? spawn(deno.execPath(), ["run", "-A", ...args], { stdio: ["ignore", "inherit", "pipe"] })
    : spawn(process.execPath, args, { stdio: ["ignore", "inherit", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      err += s;
      if (err.includes("mpjs-worker: serving")) resolve(child);
    });
    child.once("exit", () => reject(new Error(`the worker exited: ${err}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

if (isMainThread) {
  const mode = process.argv[2];
  if (mode === "map") {
    const [primes, seconds] = await run(process.env.NATS_URL ?? "nats://127.0.0.1:4222");
    console.log(`${primes} primes below ${LIMIT} in ${seconds.toFixed(2)} s`);
  } else if (!natsServerPath()) {
    console.log(`cluster pool demo skipped: nats-server not found; ${INSTALL_HINT}`);
  } else {
    const server = await startNatsServer();
    try {
      const first = await startWorker(server.url);
      await run(server.url); // warm-up: the worker's thread loads this module
      const [primes, one] = await run(server.url);
      console.log(`1 worker process:  ${primes} primes below ${LIMIT} in ${one.toFixed(2)} s`);
      const second = await startWorker(server.url);
      await run(server.url);
      const [again, two] = await run(server.url);
      console.log(`2 worker processes: ${again} primes below ${LIMIT} in ${two.toFixed(2)} s`);
      console.log(`speed-up: ${(one / two).toFixed(2)}x`);
      await Promise.all([stop(first), stop(second)]);
    } finally {
      await server.stop();
    }
  }
}
