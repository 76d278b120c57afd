// Copyright the @mpjs/multiprocessing authors. MIT license.
// cluster.Pool against a real nats-server (started here on a free loopback
// port) with worker processes started from cluster_worker.ts, some of them
// SIGKILLed. Without nats-server the file prints one line and passes, except
// under CI=true, where it fails.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { connect } from "../cluster.ts";
import { ClosedError, RemoteError } from "../errors.ts";
import { INSTALL_HINT, type NatsServer, natsServerPath, startNatsServer } from "../examples/cluster_server.ts";
import { commandFor, repoFile, rootDir, runScript } from "./_util.ts";
import { add, boom, killSelf, sleepFor, slowSquare, square, whoAmI } from "./testdata/cluster_pool_tasks.ts";

const TASKS = repoFile("tests/testdata/cluster_pool_tasks.ts");
let unique = 0;
/** A fresh pool name, so tests never share a stream. */
const fresh = (what: string) => `${what}_${Date.now()}_${unique++}`;

/** A worker process serving `pool`. */
interface Worker {
  child: ChildProcess;
  /** Tasks it reported done so far. */
  tasks(): number;
  exited: Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

const started = new Set<Worker>();

/** Starts `cluster_worker.ts` on `pool` and waits until it takes tasks. */
async function startWorker(url: string, pool: string, extra: string[] = []): Promise<Worker> {
  const [cmd, args] = commandFor(repoFile("cluster_worker.ts"), [
    url,
    "--pool",
    pool,
    "--module",
    TASKS,
    "--processes",
    "1",
    "--verbose",
    ...extra,
  ]);
  const child = spawn(cmd, args, { cwd: rootDir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => out += s);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      err += s;
      if (err.includes("mpjs-worker: serving")) resolve();
    });
    void exited.then(() => reject(new Error(`the worker exited before serving: ${err}`)));
  });
  const w: Worker = {
    child,
    tasks: () => out.split("\n").filter((l) => l.startsWith("task ")).length,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      started.delete(w);
    },
  };
  started.add(w);
  return w;
}

