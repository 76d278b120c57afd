// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The chaos runner's rounds. A round runs one scenario for a while: threads
 * of the scenario's roles (`roles.ts`) work on shared queues, a lock, a
 * semaphore, pipe ends and a pool, while the main thread kills one of them
 * every 0–20 ms (`kill()` or `terminate()`) and starts a replacement, or
 * asks a pool worker to die. A seeded generator makes every choice (which
 * thread, when, how, what each thread does), so a seed replays the same
 * choices; which thread happens to be where at that moment still depends on
 * timing.
 *
 * At the end of a round the main thread stops the survivors, drains what is
 * left, and checks the ledger (`ledger.ts`):
 *
 * - no item received twice (`duplicated`), none that no producer made
 *   (`phantoms`);
 * - every item whose put returned was received or was still in the queue,
 *   except at most one per consumer killed inside a get (an item taken by a
 *   thread that dies with it is lost, as in Python: `lost`);
 * - every item received whose put did not return belongs to a producer
 *   killed inside that put, and no item of a put that failed went in;
 * - no more than one holder of the lock, and no more than `permits` of the
 *   semaphore, at any time (`mutex`); at the end the lock and every permit
 *   can be taken again (from threads that died holding them), and no more;
 * - each pipe end's first message arrives, and an acknowledgement sent
 *   through an end arrives; at the end every end held by the main thread
 *   reports its message or its closing (an end that can never report
 *   either is a wedge, also when a killed consumer took the item that
 *   carried its other end: such an end is closed; counted as `stranded`);
 * - each pool task settles exactly once, with its own value or with the
 *   error of how it ended; a task runs at most once; a task reported lost
 *   with its worker never ran;
 * - every thread not killed finishes within a deadline, and every killed
 *   one stops (`wedges`).
 *
 * @module
 */

import {
  ClosedError,
  type Connection,
  EmptyError,
  Event,
  Lock,
  Pool,
  Queue,
  RemoteError,
  Semaphore,
  Thread,
} from "../mod.ts";
import {
  ABANDONED,
  ACKED,
  bitsWhere,
  countBits,
  createLedger,
  DIED,
  doneBy,
  DUPLICATES,
  FIRST_VIOLATOR,
  GOT,
  hasBit,
  IN_GET,
  type Item,
  type Ledger,
  LOCK_SEATS,
  maxTasks,
  MOST_FREE,
  MOST_INSIDE,
  MUTEX,
  OPS,
  OUT_OF_IDS,
  PHANTOMS,
  PIPE_BAD,
  PIPE_ITEM,
  PUT,
  RAN,
  read,
  recordGot,
  RECOVERED,
  RERUNS,
  SEATS,
  SEM_SEATS,
  stateOf,
  TAKE_ARM,
  TAKE_KILLS,
  TASK_ARM,
  ZOMBIE,
} from "./ledger.ts";
import { Rng } from "./prng.ts";
import {
  consumer,
  holder,
  type Mode,
  pipeConsumer,
  pipeProducer,
  poolInit,
  poolTask,
  poolTaskOf,
  producer,
  rolesUrl,
  TASK_EXIT,
  TASK_OK,
  TASK_THROW,
} from "./roles.ts";

/** The scenarios, in the order rounds cycle through them. */
export const SCENARIOS = ["queue", "lock", "semaphore", "pipes", "pool", "mixed"] as const;
/** A scenario's name. */
export type Scenario = typeof SCENARIOS[number];

/** What a round reports. */
export interface RoundResult {
  runtime: string;
  scenario: Scenario;
  seed: number;
  /** How long the killing went on (s). */
  seconds: number;
  /** Threads killed or terminated, and pool workers that died. */
  killed: number;
  /** Operations completed (puts, gets, critical sections, pool tasks settled with their value). */
  ops: number;
  /** Items lost with consumers killed inside a get (allowed, at most one per such consumer). */
  lost: number;
  duplicated: number;
  phantoms: number;
  /** Mutual-exclusion violations. */
  mutex: number;
  /** Threads, ends, tasks or primitives that never came back. */
  wedges: number;
  /** Pipe ends stuck with an item lost with a killed consumer (reported, allowed). */
  stranded: number;
  /** Acquires that recovered a primitive from a thread that died holding it. */
  recovered: number;
  /** What went wrong, one line each; empty when the round passed. */
  failures: string[];
}

