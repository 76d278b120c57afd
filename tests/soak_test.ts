// Copyright the @mpjs/multiprocessing authors. MIT license.
// Short runs of the soak runner (stress/soak.ts) on the runtime running the
// tests, each case in its own process: the post office frees the reply
// queues a server drops, and neither it nor one busy queue nor thread starts
// make memory grow. `npm run soak` runs the full counts. With
// MPJS_SOAK_KEEP_HANDLES=1 in the environment the post office keeps every
// handle and the first test fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./_util.ts";
import type { SoakResult } from "../stress/soak.ts";

/** Loose enough for a loaded 2-core machine and the runtimes' own caches; a kept reply queue costs about 5 KB. */
const MAX_RSS_GROWTH_MB = 96;
const MAX_KEPT = 100;

async function soak(name: string, n: number, extra: string[] = []): Promise<SoakResult & { output: string }> {
  const args = [
    "--case",
    name,
    "--n",
    String(n),
    "--samples",
    "5",
    "--max-rss-growth",
    String(MAX_RSS_GROWTH_MB),
    "--max-kept",
    String(MAX_KEPT),
    "--json",
    ...extra,
  ];
  const r = await runScript("stress/soak.ts", args, 240_000);
  const output = `exit code ${r.code}, timed out: ${r.timedOut}\n${r.stdout}\n${r.stderr}`;
  const line = r.stdout.split("\n").find((l) => l.startsWith("SOAK_JSON "));
  assert.ok(line, `no summary (${output})`);
  const [result] = JSON.parse(line.slice("SOAK_JSON ".length)) as SoakResult[];
  assert.equal(result.case, name);
  return { ...result, output };
}

test("soak: a server answering 2,000 requests, each on a fresh reply queue, leaves the post office's table bounded", async () => {
  const r = await soak("fresh-reply-queues", 2000);
  assert.deepEqual(r.failures, [], r.output);
  assert.equal(r.samples.length, 5, r.output);
  for (const s of r.samples) assert.ok(s.kept !== undefined && s.kept <= MAX_KEPT, r.output);
});

test("soak: with releases ignored the post office keeps every reply queue, and the bound fails", async () => {
  const r = await soak("fresh-reply-queues", 1000, ["--keep-handles"]);
  assert.equal(r.keepHandles, true);
  assert.ok(r.samples.at(-1)!.kept! >= 1000, r.output);
  assert.ok(r.failures.some((f) => f.includes("kept")), r.output);
});

test("soak: 100,000 items through one queue leave memory bounded", async () => {
  const r = await soak("one-queue", 100_000);
  assert.deepEqual(r.failures, [], r.output);
  assert.equal(r.samples.length, 5, r.output);
});

test("soak: 20 thread starts leave memory bounded", async () => {
  const r = await soak("thread-starts", 20);
  assert.deepEqual(r.failures, [], r.output);
  assert.equal(r.samples.length, 5, r.output);
  for (const s of r.samples) assert.equal(s.kept, 0, r.output);
});
