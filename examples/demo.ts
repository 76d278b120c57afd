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

/** Seed 004's producer: makes three of `food`, at its own pace. */
export async function producer(q: mp.Queue<string | null>, name: string, food: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await sleep(10 + Math.random() * 30);
    const item = `${food} #${i}`;
    await q.put(item);
    console.log(`    ${name} made ${item}`);
  }
}

/** Seed 004's consumer: eats until it takes the `null` sentinel. */
export async function consumer(q: mp.Queue<string | null>, name: string, eaten: Int32Array): Promise<void> {
  for (;;) {
    const item = await q.get();
    if (item === null) return;
    console.log(`    ${name} ate ${item}`);
    Atomics.add(eaten, 0, 1);
  }
}

/** Takes `n` items off the queue as fast as it can (blocking its own thread) and sums their `i`. */
export function drain(q: mp.Queue<{ i: number; s: string }>, n: number, sum: Float64Array, ready: Int32Array): void {
  Atomics.store(ready, 0, 1);
  let total = 0;
  for (let k = 0; k < n; k++) total += q.getSync().i;
  sum[0] = total;
}

/** A pool task: the square of `x`. */
export function square(x: number): number {
  return x * x;
}

/** A pool task that fails, to show how errors come back. */
export function explode(what: string): never {
  throw new RangeError(`${what} is out of range`);
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

/** `Queue`: producers and consumers in separate processes, with a `null` sentinel (seed 004). */
async function queueProducerConsumer(): Promise<void> {
  const q = new mp.Queue<string | null>();
  const eaten = shared(1);
  const producers = [["chef", "bun"], ["baker", "bread"]].map(([name, food]) =>
    new mp.Process({ target: producer, args: [q, name, food], module: here, name })
  );
  const consumers = ["alice", "bob"].map((name) =>
    new mp.Process({ target: consumer, args: [q, name, eaten], module: here, name })
  );
  for (const p of [...producers, ...consumers]) p.start();
  for (const p of producers) await p.join();
  for (const _ of consumers) await q.put(null); // one sentinel for each consumer
  for (const c of consumers) await c.join();
  console.log(`  6 items made, ${eaten[0]} eaten, each exactly once; the null sentinels stopped both consumers`);

  const items = new mp.Queue<{ i: number; s: string }>();
  const n = 100_000;
  const sum = new Float64Array(new SharedArrayBuffer(8));
  const ready = shared(1);
  const d = new mp.Process({ target: drain, args: [items, n, sum, ready], module: here });
  d.start();
  while (Atomics.load(ready, 0) === 0) await sleep(1); // time the transfer, not the thread's start
  const started = performance.now();
  for (let i = 0; i < n; i++) items.putSync({ i, s: "hello" });
  await d.join();
  const ms = performance.now() - started;
  const rate = Math.round(n / ms * 1000).toLocaleString("en-US");
  console.log(`  ${n.toLocaleString("en-US")} objects through shared memory in ${Math.round(ms)} ms (${rate}/s);`);
  console.log(`  the consumer's sum of i is ${sum[0] === n * (n - 1) / 2 ? "exact" : "WRONG"}`);
}

/** `Pool`: map, applyAsync and errors over a pool of workers (seeds 001 and 002). */
async function poolMap(): Promise<void> {
  await using pool = new mp.Pool({ processes: 2, module: here });
  const squares = await pool.map(square, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  console.log(`  map(square, 0..9) = [${squares.join(", ")}]`);
  const result = pool.applyAsync(square, [12]);
  console.log(`  applyAsync(square, [12]).get() = ${await result.get()} (successful: ${result.successful()})`);
  const n = 1_000_000;
  const started = performance.now();
  const big = await pool.map(square, Array.from({ length: n }, (_, i) => i));
  const ms = performance.now() - started;
  console.log(`  map over ${n.toLocaleString("en-US")} items in ${Math.round(ms)} ms; last = ${big[n - 1]}`);
  try {
    await pool.apply(explode, ["the reactor"]);
  } catch (error) {
    const e = error as mp.RemoteError;
    console.log(
      `  a task that throws rejects with ${e.name} "${e.message}" (a RemoteError: ${e instanceof mp.RemoteError})`,
    );
  }
  pool.close();
  await pool.join();
  console.log("  close() + join(): the workers finished and stopped");
}

/** Signs a guest in: its entry in a managed dictionary, its name in a managed list. */
export function signIn(guests: mp.DictProxy<string, number>, log: mp.ListProxy<string>, name: string): void {
  guests.setSync(name, mp.currentProcess().ident!);
  log.appendSync(name);
}

async function manager(): Promise<void> {
  await using manager = new mp.Manager();
  const guests = manager.dict<string, number>();
  const log = manager.list<string>();
  console.log(`  started ${manager.name}, a server thread that keeps a dict and a list for every process`);
  const processes = ["Ada", "Grace", "Linus"].map((name) =>
    new mp.Process({ target: signIn, args: [guests, log, name], module: import.meta.url })
  );
  for (const p of processes) p.start();
  for (const p of processes) await p.join();
  console.log(`  the dict holds ${await guests.size()} guests: ${(await guests.keys()).sort().join(", ")}`);
  console.log(`  the list got ${await log.length()} entries, one per process`);
  const started = performance.now();
  let calls = 0;
  while (performance.now() - started < 200) await guests.set("counter", calls++);
  console.log(`  ${calls.toLocaleString("en-US")} async calls from the main thread in 200 ms`);
}

/**
 * The tour, in order: each section is a function above.
 */
const sections: [title: string, run: () => Promise<void>][] = [
  ["Process: create with target and args, start, join", createAndJoin],
  ["Process attributes: name, pid, isAlive(), daemon", attributes],
  ["Subclassing Process and overriding run()", subclass],
  ["currentThread(), enumerate(), activeCount()", whoIsRunning],
  ["Globals are not shared between processes", notShared],
  ["Real work: counting primes on every CPU", parallelPrimes],
  ["Queue: producers and consumers, a null sentinel, and throughput", queueProducerConsumer],
  ["Pipe: ping-pong between two processes", pipePingPong],
  ["Pool: map, applyAsync and errors", poolMap],
  ["Manager: a dict and a list kept by a server thread", manager],
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