type Role = "producer" | "consumer" | "pipeProducer" | "pipeConsumer" | "lockHolder" | "semHolder";

interface Plan {
  roles: Partial<Record<Role, number>>;
  maxsize: number;
  permits: number;
  pool: number;
}

function planFor(scenario: Scenario, rng: Rng): Plan {
  const maxsize = rng.pick([0, 1, 4, 64]);
  switch (scenario) {
    case "queue":
      return { roles: { producer: rng.int(2, 3), consumer: rng.int(2, 3) }, maxsize, permits: 0, pool: 0 };
    case "lock":
      return { roles: { lockHolder: rng.int(3, 5) }, maxsize, permits: 0, pool: 0 };
    case "semaphore":
      return { roles: { semHolder: rng.int(4, 6) }, maxsize, permits: rng.int(2, 3), pool: 0 };
    case "pipes":
      return { roles: { pipeProducer: 2, pipeConsumer: 2 }, maxsize, permits: 0, pool: 0 };
    case "pool":
      return { roles: {}, maxsize, permits: 0, pool: rng.int(2, 3) };
    case "mixed":
      return {
        roles: { producer: 1, consumer: 1, pipeProducer: 1, pipeConsumer: 1, lockHolder: 2, semHolder: 3 },
        maxsize,
        permits: 2,
        pool: 2,
      };
  }
}

/** How long (ms) threads not killed get to finish once the round is over. */
const FINISH_DEADLINE = 20_000;
/** How long (ms) the pool's tasks get to settle once the round is over. */
const SETTLE_DEADLINE = 30_000;
/** How long (ms) a pipe end gets to report its message or its closing at the end. */
const END_DEADLINE = 1_000;
/** How long (ms) the final acquires of the lock and the permits may take (recovery included). */
const ACQUIRE_DEADLINE = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function runtimeName(): string {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno?.version?.deno ? "deno" : g.Bun ? "bun" : "node";
}

function message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** A thread of the round. */
interface Member {
  t: number;
  role: Role;
  thread: Thread;
  seat: number;
  killed: boolean;
  stopping?: Promise<void>;
  seatFreed: boolean;
  ended: boolean;
  /** Operations it completes before it may be killed (except as a thread still starting). */
  quota: number;
}

/** A pool submission: one task (`apply`, `applyAsync`) or several (`map`, `starmap`). */
interface Group {
  ids: number[];
  many: boolean;
  settles: number;
  ok?: boolean;
  value?: unknown;
  error?: unknown;
}

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => unknown;

class Round {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly rng: Rng;
  readonly plan: Plan;
  readonly L: Ledger;
  readonly stop = new Event();
  readonly q: Queue<Item>;
  readonly pq: Queue<Item>;
  readonly ret = new Queue<{ id: number; end: Connection }>();
  readonly lock = new Lock();
  readonly sem: Semaphore;
  readonly members: Member[] = [];
  readonly freeSeats: number[][] = [[], []];
  readonly failures: string[] = [];
  readonly ends = new Map<number, Connection>();
  readonly endResults = new Map<number, "ack" | "closed" | "stranded" | "bad">();
  nextT = 0;
  killed = 0;
  wedges = 0;
  ending = false;
  // The pool, when the scenario has one.
  pool: Pool | undefined;
  poolRng: Rng;
  tasks: { kind: number }[] = [];
  groups: Group[] = [];
  inflight = 0;

  constructor(scenario: Scenario, seed: number) {
    this.scenario = scenario;
    this.seed = seed;
    this.rng = new Rng(seed);
    this.plan = planFor(scenario, this.rng);
    this.poolRng = new Rng(this.rng.fork());
    this.L = createLedger({ threads: 1 << 14, items: 1 << 23, tasks: 1 << 20 });
    this.q = new Queue<Item>(this.plan.maxsize);
    this.pq = new Queue<Item>(this.plan.maxsize);
    this.sem = new Semaphore(Math.max(1, this.plan.permits));
    for (let s = SEATS - 1; s >= 0; s--) {
      this.freeSeats[LOCK_SEATS].push(s);
      this.freeSeats[SEM_SEATS].push(s);
    }
  }

