// Copyright the @mpjs/multiprocessing authors. MIT license.
// The pool's collaborators and its start sequence, tested directly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";
import { nested, url } from "./testdata/pool_nested.ts";

test("a pool made inside a thread runs tasks whose arguments travel by message", async () => {
  const out = new Int32Array(new SharedArrayBuffer(12));
  const t = new Thread({ target: nested, args: [out], module: url });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0, String(t.error));
  assert.deepEqual([out[1], out[2]], [49, 49]);
});

test("pool timeouts say how long they waited, with the unit", async () => {
  const { Pool, TimeoutError } = await import("../mod.ts");
  const pool = new Pool({ processes: 1 });
  try {
    const slow = () => new Promise((r) => setTimeout(r, 300));
    await assert.rejects(
      pool.applyAsync(slow).get(2),
      (e: Error) => e instanceof TimeoutError && /within 2 ms/.test(e.message),
    );
    const it = pool.imap(slow, [1]) as AsyncIterableIterator<unknown> & { next(timeout?: number): Promise<unknown> };
    await assert.rejects(it.next(2), (e: Error) => e instanceof TimeoutError && /within 2 ms/.test(e.message));
    await it.return?.();
  } finally {
    await pool.terminate();
  }
});

test("TaskTable: a task leaves in one place, and a cancelled bulk chunk keeps its claim", async () => {
  const { TaskTable } = await import("../_pool_tasks.ts");
  const table = new TaskTable();
  const got: unknown[] = [];
  const a = table.newId();
  const b = table.newId();
  assert.notEqual(a, b);
  let givenBack = 0;
  const packed = { data: 1, hasHandles: false, transfer: [], commit: () => {}, giveBack: () => void givenBack++ };
  table.add(a, (ok, v) => got.push([ok, v]), packed);
  table.add(b, (ok, v) => got.push([ok, v]));
  table.claimBulk(b);
  assert.equal(table.size, 2);
  assert.equal(table.cancel(b), true);
  assert.equal(table.cancel(b), false, "cancelled once");
  assert.equal(table.hasBulk(), true, "its worker may still touch the chunk");
  assert.equal(table.finish(b), undefined, "a cancelled task's result settles nothing");
  assert.equal(table.hasBulk(), false, "its result released the chunk");
  table.finish(a)?.(true, 42);
  assert.deepEqual(got, [[true, 42]]);
  assert.equal(table.takePayload(a), undefined, "finish dropped the payload");
  assert.equal(givenBack, 1, "a payload no worker took gives its handles' copies back");
  assert.equal(table.size, 0);
});

test("TaskTable: the tasks a dying worker may have taken are found by elimination", async () => {
  const { TaskTable } = await import("../_pool_tasks.ts");
  const table = new TaskTable();
  const ids = [1, 2, 3, 4].map(() => table.newId());
  for (const id of ids) {
    table.add(id, () => {});
    table.put(id);
  }
  table.put(0); // a STOP
  // Three records taken (two left in the ring): the first finished, the second runs elsewhere.
  table.finish(ids[0]);
  const taken = table.taken(2);
  assert.equal(taken, 3);
  assert.deepEqual(table.takenAndNotRunning(taken, new Set([ids[1]])), [ids[2]]);
  table.trim(2);
  assert.deepEqual(table.takenAndNotRunning(taken, new Set([ids[1]])), [ids[2]], "trimming keeps the count");
});

test("BulkArea hands out parts upwards and restarts only when no part is in use", async () => {
  const { BulkArea } = await import("../_pool_bulk.ts");
  const area = new BulkArea(64);
  const a = area.write([1, 2], false)!;
  assert.deepEqual([a.byteOffset, [...a]], [0, [1, 2]]);
  const b = area.write([3, 4, 5], true)!;
  assert.equal(b.byteOffset, 16, "after the part still in use");
  assert.equal(area.write([1, "x"], true), undefined, "not all numbers");
  assert.equal(area.write(new Array(9).fill(0), false), undefined, "past its largest size (8 elements)");
  assert.equal(area.write([6], false)!.byteOffset, 0, "restarted once nothing is in use");
  assert.equal(area.buffer.byteLength <= 64, true);
});

test("FnDefs publishes each function once and DefsReader reads them back in order", async () => {
  const { FnDefs, DefsReader } = await import("../_pool_defs.ts");
  const { CELLS_BYTES } = await import("../_pool_protocol.ts");
  const cells = new Int32Array(new SharedArrayBuffer(CELLS_BYTES));
  const defs = new FnDefs(cells, "file:///jobs.ts");
  function work() {}
  const twin = (x: number) => x + 1;
  assert.equal(defs.idOf(work), 0);
  assert.equal(defs.idOf(twin), 1);
  assert.equal(defs.idOf(work), 0, "the same function");
  assert.equal(defs.idOf(function () {}), 2, "no name: shipped by source");
  assert.throws(() => defs.idOf(work.bind(null)), /bound function/);
  const reader = new DefsReader(defs.buffer, cells);
  assert.deepEqual(reader.next(), { kind: "module", module: "file:///jobs.ts", exportName: "work" });
  assert.deepEqual(reader.next(), { kind: "module", module: "file:///jobs.ts", exportName: "twin" });
  assert.equal(reader.next()?.kind, "source");
  assert.equal(reader.next(), undefined);
  const bySource = new FnDefs(new Int32Array(new SharedArrayBuffer(CELLS_BYTES)), undefined);
  const make = () => (x: number) => x * 2;
  assert.equal(bySource.idOf(make()), bySource.idOf(make()), "two closures of one source: one definition");
});
