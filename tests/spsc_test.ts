// Copyright the @mpjs/multiprocessing authors. MIT license.
// Direct tests of the single-producer single-consumer channel under Pipe (_spsc.ts): every kind of message
// in and out, wrap-around and jumps to larger rings, the end mark, and the consumer's wake-up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";
import { needOffice } from "../_mailbox.ts";
import { EOF, NONE, SpscChannel } from "../_spsc.ts";
import { sendLater, sendMany, url } from "./testdata/spsc_fixtures.ts";
import { eventually, sharedInts } from "./_util.ts";

test("SpscChannel carries every kind of value, in order, and NONE when nothing waits", () => {
  const memory = SpscChannel.create();
  const tx = new SpscChannel(memory);
  const rx = new SpscChannel(memory);
  assert.equal(rx.ready(), false);
  assert.equal(rx.recv(), NONE);
  const values: unknown[] = [0, -1.5, NaN, "", "short", "é".repeat(300), true, false, null, undefined, { a: [1, 2] }];
  values.push(new Map([[1, "x"]]), new Uint8Array([1, 2, 3]), 2n ** 70n);
  for (const v of values) tx.send(v, "value");
  tx.sendBytes(new Uint8Array([9, 8, 7]));
  assert.equal(rx.ready(), true);
  for (const v of values) assert.deepEqual(rx.recv(), v);
  assert.deepEqual(rx.recv(), new Uint8Array([9, 8, 7]));
  assert.equal(rx.recv(), NONE);
});

test("SpscChannel.recvBytes hands out raw bytes, and a value's encoded form; a message over maxLength stays", () => {
  const memory = SpscChannel.create();
  const tx = new SpscChannel(memory);
  const rx = new SpscChannel(memory);
  tx.sendBytes(new Uint8Array(100).fill(4));
  tx.send(42, "value");
  assert.throws(() => rx.recvBytes(10), /longer than maxLength/);
  assert.deepEqual(rx.recvBytes(), new Uint8Array(100).fill(4));
  const encoded = rx.recvBytes();
  assert.ok(encoded instanceof Uint8Array && encoded.length > 0);
  assert.equal(rx.recvBytes(), NONE);
});

test("SpscChannel's end mark comes after everything sent, is never consumed, and stops sends", () => {
  const memory = SpscChannel.create();
  const tx = new SpscChannel(memory);
  const rx = new SpscChannel(memory);
  tx.send("last", "value");
  tx.end();
  tx.end(); // idempotent
  assert.throws(() => tx.send(1, "value"), /end mark/);
  assert.equal(rx.ended(), false);
  assert.equal(rx.recv(), "last");
  assert.equal(rx.ended(), true);
  assert.equal(rx.recv(), EOF);
  assert.equal(rx.recvBytes(), EOF);
});

test("SpscChannel wraps around a small ring and jumps to larger ones, keeping messages whole and in order", () => {
  const memory = SpscChannel.create(64);
  const tx = new SpscChannel(memory);
  const rx = new SpscChannel(memory);
  let sent = 0;
  let got = 0;
  // A backlog that grows and shrinks, with sizes from 0 to ~3 KiB: wraps, then jumps.
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < (round % 7) + 1; k++) {
      tx.send("s".repeat((sent * 37) % 1500) + sent, "value");
      sent++;
    }
    for (let k = 0; k < (round % 5) + 1 && got < sent; k++) {
      assert.equal(rx.recv(), "s".repeat((got * 37) % 1500) + got);
      got++;
    }
  }
  while (got < sent) {
    assert.equal(rx.recv(), "s".repeat((got * 37) % 1500) + got);
    got++;
  }
  assert.equal(rx.recv(), NONE);
  assert.ok(memory.data.byteLength > 64, "the channel never grew");
});

test("SpscChannel.create rejects a capacity that is not a power of two from 64 to 2**29", () => {
  for (const bad of [0, 63, 100, 2 ** 30, 1.5, NaN, -64]) {
    assert.throws(() => SpscChannel.create(bad), RangeError, String(bad));
  }
});

test("SpscChannel: a side moves to another wrapper (another thread) and goes on where the old one stopped", () => {
  const memory = SpscChannel.create(64);
  const tx = new SpscChannel(memory);
  for (let i = 0; i < 50; i++) tx.send(i, "value");
  const rx1 = new SpscChannel(memory);
  for (let i = 0; i < 20; i++) assert.equal(rx1.recv(), i);
  const rx2 = new SpscChannel(memory);
  for (let i = 20; i < 50; i++) assert.equal(rx2.recv(), i);
  const tx2 = new SpscChannel(memory);
  tx2.send("after", "value");
  assert.equal(rx2.recv(), "after");
});

test("SpscChannel delivers 5,000 messages from another thread in order", async () => {
  const memory = SpscChannel.create(256);
  const rx = new SpscChannel(memory);
  const t = new Thread({ target: sendMany, args: [memory, 5000, 97], module: url });
  t.start();
  try {
    for (let i = 0; i < 5000; i++) {
      let v = rx.recv();
      while (v === NONE) {
        await rx.wait(1000);
        v = rx.recv();
      }
      assert.deepEqual(v, i % 97 === 0 ? { i, pad: "x".repeat(i % 5000) } : i);
    }
    while (!rx.ended()) await rx.wait(1000);
    assert.equal(rx.recv(), EOF);
    await t.join();
    assert.equal(t.exitCode, 0, String(t.error));
  } finally {
    await t.terminate();
  }
});

// The waiting consumer is the main thread, with the post office started, so that it parks with no slices
// (see tests/ring_test.ts): a lost wake-up leaves it asleep until its timeout.
const LONG_WAIT = 20_000;

test("SpscChannel: a send wakes a consumer parked in waitSync", async () => {
  needOffice();
  const memory = SpscChannel.create();
  const rx = new SpscChannel(memory);
  const ready = sharedInts(1);
  const t = new Thread({ target: sendLater, args: [memory, 300, "hello", ready], module: url });
  t.start();
  try {
    await eventually(() => Atomics.load(ready, 0) === 1);
    const t0 = performance.now();
    rx.waitSync(LONG_WAIT);
    const waited = performance.now() - t0;
    assert.ok(waited < LONG_WAIT / 2, `slept through the send: woke after ${Math.round(waited)} ms`);
    assert.equal(rx.recv(), "hello");
  } finally {
    await t.terminate();
  }
});

test("SpscChannel: waitSync and wait return after their timeout when nothing is sent; wait rejects on abort", async () => {
  const rx = new SpscChannel(SpscChannel.create());
  const t0 = performance.now();
  rx.waitSync(30);
  assert.ok(performance.now() - t0 >= 25);
  await rx.wait(20);
  const controller = new AbortController();
  const waiting = rx.wait(LONG_WAIT, controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(waiting, /stop/);
  assert.equal(rx.recv(), NONE);
});

test("SpscChannel.wakeConsumers ends a parked async wait", async () => {
  const rx = new SpscChannel(SpscChannel.create());
  const t0 = performance.now();
  const waiting = rx.wait(LONG_WAIT);
  setTimeout(() => rx.wakeConsumers(), 50);
  await waiting;
  assert.ok(performance.now() - t0 < LONG_WAIT / 2);
});