  fail(what: string): void {
    this.failures.push(what);
  }

  // ---- threads ----------------------------------------------------------------

  spawn(role: Role): boolean {
    if (this.nextT >= 1 << 14) return false;
    const prim = role === "lockHolder" ? LOCK_SEATS : role === "semHolder" ? SEM_SEATS : -1;
    let seat = -1;
    if (prim >= 0) {
      const s = this.freeSeats[prim].pop();
      if (s === undefined) return false;
      seat = s;
    }
    const t = this.nextT++;
    const seed = this.rng.fork();
    const mode = this.rng.pick<Mode>(["sync", "async", "mixed"]);
    const quota = this.rng.pick([1, 1, 1, 10, 100, 1000]);
    const { L, stop } = this;
    let target: AnyFn;
    let args: unknown[];
    switch (role) {
      case "producer":
        [target, args] = [producer, [L, stop, this.q, t, seed, mode]];
        break;
      case "consumer":
        [target, args] = [consumer, [L, stop, this.q, t, seed, mode]];
        break;
      case "pipeProducer":
        [target, args] = [pipeProducer, [L, stop, this.pq, this.ret, t, seed, mode]];
        break;
      case "pipeConsumer":
        [target, args] = [pipeConsumer, [L, stop, this.pq, t, seed, mode]];
        break;
      case "lockHolder":
        [target, args] = [holder, [L, stop, this.lock, LOCK_SEATS, 1, t, seat, seed, mode]];
        break;
      case "semHolder":
        [target, args] = [holder, [L, stop, this.sem, SEM_SEATS, this.plan.permits, t, seat, seed, mode]];
        break;
    }
    const thread = new Thread({ target, args, module: rolesUrl, name: `${role}-${t}`, daemon: true });
    thread.start();
    this.members.push({ t, role, thread, seat, killed: false, seatFreed: false, ended: false, quota });
    return true;
  }

  /** Notes threads that ended, frees the seats of dead ones, and restores each role's numbers. */
  topUp(): void {
    const live = new Map<Role, number>();
    for (const m of this.members) {
      const alive = m.thread.isAlive();
      if (!alive && m.seat >= 0 && !m.seatFreed) {
        m.seatFreed = true;
        this.freeSeats[m.role === "lockHolder" ? LOCK_SEATS : SEM_SEATS].push(m.seat);
      }
      if (!alive && !m.killed && !m.ended) this.ended(m);
      if (alive && !m.killed) live.set(m.role, (live.get(m.role) ?? 0) + 1);
    }
    for (const [role, n] of Object.entries(this.plan.roles) as [Role, number][]) {
      for (let have = live.get(role) ?? 0; have < n && this.spawn(role); have++);
    }
  }

  /** A thread that was not killed ended: fine at the end of the round only, and only with exit code 0. */
  ended(m: Member): void {
    m.ended = true;
    const code = m.thread.exitCode;
    if (code !== 0) {
      this.fail(`${m.thread.name} failed (exit code ${code}): ${m.thread.error?.message ?? "no error recorded"}`);
    } else if (!this.ending) {
      this.fail(`${m.thread.name} ended before the round was over`);
    }
  }

  async killer(until: number): Promise<void> {
    const rng = this.rng;
    const hasThreads = Object.keys(this.plan.roles).length > 0;
    while (performance.now() < until) {
      this.topUp();
      await sleep(rng.int(0, 20));
      if (performance.now() >= until) break;
      // A pool worker dies (about every 100 ms, as a replacement takes a
      // while to start): inside the next task it runs, or right after it
      // takes the next task record (before it records which).
      if (this.pool && rng.chance(hasThreads ? 0.05 : 0.1)) {
        const c = this.L.cells;
        if (Atomics.load(c, TASK_ARM) + Atomics.load(c, TAKE_ARM) === 0) {
          Atomics.add(c, rng.chance(0.5) ? TASK_ARM : TAKE_ARM, 1);
        }
        continue;
      }
      if (!hasThreads) continue;
      // Mostly threads that have done the work they were given before they
      // may be killed (so that kills land inside operations, not while a
      // thread loads its modules, and some threads live long enough to
      // make a lot of operations); now and then one still starting.
      const starting = rng.chance(0.01);
      const victims = this.members.filter((m) =>
        !m.killed && m.thread.isAlive() && (starting || doneBy(this.L, m.t) >= m.quota)
      );
      if (victims.length === 0) continue;
      const v = rng.pick(victims);
      v.killed = true;
      const stopping = rng.chance(0.5) ? v.thread.kill() : v.thread.terminate();
      v.stopping = stopping.catch((e) => this.fail(`${v.thread.name}: stopping it failed: ${message(e)}`));
      this.killed++;
    }
  }

