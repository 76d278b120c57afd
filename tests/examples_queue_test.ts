// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

async function run(path: string, args: string[] = []): Promise<string[]> {
  const r = await runScript(path, args, 60_000);
  assert.equal(r.code, 0, `${path} failed:\n${r.stderr}`);
  return lines(r.stdout);
}

test("examples/queue_full_demo.ts: put on a full queue fails after its timeout and at once with putNowait", async () => {
  const t0 = performance.now();
  const out = await run("examples/queue_full_demo.ts", ["150"]);
  assert.deepEqual(out, [
    "false",
    "true",
    "FullError: The queue is full: Queue.put() timed out after 150 ms (timeouts are in milliseconds)",
    "the queue is full",
    "FullError: The queue is full",
    "the queue is full",
    "qsize: 3",
    "message 1",
    "message 2",
    "message 3",
  ]);
  assert.ok(performance.now() - t0 >= 150, "the timed put waited");
});

test("examples/queue_write_read.ts: the reader gets what the writer put, in order", async () => {
  assert.deepEqual(await run("examples/queue_write_read.ts"), [
    "Put a to queue...",
    "Put b to queue...",
    "Put c to queue...",
    "Get a from queue.",
    "Get b from queue.",
    "Get c from queue.",
    "all data written and read",
  ]);
});

test("examples/queue_download_analyse.ts: the analyser collects all the downloaded data", async () => {
  const out = await run("examples/queue_download_analyse.ts");
  assert.equal(out.length, 2, out.join("\n"));
  assert.ok(out.includes("--the downloader has downloaded the data and put it in the queue--"));
  assert.ok(out.includes("[11,22,33,44]"));
});

test("examples/queue_chain.ts: each item goes writer → r1 → r2, in order, and the program ends", async () => {
  const out = await run("examples/queue_chain.ts");
  assert.deepEqual(out.slice(0, 5), ["put 0", "put 1", "put 2", "put 3", "put 4"]);
  const r1 = out.filter((l) => l.startsWith("r1 "));
  const r2 = out.filter((l) => l.startsWith("r2 "));
  assert.deepEqual(r1, [0, 1, 2, 3, 4].map((i) => `r1 read ${i}`));
  assert.deepEqual(r2, [0, 1, 2, 3, 4].map((i) => `r2 read ${i}`));
  assert.equal(out.length, 15);
});

test("examples/queue_blocking.ts: a put on a full queue and a get on an empty one wait, then fail", async () => {
  assert.deepEqual(await run("examples/queue_blocking.ts", ["50"]), [
    "before blocking on put",
    "put waited 50 ms: the queue is still full (FullError)",
    "1",
    "2",
    "before blocking on get",
    "get waited 50 ms: the queue is still empty (EmptyError)",
    "qsize: 3 0, full: true, empty: true",
  ]);
});

test("examples/queue_producer_consumer.ts: a plain value is copied, a queue carries data across", async () => {
  assert.deepEqual(await run("examples/queue_producer_consumer.ts"), ["1", "a"]);
});

test("examples/queue_sentinel.ts: every food produced is eaten once, and null stops the consumers", async () => {
  const out = await run("examples/queue_sentinel.ts");
  const foods = ["bun0", "bun1", "bun2", "bone0", "bone1", "bone2"];
  const produced = out.filter((l) => l.includes(" produced ")).map((l) => l.split(" produced ")[1]);
  assert.deepEqual([...produced].sort(), [...foods].sort());
  const eaten = out.filter((l) => / ate /.test(l)).map((l) => /^c[12] ate (\S+) \(pid \d+\)$/.exec(l)?.[1]);
  assert.deepEqual([...eaten].sort(), [...foods].sort());
  assert.equal(out[out.length - 1], "main: all food eaten");
  assert.equal(out.length, 13);
});

test("examples/process_shared_dict.ts: both processes' entries reach the main process's dictionary", async () => {
  assert.deepEqual(await run("examples/process_shared_dict.ts"), ['{"Darr_en1":22,"Darr_en2":44}']);
});
