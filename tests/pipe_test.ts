// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BufferTooShort, ClosedError, Connection, connection, Pipe, Queue, Thread, TimeoutError } from "../mod.ts";
import { decode } from "../_codec.ts";
import {
  count,
  drainSync,
  echo,
  echoAsync,
  idleRecv,
  mixedMessage,
  passOn,
  prng,
  sendAll,
  sendBlocks,
  sendMixed,
  sendThenHang,
  sendThenThrow,
  url,
} from "./testdata/pipe_fixtures.ts";
import { cpuShare, eventually, INVALID_TIMEOUTS, sharedInts as ints, sleep } from "./_util.ts";

// --- construction and direction --------------------------------------------------

test("Pipe() returns two connected duplex ends that both send and receive", async () => {
  const [a, b] = Pipe();
  assert.ok(a instanceof Connection && b instanceof Connection);
  assert.deepEqual([a.readable, a.writable, b.readable, b.writable], [true, true, true, true]);
  assert.deepEqual([a.closed, b.closed], [false, false]);
  a.send("to b");
  b.send("to a");
  assert.equal(await b.recv(), "to b");
  assert.equal(a.recvSync(), "to a");
  a.close();
  b.close();
});

test("Pipe(false) gives a read-only first end and a write-only second end; the wrong direction throws", async () => {
  const [r, w] = Pipe(false);
  assert.deepEqual([r.readable, r.writable, w.readable, w.writable], [true, false, false, true]);
  w.send(1);
  assert.equal(r.recvSync(), 1);
  assert.throws(() => r.send(2), /read-only/);
  assert.throws(() => r.sendBytes(new Uint8Array(1)), /read-only/);
  assert.throws(() => w.recvSync(), /write-only/);
  assert.throws(() => w.recvBytesSync(), /write-only/);
  assert.throws(() => w.pollSync(), /write-only/);
  await assert.rejects(w.recv(), /write-only/);
  await assert.rejects(w.recvBytes(), /write-only/);
  await assert.rejects(w.poll(), /write-only/);
  r.close();
  w.close();
});

test("new Connection() throws TypeError: ends come from Pipe()", () => {
  assert.throws(() => new Connection(), TypeError);
});

// --- values and bytes ----------------------------------------------------------------

test("Connection delivers structured-clone values in order, unchanged", () => {
  const [a, b] = Pipe();
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const values: unknown[] = [
    0,
    -0,
    NaN,
    1.5,
    -(2 ** 60),
    12345678901234567890n,
    "",
    "short",
    "ünïcødé 🎉",
    "x".repeat(100_000),
    true,
    false,
    null,
    undefined,
    { a: 1, nested: { b: [1, "two", null] } },
    [1, [2, [3]]],
    new Map<unknown, unknown>([["k", 1], [2, { v: true }]]),
    new Set([1, "a"]),
    new Date(86_400_000),
    /ab+c/gi,
    new Float64Array([1.5, -2]),
    new Uint8Array([1, 2, 3]).buffer,
  ];
  for (const v of values) a.send(v);
  a.send(cyclic);
  a.send(new RangeError("bad range"));
  for (const v of values) assert.deepEqual(b.recvSync(), v);
  const c = b.recvSync() as Record<string, unknown>;
  assert.equal(c.self, c);
  const e = b.recvSync() as Error;
  assert.ok(e instanceof Error);
  assert.equal(e.message, "bad range");
  assert.equal(b.pollSync(), false);
  a.close();
  b.close();
});

test("binary data received from a Connection is its own: later messages do not change it", () => {
  const [a, b] = Pipe();
  const received: unknown[] = [];
  for (let i = 0; i < 20; i++) {
    // A Node Buffer is written as MessagePack binary, which the decoder would
    // hand out as a view of the receiver's reused buffer if it did not copy.
    a.send({
      n: i,
      bytes: new Uint8Array([i, i + 1, i + 2]),
      floats: new Float64Array([i / 2]),
      buf: Buffer.from([i]),
    });
    a.send(new Uint8Array([i, 255 - i]).buffer);
    received.push(b.recvSync(), b.recvSync());
  }
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(received[2 * i], {
      n: i,
      bytes: new Uint8Array([i, i + 1, i + 2]),
      floats: new Float64Array([i / 2]),
      buf: new Uint8Array([i]),
    });
    assert.deepEqual(new Uint8Array(received[2 * i + 1] as ArrayBuffer), new Uint8Array([i, 255 - i]));
  }
  a.close();
  b.close();
});

