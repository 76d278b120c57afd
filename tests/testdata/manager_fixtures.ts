// Copyright the @mpjs/multiprocessing authors. MIT license.
// Thread targets, pool tasks and registered classes for tests/manager_test.ts.
// The manager's server thread and the workers import this module by URL:
// its top level only registers classes.

import type { Connection, DictProxy, ListProxy, ProxyOf, Queue } from "../../mod.ts";
import { type Event, FullError, Manager } from "../../mod.ts";
import { collectGarbage } from "./handles_fixtures.ts";

export const url: string = import.meta.url;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A registered class: a counter with methods that succeed, fail, wait, and crash the server. */
export class Counter {
  n: number;
  constructor(start = 0) {
    this.n = start;
  }
  increment(by = 1): number {
    this.n += by;
    return this.n;
  }
  value(): number {
    return this.n;
  }
  fail(message: string): never {
    throw new RangeError(message);
  }
  async later(ms: number): Promise<number> {
    await sleep(ms);
    return this.n;
  }
  /** Keeps the server thread busy for `ms` milliseconds (it serves nothing else meanwhile). */
  busy(ms: number): number {
    const end = performance.now() + ms;
    while (performance.now() < end);
    return this.n;
  }
  /** Keeps the server busy until `flag[0]` is set. */
  async waitFor(flag: Int32Array): Promise<void> {
    while (Atomics.load(flag, 0) === 0) await sleep(2);
  }
  /** Gives back what it gets (a proxy stays a reference the server holds). */
  echo(x: unknown): unknown {
    return x;
  }
  kept: { d: DictProxy<string, unknown>; all: [ListProxy<number>, DictProxy<string, unknown>] } | undefined;
  /** Keeps proxies that arrive nested in its argument. */
  keep(x: { d: DictProxy<string, unknown>; all: [ListProxy<number>, DictProxy<string, unknown>] }): void {
    this.kept = x;
  }
  /** Gives back what `keep` kept. */
  getKept(): unknown {
    return this.kept;
  }
  /** Uses the kept proxies from the server's thread, async and blocking; stores an array it then changes. */
  async useKept(): Promise<[number, number, boolean]> {
    const { d, all: [l, same] } = this.kept!;
    const arr = [1];
    d.setSync("arr", arr);
    arr.push(2);
    await l.append(3);
    await same.set("b", l);
    return [await d.size(), l.lengthSync(), (await l.toArray()).length === 3];
  }
  /** Calls an async method of itself through a proxy, blocking (which the server cannot do). */
  waitOnSelf(self: ProxyOf<Counter>): number {
    return self.laterSync(1);
  }
  /** Returns something that cannot cross threads. */
  badResult(): unknown {
    return () => 1;
  }
  /** Kills the server thread with an uncaught error. */
  crash(): void {
    setTimeout(() => {
      throw new Error("the server crashed");
    }, 0);
  }
  _hidden(): number {
    return 1;
  }
}

/** A registered class whose constructor throws. */
export class Broken {
  constructor() {
    throw new Error("cannot build a Broken");
  }
}

Manager.register("Counter", { module: import.meta.url, export: "Counter" });
Manager.register("Broken", { module: import.meta.url, export: "Broken" });
Manager.register("Missing", { module: import.meta.url, export: "NoSuchClass" });

/** Sets `key` in a managed dictionary, blocking. */
export function setInThread(d: DictProxy<string, unknown>, key: string, value: unknown): void {
  d.setSync(key, value);
}

/** Takes a dictionary proxy from a queue and sets a key in it. */
export async function setFromQueue(q: Queue<DictProxy<string, unknown>>): Promise<void> {
  const d = await q.get();
  await d.set("from-queue", true);
}

/** Takes a list proxy from a pipe and appends to it. */
export function appendFromPipe(conn: Connection): void {
  const l = conn.recvSync() as ListProxy<number>;
  l.appendSync(99);
}

/** Increments a counter `n` times, blocking. */
export function incrementMany(counter: ProxyOf<Counter>, n: number): void {
  for (let i = 0; i < n; i++) counter.incrementSync(1);
}