  // ---- pipe ends ----------------------------------------------------------------

  /** Collects the first ends the pipe producers hand over, and settles those that can be. */
  async collectEnds(): Promise<void> {
    let sweep = performance.now();
    while (!this.ending) {
      try {
        const { id, end } = await this.ret.get({ timeout: 50 });
        this.ends.set(id, end);
      } catch (e) {
        if (!(e instanceof EmptyError)) throw e;
      }
      if (performance.now() - sweep > 200) {
        sweep = performance.now();
        for (const [id, end] of this.ends) {
          if (await end.poll()) await this.settleEnd(id, end, 0);
        }
      }
    }
  }

  /** What end `id` reports: the acknowledgement, its closing, or nothing within `ms`. */
  async settleEnd(id: number, end: Connection, ms: number): Promise<void> {
    this.ends.delete(id);
    let result: "ack" | "closed" | "stranded" | "bad";
    try {
      const m = await end.recv({ timeout: ms }) as { ack?: number };
      result = m?.ack === id ? "ack" : "bad";
    } catch (e) {
      if (e instanceof ClosedError) result = "closed";
      else if (e instanceof Error && e.name === "TimeoutError") result = "stranded";
      else throw e;
    }
    end.close();
    this.endResults.set(id, result);
  }

  // ---- pool ---------------------------------------------------------------------

  async drivePool(): Promise<void> {
    const pool = this.pool!;
    const rng = this.poolRng;
    const limit = maxTasks(this.L);
    while (!this.ending) {
      while (this.inflight < 16 && this.tasks.length + 8 < limit) {
        const how = rng.int(0, 9);
        const n = how < 8 ? 1 : rng.int(1, 8);
        const g: Group = { ids: [], many: how >= 8, settles: 0 };
        const calls: [number, number, number][] = [];
        for (let i = 0; i < n; i++) {
          const id = this.tasks.length;
          const r = rng.float();
          const kind = r < 0.03 ? TASK_THROW : r < 0.04 ? TASK_EXIT : TASK_OK;
          const delay = kind === TASK_EXIT ? rng.int(0, 20) : rng.chance(0.3) ? rng.int(0, 3) : 0;
          this.tasks.push({ kind });
          g.ids.push(id);
          calls.push([id, kind, delay]);
        }
        this.groups.push(g);
        this.inflight++;
        const settle = (ok: boolean, v: unknown) => {
          if (g.settles++ === 0) this.inflight--;
          g.ok = ok;
          if (ok) g.value = v;
          else g.error = v;
        };
        if (how < 6) {
          pool.apply(poolTask, calls[0]).then((v) => settle(true, v), (e) => settle(false, e));
        } else if (how < 8) {
          pool.applyAsync(poolTask, calls[0], {
            callback: (v) => settle(true, v),
            errorCallback: (e) => settle(false, e),
          });
        } else {
          const chunk = rng.int(1, 4);
          const all = rng.chance(0.5) ? pool.starmap(poolTask, calls, chunk) : pool.map(poolTaskOf, calls, chunk);
          all.then((v) => settle(true, v), (e) => settle(false, e));
        }
      }
      await sleep(1);
    }
  }

