// Copyright the @mpjs/multiprocessing authors. MIT license.
// cluster.ts against the raw NATS JetStream client doing the same publish and
// fetch, in the same run, on a throw-away nats-server (file storage, loopback):
//   - "1→1, each put awaited": the producer (this process) awaits every put,
//     a consumer process takes the items one get() (one pull request) at a time;
//   - "1→1, puts in flight, one item per fetch": the producer keeps puts in
//     flight (putMany, or publishes not awaited one by one), the consumer as
//     above;
//   - "1→1, puts in flight, batched fetch": the same with the consumer
//     fetching what is there in one round trip (`prefetch: 256`; the raw
//     client's consume(), the engine's own bound);
//   - "…, memory storage": the last case on streams kept in memory, as
//     durable as Python's manager;
//   - "ping-pong round trip": a consumer process waiting in get() answers
//     each item on a second queue;
//   - the cluster pool's cases (bench/workers/cluster_pool.ts).
// Python's remote manager queue (BaseManager serving queue.Queue over TCP)
// is the peer in bench/cluster.py. Skipped, with a line, without nats-server.
//   deno run -A bench/cluster.ts | bun bench/cluster.ts | node npm/bench/cluster.js

import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect as natsConnect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect } from "../cluster.ts";
import { decode, encode } from "../_codec.ts";
import { INSTALL_HINT, natsServerPath, startNatsServer } from "../examples/cluster_server.ts";
import { poolCases } from "./workers/cluster_pool.ts";

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const SEQ_N = env("BENCH_CLUSTER_SEQ_N", 3_000);
const FLIGHT_N = env("BENCH_CLUSTER_N", 20_000);
const PING_N = env("BENCH_CLUSTER_PING_N", 1_000);
const REPS = env("BENCH_REPS", 3);

type Small = { i: number; s: string };
const item = (i: number): Small => ({ i, s: "hello" });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(c: string, impl: string, value: number, unit: string, better: "higher" | "lower"): void {
  console.log(`BENCH ${JSON.stringify({ case: c, impl, median: Math.round(value), unit, better })}`);
}

// ---- the consumer process --------------------------------------------------------

/** Consumes `n` items of queue or stream `name` (or answers `n` pings), printing "ready" once set up. */
async function child(impl: string, url: string, name: string, n: number): Promise<void> {
  const say = (s: string) => process.stdout.write(s + "\n");
  if (impl.startsWith("mpjs")) {
    await using cluster = await connect({ servers: url, storage: impl.endsWith("-mem") ? "memory" : "file" });
    const q = cluster.Queue<Small>(name, { prefetch: impl.includes("prefetch") ? 256 : 1 });
    const pong = cluster.Queue<number>(name + "_pong");
    await q.qsize(); // sets the queue up
    say("ready");
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const x = await q.get();
      if (impl === "mpjs-ping") await pong.put(x.i);
      sum += x.i;
    }
    say(`done ${sum}`);
    return;
  }
  const nc = await natsConnect({ servers: url });
  const js = jetstream(nc);
  const c = await js.consumers.get(name, "raw");
  say("ready");
  let sum = 0;
  if (impl.startsWith("raw-next") || impl === "raw-ping") {
    for (let k = 0; k < n;) {
      const m = await c.next({ expires: 5_000 });
      if (!m) continue;
      m.ack();
      const x = decode(m.data) as Small;
      if (impl === "raw-ping") await js.publish(name + ".pong", encode(x.i));
      sum += x.i;
      k++;
    }
  } else {
    const messages = await c.consume();
    let k = 0;
    for await (const m of messages) {
      m.ack();
      sum += (decode(m.data) as Small).i;
      if (++k === n) break;
    }
  }
  say(`done ${sum}`);
  await nc.close();
}

// ---- the producer (this process) -------------------------------------------------

function startChild(args: string[]): { ready: Promise<void>; done: Promise<void> } {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const self = fileURLToPath(import.meta.url);
  const [cmd, argv] = deno ? [deno.execPath(), ["run", "-A", self, ...args]] : [process.execPath, [self, ...args]];
  const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  let onReady!: () => void;
  const ready = new Promise<void>((r) => onReady = r);
  p.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    if (out.includes("ready")) onReady();
  });
  const done = new Promise<void>((resolve, reject) =>
    p.on("close", (code) => code === 0 && out.includes("done") ? resolve() : reject(new Error(`child failed: ${out}`)))
  );
  return { ready, done };
}

let serial = 0;