async function until(f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (!natsServerPath()) {
  console.log(`cluster pool tests skipped: nats-server not found; ${INSTALL_HINT}`);
  if (process.env.CI === "true") {
    test("nats-server is installed (required under CI=true)", () => {
      assert.fail(`nats-server not found; ${INSTALL_HINT}`);
    });
  }
} else {
  describe("cluster Pool", () => {
    let server: NatsServer;
    before(async () => {
      server = await startNatsServer();
    });
    after(async () => {
      await Promise.all([...started].map((w) => w.kill("SIGKILL")));
      await server.stop();
    });

    test("two worker processes: map over 10,000 items, apply, starmap, imap, errors", async () => {
      const name = fresh("basic");
      const workers = await Promise.all([startWorker(server.url, name), startWorker(server.url, name)]);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS, maxInFlight: 4 });
      const items = Array.from({ length: 10_000 }, (_, i) => i);
      const squares = await pool.map(square, items, 100);
      assert.deepEqual(squares, items.map((x) => x * x));
      assert.ok(workers.every((w) => w.tasks() > 0), `both workers took chunks: ${workers.map((w) => w.tasks())}`);
      assert.equal(await pool.apply(square, [12]), 144);
      assert.deepEqual(await pool.starmap(add, [[1, 2], [3, 4]]), [3, 7]);
      assert.deepEqual(await pool.mapAsync(square, [1, 2, 3]).get(), [1, 4, 9]);
      const r = pool.applyAsync(add, [20, 22]);
      assert.equal(await r.get(10_000), 42);
      assert.equal(r.successful(), true);
      const err = await pool.apply(boom, ["bad input"]).catch((e) => e);
      assert.ok(err instanceof RemoteError);
      assert.equal(err.name, "TypeError");
      assert.equal(err.message, "bad input");
      assert.match(err.remoteStack, /boom/);
      assert.match(err.remoteStack, /on cluster worker /);
      const where = err as unknown as { host: string; pid: number };
      assert.equal(typeof where.host, "string");
      assert.ok(workers.some((w) => w.child.pid === where.pid));
      // imap over an endless generator keeps at most maxInFlight (4) chunks in flight.
      let read = 0;
      function* naturals() {
        for (let i = 0;; i++) {
          read++;
          yield i;
        }
      }
      const got: number[] = [];
      for await (const x of pool.imap(square, naturals())) {
        got.push(x);
        if (got.length === 10) break;
      }
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => i * i));
      assert.ok(read <= 10 + 4 + 1, `read ${read} items`);
      const unordered: number[] = [];
      const twenty = Array.from({ length: 20 }, (_, i) => i);
      for await (const x of pool.imapUnordered(square, twenty, 2)) { // 10 chunks, 4 in flight
        unordered.push(x);
        pool.close(); // an imap started before close() goes on to the end of its input
      }
      assert.deepEqual(unordered.sort((a, b) => a - b), twenty.map((x) => x * x));
      await pool.join();
      assert.throws(() => pool.applyAsync(square, [1]), ClosedError);
      await Promise.all(workers.map((w) => w.kill("SIGTERM")));
    });

    test("a worker SIGKILLed in the middle of a map: every result still arrives once", async () => {
      const name = fresh("kill");
      const [victim, survivor] = await Promise.all([startWorker(server.url, name), startWorker(server.url, name)]);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS, ackWait: 1_500 });
      const items = Array.from({ length: 200 }, (_, i) => i);
      const mapped = pool.map(slowSquare, items, 10); // 20 chunks of ~200 ms
      await until(() => victim.tasks() >= 2);
      await victim.kill("SIGKILL"); // it holds chunks it has not finished
      assert.deepEqual(await mapped, items.map((x) => x * x));
      assert.ok(survivor.tasks() > 0);
      await survivor.kill("SIGTERM");
    });

    test("a worker started in the middle of a map takes work", async () => {
      const name = fresh("late");
      const first = await startWorker(server.url, name);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS });
      const items = Array.from({ length: 300 }, (_, i) => i);
      const mapped = pool.map(slowSquare, items, 5); // 60 chunks of ~100 ms
      await until(() => first.tasks() >= 1);
      const late = await startWorker(server.url, name);
      assert.deepEqual(await mapped, items.map((x) => x * x));
      assert.ok(late.tasks() > 0, `the late worker took ${late.tasks()} chunks, the first ${first.tasks()}`);
      await Promise.all([first.kill("SIGTERM"), late.kill("SIGTERM")]);
    });

    test("a poison task (it kills its worker) rejects after maxDeliver deliveries", async () => {
      const name = fresh("poison");
      const workers = await Promise.all([startWorker(server.url, name), startWorker(server.url, name)]);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS, ackWait: 1_000, maxDeliver: 2 });
      await assert.rejects(pool.apply(killSelf), /delivered 2 times \(maxDeliver 2\) without a result/);
      // Both took it and died, unless the server counted a delivery to a dead worker's pending request.
      await Promise.all(workers.map((w) => w.kill("SIGKILL")));
      const fresh1 = await startWorker(server.url, name);
      assert.equal(await pool.apply(square, [3]), 9); // the poison is gone from the stream
      await until(() => fresh1.tasks() === 1); // it prints once the task is acknowledged
      await fresh1.kill("SIGTERM");
    });

    test("cancel by signal: the task rejects at once and its worker is freed", async () => {
      const name = fresh("cancel");
      const worker = await startWorker(server.url, name, ["--concurrency", "1"]);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS });
      const controller = new AbortController();
      const long = pool.apply(sleepFor, [120_000], { signal: controller.signal });
      await new Promise((r) => setTimeout(r, 500)); // the worker has taken it
      controller.abort(new Error("no longer needed"));
      await assert.rejects(long, /no longer needed/);
      // The only slot of the only worker is free again, long before 120 s.
      assert.equal(await pool.apply(square, [5]), 25);
      const aborted = AbortSignal.abort(new Error("before"));
      await assert.rejects(pool.map(square, [1, 2], 1, { signal: aborted }), /before/);
      await worker.kill("SIGTERM");
    });

    test("terminate(): pending tasks reject, the stream forgets them, workers stop them", async () => {
      const name = fresh("term");
      const worker = await startWorker(server.url, name, ["--concurrency", "1"]);
      await using cluster = await connect({ servers: server.url });
      const pool = cluster.Pool({ name, module: TASKS });
      const doomed = pool.map(sleepFor, [120_000, 120_000, 120_000], 1).catch((e) => e);
      await new Promise((r) => setTimeout(r, 500));
      await pool.terminate();
      assert.match((await doomed).message, /terminated/);
      assert.throws(() => pool.applyAsync(square, [1]), ClosedError);
      await assert.rejects(pool.apply(square, [1]), ClosedError);
      const other = cluster.Pool({ name, module: TASKS });
      assert.equal(await other.apply(square, [6]), 36); // not stuck behind the terminated tasks
      await other.terminate();
      await worker.kill("SIGTERM");
    });

    test("security: only exports of served modules run; source needs --allow-source", async () => {
      const name = fresh("sec");
      const strict = await startWorker(server.url, name);
      await using cluster = await connect({ servers: server.url });
      const bySource = cluster.Pool({ name });
      await assert.rejects(bySource.apply((x: number) => x + 1, [1]), /--allow-source/);
      const other = cluster.Pool({ name, module: "./not_served.ts" });
      await assert.rejects(other.apply(square, [1]), /serves only/);
      await strict.kill("SIGTERM");
      const open = await startWorker(server.url, name, ["--allow-source"]);
      assert.equal(await bySource.apply((x: number) => x + 1, [1]), 2);
      assert.equal(await cluster.Pool({ name, module: TASKS }).apply(whoAmI), open.child.pid);
      // The module named by its URL where the worker was given its path: the same module.
      assert.equal(await cluster.Pool({ name, module: pathToFileURL(TASKS) }).apply(square, [9]), 81);
      await open.kill("SIGTERM");
    });

    test("bad options and arguments fail clearly and send nothing", async () => {
      await using cluster = await connect({ servers: server.url });
      for (const bad of ["", "a.b", "a b", 3, undefined]) {
        assert.throws(() => cluster.Pool({ name: bad as string }), TypeError);
      }
      assert.throws(() => cluster.Pool(undefined as never), TypeError);
      for (const ackWait of [0, -1, NaN, Infinity, "1"]) {
        assert.throws(() => cluster.Pool({ name: "ok", ackWait: ackWait as number }), RangeError);
      }
      for (const maxDeliver of [0, 1.5, -1]) {
        assert.throws(() => cluster.Pool({ name: "ok", maxDeliver }), RangeError);
      }
      const pool = cluster.Pool({ name: fresh("bad"), module: TASKS });
      await assert.rejects(pool.apply(square, [() => 1] as never), (e: Error) => /args\[0\]/.test(e.message));
      await assert.rejects(pool.map(square, 5 as never), TypeError);
      await assert.rejects(pool.map(square, [1], 0), RangeError);
      await assert.rejects(pool.apply("square" as never), TypeError);
      assert.equal(pool.pending, 0);
      await assert.rejects(pool.join(), /still running/);
      await pool.terminate();
      const r = await runWorkerArgs(["nats://127.0.0.1:1", "--pool", "x", "--module", TASKS, "--token", "s3cret"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /not accepted on the command line/);
    });
  });

  test("examples/cluster_pool.ts (npm run demo:cluster): one worker process, then two", async () => {
    const r = await runScript("examples/cluster_pool.ts", [], 120_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 worker process: +148933 primes below 2000000/);
    assert.match(r.stdout, /2 worker processes: 148933 primes below 2000000/);
    assert.match(r.stdout, /speed-up: \d+\.\d\dx/);
  });
}

/** Runs the worker command with `args` and waits for it to exit. */
function runWorkerArgs(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const [cmd, argv] = commandFor(repoFile("cluster_worker.ts"), args);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: rootDir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}
