// Copyright the @mpjs/multiprocessing authors. MIT license.
// The pool's collaborators and its start sequence, tested directly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";
import { nested } from "./testdata/pool_nested.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

test("a worker's parent that is itself a worker posts through the worker's inbox on Deno", async () => {
  // Deno holds the first message a parent posts to a nested worker for about
  // half a second; through a port of the worker's own it arrives at once.
  const out = new Int32Array(new SharedArrayBuffer(12));
  const t = new Thread({ target: nested, args: [out], module: new URL("./testdata/pool_nested.ts", import.meta.url) });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0);
  assert.deepEqual([out[1], out[2]], [49, 49], "a pool made inside a thread works");
  // The owner's reply with the task's argument came through the inbox.
  assert.equal(out[0], isDeno ? 2 : 1);
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
