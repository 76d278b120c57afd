// Copyright the @mpjs/multiprocessing authors. MIT license.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

async function run(path: string, args: string[] = []): Promise<string[]> {
  const r = await runScript(path, args, 60_000);
  assert.equal(r.code, 0, `${path} failed:\n${r.stderr}`);
  return lines(r.stdout);
}

test("examples/process_shared_dict.ts: both processes' entries are in the manager's dictionary", async () => {
  assert.deepEqual(await run("examples/process_shared_dict.ts"), ['{"Darr_en1":22,"Darr_en2":44}']);
});

test("examples/manager_custom_object.ts: the pool's tasks share one tally", async () => {
  assert.deepEqual(await run("examples/manager_custom_object.ts"), ["the: 4", "dog: 3", "a: 2"]);
});

test("examples/pool_queue.ts: a Manager().Queue() carries the writer task's numbers to the reader task", async () => {
  const out = await run("examples/pool_queue.ts");
  assert.deepEqual(out.filter((l) => l.startsWith("read ")), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `read ${i}`));
});

test("examples/demo.ts: the Manager section shares a dict and a list with three processes", async () => {
  const out = await run("examples/demo.ts");
  const at = out.indexOf("10. Manager: a dict and a list kept by a server thread");
  assert.ok(at >= 0, out.join("\n"));
  const section = out.slice(at);
  assert.ok(section.includes("  the dict holds 3 guests: Ada, Grace, Linus"), section.join("\n"));
  assert.ok(section.includes("  the list got 3 entries, one per process"), section.join("\n"));
  assert.ok(section.some((l) => /^ {2}[\d,]+ async calls from the main thread in 200 ms$/.test(l)), section.join("\n"));
});