test("a SharedArrayBuffer and views over one stay shared when sent through a Connection", () => {
  const [a, b] = Pipe();
  const sab = new SharedArrayBuffer(8);
  a.send({ sab, bytes: new Uint8Array(sab, 4, 4) });
  a.send(sab);
  const got = b.recvSync() as { sab: SharedArrayBuffer; bytes: Uint8Array };
  const again = b.recvSync() as SharedArrayBuffer;
  assert.ok(got.sab instanceof SharedArrayBuffer && again instanceof SharedArrayBuffer);
  new Uint8Array(got.sab)[0] = 1;
  got.bytes[0] = 2;
  new Uint8Array(again)[1] = 3;
  assert.deepEqual([...new Uint8Array(sab)], [1, 3, 0, 0, 2, 0, 0, 0]);
  a.close();
  b.close();
});

test("Connection.send() of a value that cannot be cloned throws TypeError naming it, and sends nothing", () => {
  const [a, b] = Pipe();
  assert.throws(
    () => a.send({ ok: 1, cb: () => 1 }),
    (e: unknown) => e instanceof TypeError && /value\.cb/.test(e.message),
  );
  assert.throws(() => a.send(Symbol("s")), TypeError);
  assert.throws(() => a.send([new (class Box {})()]), TypeError);
  const q = new Queue();
  a.send({ q }); // handles ride along; in the sending thread the same object comes back
  assert.equal((b.recvSync() as { q: Queue }).q, q);
  q.close();
  assert.throws(() => a.send(b), { name: "TypeError", message: /its own pipe/ });
  assert.throws(() => a.send({ self: a }), { name: "TypeError", message: /value\.self.*its own pipe/ });
  assert.equal(b.pollSync(), false);
  a.send("after");
  assert.equal(b.recvSync(), "after");
  a.close();
  b.close();
});

test("Connection.recvBytes() of a value message gives the same encoding for plain and structured values", () => {
  const [a, b] = Pipe();
  const shared = { n: 1 };
  a.send({ i: 1, s: "plain" });
  a.send({ m: new Map([["k", 1]]) });
  a.send([shared, shared]);
  a.send(7);
  const plain = b.recvBytesSync();
  const structured = b.recvBytesSync();
  const sharedRefs = b.recvBytesSync();
  const number = b.recvBytesSync();
  assert.deepEqual(decode(plain), { i: 1, s: "plain" });
  assert.deepEqual(decode(structured), { m: new Map([["k", 1]]) });
  const pair = decode(sharedRefs) as object[];
  assert.equal(pair[0], pair[1]);
  assert.equal(decode(number), 7);
  a.close();
  b.close();
});

test("Connection.sendBytes() sends a slice of any byte source; recvBytes() returns fresh bytes", async () => {
  const [a, b] = Pipe();
  const src = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
  a.sendBytes(src);
  a.sendBytes(src, 2);
  a.sendBytes(src, 2, 3);
  a.sendBytes(src.buffer, 6);
  a.sendBytes(new Uint16Array([0x0102, 0x0304]).subarray(1));
  a.sendBytes(new SharedArrayBuffer(3));
  a.sendBytes(new DataView(src.buffer, 1, 2));
  a.sendBytes(src, 8);
  assert.deepEqual(await b.recvBytes(), src);
  assert.deepEqual(b.recvBytesSync(), new Uint8Array([2, 3, 4, 5, 6, 7]));
  assert.deepEqual(await b.recvBytes(), new Uint8Array([2, 3, 4]));
  assert.deepEqual(b.recvBytesSync(), new Uint8Array([6, 7]));
  assert.equal((await b.recvBytes()).length, 2);
  const shared = b.recvBytesSync();
  assert.deepEqual(shared, new Uint8Array(3));
  assert.ok(shared.buffer instanceof ArrayBuffer);
  assert.deepEqual(await b.recvBytes(), new Uint8Array([1, 2]));
  assert.deepEqual(await b.recvBytes(), new Uint8Array(0));
  src[0] = 99; // the pipe copied the bytes when they were sent
  a.sendBytes(src, 0, 1);
  assert.equal((await b.recv() as Uint8Array)[0], 99);
  a.close();
  b.close();
});