/** Sets `key` in a loop until the thread is stopped; writes each value to `done` first. */
export function hammer(d: DictProxy<string, number>, key: string, done: Int32Array): void {
  for (let i = 1;; i++) {
    d.setSync(key, i);
    Atomics.store(done, 0, i);
  }
}

/**
 * Registers with the manager (`flags[0]` set once), waits for `flags[1]`,
 * then keeps the server busy for `ms` (`flags[2]` set as it calls).
 */
export function keepServerBusy(counter: ProxyOf<Counter>, flags: Int32Array, ms: number): void {
  counter.valueSync();
  Atomics.store(flags, 0, 1);
  while (Atomics.load(flags, 1) === 0) Atomics.wait(flags, 1, 0, 10);
  Atomics.store(flags, 2, 1);
  counter.busySync(ms);
}

/** Registers with the manager (`flags[3]` set once), then appends 5 to the list it takes from `q`. */
export function appendFromQueue(counter: ProxyOf<Counter>, q: Queue<ListProxy<number>>, flags: Int32Array): void {
  counter.valueSync();
  Atomics.store(flags, 3, 1);
  q.getSync().appendSync(5);
}

/** Registers with the manager (`flags[3]` set once), then moves one proxy from `q` to `out` and ends. */
export function passOn(
  counter: ProxyOf<Counter>,
  q: Queue<ListProxy<number>>,
  flags: Int32Array,
  out: Queue<ListProxy<number>>,
): void {
  counter.valueSync();
  Atomics.store(flags, 3, 1);
  out.putSync(q.getSync());
}

/** A pool task: increments a counter through its proxy. */
export function poolIncrement(counter: ProxyOf<Counter>): number {
  return counter.incrementSync(1);
}

/** A pool task: gives back what it gets. */
export function poolEcho<T>(x: T): T {
  return x;
}

/** A pool task or thread target: whether two arguments are one object, after using the first. */
export async function poolSame(a: ListProxy<number>, b: ListProxy<number>): Promise<boolean> {
  await a.append(1);
  return a === b;
}

/** A pool task: waits `ms`. */
export function poolSleep(ms: number): Promise<number> {
  return sleep(ms).then(() => ms);
}

/** A pool task: collects this thread's garbage (its dropped proxies release their holds). */
export async function poolCollect(): Promise<number> {
  collectGarbage();
  await sleep(10);
  collectGarbage();
  return 0;
}

/** A pool task: appends to a list and returns it. */
export async function poolAppend(l: ListProxy<number>, x: number): Promise<ListProxy<number>> {
  await l.append(x);
  return l;
}

/** Calls `d.set(key, value)`, sets `flag[0]` once the call is sent, then waits for its end. */
export async function setThenFlag(d: DictProxy<string, unknown>, flag: Int32Array): Promise<void> {
  const done = d.set("k", 1);
  Atomics.store(flag, 0, 1);
  await done;
}

/** Passes a dictionary on from `from` to `to`, keeping its own proxy; once `go` is set, uses it. */
export function relay(from: Queue<DictProxy<string, unknown>>, to: Queue<DictProxy<string, unknown>>, go: Event): void {
  const d = from.getSync();
  to.putSync(d);
  go.waitSync();
  d.setSync("relayed", true);
}

/** Puts `d` into a full queue (this thread's first frame to its manager), which fails. */
export function putIntoFull(d: DictProxy<string, unknown>, q: Queue<unknown>): void {
  try {
    q.putNowait(d);
  } catch (e) {
    if (!(e instanceof FullError)) throw e;
    return;
  }
  throw new Error("the queue took the item");
}

/** Takes a dictionary from a queue, uses it once, says so in `used`, then waits until stopped. */
export function useThenWait(q: Queue<DictProxy<string, unknown>>, used: Int32Array, never: Event): void {
  const d = q.getSync();
  d.setSync("used", true);
  Atomics.store(used, 0, 1);
  never.waitSync();
}
