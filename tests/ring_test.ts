// Copyright the @mpjs/multiprocessing authors. MIT license.
// Direct tests of the ring under Queue (_ring.ts): records in and out, wrap-around and growth, threads putting
// and taking at once, and the takeover of a lock whose holder died at any point of a put, a grow or a take.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";
import { needOffice } from "../_mailbox.ts";
import { markDead } from "../_registry.ts";
import { Ring, RingStatus, setStopHook, type StopPoint, type Taken } from "../_ring.ts";

const { BUSY, EMPTY, FULL, OK } = RingStatus;
import {
  conductMovedBack,
  consume,
  DONE,
  PASSED,
  pauseAt,
  PAUSED,
  produce,
  putLater,
  putPaused,
  putWaiter,
  record,
  recordNumber,
  stopAt,
  STOPPED,
  takeCopy,
  takeWaiter,
  url,
  WAITING,
} from "./testdata/ring_fixtures.ts";
import { eventually, sharedInts, sleep } from "./_util.ts";

/** The size of a new ring's record area. */
const INITIAL_CAP = 1 << 16;

/** A small seeded PRNG (mulberry32), for record sizes. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The number of the record `got`, failing on anything but an intact record. */
function numberOf(got: Taken | number): number {
  assert.equal(typeof got, "object", `take returned ${got}`);
  const i = recordNumber((got as Taken).bytes, (got as Taken).length);
  assert.ok(i >= 0, "record damaged");
  return i;
}

/** Takes every record left (without waiting for a lock), returning their numbers. */
function drain(ring: Ring): number[] {
  const out: number[] = [];
  for (let got = ring.take(false); got !== EMPTY; got = ring.take(false)) out.push(numberOf(got));
  return out;
}

/** Waits until `report[0]` is not `0`; returns it. */
async function reported(report: Int32Array, ms = 20_000): Promise<number> {
  await eventually(() => Atomics.load(report, 0) !== 0, ms);
  return Atomics.load(report, 0);
}

/**
 * Starts a thread that runs `op` and stops for ever at `point` holding the lock, then marks it dead as the
 * runtime would once it stopped. Returns the thread (to terminate at the end), or `undefined` when the
 * operation passed no such point.
 */
async function deadAt(ring: Ring, op: "put" | "take", point: StopPoint, i: number, size: number) {
  const report = sharedInts(1);
  const t = new Thread({ target: stopAt, args: [ring.memory, op, point, i, size, report], module: url });
  t.start();
  const r = await reported(report);
  if (r === PASSED) {
    await t.join();
    return undefined;
  }
  assert.equal(r, STOPPED);
  markDead(t.ident!);
  return t;
}

// --- one thread -----------------------------------------------------------------

test("Ring.put and Ring.take move records in order, sized 0 bytes and up", () => {
  const ring = Ring.create(0);
  assert.equal(ring.take(true), EMPTY);
  assert.equal(ring.put(new Uint8Array(0), 0, true), OK);
  const empty = ring.take(true) as Taken;
  assert.equal(empty.length, 0);
  const sizes = [4, 5, 7, 8, 9, 63, 64, 65, 1000, 4096, 5000];
  for (const [i, size] of sizes.entries()) assert.equal(ring.put(record(i, size), 0, i % 2 === 0), OK);
  assert.equal(ring.size(), sizes.length);
  assert.equal(ring.hasRecords(), true);
  for (const [i, size] of sizes.entries()) {
    const got = ring.take(i % 2 === 1) as Taken;
    assert.equal(got.length, size);
    assert.equal(numberOf(got), i);
  }
  assert.equal(ring.size(), 0);
  assert.equal(ring.hasRecords(), false);
  assert.equal(ring.take(false), EMPTY);
});

test("Ring.put writes the bytes start..end of its argument and keeps the record kind", () => {
  const ring = Ring.create(0);
  const whole = record(3, 300);
  const framed = new Uint8Array(400);
  framed.set(whole, 50);
  assert.equal(ring.put(framed, 9, true, 50, 350), OK);
  const got = ring.take(true) as Taken;
  assert.equal(got.kind, 9);
  assert.equal(got.length, 300);
  assert.deepEqual(got.bytes.subarray(0, 300), whole);
});

