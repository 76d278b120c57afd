// Copyright the @mpjs/multiprocessing authors. MIT license.
// Short runs of the soak runner (stress/soak.ts) on the runtime running the
// tests, each case in its own process: the post office frees the reply
// queues a server drops, and neither it nor one busy queue nor thread starts
// make memory grow, nor do dead reply queues' buffers pile up as memory
// mappings (Linux). `npm run soak` runs the full counts. With
// MPJS_SOAK_KEEP_HANDLES=1 in the environment the post office keeps every
// handle and the first test fails; with MPJS_SOAK_NO_NUDGE=1 the threads no
// longer nudge their collectors (`_pressure.ts`) and, on Node, it fails too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { runScript, runtime } from "./_util.ts";
import type { SoakResult } from "../stress/soak.ts";

/** Loose enough for a loaded 2-core machine and the runtimes' own caches; a kept reply queue costs about 5 KB. */
const MAX_RSS_GROWTH_MB = 96;
const MAX_KEPT = 100;
/**
 * Memory mappings of the whole process: each queue's growable buffer takes two until every thread that saw it has
 * collected it. Without the nudges Node's threads keep the dead reply queues' (measured: 3,750–3,800 mappings over
 * 4,000 requests with these 5 samples); with them each of the three threads keeps at most about 512 (measured:
 * 1,000–1,700 in all, on each runtime).
 */
const MAX_MAPS = 3000;
/**
 * Requests of the fresh-reply-queues runs: on Node enough for its post office to pass `MAX_MAPS` without the nudges;
 * Deno's and Bun's threads stay below it unprompted (measured: at most 1,700 over 20,000 requests).
 */
const REQUESTS = runtime === "node" ? 4000 : 2000;
/** Whether this system tells a process's mappings. */
const hasMaps = existsSync("/proc/self/maps");

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
    "--max-maps",
    String(MAX_MAPS),
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

test("soak: a server answering thousands of requests, each on a fresh reply queue, leaves the post office's table and the mappings bounded", async () => {
  const r = await soak("fresh-reply-queues", REQUESTS);
  assert.deepEqual(r.failures, [], r.output);
  assert.equal(r.samples.length, 5, r.output);
  for (const s of r.samples) assert.ok(s.kept !== undefined && s.kept <= MAX_KEPT, r.output);
});

// On Node the threads collect too seldom for 4,000 dead reply queues (Deno's and Bun's stay near 1,700).
if (runtime === "node" && hasMaps) {
  test("soak: without collector nudges the dead reply queues' buffers pile up as memory mappings", async () => {
    const r = await soak("fresh-reply-queues", REQUESTS, ["--no-nudge"]);
    assert.equal(r.nudge, false);
    assert.ok(r.failures.some((f) => f.includes("memory mappings")), r.output);
  });
}

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
