// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

test("examples/shared_counter.ts: the locked counter is exact, the unlocked one never exceeds it", async () => {
  const n = 200_000;
  const run = await runScript("examples/shared_counter.ts", [String(n)], 60_000);
  assert.equal(run.code, 0, run.stderr);
  const out = lines(run.stdout);
  assert.equal(out.length, 3, run.stdout);
  assert.equal(out[0], `expected: ${2 * n}`);
  const m = /^without a lock: (\d+) \((\d+) updates lost\)$/.exec(out[1]);
  assert.ok(m, out[1]);
  const unlocked = Number(m[1]);
  assert.ok(unlocked > 0 && unlocked <= 2 * n, `unlocked total ${unlocked}`);
  assert.equal(Number(m[2]), 2 * n - unlocked);
  assert.equal(out[2], `with a Lock: ${2 * n}`);
});

test("examples/lock_owner_died.ts: the lock of a terminated holder is taken over and reported", async () => {
  const run = await runScript("examples/lock_owner_died.ts", [], 60_000);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(lines(run.stdout), [
    "worker holds the lock: true",
    "worker terminated while holding the lock",
    "acquired; previous owner died: true",
    "repaired 10 lost in the half-done transfer",
    "accounts: 100, 100",
  ]);
});
