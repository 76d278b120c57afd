// Copyright the @mpjs/multiprocessing authors. MIT license.
// Direct tests of the waiting policy (_wait.ts): the futex waits, the spins before them, the adaptive Watch,
// the condition loops, and a wake-up from another thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";
import { needOffice } from "../_mailbox.ts";
import {
  notify,
  parkAsync,
  spin,
  until,
  untilSync,
  waitAsync,
  waitSync,
  Watch,
  WATCH_MAX_MS,
  WATCH_MIN_MS,
} from "../_wait.ts";
import { notifyLater, url } from "./testdata/spsc_fixtures.ts";
import { eventually, sharedInts } from "./_util.ts";

const LONG_WAIT = 20_000;

test("waitSync returns not-equal at once when the word differs, timed-out after the timeout otherwise", () => {
  const cell = sharedInts(1);
  cell[0] = 5;
  assert.equal(waitSync(cell, 0, 4, LONG_WAIT), "not-equal");
  const t0 = performance.now();
  assert.equal(waitSync(cell, 0, 5, 30), "timed-out");
  assert.ok(performance.now() - t0 >= 25);
});

test("waitSync in the main thread is woken by notify from another thread (it parks with no slices)", async () => {
  // With the post office started, the main thread parks with no slices: a lost notify is slept through.
  needOffice();
  const cell = sharedInts(1);
  const ready = sharedInts(1);
  const t = new Thread({ target: notifyLater, args: [cell, 300, ready], module: url });
  t.start();
  try {
    await eventually(() => Atomics.load(ready, 0) === 1);
    const t0 = performance.now();
    const r = waitSync(cell, 0, 0, LONG_WAIT);
    const waited = performance.now() - t0;
    assert.ok(waited < LONG_WAIT / 2, `slept through the notify: woke after ${Math.round(waited)} ms (${r})`);
    assert.equal(cell[0], 1);
  } finally {
    await t.terminate();
  }
});

test("spin reports a word that already differs, and gives up on one that does not change", () => {
  const cell = sharedInts(1);
  assert.equal(spin(cell, 0, 1), true);
  assert.equal(spin(cell, 0, 0), false);
  assert.equal(spin(cell, 0, 0, true), false);
});

test("a Watch shortens after watches that see nothing, down to its minimum, and lengthens when one pays", () => {
  const cell = sharedInts(1);
  const watch = new Watch();
  assert.equal(watch.ms, WATCH_MAX_MS);
  for (let i = 0; i < 20; i++) assert.equal(watch.watch(cell, 0, 0, 1), false);
  assert.equal(watch.ms, WATCH_MIN_MS);
  const shortest = watch.ms;
  assert.equal(watch.watch(cell, 0, 1, 1), true); // the word differs: seen at once
  assert.ok(watch.ms > shortest);
  // A limit below the current length is kept.
  const t0 = performance.now();
  assert.equal(new Watch().watch(cell, 0, 0, 0), false);
  assert.ok(performance.now() - t0 < 50);
});

test("parkAsync resolves when notified, times out, and rejects with the signal's reason", async () => {
  const cell = sharedInts(1);
  const parked = parkAsync(cell, 0, 0, LONG_WAIT);
  setTimeout(() => {
    Atomics.store(cell, 0, 1);
    notify(cell, 0);
  }, 20);
  assert.equal(await parked, "ok");
  assert.equal(await parkAsync(cell, 0, 1, 20), "timed-out");
  assert.equal(await waitAsync(cell, 0, 0, LONG_WAIT), "not-equal");
  const controller = new AbortController();
  const aborted = parkAsync(cell, 0, 1, LONG_WAIT, controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
  await assert.rejects(parkAsync(cell, 0, 1, LONG_WAIT, controller.signal), /stop/);
});

test("untilSync and until re-run the check when the word changes, and give undefined after the timeout", async () => {
  const cell = sharedInts(1);
  assert.equal(untilSync(cell, 0, () => (cell[0] === 0 ? "now" : undefined)), "now");
  assert.equal(untilSync(cell, 0, () => undefined, 20), undefined);
  let ready = false;
  setTimeout(() => {
    ready = true;
    Atomics.add(cell, 0, 1);
    notify(cell, 0);
  }, 20);
  assert.equal(await until(cell, 0, () => (ready ? 42 : undefined), LONG_WAIT), 42);
  assert.equal(await until(cell, 0, () => undefined, 20), undefined);
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(until(cell, 0, () => undefined, LONG_WAIT, controller.signal), /stop/);
});