test("Ring records wrap around the end of the record area without growing it", () => {
  const ring = Ring.create(0);
  const rand = prng(19);
  let put = 0;
  let taken = 0;
  // About 30 times the area's size goes through, at most ~40 KiB at a time.
  while (taken < 4000) {
    while (put - taken < 16) {
      assert.equal(ring.put(record(put, 4 + Math.floor(rand() * 2400)), 0, true), OK);
      put++;
    }
    const n = 1 + Math.floor(rand() * 16);
    for (let k = 0; k < n; k++) assert.equal(numberOf(ring.take(true)), taken++);
  }
  assert.equal(ring.memory.data.byteLength, INITIAL_CAP);
  assert.deepEqual(drain(ring), Array.from({ length: put - taken }, (_, k) => taken + k));
});

test("Ring grows when a record does not fit, keeping records that wrapped in order", () => {
  const ring = Ring.create(0);
  // Move the start of the records to the middle of the area, then fill it past its end.
  for (let i = 0; i < 10; i++) ring.put(record(i, 4000), 0, true);
  assert.deepEqual(drain(ring), Array.from({ length: 10 }, (_, i) => i));
  for (let i = 10; i < 24; i++) ring.put(record(i, 4000), 0, true);
  assert.equal(ring.memory.data.byteLength, INITIAL_CAP);
  for (let i = 24; i < 40; i++) ring.put(record(i, 4000 + 977 * i), 0, true);
  assert.ok(ring.memory.data.byteLength > INITIAL_CAP);
  assert.equal(ring.size(), 30);
  assert.deepEqual(drain(ring), Array.from({ length: 30 }, (_, k) => 10 + k));
});

test("Ring.put returns FULL at maxsize and BUSY without waiting while another thread holds the lock", async () => {
  const ring = Ring.create(2);
  assert.equal(ring.put(record(0, 8), 0, true), OK);
  assert.equal(ring.put(record(1, 8), 0, false), OK);
  assert.equal(ring.put(record(2, 8), 0, true), FULL);
  assert.equal(ring.isFull(), true);
  assert.equal(numberOf(ring.take(true)), 0);
  const report = sharedInts(1);
  const t = new Thread({ target: stopAt, args: [ring.memory, "put", "put:copied", 5, 8, report], module: url });
  t.start();
  try {
    assert.equal(await reported(report), STOPPED);
    assert.equal(ring.put(record(3, 8), 0, false), BUSY); // the holder is alive: no takeover
    assert.equal(numberOf(ring.take(false)), 1); // the other side's lock is free
  } finally {
    await t.terminate();
  }
});

// --- threads --------------------------------------------------------------------