async function main(): Promise<void> {
  if (!natsServerPath()) {
    console.log(`cluster benchmark skipped: nats-server not found; ${INSTALL_HINT}`);
    return;
  }
  const server = await startNatsServer();
  const url = server.url;
  try {
    await using cluster = await connect({ servers: url });
    await using memoryCluster = await connect({ servers: url, storage: "memory" });
    const nc = await natsConnect({ servers: url });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const rawStream = async (storage: "file" | "memory" = "file") => {
      const name = `raw_${serial++}`;
      await jsm.streams.add({
        name,
        subjects: [name, name + ".pong"],
        retention: RetentionPolicy.Workqueue,
        storage: storage as never,
      });
      await jsm.consumers.add(name, { durable_name: "raw", ack_policy: AckPolicy.Explicit, filter_subject: name });
      await jsm.consumers.add(name, {
        durable_name: "pong",
        ack_policy: AckPolicy.Explicit,
        filter_subject: name + ".pong",
      });
      return name;
    };

    /** Items/s: n items from here to a consumer process, timed from the first put to the consumer's last get. */
    const oneToOne = async (impl: string, n: number, produce: (name: string) => Promise<void>, raw: boolean) => {
      const rates: number[] = [];
      for (let r = 0; r < REPS; r++) {
        const name = raw ? await rawStream(impl.endsWith("-mem") ? "memory" : "file") : `bench_${serial++}`;
        const c = startChild(["child", impl, url, name, String(n)]);
        await c.ready;
        const t0 = performance.now();
        await produce(name);
        await c.done;
        rates.push(n / ((performance.now() - t0) / 1000));
      }
      return median(rates);
    };

    const seq = "1→1, each put awaited";
    report(
      seq,
      "mpjs",
      await oneToOne("mpjs", SEQ_N, async (name) => {
        const q = cluster.Queue<Small>(name);
        for (let i = 0; i < SEQ_N; i++) await q.put(item(i));
      }, false),
      "items/s",
      "higher",
    );
    report(
      seq,
      "raw JetStream (await publish, next)",
      await oneToOne("raw-next", SEQ_N, async (name) => {
        for (let i = 0; i < SEQ_N; i++) await js.publish(name, encode(item(i)), { msgID: crypto.randomUUID() });
      }, true),
      "items/s",
      "higher",
    );

    const flight = "1→1, puts in flight, one item per fetch";
    const putMany = async (name: string) => {
      await cluster.Queue<Small>(name).putMany(Array.from({ length: FLIGHT_N }, (_, i) => item(i)));
    };
    report(flight, "mpjs", await oneToOne("mpjs", FLIGHT_N, putMany, false), "items/s", "higher");
    const rawFlight = async (name: string) => {
      const WINDOW = 4096;
      for (let start = 0; start < FLIGHT_N; start += WINDOW) {
        const sends = [];
        for (let i = start; i < Math.min(start + WINDOW, FLIGHT_N); i++) {
          sends.push(js.publish(name, encode(item(i)), { msgID: crypto.randomUUID() }));
        }
        await Promise.all(sends);
      }
    };
    report(
      flight,
      "raw JetStream (publishes in flight, next)",
      await oneToOne("raw-next", FLIGHT_N, rawFlight, true),
      "items/s",
      "higher",
    );
    const batched = "1→1, puts in flight, batched fetch";
    report(
      batched,
      "mpjs",
      await oneToOne("mpjs-prefetch", FLIGHT_N, putMany, false),
      "items/s",
      "higher",
    );
    report(
      batched,
      "raw JetStream (publishes in flight, consume)",
      await oneToOne("raw-consume", FLIGHT_N, rawFlight, true),
      "items/s",
      "higher",
    );
    // Memory storage: as durable as Python's manager (items live in the server's memory).
    const memory = "1→1, puts in flight, batched fetch, memory storage";
    report(
      memory,
      "mpjs",
      await oneToOne("mpjs-prefetch-mem", FLIGHT_N, async (name) => {
        await memoryCluster.Queue<Small>(name).putMany(Array.from({ length: FLIGHT_N }, (_, i) => item(i)));
      }, false),
      "items/s",
      "higher",
    );
    report(
      memory,
      "raw JetStream (publishes in flight, consume)",
      await oneToOne("raw-consume-mem", FLIGHT_N, rawFlight, true),
      "items/s",
      "higher",
    );

    // Round trips: put an item, wait for the consumer process's answer.
    const ping = "ping-pong round trip";
    {
      const samples: number[] = [];
      for (let r = 0; r < REPS; r++) {
        const name = `bench_${serial++}`;
        const c = startChild(["child", "mpjs-ping", url, name, String(PING_N)]);
        await c.ready;
        const q = cluster.Queue<Small>(name);
        const pong = cluster.Queue<number>(name + "_pong");
        const t0 = performance.now();
        for (let i = 0; i < PING_N; i++) {
          await q.put(item(i));
          await pong.get();
        }
        samples.push(((performance.now() - t0) * 1000) / PING_N);
        await c.done;
      }
      report(ping, "mpjs", median(samples), "µs", "lower");
    }
    {
      const samples: number[] = [];
      for (let r = 0; r < REPS; r++) {
        const name = await rawStream();
        const c = startChild(["child", "raw-ping", url, name, String(PING_N)]);
        await c.ready;
        const pong = await js.consumers.get(name, "pong");
        const t0 = performance.now();
        for (let i = 0; i < PING_N; i++) {
          await js.publish(name, encode(item(i)), { msgID: crypto.randomUUID() });
          for (;;) {
            const m = await pong.next({ expires: 5_000 });
            if (m) {
              m.ack();
              break;
            }
          }
        }
        samples.push(((performance.now() - t0) * 1000) / PING_N);
        await c.done;
      }
      report(ping, "raw JetStream (await publish, next)", median(samples), "µs", "lower");
    }
    await nc.close();
    await poolCases(url, report, REPS); // cluster.Pool with worker processes
  } finally {
    await server.stop();
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === "child") await child(rest[0], rest[1], rest[2], Number(rest[3]));
else await main();
