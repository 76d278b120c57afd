// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkCloneable,
  decode,
  decodeReused,
  decodeShared,
  encode,
  encodeTo,
  encodeWith,
  type Format,
  PLAIN,
  STRUCTURED,
} from "../_codec.ts";
import { BrokenBarrierError, ClosedError, EmptyError, FullError, TimeoutError } from "../errors.ts";

function roundTrip<T>(value: T): T {
  return decode(encode(value)) as T;
}

test("encode/decode round-trips primitives, including undefined, NaN and BigInt", () => {
  for (
    const v of [
      undefined,
      null,
      true,
      false,
      0,
      1.5,
      -(2 ** 53),
      NaN,
      Infinity,
      -Infinity,
      "",
      "text ✓ 中文",
      0n,
      -12345678901234567890123n,
      2n ** 64n,
    ]
  ) {
    assert.ok(Object.is(roundTrip(v), v), String(v));
  }
});

test("encode/decode round-trips plain objects and arrays, keeping undefined members and holes as undefined", () => {
  const value = { a: 1, b: [1, "x", { c: undefined }], d: { e: { f: [] } }, "odd key": null };
  assert.deepEqual(roundTrip(value), value);
  const got = roundTrip({ u: undefined }) as Record<string, unknown>;
  assert.ok("u" in got);
});

test("encode/decode round-trips Map, Set, Date and RegExp", () => {
  const map = new Map<unknown, unknown>([[1, "one"], ["k", { v: [1] }], [null, new Set([1])]]);
  const got = roundTrip(map);
  assert.ok(got instanceof Map);
  assert.deepEqual(got, map);
  const set = new Set([1, "a", 2n]);
  assert.deepEqual(roundTrip(set), set);
  const date = new Date(1_700_000_123_456);
  const d = roundTrip(date);
  assert.ok(d instanceof Date);
  assert.equal(d.getTime(), date.getTime());
  const re = /a+b?\d/gimsu;
  const r = roundTrip(re);
  assert.ok(r instanceof RegExp);
  assert.equal(r.source, re.source);
  assert.equal(r.flags, re.flags);
});

test("encode/decode round-trips an Error's class (built-in or this library's), name, message, stack and cause", () => {
  const custom = Object.assign(new Error("mine"), { name: "MyError" });
  const caused = new TypeError("outer", { cause: { code: 7 } });
  const ours = [
    new EmptyError(),
    new FullError("full"),
    new ClosedError(),
    new TimeoutError(),
    new BrokenBarrierError(),
  ];
  for (const e of [new Error("plain"), new TypeError("typed"), new RangeError("ranged"), custom, caused, ...ours]) {
    const got = roundTrip(e);
    assert.equal(Object.getPrototypeOf(got), Object.getPrototypeOf(e));
    assert.equal(got.message, e.message);
    assert.equal(got.name, e.name);
    assert.equal(got.stack, e.stack);
    assert.equal("cause" in got, "cause" in e);
  }
  assert.deepEqual(roundTrip(caused).cause, { code: 7 });
});

test("encode/decode round-trips an AggregateError with its errors", () => {
  const e = new AggregateError([new RangeError("one"), "two"], "both failed");
  const got = roundTrip(e);
  assert.ok(got instanceof AggregateError);
  assert.equal(got.message, "both failed");
  assert.equal(got.errors.length, 2);
  assert.ok(got.errors[0] instanceof RangeError);
  assert.equal(got.errors[0].message, "one");
  assert.equal(got.errors[1], "two");
  assert.throws(() => encode({ e: new AggregateError([() => 1]) }), /value\.e\.errors\[0\]/);
});

test("encode/decode round-trips typed arrays and ArrayBuffer", () => {
  const arrays: (ArrayBufferView & Iterable<unknown>)[] = [
    new Uint8Array([0, 1, 255]),
    new Int8Array([-128, 0, 127]),
    new Uint16Array([0, 65535]),
    new Int16Array([-32768, 32767]),
    new Uint32Array([0, 2 ** 32 - 1]),
    new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
    new Float32Array([1.5, -0.25]),
    new Float64Array([Math.PI, -Infinity]),
    new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    new BigUint64Array([0n, 2n ** 64n - 1n]),
    new Uint8ClampedArray([0, 200, 255]),
  ];
  // Float16Array (Deno, Bun; not Node 20): msgpackr has no code of its own for it.
  const Float16 = (globalThis as { Float16Array?: new (values: number[]) => ArrayBufferView }).Float16Array;
  if (Float16) arrays.push(new Float16([1.5, -2, 0.25]) as ArrayBufferView & Iterable<unknown>);
  for (const a of arrays) {
    const got = roundTrip(a);
    assert.equal(got.constructor, a.constructor, a.constructor.name);
    assert.deepEqual([...got as Iterable<unknown>], [...a as Iterable<unknown>], a.constructor.name);
  }
  const buf = new Uint8Array([5, 6, 7, 8]).buffer;
  const gotBuf = roundTrip(buf);
  assert.ok(gotBuf instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(gotBuf)], [5, 6, 7, 8]);
});

