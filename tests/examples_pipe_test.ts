// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

async function run(path: string, args: string[] = []): Promise<string[]> {
  const r = await runScript(path, args, 60_000);
  assert.equal(r.code, 0, `${path} failed:\n${r.stderr}`);
  return lines(r.stdout);
}

test("examples/pipe_producer_consumer.ts: the consumer gets what the producer sent, then sees its end close", async () => {
  assert.deepEqual(await run("examples/pipe_producer_consumer.ts"), [
    "a",
    "got apple",
    "got banana",
    "got cherry",
    "the producer's end is closed",
  ]);
});

test("examples/pipe_ping_pong.ts: each ping gets its pong, and the worker ends when the pipe closes", async () => {
  const out = await run("examples/pipe_ping_pong.ts", ["500"]);
  assert.deepEqual(out.slice(0, 3), ["ping 0 -> pong 0", "ping 1 -> pong 1", "ping 2 -> pong 2"]);
  assert.match(out[3], /^500 round trips, median \d+(\.\d+)? µs$/);
  assert.equal(out[4], "worker finished with exit code 0");
  assert.equal(out.length, 5);
});

test("examples/demo.ts: the Pipe section plays ping-pong with a process and ends it by closing the pipe", async () => {
  const out = await run("examples/demo.ts");
  const at = out.findIndex((l) => /^\d+\. Pipe: ping-pong between two processes$/.test(l));
  assert.ok(at >= 0, out.join("\n"));
  assert.equal(out[at + 1], "  sent ping, got pong");
  assert.match(out[at + 2], /^ {2}20000 more round trips in \d+ ms \([\d.]+ µs each\)$/);
  assert.equal(out[at + 3], "  closed our end: the process saw the pipe end and exited with code 0");
});

test("examples/connection_wait_server.ts: one wait over three pipes serves every client", async () => {
  const out = await run("examples/connection_wait_server.ts");
  for (const start of [10, 20, 30]) {
    const mine = out.filter((l) => l.startsWith(`client ${start}:`));
    assert.deepEqual(mine, [0, 1, 2].map((k) => `client ${start}: ${start + k}² = ${(start + k) ** 2}`));
  }
  assert.equal(out.at(-1), "server answered 9 requests from 3 clients");
  assert.equal(out.length, 10);
});
