// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The soak runner on the runtime that runs this file (`scripts/soak.mjs`
 * runs it on each runtime):
 *
 * ```sh
 * deno run -A stress/soak.ts [--case fresh-reply-queues,one-queue,thread-starts] [--n N] [--samples S]
 *   [--max-rss-growth MB] [--max-kept K] [--no-gc] [--keep-handles] [--json]
 * ```
 *
 * Cases (each in this process, one after the other):
 *
 * - `fresh-reply-queues` (1,000,000 requests): a server thread answers each
 *   request on the reply `Queue` it carries; the main thread makes a new
 *   queue for each request and sends it inside the request item. Every
 *   reply queue goes through the post office (`_post_office.ts`), which
 *   must free it once neither thread holds it.
 * - `one-queue` (10,000,000 items): a thread puts `0, 1, …` on one `Queue`
 *   (maxsize 1,000), the main thread takes and checks them.
 * - `thread-starts` (100,000): the main thread starts a `Thread` that does
 *   nothing and joins it, one after the other, with the post office up (so
 *   that each thread's mailbox is served by it too).
 *
 * At `S` points (10 by default) the main thread records its process's
 * resident memory (RSS, all threads together), its own heap, and for
 * `fresh-reply-queues` the post office's kept-handle count, and, on Linux,
 * the highest number of memory mappings of the process seen since the
 * previous sample (counted every 1,000 operations, before any forced GC,
 * and again when the sample is taken:
 * each growable `SharedArrayBuffer`, as every queue and pipe has, reserves
 * one, and a process has at most `vm.max_map_count`). Before each
 * sample it collects its garbage, and asks the server to collect its own
 * (skipped with `--no-gc`); releases reach the post office from each
 * thread's event loop, so the count is read again until it stops falling
 * (at most 2 s). A case fails when the RSS grows more than `MB` (64 by
 * default) from the second sample to the highest later one, when the last
 * kept-handle count is above `K` (100 by default), when a value is wrong or
 * a thread fails, or when the RSS passes 2 GB (the case then stops).
 *
 * `--keep-handles` (or `MPJS_SOAK_KEEP_HANDLES=1`) makes the post office
 * ignore releases (a test hook, `keepAllHandles()` in `_post.ts`): every
 * reply queue is kept, and the bounds must fail.
 *
 * Prints a table per case and the growth; `--json` adds a line
 * `SOAK_JSON [...]`. Exits with 1 when a case failed.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { Queue, Thread } from "../mod.ts";
import { keepAllHandles, keptHandles } from "../_post.ts";
import { answer, collectGarbage, nothing, produce, type Request, targetsUrl } from "./soak_targets.ts";

/** The cases, and how many operations each runs by default. */
export const CASES = { "fresh-reply-queues": 1_000_000, "one-queue": 10_000_000, "thread-starts": 100_000 } as const;
export type Case = keyof typeof CASES;

/** One measurement point. */
export interface Sample {
  /** Operations completed (requests answered, items taken, threads joined). */
  done: number;
  /** Seconds since the case started. */
  seconds: number;
  /** Resident memory of the process, MB. */
  rss: number;
  /** The main thread's heap in use, MB. */
  heap: number;
  /** Handles the post office keeps, where the case sends handles. */
  kept?: number;
  /** The process's memory mappings (Linux only), highest seen since the previous sample, before any forced GC. */
  maps?: number;
  /** The mappings when the sample is taken (after the forced GC, if any). */
  mapsNow?: number;
}

/** What a case measured. */
export interface SoakResult {
  runtime: string;
  case: Case;
  n: number;
  gc: boolean;
  keepHandles: boolean;
  samples: Sample[];
  seconds: number;
  /** RSS growth (MB) from the second sample to the highest later one. */
  rssGrowth: number;
  failures: string[];
}

interface Args {
  cases: Case[];
  n?: number;
  samples: number;
  maxRssGrowth: number;
  maxKept: number;
  gc: boolean;
  keepHandles: boolean;
  json: boolean;
}

/** The process's memory mappings, where `/proc` tells (each growable `SharedArrayBuffer` reserves one). */
function mapCount(): number | undefined {
  try {
    return readFileSync("/proc/self/maps", "latin1").split("\n").length - 1;
  } catch {
    return undefined;
  }
}

/** How many operations apart the mappings are counted between samples. */
const PEEK_EVERY = 1000;

/** RSS (MB) past which a case stops. */
const RSS_LIMIT = 2048;
const MB = 1 << 20;

function usage(problem: string): never {
  console.error(`soak: ${problem}`);
  console.error(
    `usage: soak.ts [--case ${
      Object.keys(CASES).join(",")
    }] [--n N] [--samples S] [--max-rss-growth MB] [--max-kept K] [--no-gc] [--keep-handles] [--json]`,
  );
  process.exit(2);
}

function parse(argv: string[]): Args {
  const args: Args = {
    cases: Object.keys(CASES) as Case[],
    samples: 10,
    maxRssGrowth: 64,
    maxKept: 100,
    gc: true,
    keepHandles: process.env.MPJS_SOAK_KEEP_HANDLES === "1",
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) usage(`${a} needs a number`);
      return v;
    };
    if (a === "--n") args.n = Math.floor(value());
    else if (a === "--samples") args.samples = Math.max(2, Math.floor(value()));
    else if (a === "--max-rss-growth") args.maxRssGrowth = value();
    else if (a === "--max-kept") args.maxKept = value();
    else if (a === "--no-gc") args.gc = false;
    else if (a === "--keep-handles") args.keepHandles = true;
    else if (a === "--json") args.json = true;
    else if (a === "--case" || a === "--cases") {
      const names = (argv[++i] ?? "").split(",").filter(Boolean);
      for (const c of names) if (!(c in CASES)) usage(`unknown case '${c}'`);
      if (names.length === 0) usage(`${a} needs a case name`);
      args.cases = names as Case[];
    } else usage(`unknown argument '${a}'`);
  }
  return args;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime = g.Deno?.version?.deno ? "deno" : g.Bun ? "bun" : "node";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The kept-handle count once releases have stopped coming in (at most 2 s). */