test("Connection.sendBytes() rejects offsets and sizes outside the buffer with RangeError", () => {
  const [a, b] = Pipe();
  const src = new Uint8Array(4);
  for (const bad of [-1, 1.5, NaN, Infinity, 5]) {
    assert.throws(() => a.sendBytes(src, bad), RangeError, `offset ${bad}`);
    assert.throws(() => a.sendBytes(src, 0, bad), RangeError, `size ${bad}`);
  }
  assert.throws(() => a.sendBytes(src, 2, 3), RangeError);
  for (const bad of ["abc", 42, null, [1, 2], {}]) {
    assert.throws(() => a.sendBytes(bad as unknown as Uint8Array), TypeError);
  }
  assert.equal(b.pollSync(), false);
  a.close();
  b.close();
});

test("Connection.recvBytes() leaves a message longer than maxLength in the pipe", async () => {
  const [a, b] = Pipe();
  a.sendBytes(new Uint8Array(10));
  await assert.rejects(b.recvBytes({ maxLength: 9 }), /longer than maxLength/);
  assert.throws(() => b.recvBytesSync({ maxLength: 0 }), /longer than maxLength/);
  assert.equal(b.recvBytesSync({ maxLength: 10 }).length, 10);
  for (const bad of [-1, 1.5, NaN, Infinity, "4"]) {
    await assert.rejects(b.recvBytes({ maxLength: bad as number }), RangeError);
    assert.throws(() => b.recvBytesSync({ maxLength: bad as number }), RangeError);
  }
  a.close();
  b.close();
});

test("Connection.recv() of a bytes message gives a Uint8Array; recvBytes() of a value gives its encoding", () => {
  const [a, b] = Pipe();
  a.sendBytes(new Uint8Array([7, 8]));
  a.send({ hello: "world" });
  a.send(5);
  assert.deepEqual(b.recvSync(), new Uint8Array([7, 8]));
  const encoded = b.recvBytesSync();
  assert.ok(encoded instanceof Uint8Array && encoded.length > 0);
  assert.ok(b.recvBytesSync().length > 0);
  assert.equal(b.pollSync(), false);
  a.close();
  b.close();
});

test("a Connection buffers large and many messages without a reader (send never waits)", () => {
  const [a, b] = Pipe();
  const big = new Uint8Array(8 << 20);
  big[0] = 1;
  big[big.length - 1] = 2;
  for (let i = 0; i < 100_000; i++) a.send(i);
  a.sendBytes(big);
  a.send("x".repeat(3 << 20));
  a.send({ list: Array.from({ length: 1000 }, (_, i) => i) });
  for (let i = 0; i < 100_000; i++) assert.equal(b.recvSync(), i);
  const got = b.recvBytesSync();
  assert.equal(got.length, big.length);
  assert.deepEqual([got[0], got[got.length - 1]], [1, 2]);
  assert.equal((b.recvSync() as string).length, 3 << 20);
  assert.equal((b.recvSync() as { list: number[] }).list[999], 999);
  a.close();
  b.close();
});

test("a 64 MiB message passes; one too large for any buffer throws RangeError and sends nothing", () => {
  const [a, b] = Pipe();
  const big = new Uint8Array(64 << 20);
  big[12345] = 42;
  a.sendBytes(big);
  const got = b.recvBytesSync();
  assert.equal(got.length, big.length);
  assert.equal(got[12345], 42);
  assert.throws(() => a.sendBytes(new ArrayBuffer(600 << 20)), RangeError);
  a.send("still works");
  assert.equal(b.recvSync(), "still works");
  assert.equal(b.pollSync(), false);
  a.close();
  b.close();
});