test("encode/decode round-trips boxed primitives as boxed primitives", () => {
  const values = [new Number(3), new Number(-1.5), new String("text"), new Boolean(false), Object(5n)];
  const got = roundTrip({ values, nested: [new String("")] });
  for (const [i, v] of values.entries()) {
    assert.equal(typeof got.values[i], "object");
    assert.equal(Object.prototype.toString.call(got.values[i]), Object.prototype.toString.call(v));
    assert.equal(got.values[i].valueOf(), v.valueOf());
  }
  assert.equal(got.nested[0] instanceof String && got.nested[0].valueOf(), "");
});

test("encode/decode keeps cycles and shared references", () => {
  const shared = { n: 1 };
  const root: Record<string, unknown> = { a: shared, b: shared, list: [shared] };
  root.self = root;
  (root.list as unknown[]).push(root);
  const got = roundTrip(root);
  assert.equal(got.self, got);
  assert.equal(got.a, got.b);
  assert.equal((got.list as unknown[])[0], got.a);
  assert.equal((got.list as unknown[])[1], got);
  const map = new Map<string, unknown>();
  map.set("me", map);
  const m = roundTrip(map);
  assert.equal(m.get("me"), m);
});

test("encode returns a fresh copy the caller owns", () => {
  const a = encode({ x: 1 });
  const b = encode({ y: "a much longer value than the first one" });
  assert.deepEqual(decode(a), { x: 1 });
  assert.deepEqual(decode(b), { y: "a much longer value than the first one" });
});

test("encodeWith hands the bytes to write and returns what write returns", () => {
  const sab = new SharedArrayBuffer(256);
  const len = encodeWith(new Map([["k", [1n, new Date(5)]]]), "item", (bytes) => {
    new Uint8Array(sab, 10, bytes.length).set(bytes);
    return bytes.length;
  });
  const got = decodeShared(sab, 10, len) as Map<string, [bigint, Date]>;
  assert.equal(got.get("k")![0], 1n);
  assert.equal(got.get("k")![1].getTime(), 5);
});

test("decodeShared copies out of shared memory, so later writes do not change the value", () => {
  const bytes = encode("hello");
  const sab = new SharedArrayBuffer(bytes.length + 4);
  new Uint8Array(sab, 4).set(bytes);
  const got = decodeShared(sab, 4, bytes.length);
  new Uint8Array(sab).fill(0);
  assert.equal(got, "hello");
});

test("encode throws a TypeError naming the path of a value that cannot be cloned", () => {
  class Secret {
    #key = 1;
    get key(): number {
      return this.#key;
    }
  }
  const cases: [unknown, string, RegExp][] = [
    [() => {}, "item", /^Cannot send item to another thread: it is a function/],
    [Symbol("s"), "item", /item.*symbol/],
    [{ a: [1, { cb() {} }] }, "item", /item\.a\[1\]\.cb.*function \(cb\)/],
    [[new Secret()], "args", /args\[0\].*Secret/],
    [{ "odd key": Symbol.iterator }, "v", /v\["odd key"\]/],
    [new Map([["k", () => {}]]), "m", /m\.get\("k"\)/],
    [new Map([[() => {}, 1]]), "m", /m\.keys\(\)\[0\]/],
    [new Set([1, () => {}]), "s", /s\.values\(\)\[1\]/],
    [Object.assign(new Error("e"), { cause: () => {} }), "err", /err\.cause/],
  ];
  for (const [value, path, message] of cases) {
    assert.throws(
      () => encode(value, path),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      message.source,
    );
    assert.throws(() => checkCloneable(value, path), TypeError);
  }
});

test("encodeWith does not call write when the value cannot be cloned", () => {
  let called = false;
  assert.throws(() =>
    encodeWith({ f: () => {} }, "item", () => {
      called = true;
    }), /item\.f/);
  assert.equal(called, false);
});

test("checkCloneable accepts every structured-clone type and cycles", () => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  checkCloneable([
    undefined,
    1n,
    new Map([[{}, new Set([new Date(), /x/])]]),
    new Error("e"),
    new Float64Array(2),
    new ArrayBuffer(3),
    new SharedArrayBuffer(4),
    new DataView(new ArrayBuffer(2)),
    cyclic,
    Object.create(null),
  ], "v");
});

test("checkCloneable gives each object to the hook first and does not look inside when the hook takes it", () => {
  class Handle {
    inner = () => {};
  }
  const seen: string[] = [];
  checkCloneable({ h: new Handle(), list: [new Handle()] }, "args", (v, path) => {
    seen.push(path);
    return v instanceof Handle;
  });
  assert.deepEqual(seen, ["args", "args.h", "args.list", "args.list[0]"]);
});