async function settledKept(): Promise<number> {
  let kept = keptHandles();
  for (let still = 0, tries = 0; still < 3 && tries < 100; tries++) {
    await sleep(20);
    const now = keptHandles();
    still = now < kept ? 0 : still + 1;
    kept = now;
  }
  return kept;
}

class Recorder {
  readonly samples: Sample[] = [];
  readonly failures: string[] = [];
  readonly #started = performance.now();
  readonly #every: number;
  #maps: number | undefined;

  constructor(readonly n: number, samples: number) {
    this.#every = Math.max(1, Math.ceil(n / samples));
  }

  /** Whether `done` operations make a sample point (and counts the mappings now and then). */
  due(done: number): boolean {
    if (done % PEEK_EVERY === 0) this.#peek();
    return done % this.#every === 0 || done === this.n;
  }

  #peek(): void {
    const maps = mapCount();
    if (maps !== undefined) this.#maps = Math.max(this.#maps ?? 0, maps);
  }

  /** Counts the mappings before a forced GC (done by the caller after this). */
  beforeGc(): void {
    this.#peek();
  }

  /** Records a sample; false when the case must stop (RSS past the limit). */
  record(done: number, kept?: number): boolean {
    this.#peek();
    const maps = this.#maps;
    this.#maps = undefined;
    const m = process.memoryUsage();
    const s: Sample = {
      done,
      seconds: (performance.now() - this.#started) / 1000,
      rss: m.rss / MB,
      heap: m.heapUsed / MB,
      kept,
      maps,
      mapsNow: mapCount(),
    };
    this.samples.push(s);
    console.log(row(s));
    if (s.rss > RSS_LIMIT) {
      this.failures.push(`RSS passed ${RSS_LIMIT} MB after ${done} operations: stopped`);
      return false;
    }
    return true;
  }
}

async function freshReplyQueues(n: number, rec: Recorder, gc: boolean): Promise<void> {
  const jobs = new Queue<Request | null>();
  const server = new Thread({ target: answer, module: targetsUrl, args: [jobs], name: "server" });
  server.start();
  try {
    for (let i = 1; i <= n; i++) {
      const reply = new Queue<number>();
      await jobs.put({ n: i, reply });
      const v = await reply.get({ timeout: 60_000 });
      if (v !== 2 * i) {
        rec.failures.push(`request ${i} was answered ${v}`);
        return;
      }
      if (!rec.due(i)) continue;
      if (gc) {
        rec.beforeGc();
        const done = new Queue<number>();
        await jobs.put({ n: -1, reply: done });
        await done.get({ timeout: 60_000 });
        collectGarbage();
      }
      if (!rec.record(i, gc ? await settledKept() : keptHandles())) return;
    }
  } finally {
    await jobs.put(null);
    await server.join(60_000);
    if (server.isAlive() || server.exitCode !== 0) {
      rec.failures.push(`the server ended with ${server.exitCode} (${server.error ?? "alive"})`);
      await server.terminate();
    }
  }
}

