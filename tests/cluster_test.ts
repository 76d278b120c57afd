// Copyright the @mpjs/multiprocessing authors. MIT license.
// cluster.ts against a real nats-server (started here on a free loopback
// port with a temporary store), with separate OS processes as producers and
// consumers. Without nats-server the file prints one line and passes,
// except under CI=true, where it fails.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { connect } from "../cluster.ts";
import { ClosedError, EmptyError, FullError, KeyError } from "../errors.ts";
import { INSTALL_HINT, type NatsServer, natsServerPath, startNatsServer } from "../examples/cluster_server.ts";
import { commandFor, repoFile, rootDir, runScript } from "./_util.ts";

const WORKER = "tests/testdata/cluster_worker.ts";
let unique = 0;
/** A fresh name, so tests never share a queue or dict. */
const fresh = (what: string) => `${what}_${Date.now()}_${unique++}`;

function numbers(stdout: string, prefix: string): number[] {
  return stdout.split("\n").filter((l) => l.startsWith(prefix + " ")).map((l) => Number(l.split(" ")[1]));
}

if (!natsServerPath()) {
  console.log(`cluster tests skipped: nats-server not found; ${INSTALL_HINT}`);
  if (process.env.CI === "true") {
    test("nats-server is installed (required under CI=true)", () => {
      assert.fail(`nats-server not found; ${INSTALL_HINT}`);
    });
  }
} else {
  describe("cluster", () => {
    let server: NatsServer;
    before(async () => {
      server = await startNatsServer();
    });
    after(async () => {
      await server.stop();
    });

    test("Queue: items put by one process are got once by two others", async () => {
      const name = fresh("q");
      // The producer is done before the consumers start, so a consumer that
      // is slow to start cannot mistake the wait for an empty queue.
      const p = await runScript(WORKER, ["produce", server.url, "q", name, "0", "200"], 60_000);
      assert.equal(p.code, 0, p.stderr);
      const consumers = [0, 1].map(() => runScript(WORKER, ["consume", server.url, "q", name, "3000"], 60_000));
      const got: number[] = [];
      for (const r of await Promise.all(consumers)) {
        assert.equal(r.code, 0, r.stderr);
        got.push(...numbers(r.stdout, "item"));
      }
      assert.deepEqual(got.sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i));
    });

    test("JoinableQueue: a consumer killed between get and taskDone: its item is redone once", async () => {
      const name = fresh("jq");
      await using cluster = await connect({ servers: server.url });
      const q = cluster.JoinableQueue<number>(name, { ackWait: 1_000 });
      await q.putMany(Array.from({ length: 20 }, (_, i) => i));
      // The victim takes one item and is SIGKILLed before marking it done.
      const [cmd, args] = commandFor(repoFile(WORKER), ["hold", server.url, name]);
      const victim = spawn(cmd, args, { cwd: rootDir, stdio: ["ignore", "pipe", "inherit"] });
      const held = await new Promise<number>((resolve, reject) => {
        let out = "";
        victim.stdout!.setEncoding("utf8").on("data", (s: string) => {
          out += s;
          const m = /held (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        victim.on("exit", () => reject(new Error(`the victim exited early: ${out}`)));
      });
      const exited = new Promise((r) => victim.once("exit", r));
      victim.kill("SIGKILL");
      await exited;
      const survivors = await Promise.all(
        [0, 1].map(() => runScript(WORKER, ["consume", server.url, "jq", name, "4000"], 60_000)),
      );
      const done: number[] = [];
      for (const r of survivors) {
        assert.equal(r.code, 0, r.stderr);
        done.push(...numbers(r.stdout, "item"));
      }
      assert.ok(done.includes(held), `the killed consumer's item ${held} was redelivered`);
      assert.deepEqual(done.sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
      await q.join({ timeout: 10_000 });
      assert.equal(await q.qsize(), 0);
    });

    test("JoinableQueue: items not done when a cluster closes go back at once", async () => {
      const name = fresh("jqc");
      const a = await connect({ servers: server.url });
      await using b = await connect({ servers: server.url });
      const qa = a.JoinableQueue<string>(name, { ackWait: 60_000 });
      await qa.put("job");
      assert.equal(await qa.get(), "job");
      await a.close(); // without taskDone
      const qb = b.JoinableQueue<string>(name);
      assert.equal(await qb.get({ timeout: 10_000 }), "job"); // not 60 s later
      await qb.taskDone();
      await qb.join({ timeout: 10_000 });
      assert.equal(await qb.qsize(), 0);
    });

    test("JoinableQueue: an item is delivered at most maxDeliver times", async () => {
      const name = fresh("jqmax");
      for (let delivery = 1; delivery <= 2; delivery++) {
        const c = await connect({ servers: server.url });
        const q = c.JoinableQueue<string>(name, { ackWait: 60_000, maxDeliver: 2 });
        if (delivery === 1) await q.put("poison");
        assert.equal(await q.get({ timeout: 10_000 }), "poison");
        await c.close(); // not done: handed back
      }
      await using last = await connect({ servers: server.url });
      const q = last.JoinableQueue<string>(name);
      await assert.rejects(q.get({ timeout: 1_500 }), EmptyError);
      await q.join({ timeout: 100 }); // still counted: join only returns on its timeout
    });

    test("JoinableQueue.join() waits for taskDone in another process", async () => {
      const name = fresh("jqj");
      await using cluster = await connect({ servers: server.url });
      const q = cluster.JoinableQueue<number>(name, { ackWait: 1_000 });
      await q.putMany([1, 2, 3]);
      await q.join({ timeout: 200 }); // returns on timeout: nothing is done yet
      const consumer = runScript(WORKER, ["consume", server.url, "jq", name, "2000"], 60_000);
      await q.join({ timeout: 30_000 });
      const r = await consumer;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(numbers(r.stdout, "item"), [1, 2, 3]);
      await assert.rejects(q.taskDone(), /more times than items/);
    });

    test("a bounded queue refuses with FullError and never drops", async () => {
      const name = fresh("full");
      await using cluster = await connect({ servers: server.url });
      const q = cluster.Queue<number>(name, { maxsize: 3 });
      for (let i = 0; i < 3; i++) await q.putNowait(i);
      await assert.rejects(q.putNowait(3), FullError);
      const started = Date.now();
      await assert.rejects(q.put(3, { timeout: 300 }), FullError);
      assert.ok(Date.now() - started >= 250);
      assert.equal(await q.full(), true);
      // A put waiting for room goes in once an item is taken.
      const waiting = q.put(3, { timeout: 20_000 });
      assert.equal(await q.get(), 0);
      await waiting;
      const rest = [await q.get(), await q.get(), await q.get()];
      assert.deepEqual(rest, [1, 2, 3]);
      await assert.rejects(q.getNowait(), EmptyError);
      // Another process naming it with another maxsize is told.
      await assert.rejects(cluster.Queue(name, { maxsize: 5 }).qsize(), RangeError);
    });

    test("prefetch: items fetched ahead stay unacknowledged and go back when the cluster closes", async () => {
      const name = fresh("pre");
      const a = await connect({ servers: server.url });
      await using b = await connect({ servers: server.url });
      const qa = a.Queue<number>(name, { prefetch: 10 });
      const qb = b.Queue<number>(name);
      await qb.putMany([0, 1, 2, 3, 4]);
      assert.equal(await qa.get(), 0); // one round trip fetched all five
      assert.equal(await qa.get(), 1);
      await assert.rejects(qb.getNowait(), EmptyError); // 2..4 are held by qa
      await a.close(); // hands them back at once, not after the ack wait
      const rest = [
        await qb.get({ timeout: 5_000 }),
        await qb.get({ timeout: 5_000 }),
        await qb.get({ timeout: 5_000 }),
      ];
      assert.deepEqual(rest.sort(), [2, 3, 4]);
      assert.throws(() => b.Queue(name, { prefetch: 0 }), RangeError);
    });

    test("server restarted mid-run (file storage): no item put before the restart is lost", async () => {
      const name = fresh("restart");
      const consumer = runScript(WORKER, ["consume", server.url, "q", name, "15000"], 120_000);
      {
        await using cluster = await connect({ servers: server.url });
        const q = cluster.Queue<number>(name);
        await q.putMany(Array.from({ length: 100 }, (_, i) => i));
        await server.restart();
        await q.putMany(Array.from({ length: 100 }, (_, i) => 100 + i), { timeout: 30_000 });
      }
      const r = await consumer;
      assert.equal(r.code, 0, r.stderr);
      const got = new Set(numbers(r.stdout, "item"));
      const missing = Array.from({ length: 200 }, (_, i) => i).filter((i) => !got.has(i));
      assert.deepEqual(missing, []);
    });

    test("close(): puts refused, gets drain, then ClosedError everywhere", async () => {
      const name = fresh("close");
      await using a = await connect({ servers: server.url });
      await using b = await connect({ servers: server.url });
      const qa = a.Queue<string>(name);
      const qb = b.Queue<string>(name);
      await qa.put("left");
      assert.equal(await qb.get(), "left");
      const waiting = qb.get(); // wakes when qa closes
      await new Promise((r) => setTimeout(r, 300));
      await qa.put("x");
      assert.equal(await waiting, "x");
      await qa.put("y");
      const blocked = qb.get({ timeout: 60_000 });
      assert.equal(await blocked, "y");
      const idle = qb.get();
      await new Promise((r) => setTimeout(r, 300));
      await qa.close();
      await assert.rejects(idle, ClosedError);
      const err = await qb.put("z").catch((e) => e);
      assert.ok(err instanceof ClosedError);
      assert.equal(err.value, "z");
      await assert.rejects(qb.get({ block: false }), ClosedError);
      const drained: string[] = [];
      for await (const x of qa) drained.push(x);
      assert.deepEqual(drained, []);
    });

    test("dict: the DictProxy methods", async () => {
      await using cluster = await connect({ servers: server.url });
      const d = cluster.dict<string | number | bigint | boolean | null | undefined, unknown>(fresh("d"));
      const value = { when: new Date(0), tags: new Set(["a"]), big: 1n, nested: new Map([[1, [undefined]]]) };
      await d.set("obj", value);
      assert.deepEqual(await d.get("obj"), value);
      await d.update([[1, "one"], [1n, "big one"], [true, "yes"], [null, "nil"], [undefined, "undef"], [
        "ü/.*>",
        "odd",
      ]]);
      assert.equal(await d.get(1), "one");
      assert.equal(await d.get(1n), "big one");
      assert.equal(await d.get(-0), undefined);
      assert.equal(await d.get("missing", "fallback"), "fallback");
      assert.equal(await d.size(), 7);
      assert.deepEqual(new Set(await d.keys()), new Set(["obj", 1, 1n, true, null, undefined, "ü/.*>"]));
      assert.equal(await d.has("ü/.*>"), true);
      await d.delete("ü/.*>");
      await assert.rejects(d.delete("ü/.*>"), KeyError);
      assert.equal(await d.pop(null), "nil");
      assert.equal(await d.pop(null, "gone"), "gone");
      await assert.rejects(d.pop(null), KeyError);
      assert.equal(await d.setdefault("n", 5), 5);
      assert.equal(await d.setdefault("n", 6), 5);
      assert.deepEqual(await d.popitem(), ["n", 5]); // the last set
      const copy = await d.copy();
      assert.ok(copy instanceof Map);
      assert.equal(copy.size, 5);
      let n = 0;
      for await (const [k] of d) if (copy.has(k)) n++;
      assert.equal(n, 5);
      await d.clear();
      assert.equal(await d.size(), 0);
      await assert.rejects(d.popitem(), KeyError);
    });

    test("dict: setdefault and pop racing in two processes: one wins each key", async () => {
      const name = fresh("race");
      await using cluster = await connect({ servers: server.url });
      const d = cluster.dict<string, string>(name);
      await d.update(Array.from({ length: 30 }, (_, i) => [`p${i}`, `v${i}`] as [string, string]));
      const runs = await Promise.all(["A", "B"].map((id) => runScript(WORKER, ["race", server.url, name, id, "30"])));
      const winners = runs.map((r) => {
        assert.equal(r.code, 0, r.stderr);
        return new Map(
          r.stdout.split("\n").filter((l) => l.startsWith("sd ")).map((l) => [l.split(" ")[1], l.split(" ")[2]]),
        );
      });
      for (let i = 0; i < 30; i++) assert.equal(winners[0].get(String(i)), winners[1].get(String(i)));
      const pops = runs.flatMap((r) => numbers(r.stdout, "pop"));
      assert.deepEqual(pops.sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i));
    });

    test("bad input: names, options, values that cannot be sent", async () => {
      await using cluster = await connect({ servers: server.url });
      for (const bad of ["", "a.b", "a b", "a*", ">", "x".repeat(201), 3, undefined]) {
        assert.throws(() => cluster.Queue(bad as string), TypeError);
        assert.throws(() => cluster.dict(bad as string), TypeError);
      }
      for (const maxsize of [-1, 1.5, NaN, "3"]) {
        assert.throws(() => cluster.Queue("ok", { maxsize: maxsize as number }), RangeError);
      }
      assert.throws(() => cluster.JoinableQueue("ok", { ackWait: 0 }), RangeError);
      assert.throws(() => cluster.JoinableQueue("ok", { maxDeliver: 0 }), RangeError);
      const q = cluster.Queue<unknown>(fresh("bad"));
      await assert.rejects(q.get({ timeout: -1 }), RangeError);
      await assert.rejects(q.put({ cb: () => 1 }), (e: Error) => e instanceof TypeError && /item\.cb/.test(e.message));
      await assert.rejects(
        q.putMany([1, { x: [Symbol("s")] }]),
        (e: Error) => e instanceof TypeError && /items\[1\]\.x\[0\]/.test(e.message),
      );
      assert.equal(await q.qsize(), 0);
      const d = cluster.dict<string, unknown>(fresh("badd"));
      await assert.rejects(d.set("k", { f() {} }), TypeError);
      await assert.rejects(d.get({} as string), TypeError);
      assert.equal(await d.size(), 0);
      const aborted = new AbortController();
      aborted.abort(new Error("stop"));
      await assert.rejects(q.get({ signal: aborted.signal }), /stop/);
    });

    test("connect: an unreachable server fails with its URL within the timeout", async () => {
      const other = await startNatsServer();
      const url = other.url;
      await other.stop(); // nothing listens there now
      const started = Date.now();
      await assert.rejects(connect({ servers: url, timeout: 2_000 }), (e: Error) => e.message.includes(url));
      assert.ok(Date.now() - started < 10_000);
    });
  });

  test("examples/cluster_queue.ts (npm run demo:cluster): a producer and two consumer processes", async () => {
    const r = await runScript("examples/cluster_queue.ts", [], 120_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /producer: 20 results, sum of squares 2870/);
    const did = [...r.stdout.matchAll(/consumer-\d: did (\d+) jobs/g)].map((m) => Number(m[1]));
    assert.equal(did.length, 2);
    assert.equal(did[0] + did[1], 20);
  });

  describe("cluster with authentication", () => {
    test("token: the right one connects; a wrong or missing one fails clearly, without hanging", async () => {
      const secured = await startNatsServer(["--auth", "s3cret"]);
      try {
        await using ok = await connect({ servers: secured.url, token: "s3cret" });
        const q = ok.Queue<number>(fresh("auth"));
        await q.put(1);
        assert.equal(await q.get(), 1);
        for (const token of ["wrong", undefined]) {
          const started = Date.now();
          await assert.rejects(
            connect({ servers: secured.url, token, timeout: 3_000 }),
            (e: Error) => /refused the credentials/.test(e.message) && e.message.includes(secured.url),
          );
          assert.ok(Date.now() - started < 15_000);
        }
      } finally {
        await secured.stop();
      }
    });

    test("user and password", async () => {
      const secured = await startNatsServer(["--user", "ann", "--pass", "pw1"]);
      try {
        await using ok = await connect({ servers: secured.url, user: "ann", password: "pw1" });
        assert.equal(ok.closed, false);
        await assert.rejects(
          connect({ servers: secured.url, user: "ann", password: "nope", timeout: 3_000 }),
          /refused the credentials/,
        );
      } finally {
        await secured.stop();
      }
    });
  });
}
