// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `npm start`: a short tour of @mpjs/multiprocessing that runs real work in
 * worker threads and says what it does at each step.
 *
 *     deno run -A examples/demo.ts      (or: npm start)
 *
 * Each section is one function, listed in `sections` at the bottom, in the
 * order of the Python tutorials this library follows. The workers import
 * this module to find the functions they run, so everything that must only
 * happen in the main program sits behind `if (isMainThread)`.
 */

import * as mp from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- functions the workers run -----------------------------------------------

/** Says hello from its own thread, after a short pause. */
export async function greet(who: string, ms: number): Promise<void> {
  await sleep(ms);
  const me = mp.currentProcess();
  console.log(`    [${me.name}, pid ${me.ident}] hello, ${who}`);
}

/** Counts the primes below `end`, starting at `start`, into `counts[slot]`. */
export function countPrimes(counts: Int32Array, slot: number, start: number, end: number): void {
  let n = 0;
  for (let x = Math.max(2, start); x < end; x++) {
    let prime = true;
    for (let d = 2; d * d <= x; d++) {
      if (x % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) n++;
  }
  Atomics.store(counts, slot, n);
}

/** Runs until stopped. */
export async function heartbeat(): Promise<void> {
  for (;;) await sleep(50);
}

/** Adds one to its own copy of `a` (the caller's copy stays as it was). */
export function addOne(a: { value: number }, seen: Int32Array): void {
  a.value += 1;
  Atomics.store(seen, 0, a.value);
}

/** Python's "method two": a Process subclass with its own fields and run(). */
export class Downloader extends mp.Process {
  files: string[];
  done: Int32Array;

  constructor(files: string[], done: Int32Array) {
    super({ module: import.meta.url, name: "downloader" });
    this.files = files;
    this.done = done;
  }

  override async run(): Promise<void> {
    for (const file of this.files) {
      await sleep(20);
      console.log(`    [${this.name}] fetched ${file}`);
      Atomics.add(this.done, 0, 1);
    }
  }
}

// --- the sections of the tour --------------------------------------------------

/** Answers each "ping" on its end of a pipe with "pong", until the other end closes. */
export function ponger(conn: mp.Connection<string>): void {
  for (;;) {
    let msg: string;
    try {
      msg = conn.recvSync(); // blocks this worker thread, not the main one
    } catch (error) {
      if (error instanceof mp.ClosedError) return; // the other end closed: Python's EOFError
      throw error;
    }
    conn.send(msg === "ping" ? "pong" : `? ${msg}`);
  }
}

const here = import.meta.url;

function shared(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

/** Creating processes with `target` and `args`, then `join()`. */
async function createAndJoin(): Promise<void> {
  const ps = ["Alice", "Bob"].map((who, i) =>
    new mp.Process({ target: greet, args: [who, 150 * (i + 1)], module: here })
  );
  for (const p of ps) p.start();
  console.log(`  started ${ps.map((p) => p.name).join(" and ")}; join() waits for both`);
  for (const p of ps) await p.join();
  console.log(`  both ended, exit codes ${ps.map((p) => p.exitCode).join(", ")}`);
}

/** `name`, `pid`, `isAlive()` and `daemon`. */
async function attributes(): Promise<void> {
  const p = new mp.Process({ target: heartbeat, module: here, name: "watchdog", daemon: true });
  console.log(`  name=${p.name} pid=${p.pid} alive=${p.isAlive()} daemon=${p.daemon} (before start)`);
  p.start();
  console.log(`  name=${p.name} pid=${p.pid} alive=${p.isAlive()} (running; a daemon does not keep the program alive)`);
  try {
    p.daemon = false;
  } catch (e) {
    console.log(`  daemon is fixed once started: "${(e as Error).message}"`);
  }
  await p.terminate();
  console.log(`  after terminate(): alive=${p.isAlive()} exitCode=${p.exitCode} (Python's -SIGTERM)`);
}

/** Subclassing `Process` and overriding `run()`. */
async function subclass(): Promise<void> {
  const done = shared(1);
  const d = new Downloader(["a.txt", "b.txt", "c.txt"], done);
  d.start();
  await d.join();
  console.log(`  ${d.name} ran run() in its own thread and fetched ${Atomics.load(done, 0)} files`);
}

/** Real work split across one thread per CPU. */
async function parallelPrimes(): Promise<void> {
  const limit = 200_000;
  const n = mp.cpuCount();
  const counts = shared(n);
  const step = Math.ceil(limit / n);
  const started = performance.now();
  const ps = Array.from(
    { length: n },
    (_, i) =>
      new mp.Process({
        target: countPrimes,
        args: [counts, i, i * step, Math.min(limit, (i + 1) * step)],
        module: here,
      }),
  );
  for (const p of ps) p.start();
  for (const p of ps) await p.join();
  const total = counts.reduce((a, b) => a + b, 0);
  console.log(
    `  ${n} thread(s) counted ${total} primes below ${limit} in ${Math.round(performance.now() - started)} ms`,
  );
}

/** Each process has its own memory: a change in one is not seen elsewhere. */
async function notShared(): Promise<void> {
  const a = { value: 1 };
  const seen = shared(1);
  const p = new mp.Process({ target: addOne, args: [a, seen], module: here });
  p.start();
  await p.join();
  console.log(`  the thread made a.value ${Atomics.load(seen, 0)} in its copy; here it is still ${a.value}`);
}

/** `currentThread()`, `enumerate()` and `activeCount()`. */
async function whoIsRunning(): Promise<void> {
  const ps = [1, 2].map((i) => new mp.Thread({ target: heartbeat, module: here, name: `beat-${i}`, daemon: true }));
  for (const p of ps) p.start();
  console.log(`  this is ${mp.currentThread().name}; running: ${mp.enumerate().map(String).join(", ")}`);
  console.log(`  activeCount() = ${mp.activeCount()}`);
  await Promise.all(ps.map((p) => p.terminate()));
}

/** `Pipe()`: two connected ends; one moves to a process, and the two talk. */
async function pipePingPong(): Promise<void> {
  const [conn, theirs] = mp.Pipe<string>();
  const p = new mp.Process({ target: ponger, args: [theirs], module: here });
  p.start();
  conn.send("ping");
  console.log(`  sent ping, got ${await conn.recv()}`);
  const rounds = 20_000;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    conn.send("ping");
    conn.recvSync();
  }
  const ms = performance.now() - started;
  console.log(`  ${rounds} more round trips in ${Math.round(ms)} ms (${(ms * 1000 / rounds).toFixed(1)} µs each)`);
  conn.close();
  await p.join();
  console.log(`  closed our end: the process saw the pipe end and exited with code ${p.exitCode}`);
}

/**
 * The tour, in order. Sections for the other modules go here as they land,
 * each in its own function like the ones above:
 * - Queue: a producer and a consumer (seed 000/004)
 * - Pipe: ping-pong between two processes (seed 003)
 * - Pool: `map` over a pool of workers (seed 001/002)
 */
const sections: [title: string, run: () => Promise<void>][] = [
  ["Process: create with target and args, start, join", createAndJoin],
  ["Process attributes: name, pid, isAlive(), daemon", attributes],
  ["Subclassing Process and overriding run()", subclass],
  ["currentThread(), enumerate(), activeCount()", whoIsRunning],
  ["Globals are not shared between processes", notShared],
  ["Real work: counting primes on every CPU", parallelPrimes],
  // Queue producer/consumer section: added with queue.ts's part of the tour.
  ["Pipe: ping-pong between two processes", pipePingPong],
  // Pool map section: added with pool.ts's part of the tour.
];

if (mp.isMainThread) {
  const started = performance.now();
  console.log("@mpjs/multiprocessing: Python's multiprocessing on worker threads\n");
  for (const [i, [title, run]] of sections.entries()) {
    console.log(`${i + 1}. ${title}`);
    await run();
    console.log();
  }
  console.log(`Tour done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
}
