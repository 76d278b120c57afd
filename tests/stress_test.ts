// Copyright the @mpjs/multiprocessing authors. MIT license.
// A short run of the chaos runner (stress/run.ts) on the runtime running the
// tests: each scenario for 2 s with two fixed seeds, threads killed every
// 0-20 ms; no round may report a violation. `npm run stress` runs it longer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript } from "./_util.ts";
import {
  createLedger,
  DUPLICATES,
  enter,
  GOT,
  hasBit,
  itemCheck,
  leave,
  NEXT_ITEM,
  PHANTOMS,
  read,
  recordGot,
  tooMany,
} from "../stress/ledger.ts";
import { currentThread } from "../mod.ts";

/** Every scenario of the chaos runner. */
const SCENARIOS = ["queue", "lock", "semaphore", "pipes", "pool", "mixed"];
const SECONDS = 2;

interface RoundResult {
  scenario: string;
  seed: number;
  failures: string[];
}

for (const seed of [1, 1001]) {
  test(`chaos runner, seed ${seed}: queue, lock, pipe and pool invariants hold while threads are killed`, async () => {
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

test("chaos ledger: a duplicate, a phantom and one holder too many are seen, a dead holder's entry is not", () => {
  const L = createLedger({ threads: 4, items: 64, tasks: 32 });
  Atomics.store(L.cells, NEXT_ITEM, 2);
  const item = { id: 1, p: 0, seq: 5, c: itemCheck(1, 0, 5) };
  assert.equal(recordGot(L, item), item);
  assert.equal(hasBit(L, GOT, 1), true);
  recordGot(L, structuredClone(item));
  assert.equal(read(L, DUPLICATES), 1);
  recordGot(L, { ...item, seq: 6 }); // wrong checksum
  recordGot(L, { id: 2, p: 0, seq: 0, c: itemCheck(2, 0, 0) }); // an id not handed out yet
  assert.equal(read(L, PHANTOMS), 2);

  const me = currentThread().ident; // alive
  const dead = 0x7fff_0000; // never started
  enter(L, 0, 0, me);
  assert.equal(tooMany(L, 0, 0, 1), 0);
  enter(L, 0, 1, dead);
  assert.equal(tooMany(L, 0, 0, 1), 0, "a dead holder's entry does not count");
  enter(L, 0, 2, me);
  assert.equal(tooMany(L, 0, 0, 1), 2);
  assert.equal(tooMany(L, 0, 0, 2), 0);
  leave(L, 0, 2);
  assert.equal(tooMany(L, 0, 0, 1), 0);
});