test("Connection keeps order across interleaved sends and receives that grow and wrap its buffer", () => {
  const [a, b] = Pipe();
  // A seeded PRNG, so a failure can be replayed.
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let sent = 0;
  let received = 0;
  for (let step = 0; step < 6_000; step++) {
    if (rnd() < 0.55) {
      const size = Math.floor(rnd() ** 4 * 100_000);
      const block = new Uint8Array(size + 4);
      new DataView(block.buffer).setUint32(0, sent);
      block.fill(sent & 255, 4);
      if (rnd() < 0.5) a.sendBytes(block);
      else a.send({ n: sent, pad: "p".repeat(size % 500) });
      sent++;
    } else if (received < sent) {
      const got = b.recvSync() as Uint8Array | { n: number };
      const n = got instanceof Uint8Array ? new DataView(got.buffer).getUint32(0) : got.n;
      assert.equal(n, received);
      if (got instanceof Uint8Array) assert.ok(got.subarray(4).every((x) => x === (n & 255)));
      received++;
    }
  }
  while (received < sent) {
    const got = b.recvSync() as Uint8Array | { n: number };
    assert.equal(got instanceof Uint8Array ? new DataView(got.buffer).getUint32(0) : got.n, received++);
  }
  a.close();
  b.close();
});

// --- waiting: timeouts, poll, abort ------------------------------------------------

test("Connection.recv() rejects with TimeoutError after timeout, and recvSync() throws it", async () => {
  const [a, b] = Pipe();
  let t0 = performance.now();
  await assert.rejects(b.recv({ timeout: 30 }), TimeoutError);
  assert.ok(performance.now() - t0 >= 25);
  t0 = performance.now();
  assert.throws(() => b.recvSync({ timeout: 30 }), TimeoutError);
  assert.ok(performance.now() - t0 >= 25);
  await assert.rejects(b.recvBytes({ timeout: 0 }), TimeoutError);
  assert.throws(() => b.recvBytesSync({ timeout: 0 }), TimeoutError);
  a.send("in time");
  assert.equal(await b.recv({ timeout: 0 }), "in time");
  a.close();
  b.close();
});

test("Connection.recv() waits for a message sent later", async () => {
  const [a, b] = Pipe();
  setTimeout(() => a.send("late"), 30);
  assert.equal(await b.recv({ timeout: 10_000 }), "late");
  a.close();
  b.close();
});

test("Connection methods reject an invalid timeout with RangeError; async ones never throw synchronously", async () => {
  const [a, b] = Pipe();
  for (const bad of INVALID_TIMEOUTS) {
    const t = bad as number;
    const p = b.recv({ timeout: t });
    await assert.rejects(p, RangeError);
    await assert.rejects(b.recvBytes({ timeout: t }), RangeError);
    assert.throws(() => b.recvSync({ timeout: t }), RangeError);
    assert.throws(() => b.recvBytesSync({ timeout: t }), RangeError);
    await assert.rejects(b.poll(t), RangeError);
    assert.throws(() => b.pollSync(t), RangeError);
  }
  a.close();
  b.close();
  const p = b.recv();
  assert.ok(p instanceof Promise);
  await assert.rejects(p, ClosedError);
});

test("Connection.poll() tells whether a message is waiting, waiting up to timeout", async () => {
  const [a, b] = Pipe();
  assert.equal(await b.poll(), false);
  assert.equal(b.pollSync(), false);
  let t0 = performance.now();
  assert.equal(await b.poll(30), false);
  assert.ok(performance.now() - t0 >= 25);
  t0 = performance.now();
  assert.equal(b.pollSync(30), false);
  assert.ok(performance.now() - t0 >= 25);
  setTimeout(() => a.send(1), 20);
  assert.equal(await b.poll(null), true);
  assert.equal(b.pollSync(), true);
  assert.equal(await b.poll(), true, "poll does not take the message");
  assert.equal(b.recvSync(), 1);
  assert.equal(await b.poll(), false);
  a.close();
  b.close();
});

