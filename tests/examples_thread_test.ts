// Copyright the @mpjs/multiprocessing authors. MIT license.
// Runs each process/thread example (and the demo) in a child process of the
// current runtime and checks what it prints.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lines, runScript } from "./_util.ts";

async function run(example: string): Promise<string[]> {
  const r = await runScript(`examples/${example}.ts`);
  assert.equal(r.timedOut, false, `${example} timed out`);
  assert.equal(r.code, 0, `${example} exited with ${r.code}:\n${r.stderr}`);
  return lines(r.stdout);
}

/** Asserts that `wanted` occur in `got` in this order (other lines may come between). */
function assertInOrder(got: string[], wanted: string[]): void {
  let at = -1;
  for (const w of wanted) {
    const i = got.indexOf(w, at + 1);
    assert.ok(i > at, `expected "${w}" after line ${at} in:\n${got.join("\n")}`);
    at = i;
  }
}

test("examples/thread_create.ts: sing and dance run in two threads listed by enumerate()", async () => {
  const out = await run("thread_create");
  assertInOrder(out, ["singing 0", "singing 1", "singing 2"]);
  assertInOrder(out, ["dancing 0", "dancing 1", "dancing 2"]);
  // dance() has no pause, so it may be over before enumerate() runs.
  assert.ok(
    out.some((l) => /^running: Thread\(Thread-1, started \d+\)(, Thread\(Thread-2, started \d+\))?$/.test(l)),
    out.join("\n"),
  );
  assert.ok(out.includes("activeCount: 3") || out.includes("activeCount: 2"), out.join("\n"));
  assert.equal(out.length, 8);
});

test("examples/thread_subclass.ts: two MyThread instances count under their own names", async () => {
  const out = await run("thread_subclass");
  assertInOrder(out, ["thread-1 0", "thread-1 1", "thread-1 2", "thread-1 3", "thread-1 4"]);
  assertInOrder(out, ["thread-2 0", "thread-2 1", "thread-2 2", "thread-2 3", "thread-2 4"]);
  assert.equal(out.at(-1), "both done: 0 0");
  assert.equal(out.length, 11);
});

test("examples/thread_current.ts: currentThread() names the main thread and each thread", async () => {
  const out = await run("thread_current");
  assertInOrder(out, ["ident: 1", "name: MainThread", "main thread started: my main thread"]);
  const inThread = out.filter((l) => l.startsWith("in a thread:"));
  assert.equal(inThread.length, 2);
  for (const name of ["reader", "writer"]) {
    assert.ok(
      inThread.some((l) => new RegExp(`^in a thread: name=${name} ident=\\d+ isMainThread=false$`).test(l)),
      inThread.join("\n"),
    );
  }
  assert.ok(out.some((l) => /^enumerate: reader#\d+, writer#\d+$/.test(l)), out.join("\n"));
  assert.equal(out.at(-1), "enumerate after join: []");
});

test("examples/process_create.ts: two processes greet with their args", async () => {
  const out = await run("process_create");
  assertInOrder(out, ["p1: hello Alice (0)", "p1: hello Alice (1)", "main: both processes finished"]);
  assertInOrder(out, ["p2: hello Bob (0)", "p2: hello Bob (1)", "main: both processes finished"]);
  assert.ok(out.includes("main: both processes started"));
  assert.equal(out.length, 6);
});

test("examples/process_join.ts: main waits for the task to end", async () => {
  const out = await run("process_join");
  assert.equal(out.length, 3, out.join("\n"));
  const m = /^(\d+) is task$/.exec(out[0]);
  assert.ok(m, out[0]);
  assert.notEqual(m[1], "1"); // not the main thread's ident
  assert.equal(out[1], `${m[1]} is task end`);
  assert.equal(out[2], "main");
});

test("examples/process_attributes.ts: name, pid, isAlive() and daemon behave as in Python", async () => {
  const out = await run("process_attributes");
  assert.deepEqual(out, [
    "name: worker-1",
    "pid before start: null",
    "alive before start: false",
    "pid: a number",
    "alive while running: true",
    "alive after join: false",
    "exitCode: 0",
    "setting daemon after start: Cannot set daemon status of an active thread",
    "daemon alive: true",
    "main ends; the daemon process ends with it",
  ]);
});

test("examples/process_subclass.ts: a Process subclass with its own fields runs run()", async () => {
  const out = await run("process_subclass");
  assert.deepEqual(out.slice(0, 2).sort(), ["sum-large: large = 600", "sum-small: small = 6"]);
  assert.equal(out[2], "exit codes: 0, 0");
  assert.equal(out.length, 3);
});

test("examples/process_globals.ts: a change in one process is not seen by another (prints 1)", async () => {
  const out = await run("process_globals");
  // The two threads print independently; the main thread prints after both.
  assert.deepEqual(out.slice(0, 2).sort(), ["1", "producer: a = 2, counter = 1"]);
  assert.deepEqual(out.slice(2), ["main: a = 1, counter = 0"]);
});

test("examples/demo.ts: the npm start tour runs every section and finishes", async () => {
  const out = await run("demo");
  assertInOrder(out, [
    "1. Process: create with target and args, start, join",
    "2. Process attributes: name, pid, isAlive(), daemon",
    "3. Subclassing Process and overriding run()",
    "4. currentThread(), enumerate(), activeCount()",
    "5. Globals are not shared between processes",
    "6. Real work: counting primes on every CPU",
    "7. Queue: producers and consumers, a null sentinel, and throughput",
    "8. Pipe: ping-pong between two processes",
    "9. Pool: map, applyAsync and errors",
  ]);
  assert.ok(out.some((l) => /hello, Alice$/.test(l)) && out.some((l) => /hello, Bob$/.test(l)), out.join("\n"));
  assert.ok(out.includes("  both ended, exit codes 0, 0"));
  assert.ok(out.some((l) => l.includes("exitCode=-15")));
  assert.ok(out.includes("  downloader ran run() in its own thread and fetched 3 files"));
  assert.ok(out.includes("  the thread made a.value 2 in its copy; here it is still 1"));
  assert.ok(out.some((l) => / counted 17984 primes below 200000 /.test(l)), out.join("\n"));
  assert.ok(out.includes("  6 items made, 6 eaten, each exactly once; the null sentinels stopped both consumers"));
  assert.ok(out.includes("  the consumer's sum of i is exact"), out.join("\n"));
  assert.ok(out.includes("  sent ping, got pong"));
  assert.ok(out.includes("  map(square, 0..9) = [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"));
  assert.ok(out.some((l) => / items in \d+ ms; last = 999998000001$/.test(l)), out.join("\n"));
  assert.ok(
    out.includes('  a task that throws rejects with RangeError "the reactor is out of range" (a RemoteError: true)'),
  );
  assert.match(out.at(-1)!, /^Tour done in [\d.]+ s\.$/);
});
