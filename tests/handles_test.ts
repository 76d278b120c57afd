// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { handlerFor, pack, refuseHandles, registerHandler, unpack } from "../_handles.ts";
import { encode } from "../_codec.ts";

/** A stand-in for a library handle: shared cells plus private state that cannot be cloned. */
class Counter {
  #cells: Int32Array;
  moved = false;
  constructor(cells = new Int32Array(new SharedArrayBuffer(4))) {
    this.#cells = cells;
  }
  get value(): number {
    return Atomics.load(this.#cells, 0);
  }
  add(n: number): void {
    Atomics.add(this.#cells, 0, n);
  }
  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }
}

/** A handle that carries a MessagePort to transfer. */
class Porter {
  constructor(readonly port: MessagePort) {}
}

registerHandler<Counter, { sab: SharedArrayBuffer }>({
  tag: "test.Counter",
  canHandle: (v): v is Counter => v instanceof Counter,
  serialize: (c, path) => {
    if (c.moved) throw new TypeError(`Cannot send ${path}: the counter was moved`);
    return { sab: c.buffer };
  },
  deserialize: (d) => new Counter(new Int32Array(d.sab)),
});

registerHandler<Porter, { port: MessagePort }>({
  tag: "test.Porter",
  canHandle: (v): v is Porter => v instanceof Porter,
  serialize: (p) => ({ port: p.port }),
  deserialize: (d) => new Porter(d.port),
  transferables: (d) => [d.port],
  moved: (p) => (p as unknown as { gone: boolean }).gone = true,
});

test("pack leaves values without handles as they are", () => {
  const value = [1, { a: new Map([["k", new Set([2])]]) }];
  const p = pack(value, "args");
  assert.equal(p.hasHandles, false);
  assert.equal(p.data, value);
  assert.deepEqual(p.transfer, []);
  assert.equal(unpack(p.data, p.hasHandles), value);
});

test("pack and unpack rebuild handles nested in arrays, objects, Maps and Sets", () => {
  const c = new Counter();
  c.add(5);
  const value = [c, { deep: { c } }, new Map<unknown, unknown>([["k", c], [c, "as key"]]), new Set([c]), "plain"];
  const p = pack(value, "args");
  assert.equal(p.hasHandles, true);
  assert.notEqual(p.data, value); // the caller's value is not changed
  assert.equal(value[0], c);
  const back = unpack(structuredClone(p.data), true) as [
    Counter,
    { deep: { c: Counter } },
    Map<unknown, unknown>,
    Set<Counter>,
    string,
  ];
  assert.ok(back[0] instanceof Counter);
  assert.ok(back[1].deep.c instanceof Counter);
  assert.ok(back[2].get("k") instanceof Counter);
  const keys = [...back[2].keys()];
  assert.ok(keys.some((k) => k instanceof Counter));
  assert.ok([...back[3]][0] instanceof Counter);
  assert.equal(back[4], "plain");
  // They share the same memory as the original.
  back[0].add(1);
  assert.equal(c.value, 6);
  assert.equal(back[1].deep.c.value, 6);
});

test("pack keeps cycles around handles", () => {
  const c = new Counter();
  const root: Record<string, unknown> = { c };
  root.self = root;
  const p = pack(root, "args");
  const back = unpack(structuredClone(p.data), true) as Record<string, unknown>;
  assert.equal(back.self, back);
  assert.ok(back.c instanceof Counter);
});

test("pack collects transferables and commit() tells moved handles", () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const porter = new Porter(port1);
    const p = pack({ list: [porter] }, "args");
    assert.deepEqual(p.transfer, [port1]);
    assert.equal((porter as unknown as { gone?: boolean }).gone, undefined);
    p.commit();
    assert.equal((porter as unknown as { gone?: boolean }).gone, true);
  } finally {
    port1.close();
    port2.close();
  }
});

test("pack passes the path to serialize, which may refuse", () => {
  const c = new Counter();
  c.moved = true;
  assert.throws(() => pack([0, { q: c }], "args"), { name: "TypeError", message: /args\[1\]\.q/ });
});

test("pack throws a TypeError naming the path of an uncloneable value next to handles", () => {
  assert.throws(() => pack([new Counter(), { cb: () => {} }], "args"), {
    name: "TypeError",
    message: /args\[1\]\.cb/,
  });
});

test("unpack throws when a handle's class is not loaded in this thread", () => {
  const data = pack([new Counter()], "args").data as unknown[];
  const forged = JSON.parse(
    JSON.stringify(data, (_k, v) => v instanceof SharedArrayBuffer ? {} : v).replace(
      "test.Counter",
      "test.Missing",
    ),
  );
  assert.throws(() => unpack(forged, true), /test\.Missing/);
});

test("handlerFor finds the registered handler, registerHandler ignores a second registration of a tag", () => {
  assert.equal(handlerFor(new Counter())?.tag, "test.Counter");
  assert.equal(handlerFor({}), undefined);
  assert.equal(handlerFor(1), undefined);
  registerHandler({
    tag: "test.Counter",
    canHandle: (v): v is object => v === "never",
    serialize: () => null,
    deserialize: () => ({}),
  });
  assert.equal(handlerFor(new Counter())?.tag, "test.Counter");
});

test("refuseHandles makes encode reject a handle with a TypeError naming its path", () => {
  assert.throws(() => encode({ items: [new Counter()] }, "item", refuseHandles), {
    name: "TypeError",
    message: /item\.items\[0\].*test\.Counter/,
  });
  assert.doesNotThrow(() => encode({ items: [1] }, "item", refuseHandles));
});