test("Connection.recv() with an aborted signal rejects with its reason and takes nothing", async () => {
  const [a, b] = Pipe();
  a.send("kept");
  const reason = new Error("stop");
  await assert.rejects(b.recv({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  await assert.rejects(b.recvBytes({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.throws(() => b.recvSync({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.equal(await b.recv(), "kept");
  a.close();
  b.close();
});

test("Connection.recv() rejects when the signal aborts while waiting, and no message is lost", async () => {
  const [a, b] = Pipe();
  const ctl = new AbortController();
  const pending = b.recv({ signal: ctl.signal });
  setTimeout(() => ctl.abort(new Error("gave up")), 20);
  await assert.rejects(pending, /gave up/);
  a.send("next");
  assert.equal(await b.recv({ timeout: 5000 }), "next");
  a.close();
  b.close();
});

test("concurrent Connection.recv() calls get the messages in call order", async () => {
  const [a, b] = Pipe<number>();
  const first = b.recv();
  const second = b.recv();
  const third = b.recv({ timeout: 5000 });
  a.send(1);
  a.send(2);
  setTimeout(() => a.send(3), 20);
  assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 3]);
  a.close();
  b.close();
});

// --- close and end of stream ------------------------------------------------------

test("after close() the other end receives everything sent before, then ClosedError, every time", async () => {
  const [a, b] = Pipe();
  a.send(1);
  a.sendBytes(new Uint8Array([2]));
  a.close();
  a.close(); // idempotent
  assert.equal(a.closed, true);
  assert.equal(await b.poll(), true);
  assert.equal(await b.recv(), 1);
  assert.deepEqual(b.recvBytesSync(), new Uint8Array([2]));
  await assert.rejects(b.recv(), ClosedError);
  assert.throws(() => b.recvSync(), ClosedError);
  await assert.rejects(b.recvBytes(), ClosedError);
  assert.throws(() => b.recvSync(), ClosedError);
  assert.equal(b.pollSync(), true, "recv would not wait");
  b.close();
});

test("a receive waiting when the other end closes rejects with ClosedError", async () => {
  const [a, b] = Pipe();
  const pending = b.recv();
  setTimeout(() => a.close(), 20);
  await assert.rejects(pending, ClosedError);
  b.close();
});

test("sending to a closed end throws ClosedError carrying the value", () => {
  const [a, b] = Pipe();
  b.close();
  assert.throws(() => a.send({ v: 1 }), (e: unknown) => e instanceof ClosedError && (e.value as { v: number }).v === 1);
  assert.throws(() => a.sendBytes(new Uint8Array(1)), ClosedError);
  const [r, w] = Pipe(false);
  r.close();
  assert.throws(() => w.send(1), ClosedError);
  a.close();
  w.close();
});

test("a closed end cannot be used: every method throws or rejects with ClosedError", async () => {
  const [a, b] = Pipe();
  b.send("unread");
  a.close();
  assert.throws(() => a.send(1), ClosedError);
  assert.throws(() => a.sendBytes(new Uint8Array(1)), ClosedError);
  assert.throws(() => a.recvSync(), ClosedError);
  assert.throws(() => a.recvBytesSync(), ClosedError);
  assert.throws(() => a.pollSync(), ClosedError);
  await assert.rejects(a.recv(), ClosedError);
  await assert.rejects(a.recvBytes(), ClosedError);
  await assert.rejects(a.poll(), ClosedError);
  b.close();
});

test("close() wakes this end's own pending receive with ClosedError", async () => {
  const [a, b] = Pipe();
  const pending = a.recv();
  setTimeout(() => a.close(), 20);
  await assert.rejects(pending, ClosedError);
  b.close();
});

test("for await over a Connection yields messages until the other end closes", async () => {
  const [a, b] = Pipe<number>();
  for (let i = 0; i < 5; i++) a.send(i);
  setTimeout(() => {
    a.send(5);
    a.close();
  }, 20);
  const got: number[] = [];
  for await (const n of b) got.push(n);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  b.close();
});

test("Connection[Symbol.dispose] closes the end", () => {
  const [a, b] = Pipe();
  {
    using end = a;
    end.send("last");
  }
  assert.equal(a.closed, true);
  assert.equal(b.recvSync(), "last");
  assert.throws(() => b.recvSync(), ClosedError);
  b.close();
});

// --- across threads -----------------------------------------------------------------

test("an end passed in args works in the thread: values round trip through recv and recvSync", async () => {
  for (const target of [echo, echoAsync]) {
    const [here, there] = Pipe();
    const t = new Thread({ target, args: [there], module: url });
    t.start();
    const values = [1, "two", { three: [3] }, new Uint8Array([4]), null, 6n];
    for (const v of values) {
      here.send(v);
      assert.deepEqual(await here.recv({ timeout: 20_000 }), v);
    }
    for (let i = 0; i < 1000; i++) {
      here.send(i);
      assert.equal(here.recvSync({ timeout: 20_000 }), i);
    }
    here.close();
    await t.join();
    assert.equal(t.exitCode, 0, String(t.error));
  }
});

test("an end passed to a thread moves there: the sender's copy is detached", async () => {
  const [here, there] = Pipe();
  const t = new Thread({ target: echo, args: [there], module: url });
  t.start();
  assert.equal(there.closed, true);
  assert.throws(() => there.send(1), /moved to another thread/);
  assert.throws(() => there.recvSync(), /moved to another thread/);
  await assert.rejects(there.recv(), /moved to another thread/);
  assert.throws(() => there.pollSync(), /moved to another thread/);
  there.close(); // a no-op, so `using` scopes may end after a move
  const again = new Thread({ target: echo, args: [there], module: url });
  assert.throws(() => again.start(), (e: unknown) => e instanceof TypeError && /args\[0\]/.test(e.message));
  here.send("still connected");
  assert.equal(await here.recv({ timeout: 20_000 }), "still connected");
  here.close();
  await t.join();
});

test("a closed end cannot be passed to a thread", () => {
  const [a, b] = Pipe();
  a.close();
  const t = new Thread({ target: echo, args: [{ conn: a }] as unknown as [Connection], module: url });
  assert.throws(() => t.start(), (e: unknown) => e instanceof TypeError && /args\[0\]\.conn/.test(e.message));
  b.close();
});

test("when the thread holding the other end returns, recv gets what it sent, then ClosedError", async () => {
  const [here, there] = Pipe();
  const t = new Thread({ target: sendAll, args: [there, [1, 2, 3]], module: url });
  t.start();
  await t.join();
  assert.deepEqual([await here.recv(), here.recvSync(), await here.recv()], [1, 2, 3]);
  await assert.rejects(here.recv({ timeout: 20_000 }), ClosedError);
  assert.throws(() => here.recvSync({ timeout: 20_000 }), ClosedError);
  assert.throws(() => here.send("gone"), ClosedError);
  here.close();
});

test("when the thread holding the other end is terminated, a pending recv rejects with ClosedError", async () => {
  const [here, there] = Pipe();
  const flag = ints(2);
  const t = new Thread({ target: sendThenHang, args: [there, ["a", "b"], flag], module: url });
  t.start();
  assert.equal(await here.recv({ timeout: 20_000 }), "a");
  assert.equal(await here.recv({ timeout: 20_000 }), "b");
  await eventually(() => Atomics.load(flag, 0) === 1);
  const pending = here.recv({ timeout: 20_000 });
  await sleep(20);
  await t.terminate();
  const t0 = performance.now();
  await assert.rejects(pending, ClosedError);
  assert.ok(performance.now() - t0 < 5_000);
  assert.equal(here.pollSync(), true);
  here.close();
});

test("a thread blocked in recvSync sees ClosedError when the writer's thread is terminated", async () => {
  const [r, w] = Pipe<number>(false);
  const out = ints(4);
  const flag = ints(2);
  const reader = new Thread({ target: drainSync, args: [r, out], module: url });
  const writer = new Thread({ target: sendThenHang, args: [w, [10, 20, 12], flag], module: url });
  reader.start();
  writer.start();
  await eventually(() => Atomics.load(flag, 0) === 1 && Atomics.load(out, 0) === 3);
  await sleep(30); // the reader parks again
  await writer.terminate();
  await reader.join(20_000);
  assert.equal(reader.isAlive(), false);
  assert.deepEqual([...out.subarray(0, 3)], [3, 42, 1]);
});

test("when the thread holding the other end dies of an error, recv gets what it sent, then ClosedError", async () => {
  const [here, there] = Pipe();
  const t = new Thread({ target: sendThenThrow, args: [there, "last words"], module: url });
  t.start();
  assert.equal(await here.recv({ timeout: 20_000 }), "last words");
  await assert.rejects(here.recv({ timeout: 20_000 }), ClosedError);
  await t.join();
  assert.equal(t.exitCode, 1);
  here.close();
});

test("an end passed to a thread that fails before it runs is closed with it", async () => {
  const [here, there] = Pipe();
  const notExported = function notExportedByTheFixtures(_conn: Connection): void {};
  const t = new Thread({ target: notExported, args: [there], module: url });
  t.start();
  await assert.rejects(here.recv({ timeout: 20_000 }), ClosedError);
  await t.join();
  here.close();
});

test("an end can move on from a thread to a thread it starts", async () => {
  const [here, there] = Pipe();
  const t = new Thread({ target: passOn, args: [there, ["from", "grandchild"]], module: url });
  t.start();
  assert.equal(await here.recv({ timeout: 20_000 }), "from");
  assert.equal(await here.recv({ timeout: 20_000 }), "grandchild");
  await assert.rejects(here.recv({ timeout: 20_000 }), ClosedError);
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  here.close();
});

test("many small messages and 1 MiB byte messages cross threads intact and in order", async () => {
  const [here, there] = Pipe();
  const t = new Thread({ target: count, args: [there, 50_000], module: url });
  t.start();
  let expected = 0;
  for await (const n of here) assert.equal(n, expected++);
  assert.equal(expected, 50_000);
  await t.join();
  here.close();

  const [r, w] = Pipe(false);
  const size = 1 << 20;
  const blocks = new Thread({ target: sendBlocks, args: [w, 40, size], module: url });
  blocks.start();
  for (let i = 0; i < 40; i++) {
    const b = r.recvBytesSync({ timeout: 20_000 });
    assert.equal(b.length, size);
    assert.deepEqual([b[0], b[1], b[size >> 1], b[size - 1]], [0xaa, i & 255, i & 255, 0x55]);
  }
  assert.throws(() => r.recvBytesSync({ timeout: 20_000 }), ClosedError);
  await blocks.join();
  r.close();
});

test("a seeded mix of message sizes crosses threads intact while the buffer grows and wraps", async () => {
  const seed = 20261125;
  const count = 4000;
  const [r, w] = Pipe(false);
  const t = new Thread({ target: sendMixed, args: [w, seed, count], module: url });
  t.start();
  const rnd = prng(seed);
  for (let i = 0; i < count; i++) {
    const expected = mixedMessage(rnd, i);
    rnd(); // the sender's draw for its pause, to stay in step
    const got = i % 3 === 0 ? await r.recv({ timeout: 20_000 }) : r.recvSync({ timeout: 20_000 });
    if (expected instanceof Uint8Array) {
      assert.ok(got instanceof Uint8Array, `message ${i} is bytes`);
      assert.equal(got.length, expected.length, `message ${i} length`);
      assert.equal(new DataView(got.buffer).getUint32(0), i);
      assert.ok(got.subarray(4).every((x) => x === (i & 255)), `message ${i} content`);
    } else {
      assert.deepEqual(got, expected);
    }
  }
  await assert.rejects(r.recv({ timeout: 20_000 }), ClosedError);
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  r.close();
});

test("a thread waiting in recvSync on an idle pipe uses no CPU", async () => {
  const [here, there] = Pipe();
  const ready = ints(1);
  const t = new Thread({ target: idleRecv, args: [there, ready], module: url });
  t.start();
  await eventually(() => Atomics.load(ready, 0) === 1);
  await sleep(100); // let it park
  const share = await cpuShare(() => sleep(400));
  here.send("wake");
  await t.join();
  assert.ok(share < 0.25, `the process used ${(share * 100).toFixed(0)}% of a core`);
  here.close();
});

test("Connection.recvBytesInto writes a message into a buffer at an offset; one too long gives BufferTooShort with it", async () => {
  const [a, b] = Pipe();
  a.sendBytes(new Uint8Array([1, 2, 3]));
  const buf = new Uint8Array(6);
  assert.equal(await b.recvBytesInto(buf, 2), 3);
  assert.deepEqual(buf, new Uint8Array([0, 0, 1, 2, 3, 0]));
  // A view's offset counts from the view's start; shared memory works too.
  const shared = new SharedArrayBuffer(8);
  a.sendBytes(new Uint8Array([9, 9]));
  assert.equal(b.recvBytesIntoSync(new DataView(shared, 4), 1), 2);
  assert.deepEqual([...new Uint8Array(shared)], [0, 0, 0, 0, 0, 9, 9, 0]);
  // Bad arguments change nothing: the message stays for the next call.
  a.sendBytes(new Uint8Array([4, 5, 6, 7]));
  await assert.rejects(b.recvBytesInto("buffer" as unknown as Uint8Array), TypeError);
  assert.throws(() => b.recvBytesIntoSync(new Uint8Array(4), 5), RangeError);
  // Too long: received all the same, and handed over in the error (as Python's e.args[0]).
  const small = new Uint8Array(3);
  await assert.rejects(b.recvBytesInto(small), (e: unknown) => {
    assert.ok(e instanceof BufferTooShort);
    assert.deepEqual(e.data, new Uint8Array([4, 5, 6, 7]));
    return true;
  });
  assert.deepEqual(small, new Uint8Array(3));
  assert.equal(b.pollSync(), false);
  a.close();
  await assert.rejects(b.recvBytesInto(buf), ClosedError);
  b.close();
});

test("connection.wait: returns the ready pipe ends and ended threads, in the order given, or [] after the timeout", async () => {
  const [a1, b1] = Pipe();
  const [a2, b2] = Pipe();
  const [a3, b3] = Pipe();
  // Nothing ready: the timeout passes.
  const t0 = performance.now();
  assert.deepEqual(await connection.wait([b1, b2, b3], 50), []);
  assert.ok(performance.now() - t0 >= 45);
  assert.deepEqual(connection.waitSync([b1, b2], 20), []);
  assert.deepEqual(await connection.wait([b1], 0), []);
  // A message arriving later wakes it; several ready ones come in the order given.
  setTimeout(() => a2.send("x"), 30);
  assert.deepEqual(await connection.wait([b1, b2, b3], null), [b2]);
  a3.send("y");
  a1.send("z");
  assert.deepEqual(await connection.wait([b1, b2, b3]), [b1, b2, b3]);
  assert.deepEqual(connection.waitSync([b3, b1]), [b3, b1]);
  for (const b of [b1, b2, b3]) await b.recv();
  // The other end closing makes an end ready (recv would not wait: it throws ClosedError).
  a1.close();
  assert.deepEqual(await connection.wait([b1, b2], 5000), [b1]);
  // A thread is ready once it has ended.
  const t = new Thread({ target: () => new Promise((r) => setTimeout(r, 100)) });
  t.start();
  assert.deepEqual(await connection.wait([b2, t], 10), []);
  assert.deepEqual(await connection.wait([b2, t], 10_000), [t]);
  assert.deepEqual(connection.waitSync([t]), [t]);
  // Bad input fails at once.
  await assert.rejects(connection.wait("b2" as unknown as Connection[]), TypeError);
  await assert.rejects(
    connection.wait([b2, 1 as unknown as Connection]),
    /objects\[1\] must be a Connection or a Thread/,
  );
  await assert.rejects(connection.wait([new Thread({ target: () => {} })]), /never started/);
  await assert.rejects(connection.wait([b2], -1), RangeError);
  b3.close();
  await assert.rejects(connection.wait([b3]), ClosedError);
  for (const c of [b1, a2, b2, a3]) c.close();
});