for (const maxsize of [0, 8]) {
  test(`Ring delivers every record once and in order between 2 producer and 2 consumer threads (maxsize ${maxsize})`, async () => {
    const ring = Ring.create(maxsize);
    const per = 3000;
    const counts = sharedInts(2 * per + 1);
    const errorsAt = 2 * per;
    const sizes = [4, 17, 120, 900, 3000, 64, 9];
    const consumers = (["sync", "async"] as const).map((mode) =>
      new Thread({ target: consume, args: [ring.memory, mode, counts, per, errorsAt], module: url })
    );
    const producers = (["sync", "async"] as const).map((mode, p) =>
      new Thread({ target: produce, args: [ring.memory, mode, p * per, per, sizes, false], module: url })
    );
    const all = [...consumers, ...producers];
    try {
      for (const t of all) t.start();
      for (const t of producers) await t.join();
      for (const t of producers) assert.equal(t.exitCode, 0, String(t.error));
      ring.close();
      for (const t of consumers) await t.join();
      for (const t of consumers) assert.equal(t.exitCode, 0, String(t.error));
    } finally {
      for (const t of all) await t.terminate();
    }
    assert.equal(Atomics.load(counts, errorsAt), 0, "damaged or out of order");
    const wrong = Array.from(counts.subarray(0, 2 * per)).flatMap((c, i) => c === 1 ? [] : [i]);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} records not taken exactly once`);
    assert.equal(ring.size(), 0);
  });
}

// --- a lock holder that died ---------------------------------------------------

const PUT_POINTS: StopPoint[] = ["put:locked", "put:copied", "put:end", "put:intent", "put:published", "put:counted"];
const TAKE_POINTS: StopPoint[] = [
  "take:locked",
  "take:copied",
  "take:end",
  "take:intent",
  "take:published",
  "take:counted",
];
const GROW_POINTS: StopPoint[] = ["grow:locked", "grow:grown", "grow:moved", "grow:stored"];

/** Whether a thread stopped at `point` had made its record visible (put) or taken it (take). */
function published(point: StopPoint): boolean {
  return point.endsWith(":published") || point.endsWith(":counted");
}

/** Puts `bytes` as the main thread's caller would: blocking, or not blocking while the lock is taken. */
async function putAs(ring: Ring, mode: "sync" | "async", bytes: Uint8Array): Promise<number> {
  return mode === "sync" ? ring.put(bytes, 0, true) : await ring.putAsync(bytes, 0, 0);
}

/** Takes one record as {@linkcode putAs} puts. */
async function takeAs(ring: Ring, mode: "sync" | "async"): Promise<Taken | number> {
  return mode === "sync" ? ring.take(true) : await takeCopy(ring, 0);
}

for (const [n, point] of PUT_POINTS.entries()) {
  const mode = n % 2 === 0 ? "sync" : "async";
  test(`Ring: a producer that died at ${point} leaves its lock to the next (${mode}) producer`, async () => {
    const ring = Ring.create(0);
    assert.equal(ring.put(record(0, 100), 0, true), OK);
    const t = await deadAt(ring, "put", point, 1, 100);
    assert.ok(t, "the put passed the point");
    try {
      assert.equal(await putAs(ring, mode, record(2, 100)), OK);
      const want = published(point) ? [0, 1, 2] : [0, 2];
      // The counter the dead producer may not have finished is repaired.
      assert.equal(ring.size(), want.length);
      assert.deepEqual(drain(ring), want);
      assert.equal(ring.size(), 0);
      assert.equal(await putAs(ring, mode, record(3, 100)), OK);
      assert.equal(ring.size(), 1);
      assert.deepEqual(drain(ring), [3]);
    } finally {
      await t.terminate();
    }
  });
}

for (const [n, point] of TAKE_POINTS.entries()) {
  const mode = n % 2 === 0 ? "async" : "sync";
  test(`Ring: a consumer that died at ${point} leaves its lock to the next (${mode}) consumer`, async () => {
    const ring = Ring.create(0);
    for (let i = 0; i < 3; i++) ring.put(record(i, 100), 0, true);
    const t = await deadAt(ring, "take", point, 0, 0);
    assert.ok(t, "the take passed the point");
    try {
      // The record the dead consumer took is gone; otherwise it is still first.
      const first = published(point) ? 1 : 0;
      assert.equal(numberOf(await takeAs(ring, mode)), first);
      assert.equal(ring.size(), 2 - first);
      assert.deepEqual(drain(ring), first === 1 ? [2] : [1, 2]);
      assert.equal(ring.size(), 0);
      assert.equal(ring.put(record(3, 100), 0, true), OK);
      assert.equal(numberOf(await takeAs(ring, mode)), 3);
    } finally {
      await t.terminate();
    }
  });
}

for (const point of GROW_POINTS) {
  test(`Ring: a producer that died growing the ring at ${point} leaves both locks and the records intact`, async () => {
    const ring = Ring.create(0);
    // Records that wrap around the end of the area, so that growing moves some.
    for (let i = 0; i < 10; i++) ring.put(record(i, 4000), 0, true);
    drain(ring);
    for (let i = 10; i < 24; i++) ring.put(record(i, 4000), 0, true);
    const t = await deadAt(ring, "put", point, 99, 20_000);
    assert.ok(t, "the put did not grow the ring");
    try {
      assert.equal(numberOf(await takeAs(ring, "sync")), 10); // the consumer lock
      assert.equal(await putAs(ring, "async", record(24, 30_000)), OK); // the producer lock, and room
      assert.equal(ring.size(), 14);
      assert.deepEqual(drain(ring), Array.from({ length: 14 }, (_, k) => 11 + k));
    } finally {
      await t.terminate();
    }
  });
}

for (const mode of ["sync", "async"] as const) {
  test(`Ring: ${mode === "sync" ? "a blocking" : "an async"} producer waiting for the lock takes it over once its holder is marked dead`, async () => {
    const ring = Ring.create(0);
    const holderReport = sharedInts(1);
    const holder = new Thread({
      target: stopAt,
      args: [ring.memory, "put", "put:copied", 1, 100, holderReport],
      module: url,
    });
    const report = sharedInts(2);
    const waiter = new Thread({ target: putWaiter, args: [ring.memory, mode, 2, 100, report], module: url });
    try {
      holder.start();
      assert.equal(await reported(holderReport), STOPPED);
      waiter.start();
      assert.equal(await reported(report), WAITING);
      await sleep(200); // parked by now
      assert.equal(Atomics.load(report, 0), WAITING, "the holder is alive: the waiter must wait");
      const died = performance.now();
      markDead(holder.ident!);
      await eventually(() => Atomics.load(report, 0) === DONE, 10_000);
      const took = performance.now() - died;
      assert.equal(Atomics.load(report, 1), OK);
      assert.ok(took < 2000, `took the lock over ${Math.round(took)} ms after the holder died`);
      assert.deepEqual(drain(ring), [2]);
    } finally {
      await waiter.terminate();
      await holder.terminate();
    }
  });
}

for (const op of ["put", "take"] as const) {
  test(`Ring: a ${op} lock whose holder died is taken over in time though each waiter is killed soon after it starts waiting`, async () => {
    const ring = Ring.create(0);
    for (let i = 0; i < 3; i++) ring.put(record(i, 100), 0, true);
    const holder = await deadAt(ring, op, op === "put" ? "put:copied" : "take:copied", 50, 100);
    assert.ok(holder);
    const waiters: Thread[] = [];
    let report = sharedInts(2);
    let since = Infinity; // when the first waiter started waiting
    try {
      // Each waiter waits for 100 ms, then is killed, until one has the lock (or 5 s passed).
      for (let k = 0; performance.now() - since < 5000; k++) {
        report = sharedInts(2);
        const mode = k % 2 === 0 ? "sync" : "async";
        const w = op === "put"
          ? new Thread({ target: putWaiter, args: [ring.memory, mode, 100 + k, 100, report], module: url })
          : new Thread({ target: takeWaiter, args: [ring.memory, mode, report], module: url });
        waiters.push(w);
        w.start();
        await reported(report);
        if (k === 0) since = performance.now();
        await sleep(100);
        if (Atomics.load(report, 0) === DONE) break;
        await w.kill();
        if (Atomics.load(report, 0) === DONE) break; // done just before the kill
      }
      const took = performance.now() - since;
      assert.equal(Atomics.load(report, 0), DONE, `no waiter took the lock over in ${Math.round(took)} ms`);
      assert.ok(took < 2000, `the lock was taken over ${Math.round(took)} ms after the first waiter came`);
      // A killed waiter may have finished its operation just before it was killed.
      const last = Atomics.load(report, 1);
      const left = drain(ring);
      if (op === "put") {
        assert.equal(last, OK);
        assert.deepEqual(left.slice(0, 3), [0, 1, 2]);
        assert.equal(left.at(-1), 100 + waiters.length - 1);
      } else {
        assert.ok(last >= 0 && last <= 2, `took ${last}`);
        assert.deepEqual(left, [1, 2].filter((i) => i > last));
      }
    } finally {
      for (const w of waiters) await w.terminate();
      await holder.terminate();
    }
  });
}

// --- wake-ups -------------------------------------------------------------------
// The waiting thread is the main thread, with the post office started: it then parks with no slices (a
// worker may wake every SLICE ms to look for a stop request, and a main thread that started workers to
// look for a worker wanting the post office), so a lost wake-up leaves it asleep until its timeout.

/** How long a test's waiter waits at most; a lost wake-up shows as a wait this long. */
const LONG_WAIT = 20_000;

test("Ring: a put wakes a consumer parked for records (the put's bell)", async () => {
  needOffice();
  const ring = Ring.create(0);
  const ready = sharedInts(1);
  const t = new Thread({ target: putLater, args: [ring.memory, 300, 7, ready], module: url });
  t.start();
  try {
    await eventually(() => Atomics.load(ready, 0) === 1);
    const seq = ring.itemsSeq();
    const t0 = performance.now();
    ring.waitItemsSync(seq, LONG_WAIT);
    const waited = performance.now() - t0;
    assert.ok(waited < LONG_WAIT / 2, `slept through the put: woke after ${Math.round(waited)} ms`);
    assert.equal(numberOf(ring.take(true)), 7);
  } finally {
    await t.terminate();
  }
});

test("Ring: a consumer that parks while a producer moves its count back is woken by that producer", async () => {
  // The window of "Wake-ups" in _ring.ts: the producer of record 1 moves the consumer's count to the credits
  // and rings before the consumer parks; record 2 is put before the count is back, and sees nobody to wake.
  needOffice();
  const ring = Ring.create(0);
  const producerGate = sharedInts(2);
  const consumerGate = sharedInts(1);
  const steps = sharedInts(2);
  const producer = new Thread({ target: putPaused, args: [ring.memory, 1, producerGate], module: url });
  const conductor = new Thread({
    target: conductMovedBack,
    args: [ring.memory, producerGate, consumerGate, steps],
    module: url,
  });
  try {
    producer.start();
    conductor.start();
    await eventually(() => Atomics.load(steps, 0) === 1);
    pauseAt(["wait:counted"], consumerGate);
    let waited: number;
    try {
      const seq = ring.itemsSeq();
      const t0 = performance.now();
      ring.waitItemsSync(seq, LONG_WAIT);
      waited = performance.now() - t0;
    } finally {
      setStopHook(undefined);
    }
    assert.equal(Atomics.load(consumerGate, 0) > 0, true, "the consumer did not pass wait:counted");
    assert.equal(Atomics.load(steps, 1), 1, "woken before the second put");
    assert.ok(waited < LONG_WAIT / 2, `slept through record 2: woke after ${Math.round(waited)} ms`);
    await conductor.join();
    await producer.join();
    assert.equal(conductor.exitCode, 0, String(conductor.error));
    assert.equal(producer.exitCode, 0, String(producer.error));
    assert.deepEqual(drain(ring), [2]);
    assert.equal(PAUSED, 1);
  } finally {
    await conductor.terminate();
    await producer.terminate();
  }
});

test("Ring.putSync waits for room and Ring.takeSync for a record, then time out with FULL / EMPTY", async () => {
  const ring = Ring.create(1);
  assert.equal(ring.putSync(record(0, 8), 0, 0), OK);
  const t0 = performance.now();
  assert.equal(ring.putSync(record(1, 8), 0, 30), FULL);
  assert.ok(performance.now() - t0 >= 25);
  assert.equal(numberOf(ring.takeSync(30)), 0);
  assert.equal(ring.takeSync(30), EMPTY);
  assert.equal(ring.takeSync(0), EMPTY);
  // A put from another thread ends a blocking take.
  const ready = sharedInts(1);
  const t = new Thread({ target: putLater, args: [ring.memory, 100, 5, ready], module: url });
  t.start();
  try {
    await eventually(() => Atomics.load(ready, 0) === 1);
    assert.equal(numberOf(ring.takeSync(LONG_WAIT)), 5);
  } finally {
    await t.terminate();
  }
  ring.close();
  assert.equal(ring.putSync(record(2, 8), 0, 10), RingStatus.CLOSED);
  assert.equal(ring.takeSync(10), RingStatus.CLOSED);
});

test("Ring.putAsync and Ring.takeAsync wait without blocking, time out, and reject when the signal aborts", async () => {
  const ring = Ring.create(1);
  assert.equal(await ring.putAsync(record(0, 8), 0, 0), OK);
  assert.equal(await ring.putAsync(record(1, 8), 0, 20), FULL);
  const putting = ring.putAsync(record(1, 8), 0, LONG_WAIT);
  assert.equal(numberOf(await takeCopy(ring, 0)), 0);
  assert.equal(await putting, OK);
  assert.equal(numberOf(await takeCopy(ring, LONG_WAIT)), 1);
  assert.equal(await takeCopy(ring, 20), EMPTY);
  const controller = new AbortController();
  const taking = takeCopy(ring, LONG_WAIT, controller.signal);
  setTimeout(() => controller.abort(new Error("stop")), 20);
  await assert.rejects(taking, /stop/);
  // The aborted take took nothing, and the put it might have been woken by is still there for the next.
  assert.equal(ring.put(record(3, 8), 0, true), OK);
  assert.equal(numberOf(await takeCopy(ring, LONG_WAIT)), 3);
  ring.close();
  assert.equal(await takeCopy(ring, LONG_WAIT), RingStatus.CLOSED);
  assert.equal(await ring.putAsync(record(4, 8), 0, LONG_WAIT), RingStatus.CLOSED);
});
