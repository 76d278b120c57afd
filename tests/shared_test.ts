// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Lock, RLock, SharedArray, SharedValue, Thread } from "../mod.ts";
import { addUnderLock, arrayIncrements, fillArray, lockedIncrements, url } from "./testdata/sync_fixtures.ts";

// deno-lint-ignore no-explicit-any
function start(target: (...args: any[]) => unknown, args: unknown[]): Thread {
  const t = new Thread({ target, args, module: url });
  t.start();
  return t;
}

// --- SharedValue ---------------------------------------------------------------

test("SharedValue stores each integer typecode with C wrap-around", () => {
  const cases: [string, number, number][] = [
    ["b", 127, 127],
    ["b", 128, -128],
    ["B", 256, 0],
    ["h", -32769, 32767],
    ["H", 65535, 65535],
    ["i", 2 ** 31, -(2 ** 31)],
    ["I", -1, 2 ** 32 - 1],
    ["l", -5, -5],
    ["L", 2 ** 32 + 3, 3],
  ];
  for (const [code, input, expected] of cases) {
    const v = new SharedValue(code as "i", input);
    assert.equal(v.value, expected, `${code}(${input})`);
    assert.equal(v.typecode, code);
  }
});

test("SharedValue holds floats, bigints and characters", () => {
  const d = new SharedValue("d", 0.1);
  assert.equal(d.value, 0.1);
  const f = new SharedValue("f", 0.5);
  f.value += 0.25;
  assert.equal(f.value, 0.75);
  const q = new SharedValue("q", -(2n ** 63n));
  assert.equal(q.value, -(2n ** 63n));
  q.value = 5;
  assert.equal(q.value, 5n, "an integer number is accepted and read back as a bigint");
  const uq = new SharedValue("Q", 2n ** 64n + 1n);
  assert.equal(uq.value, 1n);
  const c = new SharedValue("c", "a");
  assert.equal(c.value, "a");
  c.value = "é"; // U+00E9 fits in a byte
  assert.equal(c.value, "é");
  const u = new SharedValue("u", "😀");
  assert.equal(u.value, "😀");
});

test("SharedValue defaults to 0 (0n for bigints, NUL for characters)", () => {
  assert.equal(new SharedValue("i").value, 0);
  assert.equal(new SharedValue("d").value, 0);
  assert.equal(new SharedValue("q").value, 0n);
  assert.equal(new SharedValue("c").value, "\0");
});

test("SharedValue accepts TypedArray constructors as the typecode", () => {
  const ctors = [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
  ];
  for (const ctor of ctors) {
    const v = new SharedValue(ctor, 7);
    assert.equal(v.value, 7, ctor.name);
    assert.ok(v.getObj() instanceof ctor);
    assert.equal(v.typecode, ctor.name);
  }
  assert.equal(new SharedValue(BigInt64Array, -3n).value, -3n);
  assert.equal(new SharedValue(BigUint64Array, 3n).value, 3n);
  assert.equal(new SharedValue(Uint8ClampedArray, 300).value, 255);
});

test("SharedValue rejects unknown typecodes with TypeError", () => {
  for (const code of ["x", "", "ii", "I ", 5, null, Array, DataView, {}]) {
    assert.throws(() => new SharedValue(code as "i"), TypeError, String(code));
  }
});

test("SharedValue rejects values that do not fit the type, and leaves the value unchanged", () => {
  const v = new SharedValue("i", 3);
  for (const bad of [1.5, NaN, Infinity, "1", 1n, null, {}]) {
    assert.throws(() => v.value = bad as number, TypeError, String(bad));
  }
  assert.equal(v.value, 3);
  assert.throws(() => new SharedValue("i", 0.5), TypeError);
  assert.throws(() => new SharedValue("d", 1n as never), TypeError);
  assert.throws(() => new SharedValue("q", 1.5 as never), TypeError);
  assert.throws(() => new SharedValue("c", "ab"), TypeError);
  assert.throws(() => new SharedValue("c", "€"), TypeError, "not a byte");
  assert.throws(() => new SharedValue("u", ""), TypeError);
  assert.throws(() => new SharedValue("u", "ab"), TypeError);
  assert.throws(() => new SharedValue("i", 0, 5 as never), TypeError);
  assert.throws(() => new SharedValue("i", 0, { lock: "yes" as never }), TypeError);
});

test("SharedValue.getLock() returns an RLock by default, the lock given, or throws with { lock: false }", () => {
  assert.ok(new SharedValue("i").getLock() instanceof RLock);
  const lock = new Lock();
  assert.equal(new SharedValue("i", 0, { lock }).getLock(), lock);
  assert.ok(new SharedValue("i", 0, { lock: true }).getLock() instanceof RLock);
  const raw = new SharedValue("i", 0, { lock: false });
  assert.throws(() => raw.getLock(), /no lock/);
  raw.value = 9;
  assert.equal(raw.getObj()[0], 9);
  assert.equal(String(raw), 'SharedValue("i", 9)');
});

