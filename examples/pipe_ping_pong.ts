// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Ping-pong over a `Pipe` between the main thread and a worker: the main
 * thread sends "ping", the worker answers "pong", both blocking in
 * `recvSync()`. Then many timed round trips, and the worker stops when the
 * main thread closes its end.
 *
 *     deno run -A examples/pipe_ping_pong.ts [rounds]
 */

import { ClosedError, type Connection, isMainThread, Pipe, Thread } from "../mod.ts";

/** Answers each "ping N" with "pong N" until the other end is closed. */
export function ponger(conn: Connection<string>): void {
  for (;;) {
    let msg: string;
    try {
      msg = conn.recvSync();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    conn.send(msg.replace("ping", "pong"));
  }
}

if (isMainThread) {
  // deno-lint-ignore no-explicit-any
  const argv: string[] = (globalThis as any).Deno?.args ?? (globalThis as any).process.argv.slice(2);
  const rounds = Number(argv[0] ?? 100_000);
  const [conn, workerEnd] = Pipe<string>();
  const worker = new Thread({ target: ponger, args: [workerEnd], module: import.meta.url });
  worker.start();

  for (let i = 0; i < 3; i++) {
    conn.send(`ping ${i}`);
    console.log(`ping ${i} -> ${conn.recvSync()}`);
  }

  const times = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    conn.send("ping");
    conn.recvSync();
    times[i] = performance.now() - t0;
  }
  times.sort();
  console.log(`${rounds} round trips, median ${(times[rounds >> 1] * 1000).toFixed(1)} µs`);

  conn.close(); // the worker's recvSync() throws ClosedError and it returns
  await worker.join();
  console.log(`worker finished with exit code ${worker.exitCode}`);
}
