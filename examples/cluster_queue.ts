// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Two programs sharing a named queue and a dict through a NATS JetStream
 * server: a producer puts jobs in the joinable queue "squares", consumers
 * (as many as you start, on any machine that reaches the server) square
 * them into the dict "results", and the producer waits until every job is
 * done.
 *
 *     nats-server -js &                                   # the server
 *     deno run -A examples/cluster_queue.ts consumer      # in one or more terminals
 *     deno run -A examples/cluster_queue.ts producer 20   # in another
 *
 * `npm run demo:cluster` (no arguments) starts a throw-away server and runs
 * one producer and two consumers as separate processes. The server's
 * address comes from `NATS_URL` (default `nats://127.0.0.1:4222`).
 *
 * The producer closes the queue at the end, and a closed queue stays closed
 * on that server (as a file that was closed): run it again on a fresh server
 * (the demo starts one each time) or delete the stream `mpjs_jq_squares`.
 */

import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "../cluster.ts";
import { INSTALL_HINT, natsServerPath, startNatsServer } from "./cluster_server.ts";

type Job = { n: number };

/** Puts `count` jobs, waits until consumers have done them all, prints the results and closes the queue. */
export async function producer(url: string, count: number): Promise<void> {
  await using cluster = await connect({ servers: url });
  const jobs = cluster.JoinableQueue<Job>("squares", { ackWait: 5_000 });
  const results = cluster.dict<number, number>("results");
  await results.clear();
  await jobs.putMany(Array.from({ length: count }, (_, i) => ({ n: i + 1 })));
  await jobs.join(); // every job put has been marked done, by whichever process
  const items = (await results.items()).sort((a, b) => a[0] - b[0]);
  const sum = items.reduce((s, [, v]) => s + v, 0);
  console.log(`producer: ${items.length} results, sum of squares ${sum}`);
  await jobs.close(); // the consumers' loops end
}

/** Takes jobs until the queue is closed, storing each square in the shared dict. */
export async function consumer(url: string, name: string): Promise<void> {
  await using cluster = await connect({ servers: url });
  const jobs = cluster.JoinableQueue<Job>("squares", { ackWait: 5_000 });
  const results = cluster.dict<number, number>("results");
  let done = 0;
  for await (const job of jobs) {
    await results.set(job.n, job.n * job.n);
    await jobs.taskDone();
    done++;
  }
  console.log(`${name}: did ${done} jobs`);
}

/** Runs this file again as a separate process of the same runtime, printing its lines. */
function runSelf(args: string[]): Promise<number | null> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const self = fileURLToPath(import.meta.url);
  const [cmd, argv] = deno ? [deno.execPath(), ["run", "-A", self, ...args]] : [process.execPath, [self, ...args]];
  const child = spawn(cmd, argv, { stdio: ["ignore", "inherit", "inherit"], env: process.env });
  return new Promise((resolve) => child.on("close", resolve));
}

async function demo(): Promise<void> {
  if (!natsServerPath()) {
    console.log(`demo skipped: nats-server not found; ${INSTALL_HINT}`);
    return;
  }
  const server = await startNatsServer();
  console.log(`nats-server -js on ${server.url}`);
  process.env.NATS_URL = server.url;
  try {
    const codes = await Promise.all([
      runSelf(["consumer", "consumer-1"]),
      runSelf(["consumer", "consumer-2"]),
      runSelf(["producer", "20"]),
    ]);
    if (codes.some((c) => c !== 0)) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

if ((import.meta as { main?: boolean }).main ?? process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, arg] = process.argv.slice(2);
  const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  if (role === "producer") await producer(url, Number(arg ?? 20));
  else if (role === "consumer") await consumer(url, arg ?? "consumer");
  else await demo();
}
