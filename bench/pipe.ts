// Copyright the @mpjs/multiprocessing authors. MIT license.
// Pipe: ping-pong round trip between the main thread and a worker (median and
// p99, both sides blocking in recvSync), and one-way throughput of small
// objects and of 1 MiB byte messages; ours against raw postMessage to a
// worker (node:worker_threads, structured clone) in the same run. Python's
// multiprocessing.Pipe peer: bench/pipe.py.
//   deno run -A bench/pipe.ts | bun bench/pipe.ts | node npm/bench/pipe.js

import { Worker as NodeWorker } from "node:worker_threads";
import { ClosedError, type Connection, isMainThread, Pipe, Thread } from "../mod.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const env = (k: string, d: number) => Number(g.process?.env?.[k] ?? d);
const PING_N = env("BENCH_PING_N", 50_000);
const SMALL_N = env("BENCH_SMALL_N", 100_000);
const BIG_N = env("BENCH_BIG_N", 32);
const REPS = env("BENCH_REPS", 5);
const BIG_BYTES = 1 << 20;

type Small = { i: number; s: string };

function percentile(xs: Float64Array, p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(c: string, impl: string, value: number, unit: string, better: "lower" | "higher"): void {
  const digits = unit === "µs" || unit === "GB/s" ? 3 : 0;
  const line = { case: c, impl, median: Number(value.toFixed(digits)), unit, better };
  console.log(`BENCH ${JSON.stringify(line)}`);
}

function reportRoundTrips(impl: string, samples: Float64Array): void {
  report("ping-pong round trip (median)", impl, percentile(samples, 0.5) * 1000, "µs", "lower");
  report("ping-pong round trip (p99)", impl, percentile(samples, 0.99) * 1000, "µs", "lower");
}

// ---- thread target ----------------------------------------------------------------

/**
 * Echoes numbers back; counts anything else and answers `null` with the
 * count; returns when the other end closes.
 */
export function peer(conn: Connection): void {
  let seen = 0;
  let sum = 0;
  for (;;) {
    let m: unknown;
    try {
      m = conn.recvSync();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    if (typeof m === "number") {
      conn.send(m);
    } else if (m === null) {
      conn.send({ seen, sum });
      seen = 0;
    } else {
      seen++;
      sum += m instanceof Uint8Array ? m[0] : (m as Small).i;
    }
  }
}

// ---- ours ---------------------------------------------------------------------------

async function ours(): Promise<void> {
  const [conn, there] = Pipe();
  const t = new Thread({ target: peer, args: [there], module: import.meta.url });
  t.start();
  // Ping-pong: one timestamp per round trip.
  for (let i = 0; i < 5000; i++) {
    conn.send(i);
    conn.recvSync();
  }
  const samples = new Float64Array(PING_N);
  let prev = performance.now();
  for (let i = 0; i < PING_N; i++) {
    conn.send(i);
    conn.recvSync();
    const now = performance.now();
    samples[i] = now - prev;
    prev = now;
  }
  reportRoundTrips("mpjs", samples);

  const rounds = (n: number, reps: number, send: (i: number) => void) => {
    const secs: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) send(i);
      conn.send(null);
      const got = conn.recvSync() as { seen: number };
      if (got.seen !== n) throw new Error(`peer saw ${got.seen} of ${n}`);
      if (r > 0) secs.push((performance.now() - t0) / 1000); // round 0 warms up
    }
    return secs;
  };
  const small = rounds(SMALL_N, REPS, (i) => conn.send({ i, s: "hello" }));
  report("one-way small {i,s}", "mpjs", median(small.map((s) => SMALL_N / s)), "items/s", "higher");
  const block = new Uint8Array(BIG_BYTES).fill(7);
  const big = rounds(BIG_N, 3, (i) => {
    block[0] = i;
    conn.sendBytes(block);
  });
  report("one-way 1 MiB bytes", "mpjs", median(big.map((s) => BIG_N * BIG_BYTES / s / 1e9)), "GB/s", "higher");
  conn.close();
  await t.join();
}

// ---- postMessage -------------------------------------------------------------------

async function postMessage(): Promise<void> {
  const w = new NodeWorker(new URL(`./workers/pipe_echo_node${ext}`, import.meta.url));
  let next: ((m: unknown) => void) | undefined;
  w.on("message", (m) => next?.(m));
  const receive = () => new Promise<unknown>((r) => (next = r));
  for (let i = 0; i < 2000; i++) {
    const got = receive();
    w.postMessage(i);
    await got;
  }
  const n = Math.min(PING_N, 20_000);
  const samples = new Float64Array(n);
  let prev = performance.now();
  for (let i = 0; i < n; i++) {
    const got = receive();
    w.postMessage(i);
    await got;
    const now = performance.now();
    samples[i] = now - prev;
    prev = now;
  }
  reportRoundTrips("postMessage", samples);

  const rounds = async (n: number, reps: number, send: (i: number) => void) => {
    const secs: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) send(i);
      const got = receive();
      w.postMessage(null);
      const { seen } = await got as { seen: number };
      if (seen !== n) throw new Error(`worker saw ${seen} of ${n}`);
      if (r > 0) secs.push((performance.now() - t0) / 1000);
    }
    return secs;
  };
  const small = await rounds(SMALL_N, REPS, (i) => w.postMessage({ i, s: "hello" }));
  report("one-way small {i,s}", "postMessage", median(small.map((s) => SMALL_N / s)), "items/s", "higher");
  const block = new Uint8Array(BIG_BYTES).fill(7);
  const big = await rounds(BIG_N, 3, (i) => {
    block[0] = i;
    w.postMessage(block);
  });
  report("one-way 1 MiB bytes", "postMessage", median(big.map((s) => BIG_N * BIG_BYTES / s / 1e9)), "GB/s", "higher");
  await w.terminate();
}

if (isMainThread) {
  await ours();
  await postMessage();
}