  /** Checks every pool submission; returns the number of tasks that settled with their value. */
  checkPool(): number {
    const L = this.L;
    let good = 0;
    let unattributed = 0;
    let unsettled = 0;
    for (const g of this.groups) {
      const what = g.many ? `map of tasks ${g.ids.join(",")}` : `task ${g.ids[0]}`;
      if (g.settles === 0) {
        unsettled++;
        continue;
      }
      if (g.settles > 1) this.fail(`pool: ${what} settled ${g.settles} times`);
      if (g.ok) {
        const values = g.many ? g.value as number[] : [g.value as number];
        g.ids.forEach((id, i) => {
          if (values[i] !== id * 3 + 1) this.fail(`pool: ${what} gave ${values[i]} for task ${id}`);
          if (this.tasks[id].kind !== TASK_OK) this.fail(`pool: task ${id} of kind ${this.tasks[id].kind} resolved`);
          if (hasBit(L, DIED, id)) this.fail(`pool: task ${id} ended its worker but resolved`);
        });
        good += g.ids.length;
        continue;
      }
      const text = message(g.error);
      if (g.error instanceof RemoteError) {
        if (!g.ids.some((id) => this.tasks[id].kind === TASK_THROW && text.includes(`boom ${id}`))) {
          this.fail(`pool: ${what} rejected with ${text}`);
        }
      } else if (/died while running the task/.test(text)) {
        if (!g.ids.some((id) => hasBit(L, DIED, id))) {
          // Its worker died right after taking it, before running it.
          unattributed++;
          if (!g.many && hasBit(L, RAN, g.ids[0])) {
            this.fail(`pool: task ${g.ids[0]} was reported lost with its worker, but it ran`);
          }
        }
      } else {
        this.fail(`pool: ${what} rejected with ${text}`);
      }
    }
    // A task that ended its worker must not have resolved (checked above) and was settled.
    const takeKills = read(L, TAKE_KILLS);
    if (unattributed > takeKills) {
      this.fail(`pool: ${unattributed} tasks reported lost with a worker, but only ${takeKills} workers died that way`);
    }
    if (read(L, RERUNS) > 0) this.fail(`pool: ${read(L, RERUNS)} tasks ran twice`);
    if (unsettled > 0) {
      this.wedges += unsettled;
      this.fail(`pool: ${unsettled} submissions never settled`);
    }
    return good;
  }

  // ---- the round ------------------------------------------------------------------

  async run(seconds: number): Promise<RoundResult> {
    if (this.plan.pool > 0) {
      this.pool = new Pool({ processes: this.plan.pool, module: rolesUrl, initializer: poolInit, initargs: [this.L] });
    }
    // The clock starts once the first threads are started (on Deno, each
    // start holds up the main thread for tens of milliseconds).
    this.topUp();
    const started = performance.now();
    const until = started + seconds * 1000;
    const side: Promise<void>[] = [];
    if (this.plan.roles.pipeProducer) side.push(this.collectEnds());
    if (this.pool) side.push(this.drivePool());
    const killing = this.killer(until);
    await killing;
    const killedFor = (performance.now() - started) / 1000;
    this.ending = true;
    Atomics.store(this.L.cells, TASK_ARM, 0);
    Atomics.store(this.L.cells, TAKE_ARM, 0);
    this.stop.set();
    await Promise.all(side);
    await this.stopThreads();
    const drained = await this.drain();
    await this.checkEnds();
    await this.checkPrimitives();
    let poolGood = 0;
    let poolDeaths = 0;
    if (this.pool) {
      await this.settlePool();
      poolGood = this.checkPool();
      poolDeaths = countBits(this.L, DIED) + read(this.L, TAKE_KILLS);
    }
    const lost = this.checkItems(drained);
    const L = this.L;
    const duplicated = read(L, DUPLICATES);
    const phantoms = read(L, PHANTOMS);
    const mutex = read(L, MUTEX);
    if (duplicated > 0) this.fail(`${duplicated} items received twice`);
    if (phantoms > 0) this.fail(`${phantoms} items that no producer made (or corrupted)`);
    if (mutex > 0) {
      const limit = this.scenario === "lock" ? 1 : this.plan.permits;
      const first = this.members.find((m) => m.t === read(L, FIRST_VIOLATOR) - 1);
      this.fail(
        `${mutex} critical sections shared beyond the permits (up to ${read(L, MOST_INSIDE)} holders inside at once${
          this.scenario === "mixed" ? "" : `, with ${limit} permits`
        }; first seen by ${first?.thread.name}${first?.killed ? ", later killed" : ""}${
          this.plan.roles.semHolder ? `; up to ${read(L, MOST_FREE)} semaphore permits free meanwhile` : ""
        })`,
      );
    }
    const zombie = read(L, ZOMBIE);
    if (zombie > 0) this.fail(`${zombie} operations completed by threads already marked dead`);
    if (read(L, PIPE_BAD) > 0) this.fail(`${read(L, PIPE_BAD)} pipe ends without the message sent before they moved`);
    let stranded = 0;
    for (const [id, r] of this.endResults) {
      if (r === "bad") this.fail(`pipe end of item ${id} received a message that was not its acknowledgement`);
      if (r === "closed" && hasBit(L, ACKED, id)) {
        this.fail(`pipe end of item ${id} reported closed, but an acknowledgement was sent to it`);
      }
      if (r === "stranded") {
        // An end whose item a killed consumer took is closed (the consumer lock's repair closes it): stranded
        // for good means it stays open with nobody to read the item.
        stranded++;
        this.wedges++;
        this.fail(
          `pipe end of item ${id} neither received anything nor closed${
            lost.ids.has(id) ? " (its item was taken by a consumer that was killed)" : ""
          }`,
        );
      }
    }
    return {
      runtime: runtimeName(),
      scenario: this.scenario,
      seed: this.seed,
      seconds: Math.round(killedFor * 10) / 10,
      killed: this.killed + poolDeaths,
      ops: read(L, OPS) + poolGood,
      lost: lost.ids.size,
      duplicated,
      phantoms,
      mutex,
      wedges: this.wedges,
      stranded,
      recovered: read(L, RECOVERED),
      failures: this.failures,
    };
  }

