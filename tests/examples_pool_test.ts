// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

async function run(path: string, args: string[] = []): Promise<string[]> {
  const r = await runScript(path, args, 60_000);
  assert.equal(r.code, 0, `${path} failed:\n${r.stderr}`);
  return lines(r.stdout);
}

test("examples/pool_tasks.ts: two pool tasks run at the same time and the pool closes", async () => {
  const out = await run("examples/pool_tasks.ts", ["0.5"]);
  assert.equal(out.length, 6, out.join("\n"));
  // Both start before either finishes: they run at once, on two workers.
  assert.deepEqual(out.slice(0, 2).sort(), ["task one started", "task two started"]);
  assert.deepEqual(out.slice(2, 4).sort(), ["task one done", "task two done"]);
  assert.equal(out[4], "both done: true");
  assert.match(out[5], /^elapsed \d+ ms for two 500 ms tasks$/);
});

test("examples/pool_queue.ts: the reader task gets the ten numbers the writer task put, in order", async () => {
  const out = await run("examples/pool_queue.ts");
  assert.deepEqual(out.filter((l) => l.startsWith("wrote ")), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `wrote ${i}`));
  assert.deepEqual(out.filter((l) => l.startsWith("read ")), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `read ${i}`));
  assert.equal(out[out.length - 1], "pool closed and joined");
  assert.equal(out.length, 21);
});

test("examples/pool_map_speedup.ts: the pool's map gives the one-worker results and reports the speed-up", async () => {
  const out = await run("examples/pool_map_speedup.ts", ["20000"]);
  assert.deepEqual(out.slice(0, 2), ["primes below 20000: 2262", "same results: true"]);
  assert.match(out[2], /^1 worker: \d+ ms, \d+ workers: \d+ ms$/);
  // The speed-up itself depends on how busy the machine is: only its form is checked.
  assert.match(out[3], /^speed-up: \d+\.\d\dx on \d+ cores$/);
});

test("examples/executor_as_completed.ts: each result comes once its job is done; a job still waiting is cancelled", async () => {
  const out = await run("examples/executor_as_completed.ts");
  // The order of the first three depends on when each worker started on a loaded machine.
  assert.deepEqual(out.slice(0, 3).sort(), ["a.example: 4 words", "b.example: 2 words", "c.example: 3 words"]);
  assert.deepEqual(out.slice(3), ["cancelled the extra job: true", "busy jobs done: 3"]);
});