async function oneQueue(n: number, rec: Recorder, gc: boolean): Promise<void> {
  const q = new Queue<number>(1000);
  const producer = new Thread({ target: produce, module: targetsUrl, args: [q, n], name: "producer" });
  producer.start();
  try {
    for (let i = 0; i < n; i++) {
      const v = q.getSync({ timeout: 60_000 });
      if (v !== i) {
        rec.failures.push(`item ${i} came as ${v}`);
        return;
      }
      if (!rec.due(i + 1)) continue;
      if (gc) {
        rec.beforeGc();
        collectGarbage();
      }
      if (!rec.record(i + 1)) return;
    }
  } finally {
    await producer.join(60_000);
    if (producer.isAlive() || producer.exitCode !== 0) {
      rec.failures.push(`the producer ended with ${producer.exitCode} (${producer.error ?? "alive"})`);
      await producer.terminate();
    }
  }
}

async function threadStarts(n: number, rec: Recorder, gc: boolean): Promise<void> {
  keptHandles(); // starts the post office: it then serves every new thread's mailbox
  for (let i = 1; i <= n; i++) {
    const t = new Thread({ target: nothing, module: targetsUrl });
    t.start();
    await t.join(60_000);
    if (t.isAlive() || t.exitCode !== 0) {
      rec.failures.push(`thread ${i} ended with ${t.exitCode} (${t.error ?? "alive"})`);
      if (t.isAlive()) await t.terminate();
      return;
    }
    if (!rec.due(i)) continue;
    if (gc) {
      rec.beforeGc();
      collectGarbage();
      await sleep(0);
    }
    if (!rec.record(i, keptHandles())) return;
  }
}

const RUN = { "fresh-reply-queues": freshReplyQueues, "one-queue": oneQueue, "thread-starts": threadStarts };

async function runCase(c: Case, args: Args): Promise<SoakResult> {
  const n = args.n ?? CASES[c];
  const rec = new Recorder(n, args.samples);
  header(c, n, args);
  const started = performance.now();
  try {
    await RUN[c](n, rec, args.gc);
  } catch (e) {
    rec.failures.push(`threw ${(e as Error)?.stack ?? e}`);
  }
  const { samples, failures } = rec;
  const later = samples.slice(2).map((s) => s.rss);
  const rssGrowth = samples.length > 2 ? Math.max(...later) - samples[1].rss : 0;
  if (rssGrowth > args.maxRssGrowth) {
    failures.push(`RSS grew ${rssGrowth.toFixed(1)} MB after the second sample (bound ${args.maxRssGrowth} MB)`);
  }
  const kept = samples.at(-1)?.kept;
  if (c === "fresh-reply-queues" && kept !== undefined && kept > args.maxKept) {
    failures.push(`the post office kept ${kept} handles at the end (bound ${args.maxKept})`);
  }
  return {
    runtime,
    case: c,
    n,
    gc: args.gc,
    keepHandles: args.keepHandles,
    samples,
    seconds: (performance.now() - started) / 1000,
    rssGrowth,
    failures,
  };
}

function header(c: Case, n: number, args: Args): void {
  console.log(
    `\n${runtime} ${c}, n = ${n}${args.gc ? "" : ", no forced GC"}${args.keepHandles ? ", handles kept" : ""}`,
  );
  console.log("      done |      s |  RSS MB | heap MB |   kept |   maps | maps now");
}

function row(s: Sample): string {
  return `${String(s.done).padStart(10)} | ${s.seconds.toFixed(1).padStart(6)} | ${s.rss.toFixed(1).padStart(7)} | ${
    s.heap.toFixed(1).padStart(7)
  } | ${String(s.kept ?? "-").padStart(6)} | ${String(s.maps ?? "-").padStart(6)} | ${
    String(s.mapsNow ?? "-").padStart(8)
  }`;
}

function print(r: SoakResult): void {
  const first = r.samples[1];
  console.log(
    `growth: RSS ${r.rssGrowth >= 0 ? "+" : ""}${r.rssGrowth.toFixed(1)} MB from ${
      first?.done ?? "-"
    } to the highest later sample; ${r.seconds.toFixed(1)} s; ${r.failures.length ? "FAILED" : "ok"}`,
  );
  for (const f of r.failures) console.log(`  FAIL ${f}`);
}

const args = parse(process.argv.slice(2));
if (args.keepHandles) keepAllHandles();
const results: SoakResult[] = [];
for (const c of args.cases) {
  const r = await runCase(c, args);
  results.push(r);
  print(r);
}
const failed = results.filter((r) => r.failures.length);
console.log(failed.length ? `\nsoak: FAILED ${failed.map((r) => r.case).join(", ")}` : "\nsoak: ok");
if (args.json) console.log(`SOAK_JSON ${JSON.stringify(results)}`);
process.exit(failed.length ? 1 : 0);