  /** Stops the round's threads: killed ones must stop, the others finish within the deadline. */
  async stopThreads(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stopping));
    await Promise.all(this.members.map((m) => m.thread.join(FINISH_DEADLINE)));
    for (const m of this.members) {
      if (m.thread.isAlive()) {
        this.wedges++;
        this.fail(
          m.killed
            ? `${m.thread.name} was killed but did not stop`
            : `${m.thread.name} did not finish within ${FINISH_DEADLINE / 1000} s`,
        );
        void m.thread.terminate();
      } else if (!m.killed && !m.ended) {
        this.ended(m);
      }
    }
  }

  /** Takes what is left in the queues (the main thread is never killed); returns how many per queue. */
  async drain(): Promise<[number, number]> {
    const counts: [number, number] = [0, 0];
    for (const [qn, q] of [[0, this.q], [1, this.pq]] as const) {
      for (;;) {
        let v: unknown;
        try {
          // Everyone else is gone: an empty queue stays empty. (A get with
          // no time to wait still waits for a consumer lock left by a killed
          // thread to be taken over.)
          v = await q.get({ timeout: 0 });
        } catch (e) {
          if (e instanceof EmptyError) break;
          throw e;
        }
        counts[qn]++;
        const item = recordGot(this.L, v);
        const end = item?.end as Connection<{ id: number; c: number }> | undefined;
        if (item && end) {
          try {
            const tk = await end.recv({ timeout: END_DEADLINE });
            if (tk.id !== item.id || tk.c !== item.c) {
              this.fail(`pipe end of item ${item.id} got ${JSON.stringify(tk)}`);
            }
          } catch (e) {
            this.fail(`pipe end of item ${item.id}, drained at the end, had no message: ${message(e)}`);
          }
          end.close();
        }
      }
      if (q.qsize() !== 0) this.fail(`queue ${qn}: qsize() is ${q.qsize()} once drained`);
    }
    return counts;
  }

  /** Every first end the main thread holds must report its acknowledgement or its closing. */
  async checkEnds(): Promise<void> {
    if (!this.plan.roles.pipeProducer) return;
    for (;;) {
      try {
        const { id, end } = await this.ret.get({ timeout: 0 });
        this.ends.set(id, end);
      } catch (e) {
        if (e instanceof EmptyError) break;
        throw e;
      }
    }
    await Promise.all([...this.ends].map(([id, end]) => this.settleEnd(id, end, END_DEADLINE)));
  }

  /** The lock and every permit can be taken again, and no more permits than the semaphore has. */
  async checkPrimitives(): Promise<void> {
    if (this.plan.roles.lockHolder) {
      if (await this.lock.acquire({ timeout: ACQUIRE_DEADLINE })) this.lock.release();
      else {
        this.wedges++;
        this.fail(`the lock could not be taken at the end (held by ${this.lock})`);
      }
    }
    if (this.plan.roles.semHolder) {
      const permits = this.plan.permits;
      // Every holder is gone: whatever is free now was given back by a
      // release or a recovery, and may not exceed the initial value.
      if (this.sem.getValue() > permits) {
        this.fail(`the semaphore of ${permits} permits has ${this.sem.getValue()} free once every holder is gone`);
      }
      let got = 0;
      while (got < permits && await this.sem.acquire({ timeout: ACQUIRE_DEADLINE })) got++;
      if (got < permits) {
        this.wedges++;
        this.fail(`only ${got} of ${permits} semaphore permits could be taken at the end`);
      } else if (await this.sem.acquire({ block: false })) {
        this.fail(`the semaphore handed out more than its ${permits} permits at the end`);
        got++;
      }
      if (got > 0) this.sem.release(got);
    }
  }

  async settlePool(): Promise<void> {
    const end = performance.now() + SETTLE_DEADLINE;
    while (this.inflight > 0 && performance.now() < end) await sleep(10);
    const pool = this.pool!;
    pool.close();
    const joined = await Promise.race([pool.join().then(() => true), sleep(SETTLE_DEADLINE).then(() => false)]);
    if (!joined) {
      this.wedges++;
      this.fail(`the pool did not join within ${SETTLE_DEADLINE / 1000} s of close()`);
      await pool.terminate();
    }
  }

  /**
   * The items' accounting, per queue. Returns the ids of items lost (put,
   * never received): at most one per consumer killed inside a get.
   */
  checkItems(drained: [number, number]): { ids: Set<number> } {
    const L = this.L;
    const ids = new Set<number>();
    const queues = [
      { qn: 0, name: "items", producer: "producer", consumer: "consumer" },
      { qn: 1, name: "pipe ends", producer: "pipeProducer", consumer: "pipeConsumer" },
    ] as const;
    for (const { qn, name, producer, consumer } of queues) {
      if (!this.plan.roles[producer]) continue;
      const inQueue = qn === 0 ? { not: [PIPE_ITEM] } : { and: PIPE_ITEM };
      const lost = bitsWhere(L, PUT, { and: inQueue.and, not: [GOT, ...(inQueue.not ?? [])] });
      const unput = bitsWhere(L, GOT, { and: inQueue.and, not: [PUT, ABANDONED, ...(inQueue.not ?? [])] });
      let killedInGet = 0;
      let killedProducers = 0;
      for (const m of this.members) {
        if (!m.killed || m.thread.isAlive()) continue;
        if (m.role === consumer && stateOf(L, m.t) === IN_GET + qn) killedInGet++;
        if (m.role === producer) killedProducers++;
      }
      if (lost.length > killedInGet) {
        this.fail(
          `queue of ${name}: ${lost.length} items put and never received, but only ${killedInGet} consumers were killed inside a get (ids ${
            lost.slice(0, 10).join(",")
          }; ${drained[qn]} drained at the end)`,
        );
      }
      if (unput.length > killedProducers) {
        this.fail(
          `queue of ${name}: ${unput.length} items received whose put never returned, but only ${killedProducers} producers were killed`,
        );
      }
      for (const id of lost) ids.add(id);
    }
    const failedIn = bitsWhere(L, GOT, { and: ABANDONED });
    if (failedIn.length > 0) {
      this.fail(`${failedIn.length} items received whose every put failed (ids ${failedIn.slice(0, 10).join(",")})`);
    }
    if (read(L, OUT_OF_IDS) > 0) this.fail(`producers ran out of item ids: make the round shorter`);
    return { ids };
  }
}

/**
 * Runs one round of `scenario` for `seconds`, seeded with `seed`.
 *
 * @returns The round's figures and its failures (none when it passed).
 */
export async function runRound(scenario: Scenario, seed: number, seconds: number): Promise<RoundResult> {
  return await new Round(scenario, seed).run(seconds);
}
