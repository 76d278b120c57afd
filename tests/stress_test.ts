// Copyright the @mpjs/multiprocessing authors. MIT license.
// A short run of the chaos runner (stress/run.ts) on the runtime running the
// tests: each scenario for 2 s with two fixed seeds, threads killed every
// 0-20 ms; no round may report a violation. `npm run stress` runs it longer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./_util.ts";

/** Every scenario of the chaos runner. */
const SCENARIOS = ["queue", "lock", "semaphore", "pipes", "pool", "mixed"];
const SECONDS = 2;

interface RoundResult {
  scenario: string;
  seed: number;
  failures: string[];
}

for (const seed of [1, 1001]) {
  test(`chaos runner, seed ${seed}: no item lost or duplicated, no shared lock, nothing wedged while threads are killed`, async () => {
    const args = ["--seed", String(seed), "--seconds", String(SECONDS), "--scenario", SCENARIOS.join(","), "--json"];
    const r = await runScript("stress/run.ts", args, 240_000);
    const summary = r.stdout.split("\n").find((l) => l.startsWith("STRESS_JSON "));
    assert.ok(summary, `no summary (exit code ${r.code}, timed out: ${r.timedOut}):\n${r.stdout}\n${r.stderr}`);
    const results = JSON.parse(summary.slice("STRESS_JSON ".length)) as RoundResult[];
    assert.deepEqual(results.map((x) => x.scenario), SCENARIOS);
    for (const x of results) {
      assert.deepEqual(x.failures, [], `${x.scenario}, seed ${x.seed}:\n${r.stdout}`);
    }
    assert.equal(r.code, 0, r.stderr);
  });
}
