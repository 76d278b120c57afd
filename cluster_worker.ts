#!/usr/bin/env node
// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The worker command of cluster pools (`mpjs-worker` in the npm package):
 * serves one pool from this process, on a local `Pool` of threads.
 *
 * ```sh
 * npx mpjs-worker nats://queue-host:4222 --pool render --module ./tasks.ts --processes 4
 * deno run -A <package>/cluster_worker.ts nats://queue-host:4222 --pool render --module ./tasks.ts
 * ```
 *
 * Credentials come from the environment, never the command line (where
 * `ps` shows them): `NATS_TOKEN`, `NATS_USER` and `NATS_PASSWORD`, or
 * `NATS_CREDS` (the path of a `.creds` file; `--creds <path>` also works).
 * SIGTERM or SIGINT stops taking tasks, finishes the ones held and exits; a
 * second one exits at once (the tasks held go to other workers after the
 * pool's ack wait).
 *
 * @module
 */

import process from "node:process";
import { hostname } from "node:os";
import { connect, type ConnectOptions } from "./cluster.ts";

const USAGE = `usage: mpjs-worker <nats-url>[,<nats-url>…] --pool <name> [--module <path>]… [--processes <n>]
       [--concurrency <n>] [--allow-source] [--creds <file>] [--storage file|memory] [--verbose]

  --pool <name>       the pool to serve (cluster.Pool({ name }))
  --module <path>     a module whose exports this worker runs (repeatable); relative to the working directory
  --processes <n>     threads of the local pool (default: the number of CPUs)
  --concurrency <n>   tasks held at once (default: processes × 2)
  --allow-source      also run functions shipped as source text: anyone who can publish to the pool can
                      then run any code here; use only with trusted publishers
  --creds <file>      a NATS credentials file (or NATS_CREDS); tokens and passwords come from the
                      environment only: NATS_TOKEN, NATS_USER, NATS_PASSWORD
  --verbose           print one line per task done`;

/** What the command line asks for. */
interface WorkerArgs {
  servers: string[];
  pool: string;
  modules: string[];
  processes?: number;
  concurrency?: number;
  allowSource: boolean;
  creds?: string;
  storage: "file" | "memory";
  verbose: boolean;
}

/**
 * Parses the command line (without the runtime and script).
 *
 * @throws {Error} with the usage when it is not valid.
 */
function parseArgs(argv: string[]): WorkerArgs {
  const out: WorkerArgs = { servers: [], pool: "", modules: [], allowSource: false, storage: "file", verbose: false };
  const fail = (why: string): never => {
    throw new Error(`mpjs-worker: ${why}\n${USAGE}`);
  };
  const positive = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a positive integer: current value is ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case "--pool":
        out.pool = next();
        break;
      case "--module":
        out.modules.push(next());
        break;
      case "--processes":
        out.processes = positive(a, next());
        break;
      case "--concurrency":
        out.concurrency = positive(a, next());
        break;
      case "--allow-source":
        out.allowSource = true;
        break;
      case "--creds":
        out.creds = next();
        break;
      case "--storage": {
        const v = next();
        if (v !== "file" && v !== "memory") fail(`--storage must be file or memory: current value is ${v}`);
        out.storage = v as "file" | "memory";
        break;
      }
      case "--verbose":
        out.verbose = true;
        break;
      case "--token":
      case "--password":
      case "--pass":
      case "--user":
        fail(`${a} is not accepted on the command line (ps shows it): set NATS_TOKEN, or NATS_USER and NATS_PASSWORD`);
        break;
      case "-h":
      case "--help":
        throw new Error(USAGE);
      default:
        if (a.startsWith("-")) fail(`unknown flag ${a}`);
        out.servers.push(...a.split(","));
    }
  }
  if (out.servers.length === 0) fail("the NATS server URL is missing");
  if (!out.pool) fail("--pool is missing");
  if (out.modules.length === 0 && !out.allowSource) fail("give --module (the code to serve), or --allow-source");
  return out;
}

/** Runs the worker until a signal stops it; resolves once it has stopped. */
async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const env = process.env;
  const options: ConnectOptions = {
    servers: args.servers,
    name: `mpjs-worker ${args.pool} ${hostname()}:${process.pid}`,
    storage: args.storage,
  };
  if (env.NATS_TOKEN) options.token = env.NATS_TOKEN;
  if (env.NATS_USER) options.user = env.NATS_USER;
  if (env.NATS_PASSWORD) options.password = env.NATS_PASSWORD;
  const creds = args.creds ?? env.NATS_CREDS;
  if (creds) options.credentials = creds;
  const cluster = await connect(options);
  const worker = await cluster.servePool(args.pool, {
    modules: args.modules,
    processes: args.processes,
    concurrency: args.concurrency,
    allowSource: args.allowSource,
    onTask: args.verbose ? (t) => console.log(`task ${t.kind} ${t.ok ? "ok" : "failed"}`) : undefined,
  });
  console.error(
    `mpjs-worker: serving pool ${args.pool} from ${args.servers.join(",")} on ${hostname()} (pid ${process.pid})${
      args.modules.length ? `, modules ${args.modules.join(", ")}` : ""
    }${args.allowSource ? ", source allowed" : ""}`,
  );
  let stopping = false;
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      console.error("mpjs-worker: stopping (finishing the tasks held; a second signal exits at once)");
      void worker.stop().finally(resolve);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await cluster.close();
  console.error(`mpjs-worker: stopped after ${worker.done} tasks`);
}

try {
  await main(process.argv.slice(2));
  process.exit(0);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