/** Encodes with encodeTo and decodes the copied bytes with the format it reports. */
function viaEncodeTo(value: unknown): { value: unknown; format: Format } {
  return encodeTo(value, "item", (bytes, start, end, format) => {
    const copy = new Uint8Array(64 + end - start).fill(0xc1); // 0xc1 is never valid MessagePack
    copy.set(bytes.subarray(start, end));
    return { value: decodeReused(copy, end - start, format), format };
  });
}

test("encodeTo takes the plain form for plain trees and structured clone for anything else, and both round-trip", () => {
  const plain: unknown[] = [
    { i: 1, s: "hello" },
    [1, "two", null, undefined, true, 1.5, -(2 ** 40)],
    { a: { b: [{ c: "d" }] }, u: undefined, "not an identifier": 2 },
    Object.assign(Object.create(null), { x: 1 }),
    Array.from({ length: 100 }, (_, i) => ({ i })), // past the small seen-list
    "text",
    42,
  ];
  for (const v of plain) {
    const got = viaEncodeTo(v);
    assert.equal(got.format, PLAIN, `plain form for ${JSON.stringify(v)?.slice(0, 40)}`);
    assert.deepEqual(got.value, typeof v === "object" && v !== null && !Array.isArray(v) ? { ...v } : v);
  }
  const shared = { n: 1 };
  const cyclic: Record<string, unknown> = { name: "c" };
  cyclic.self = cyclic;
  const loop: unknown[] = [];
  loop.push({ back: [loop] });
  const structured: unknown[] = [
    [shared, shared],
    { deep: { x: shared }, again: [shared] },
    loop,
    cyclic,
    { m: new Map([["k", 1]]) },
    [new Date(1700000000000)],
    { big: 10n ** 20n },
    10n,
    { bytes: new Uint8Array([1, 2, 3]) },
    [new Set([1])],
    Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])), // too many keys for the plain form
  ];
  for (const v of structured) {
    const got = viaEncodeTo(v);
    assert.equal(got.format, STRUCTURED);
    if (v === cyclic) {
      const c = got.value as Record<string, unknown>;
      assert.equal(c.self, c);
    } else if (v === loop) {
      const l = got.value as [{ back: unknown[] }];
      assert.equal(l[0].back[0], l);
    } else if (Array.isArray(v) && v[0] === shared) {
      const pair = got.value as object[];
      assert.deepEqual(pair[0], shared);
      assert.equal(pair[0], pair[1], "a shared reference stays shared");
    } else {
      assert.deepEqual(got.value, v);
    }
  }
});

test("-0 stays -0, as with structured clone, wherever it sits and through every encoder", () => {
  const isNeg = (x: unknown) => Object.is(x, -0);
  const viaAll = (v: unknown) => [roundTrip(v), encodeWith(v, "v", (b) => decode(b)), viaEncodeTo(v).value];
  for (const got of viaAll(-0)) assert.ok(isNeg(got));
  for (const got of viaAll([1, -0, 0])) {
    const a = got as number[];
    assert.ok(isNeg(a[1]) && Object.is(a[2], 0) && a[0] === 1);
  }
  for (const got of viaAll({ x: -0, y: { z: [-0] }, s: "keep" })) {
    const o = got as { x: number; y: { z: number[] }; s: string };
    assert.ok(isNeg(o.x) && isNeg(o.y.z[0]) && o.s === "keep");
  }
  for (const got of viaAll(new Map([["k", { v: -0 }]]))) {
    assert.ok(isNeg((got as Map<string, { v: number }>).get("k")!.v));
  }
  for (const got of viaAll(new Set([[-0]]))) assert.ok(isNeg([...(got as Set<number[]>)][0][0]));
  // Cycles and shared references survive the copy that marks -0.
  const shared = { n: -0 };
  const cyclic: Record<string, unknown> = { a: shared, b: shared, z: -0 };
  cyclic.self = cyclic;
  for (const got of viaAll(cyclic)) {
    const c = got as { a: { n: number }; b: unknown; self: unknown; z: number };
    assert.equal(c.self, c);
    assert.equal(c.a, c.b);
    assert.ok(isNeg(c.a.n) && isNeg(c.z));
  }
  // The value handed in is not changed.
  assert.ok(isNeg(shared.n) && cyclic.self === cyclic);
  // Binary data keeps -0 in its bytes.
  assert.ok(isNeg((roundTrip(new Float64Array([-0])) as Float64Array)[0]));
  // Plain zeros still take the plain form.
  assert.equal(viaEncodeTo({ x: 0 }).format, PLAIN);
  assert.equal(viaEncodeTo({ x: -0 }).format, STRUCTURED);
});

test("encodeTo names the path of a value that cannot be cloned and does not call write", () => {
  let calls = 0;
  assert.throws(
    () => encodeTo({ ok: 1, list: [1, { cb: () => 0 }] }, "item", () => calls++),
    (e: unknown) => e instanceof TypeError && e.message.includes("item.list[1].cb"),
  );
  assert.equal(calls, 0);
});