test("SharedValue passed to threads shares its memory and its lock: exact count under contention", async () => {
  const v = new SharedValue("i", 0);
  const n = 200_000;
  const threads = [start(lockedIncrements, [v, n]), start(lockedIncrements, [v, n])];
  const lock = v.getLock();
  for (let i = 0; i < n / 10; i++) {
    await lock.acquire();
    v.value += 1;
    lock.release();
  }
  for (const t of threads) await t.join();
  assert.equal(v.value, 2 * n + n / 10);
});

test("SharedValue of floats updated under its lock by several threads", async () => {
  const v = new SharedValue("d", 0.5);
  const threads = [1, 2, 3, 4].map((k) => start(addUnderLock, [v, k]));
  for (const t of threads) await t.join();
  assert.equal(v.value, 10.5);
});

// --- SharedArray ---------------------------------------------------------------

test("SharedArray from a size is zero-filled; from an iterable copies it", () => {
  const a = new SharedArray("i", 4);
  assert.equal(a.length, 4);
  assert.deepEqual(a.toArray(), [0, 0, 0, 0]);
  const b = new SharedArray("d", new Set([1.5, 2.5]));
  assert.deepEqual([...b], [1.5, 2.5]);
  const e = new SharedArray("i", 0);
  assert.equal(e.length, 0);
  assert.deepEqual(e.toArray(), []);
  const q = new SharedArray("q", [1n, 2]);
  assert.deepEqual(q.toArray(), [1n, 2n]);
  const c = new SharedArray("c", "hello");
  assert.equal(c.toArray().join(""), "hello");
  assert.ok(c.view instanceof Uint8Array);
  assert.equal(c.view[0], 104);
  const u = new SharedArray("u", "añ😀");
  assert.deepEqual(u.toArray(), ["a", "ñ", "😀"]);
  assert.equal(String(new SharedArray("h", [1, -2])), 'SharedArray("h", [1, -2])');
});

test("SharedArray get/set with negative indexes; out-of-range indexes throw RangeError", () => {
  const a = new SharedArray(Int16Array, [10, 20, 30]);
  assert.equal(a.get(0), 10);
  assert.equal(a.get(-1), 30);
  a.set(-3, 11);
  assert.equal(a.get(0), 11);
  for (const i of [3, -4, 1.5, NaN, Infinity, "0"]) {
    assert.throws(() => a.get(i as number), RangeError, String(i));
    assert.throws(() => a.set(i as number, 1), RangeError, String(i));
  }
  assert.throws(() => a.set(0, 1.5), TypeError);
  assert.deepEqual(a.toArray(), [11, 20, 30]);
});

test("SharedArray rejects bad sizes and elements", () => {
  for (const size of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => new SharedArray("i", size), RangeError, String(size));
  }
  for (const bad of [null, undefined, {}, true]) {
    assert.throws(() => new SharedArray("i", bad as never), TypeError, String(bad));
  }
  assert.throws(() => new SharedArray("i", [1, 2.5]), TypeError);
  assert.throws(() => new SharedArray("c", "€"), TypeError);
  assert.throws(() => new SharedArray("z" as "i", 3), TypeError);
});

test("SharedArray.view and getObj() are the typed array over the shared memory", () => {
  const a = new SharedArray("I", [1, 2, 3]);
  assert.ok(a.view instanceof Uint32Array);
  assert.equal(a.view.length, 3);
  assert.equal(a.getObj(), a.view);
  assert.ok(a.view.buffer instanceof SharedArrayBuffer);
  a.view[1] = 7;
  assert.equal(a.get(1), 7);
});

test("SharedArray.getLock() follows the lock option", () => {
  assert.ok(new SharedArray("i", 1).getLock() instanceof RLock);
  const lock = new Lock();
  assert.equal(new SharedArray("i", 1, { lock }).getLock(), lock);
  assert.throws(() => new SharedArray("i", 1, { lock: false }).getLock(), /no lock/);
});

test("SharedArray passed to a thread: the thread's writes are seen by the main thread", async () => {
  for (const code of ["i", "d", "q", "b"] as const) {
    const a = new SharedArray(code, 6);
    const t = start(fillArray, [a, 3]);
    await t.join();
    assert.equal(t.exitCode, 0, String(t.error));
    const expected = [0, 3, 6, 9, 12, 15].map((x) => (code === "q" ? BigInt(x) : x));
    assert.deepEqual(a.toArray(), expected, code);
  }
});

test("SharedArray updated under its shared lock by three threads counts exactly", async () => {
  const a = new SharedArray("i", 4);
  const n = 50_000;
  const threads = [1, 2, 3].map((slot) => start(arrayIncrements, [a, a.getLock(), slot, n]));
  for (const t of threads) await t.join();
  assert.deepEqual(a.toArray(), [3 * n, n, n, n]);
});
