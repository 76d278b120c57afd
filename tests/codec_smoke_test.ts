import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread } from "../mod.ts";

test("Thread runs a self-contained target and reports exit code 0", async () => {
  const t = new Thread({
    target: (n: number) => {
      if (n !== 2) throw new Error("wrong");
    },
    args: [2],
  });
  t.start();
  await t.join();
  assert.equal(t.exitCode, 0);
});
