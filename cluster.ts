// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The library's queues, a shared dict and a `Pool` across processes and
 * machines, on a NATS JetStream server (`nats-server -js`): the way Python's
 * remote managers share a queue between programs, on an engine built for it.
 * `cluster.Pool` runs tasks in worker processes (`cluster_worker.ts`,
 * `mpjs-worker`) on any machine that reaches the server.
 *
 * ```ts ignore
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * await using cluster = await connect({ servers: "nats://127.0.0.1:4222" });
 * const q = cluster.Queue<string>("jobs", { maxsize: 10_000 }); // every process naming "jobs" shares it
 * await q.put("job 1");
 * const job = await q.get({ timeout: 5_000 });
 * ```
 *
 * Nothing else in the library imports this module, so programs that stay on
 * one machine never load a NATS client.
 *
 * ## Guarantees
 *
 * - `Queue.get()` takes an item once: it is acknowledged as soon as it
 *   arrives. `JoinableQueue.get()` leaves it unacknowledged until
 *   `taskDone()`; while the process lives it tells the server the item is in
 *   progress, and if the process dies first the server hands the item to
 *   another consumer after `ackWait`, at most `maxDeliver` times.
 * - Every put carries a message id, so a put retried across a lost
 *   connection or a server restart is stored once (within the server's
 *   two-minute duplicate window).
 * - A bounded queue (`maxsize`) refuses a put with `FullError` (at once, or
 *   after waiting for room); it never drops an item.
 * - The dict's `setdefault`, `pop` and `popitem` are compare-and-set on the
 *   key's revision, so of two processes racing on one key only one wins.
 *
 * Where the names go on the server, and what differs from the local queues,
 * is in the guide `docs/cluster.md`.
 *
 * @module
 */

import { connect as natsConnect, credsAuthenticator, type Msg, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DiscardPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  type StreamInfo,
} from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import { readFile } from "node:fs/promises";
import { decode, encode } from "./_codec.ts";
import { ClosedError, EmptyError, FullError, KeyError } from "./errors.ts";
import { checkOptions, checkSignal, checkTimeout, show } from "./_options.ts";
import {
  bucketName,
  checkName,
  CONSUMER,
  type DictKey,
  keyFromKv,
  keyToKv,
  type QueueNames,
  queueNames,
  sleep,
  unrefTimer,
} from "./_cluster_names.ts";

import { ClusterPool, type ClusterPoolOptions } from "./_cluster_pool.ts";
import { ClusterPoolWorker, type ServePoolOptions } from "./_cluster_pool_worker.ts";
import { poolNames } from "./_cluster_pool_protocol.ts";

export type { DictKey } from "./_cluster_names.ts";
export { ClusterPool, type ClusterPoolOptions } from "./_cluster_pool.ts";
export { ClusterPoolWorker, type ServePoolOptions } from "./_cluster_pool_worker.ts";

/**
 * Options of {@linkcode connect}.
 *
 * @example Token authentication
 * ```ts
 * import type { ConnectOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ConnectOptions = { servers: "nats://127.0.0.1:4222", token: "s3cret", timeout: 2_000 };
 * assert.equal(options.token, "s3cret");
 * ```
 */
export interface ConnectOptions {
  /** The server or servers to connect to (`"nats://host:4222"`). @default {"nats://127.0.0.1:4222"} */
  servers?: string | string[];
  /** A token the server requires (`nats-server --auth`). */
  token?: string;
  /** A user name the server requires (`nats-server --user`); give `password` with it. */
  user?: string;
  /** The password of `user`. */
  password?: string;
  /** The path of a NATS credentials file (`.creds`: a user JWT and its NKey seed). */
  credentials?: string;
  /**
   * TLS: `caFile`/`ca` to trust the server's certificate, `certFile`/`keyFile`
   * (or `cert`/`key`) for a client certificate. `null` refuses TLS.
   */
  tls?: { caFile?: string; ca?: string; certFile?: string; cert?: string; keyFile?: string; key?: string } | null;
  /** How long to wait for the first connection, in milliseconds. @default {5000} */
  timeout?: number;
  /** The name this client shows in the server's monitoring. */
  name?: string;
  /**
   * Where the streams and buckets this client creates keep their data:
   * `"file"` survives a server restart, `"memory"` is faster.
   * @default {"file"}
   */
  storage?: "file" | "memory";
}

/**
 * Options of {@linkcode Cluster.Queue}.
 *
 * @example
 * ```ts
 * import type { ClusterQueueOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterQueueOptions = { maxsize: 100 };
 * assert.equal(options.maxsize, 100);
 * ```
 */
export interface ClusterQueueOptions {
  /**
   * The most items the queue holds; `0` means unbounded. The first process
   * to use the name creates the queue with it; a later process giving a
   * different value fails with `RangeError`, one giving none takes what is
   * there.
   * @default {0}
   */
  maxsize?: number;
  /**
   * How many items one `get()` may fetch in one round trip when several are
   * waiting: the first is returned, the rest stay in this object, still
   * unacknowledged (a process that dies holding them gives them back after
   * the ack wait), for its next gets. Raises a fast consumer's rate many
   * times over; but items held here are not available to other consumers,
   * so keep `1` (the default) when items are long jobs shared among workers.
   * Items held longer than half the ack wait are handed back, not returned.
   * @default {1}
   */
  prefetch?: number;
}

/**
 * Options of {@linkcode Cluster.JoinableQueue}.
 *
 * @example
 * ```ts
 * import type { ClusterJoinableQueueOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterJoinableQueueOptions = { ackWait: 5_000, maxDeliver: 3 };
 * assert.equal(options.maxDeliver, 3);
 * ```
 */
export interface ClusterJoinableQueueOptions extends ClusterQueueOptions {
  /**
   * How long an item may stay unacknowledged, in milliseconds, once its
   * consumer stops reporting progress (it died), before the server hands it
   * to another consumer. Fixed by the process that creates the queue.
   * @default {30000}
   */
  ackWait?: number;
  /**
   * The most times an item is delivered; `Infinity` for no limit. An item
   * delivered that often without `taskDone()` stays in the stream and keeps
   * `join()` waiting. Fixed by the process that creates the queue.
   * @default {Infinity}
   */
  maxDeliver?: number;
}

/**
 * Options of the queues' `put`.
 *
 * @example
 * ```ts
 * import type { ClusterPutOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterPutOptions = { block: false };
 * assert.equal(options.block, false);
 * ```
 */
export interface ClusterPutOptions {
  /** Whether to wait for room in a full queue. @default {true} */
  block?: boolean;
  /** How long to wait for room (and for the server), in milliseconds. @default {Infinity} */
  timeout?: number;
  /** Stops the wait for room; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Options of the queues' `get`.
 *
 * @example
 * ```ts
 * import type { ClusterGetOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterGetOptions = { timeout: 1_000 };
 * assert.equal(options.timeout, 1_000);
 * ```
 */
export interface ClusterGetOptions {
  /** Whether to wait for an item in an empty queue. @default {true} */
  block?: boolean;
  /** How long to wait for an item, in milliseconds. @default {Infinity} */
  timeout?: number;
  /** Stops the wait; the promise rejects with the signal's reason and nothing is taken. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode ClusterJoinableQueue.join}.
 *
 * @example
 * ```ts
 * import type { ClusterJoinOptions } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const options: ClusterJoinOptions = { timeout: 10_000 };
 * assert.equal(options.timeout, 10_000);
 * ```
 */
export interface ClusterJoinOptions {
  /** How long to wait, in milliseconds; `join` then just returns. @default {Infinity} */
  timeout?: number;
  /** Stops the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

// ---- connecting ---------------------------------------------------------------

const DEFAULT_SERVER = "nats://127.0.0.1:4222";

function describeServers(servers: string | string[]): string {
  return Array.isArray(servers) ? servers.join(", ") : servers;
}

function connectFailure(err: unknown, servers: string): Error {
  const e = err as { name?: string; message?: string; code?: string };
  const text = `${e?.name ?? ""} ${e?.message ?? ""} ${e?.code ?? ""}`;
  let why: string;
  if (/authoriz|authentic|auth_|permission/i.test(text)) {
    why = "the server refused the credentials (check token, user/password or credentials file)";
  } else if (/refused|ECONNREFUSED/i.test(text)) why = "connection refused (is nats-server running there?)";
  else if (/timeout|timed out/i.test(text)) why = "no answer within the connect timeout";
  else why = e?.message ?? String(err);
  return new Error(`Cannot connect to the NATS server at ${servers}: ${why}`, { cause: err });
}

/**
 * Connects to a NATS server with JetStream enabled and returns the
 * {@linkcode Cluster} whose queues and dicts live there. Reconnects on its own
 * when the connection drops (operations wait for it); close it with
 * `close()` or `await using`.
 *
 * @param options The server, authentication and TLS; see {@linkcode ConnectOptions}.
 * @returns A promise of the connected cluster.
 * @throws {Error} (rejects) when the server cannot be reached within
 *   `timeout` (the message names the URL), refuses the credentials, or has
 *   no JetStream (start it with `-js`).
 * @throws {TypeError} (rejects) when an option has the wrong type.
 *
 * @example A queue shared by everyone naming it
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * let cluster;
 * try {
 *   cluster = await connect({ servers, timeout: 1_000 });
 * } catch (e) {
 *   console.log(`skipped: no NATS server at ${servers} (${(e as Error).message})`);
 * }
 * if (cluster) {
 *   const q = cluster.Queue<string>("doc_connect");
 *   await q.put("hello");
 *   assert.equal(await q.get(), "hello");
 *   await cluster.close();
 * }
 * ```
 */
export async function connect(options?: ConnectOptions): Promise<Cluster> {
  const o = checkOptions<ConnectOptions>(options, "connect()", false, "call ") ?? {};
  const servers = o.servers ?? DEFAULT_SERVER;
  if (typeof servers !== "string" && !(Array.isArray(servers) && servers.every((s) => typeof s === "string"))) {
    throw new TypeError(
      `Cannot call connect() as 'servers' must be a string or strings: current value is ${show(servers)}`,
    );
  }
  const timeout = o.timeout === undefined ? 5_000 : checkTimeout(o.timeout, "connect()");
  for (const key of ["token", "user", "password", "credentials", "name"] as const) {
    if (o[key] !== undefined && typeof o[key] !== "string") {
      throw new TypeError(`Cannot call connect() as '${key}' must be a string: current value is ${show(o[key])}`);
    }
  }
  const storage = o.storage ?? "file";
  if (storage !== "file" && storage !== "memory") {
    throw new TypeError(
      `Cannot call connect() as 'storage' must be "file" or "memory": current value is ${show(storage)}`,
    );
  }
  const where = describeServers(servers);
  const creds = o.credentials === undefined ? undefined : await readFile(o.credentials).catch((e) => {
    throw new Error(`Cannot call connect() as the credentials file ${o.credentials} cannot be read: ${e.message}`);
  });
  let nc: NatsConnection;
  try {
    nc = await natsConnect({
      servers,
      token: o.token,
      user: o.user,
      pass: o.password,
      authenticator: creds ? credsAuthenticator(new Uint8Array(creds)) : undefined,
      tls: o.tls,
      name: o.name,
      timeout,
      // After the first connection, keep trying for ever: operations wait
      // (within their own timeouts) while the server restarts.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (e) {
    throw connectFailure(e, where);
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: Math.max(timeout, 1_000) });
  } catch (e) {
    await nc.close().catch(() => {});
    throw new Error(
      `Cannot use the NATS server at ${where}: JetStream is not enabled there (start it with nats-server -js)`,
      { cause: e },
    );
  }
  return new Cluster(nc, jsm, storage, where);
}

/**
 * A connection to a NATS JetStream server, from {@linkcode connect}: makes
 * the named queues and dicts that every process connected to the same server
 * shares.
 *
 * @example
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   assert.equal(c.closed, false);
 * }
 * ```
 */
export class Cluster implements AsyncDisposable {
  #nc: NatsConnection;
  #jsm: JetStreamManager;
  #js: JetStreamClient;
  #kvm: Kvm;
  #storage: "file" | "memory";
  #servers: string;

  /** @internal Made by {@linkcode connect}. */
  constructor(nc: NatsConnection, jsm: JetStreamManager, storage: "file" | "memory", servers: string) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#kvm = new Kvm(this.#js);
    this.#storage = storage;
    this.#servers = servers;
  }

  /** The server addresses this cluster was connected with. */
  get servers(): string {
    return this.#servers;
  }

  /** Whether {@linkcode Cluster.close} was called (or the connection was closed for good). */
  get closed(): boolean {
    return this.#nc.isClosed();
  }

  /**
   * The queue named `name`, shared by every process that names it on this
   * server; created on the server at first use.
   *
   * @param name 1 to 200 letters, digits, `-` or `_`.
   * @param options `maxsize`; see {@linkcode ClusterQueueOptions}.
   * @throws {TypeError} when `name` is not a valid name.
   * @throws {RangeError} when `maxsize` is not an integer >= 0.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import { EmptyError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const q = c.Queue<number>("doc_queue");
   *   await q.put(1);
   *   assert.equal(await q.get({ timeout: 1_000 }), 1);
   *   await assert.rejects(q.getNowait(), EmptyError);
   * }
   * ```
   */
  Queue<T = unknown>(name: string, options?: ClusterQueueOptions): ClusterQueue<T> {
    checkName(name, "create cluster Queue");
    const o = checkOptions<ClusterQueueOptions>(options, "create cluster Queue") ?? {};
    const maxsize = checkMaxsize(o.maxsize, "cluster Queue");
    const prefetch = checkPrefetch(o.prefetch, "cluster Queue");
    return this.#track(new ClusterQueue<T>(this.#context(), queueNames("q", name), name, maxsize, undefined, prefetch));
  }

  /**
   * The joinable queue named `name`: `get()` then `taskDone()` for each
   * item, `join()` to wait until every item put (by any process) is done.
   *
   * @param name 1 to 200 letters, digits, `-` or `_` (a separate namespace
   *   from {@linkcode Cluster.Queue}'s).
   * @param options `maxsize`, `ackWait`, `maxDeliver`; see {@linkcode ClusterJoinableQueueOptions}.
   * @throws {TypeError} when `name` is not a valid name.
   * @throws {RangeError} when an option is out of range.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const q = c.JoinableQueue<string>("doc_work", { ackWait: 5_000 });
   *   await q.put("job");
   *   assert.equal(await q.get(), "job");
   *   await q.taskDone();
   *   await q.join({ timeout: 5_000 });
   * }
   * ```
   */
  JoinableQueue<T = unknown>(name: string, options?: ClusterJoinableQueueOptions): ClusterJoinableQueue<T> {
    checkName(name, "create cluster JoinableQueue");
    const o = checkOptions<ClusterJoinableQueueOptions>(options, "create cluster JoinableQueue") ?? {};
    const maxsize = checkMaxsize(o.maxsize, "cluster JoinableQueue");
    const prefetch = checkPrefetch(o.prefetch, "cluster JoinableQueue");
    const ackWait = o.ackWait ?? 30_000;
    if (typeof ackWait !== "number" || !Number.isFinite(ackWait) || ackWait < 1) {
      throw new RangeError(
        `Cannot create cluster JoinableQueue as 'ackWait' must be a finite number >= 1 (milliseconds): current value is ${
          show(ackWait)
        }`,
      );
    }
    const maxDeliver = o.maxDeliver ?? Infinity;
    if (
      typeof maxDeliver !== "number" || !(maxDeliver === Infinity || (Number.isInteger(maxDeliver) && maxDeliver >= 1))
    ) {
      throw new RangeError(
        `Cannot create cluster JoinableQueue as 'maxDeliver' must be an integer >= 1 or Infinity: current value is ${
          show(maxDeliver)
        }`,
      );
    }
    return this.#track(
      new ClusterJoinableQueue<T>(this.#context(), queueNames("jq", name), name, maxsize, {
        ackWait,
        maxDeliver,
      }, prefetch),
    );
  }

  /**
   * The dict named `name`, kept in a JetStream key-value bucket: the
   * `DictProxy` contract (async methods only), shared by every process that
   * names it.
   *
   * @param name 1 to 200 letters, digits, `-` or `_`.
   * @throws {TypeError} when `name` is not a valid name.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const scores = c.dict<string, number>("doc_scores");
   *   await scores.set("ann", 3);
   *   assert.equal(await scores.get("ann"), 3);
   *   assert.equal(await scores.setdefault("bob", 1), 1);
   *   await scores.clear();
   * }
   * ```
   */
  dict<K extends DictKey = DictKey, V = unknown>(name: string): ClusterDict<K, V> {
    checkName(name, "create cluster dict");
    return new ClusterDict<K, V>(this.#kvm, bucketName(name), name, this.#storage);
  }

  /**
   * Closes the connection (queues and dicts on the server stay, for other
   * processes and later runs); pending calls reject. Idempotent.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await cluster.close();
   *   assert.equal(cluster.closed, true);
   * }
   * ```
   */
  async close(): Promise<void> {
    if (this.#nc.isClosed()) return;
    await Promise.all([...this.#pools].map((p) => p.terminate().catch(() => {})));
    this.#pools.clear();
    // Tasks held by a worker served here go back to the server for others.
    await Promise.all([...this.#workers].map((w) => w.stop(false).catch(() => {})));
    this.#workers.clear();
    for (const ref of this.#queues) ref.deref()?.[RELEASE]();
    this.#queues.clear();
    // Flush first: a put whose publish is written but not yet sent still goes out.
    await this.#nc.flush().catch(() => {});
    await this.#nc.close();
  }

  /**
   * A pool whose tasks run in worker processes, on any machine that reaches
   * this server, started with `mpjs-worker <server> --pool <name> --module
   * <file>` (`cluster_worker.ts`): the local `Pool`'s methods and semantics.
   * Tasks may run more than once (a worker that dies has its tasks run
   * again elsewhere); each result is given once. See `docs/cluster.md`.
   *
   * @param options `name`, `module`, `ackWait`, `maxDeliver`, `processes`,
   *   `maxInFlight`; see {@linkcode ClusterPoolOptions}.
   * @throws {TypeError} when `name` or `module` is not valid.
   * @throws {RangeError} when a number option is out of range.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const name = `doc_serve_${Date.now()}`;
   *   const worker = await c.servePool(name, { processes: 1, allowSource: true }); // usually another process
   *   const pool = c.Pool({ name });
   *   assert.deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
   *   await pool.terminate();
   *   await worker.stop();
   * }
   * ```
   */
  Pool(options: ClusterPoolOptions): ClusterPool {
    const o = checkOptions<ClusterPoolOptions>(options, "create cluster Pool");
    if (!o) throw new TypeError("Cannot create cluster Pool as 'options' must be an object with a 'name'");
    checkName(o.name, "create cluster Pool");
    const pool = new ClusterPool(this.#context(), poolNames(o.name), o);
    this.#pools.add(pool);
    return pool;
  }

  /**
   * Serves the pool `name` from this process: takes its tasks and runs them
   * on a local `Pool` of threads. What the worker command
   * (`cluster_worker.ts`, `mpjs-worker`) runs; use it to embed a worker in a
   * program of your own.
   *
   * @param name The pool's name.
   * @param options `modules`, `processes`, `concurrency`, `allowSource`; see {@linkcode ServePoolOptions}.
   * @returns A promise of the running worker, once it takes tasks.
   * @throws {TypeError} when `name` or an option is not valid.
   *
   * @example
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const worker = await c.servePool(`doc_worker_${Date.now()}`, { processes: 1 });
   *   assert.equal(worker.done, 0);
   *   await worker.stop();
   * }
   * ```
   */
  async servePool(name: string, options?: ServePoolOptions): Promise<ClusterPoolWorker> {
    checkName(name, "serve cluster Pool");
    const worker = new ClusterPoolWorker(this.#context(), poolNames(name), options);
    this.#workers.add(worker);
    await worker.start();
    return worker;
  }

  /** The pools made here, terminated by `close`. */
  #pools = new Set<ClusterPool>();
  /** The pool workers served here, stopped by `close`. */
  #workers = new Set<ClusterPoolWorker>();

  /** Same as {@linkcode Cluster.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The queues made here, whose prefetched items `close` hands back. */
  #queues = new Set<WeakRef<ClusterQueueBase<unknown>>>();

  // deno-lint-ignore no-explicit-any
  #track<Q extends ClusterQueueBase<any>>(q: Q): Q {
    if (this.#queues.size > 1024) {
      for (const ref of this.#queues) if (!ref.deref()) this.#queues.delete(ref);
    }
    this.#queues.add(new WeakRef(q as unknown as ClusterQueueBase<unknown>));
    return q;
  }

  #context(): QueueContext {
    return { nc: this.#nc, jsm: this.#jsm, js: this.#js, storage: this.#storage };
  }
}

function checkPrefetch(prefetch: unknown, what: string): number {
  if (prefetch === undefined) return 1;
  if (typeof prefetch !== "number" || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > 10_000) {
    throw new RangeError(
      `Cannot create ${what} as 'prefetch' must be an integer from 1 to 10000: current value is ${show(prefetch)}`,
    );
  }
  return prefetch;
}

/** Hands back the items a queue prefetched (the cluster is closing). */
const RELEASE: unique symbol = Symbol("release");

function checkMaxsize(maxsize: unknown, what: string): number | undefined {
  if (maxsize === undefined) return undefined;
  if (typeof maxsize !== "number" || !Number.isInteger(maxsize) || maxsize < 0) {
    throw new RangeError(
      `Cannot create ${what} as 'maxsize' must be an integer >= 0: current value is ${show(maxsize)}`,
    );
  }
  return maxsize;
}

// ---- queues ---------------------------------------------------------------------

/**
 * What a cluster queue works with: its NATS connection, JetStream handles
 * and storage kind, shared by every queue of one {@linkcode Cluster}
 * (subclasses reach it as `ctx`).
 *
 * @example
 * ```ts
 * import { ClusterQueue, ClusterQueueBase } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * // Every queue of a cluster is a ClusterQueueBase, which holds the context.
 * assert.ok(ClusterQueue.prototype instanceof ClusterQueueBase);
 * ```
 */
interface QueueContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  storage: "file" | "memory";
}

interface Checked {
  block: boolean;
  deadline: number;
  signal: AbortSignal | undefined;
}

function checkWait(options: ClusterGetOptions | undefined, what: string): Checked {
  const o = checkOptions<ClusterGetOptions>(options, what, false, "call ") ?? {};
  const block = o.block === undefined ? true : Boolean(o.block);
  const ms = checkTimeout(o.timeout, what);
  const signal = checkSignal(o.signal, what, "call ");
  return { block, deadline: block ? Date.now() + ms : Date.now(), signal };
}

/** The longest a single pull request waits on the server (ms): a lost one (server restart) costs at most this. */
const PULL_CHUNK = 2_000;
/** The most a blocked put waits between tries for room (ms). */
const ROOM_POLL_MAX = 100;
/** The most one publish waits for the server's acknowledgement before it is retried (ms). */
const PUBLISH_TRY = 5_000;
/** JetStream's error code for a stream at its message limit with `discard: new`. */
const MAX_MSGS_EXCEEDED = 10077;

function nanos(ms: number): number {
  return Math.round(ms * 1e6);
}

function isFull(e: unknown): boolean {
  const err = e as { code?: number; message?: string };
  return err?.code === MAX_MSGS_EXCEEDED || /maximum messages exceeded/.test(err?.message ?? "");
}

function isNotFound(e: unknown): boolean {
  return /not found/i.test((e as Error)?.message ?? "");
}

/**
 * What {@linkcode ClusterQueue} and {@linkcode ClusterJoinableQueue} share:
 * put, sizes, close and iteration. Made only through {@linkcode Cluster.Queue}
 * and {@linkcode Cluster.JoinableQueue}.
 *
 * @example Any cluster queue
 * ```ts
 * import { connect, type ClusterQueueBase } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * async function fill(q: ClusterQueueBase<number>, n: number): Promise<void> {
 *   await q.putMany(Array.from({ length: n }, (_, i) => i));
 * }
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   const q = c.Queue<number>(`doc_base_${Date.now()}`);
 *   await fill(q, 3);
 *   assert.equal(await q.qsize(), 3);
 * }
 * ```
 */
export abstract class ClusterQueueBase<T> implements AsyncIterable<T> {
  #ctx: QueueContext;
  #names: QueueNames;
  #name: string;
  #maxsize: number | undefined;
  #consumer: { ackWait: number; maxDeliver: number } | undefined;
  #ready: Promise<void> | undefined;
  #closed = false;
  /** Called when a close notice arrives: wakes waiting gets. */
  #wakers = new Set<() => void>();
  #prefetch: number;
  /** Items fetched but not yet returned by a get, with when they arrived. */
  #buffer: { m: Msg; at: number }[] = [];

  /** @internal Made by {@linkcode Cluster.Queue} and {@linkcode Cluster.JoinableQueue}. */
  constructor(
    ctx: QueueContext,
    names: QueueNames,
    name: string,
    maxsize: number | undefined,
    consumer: { ackWait: number; maxDeliver: number } | undefined,
    prefetch: number,
  ) {
    this.#prefetch = prefetch;
    this.#ctx = ctx;
    this.#names = names;
    this.#name = name;
    this.#maxsize = maxsize;
    this.#consumer = consumer;
  }

  /** The name this queue was made with. */
  get name(): string {
    return this.#name;
  }

  /** The JetStream stream that holds the items. */
  get stream(): string {
    return this.#names.stream;
  }

  /** @internal */
  protected get ctx(): QueueContext {
    return this.#ctx;
  }

  /** @internal Creates the stream and its consumer, or checks the ones there; once. */
  protected ready(): Promise<void> {
    this.#ready ??= this.#setUp().catch((e) => {
      this.#ready = undefined;
      throw e;
    });
    return this.#ready;
  }

  async #setUp(): Promise<void> {
    const { jsm, nc, storage } = this.#ctx;
    const { stream, subject, closedSubject, notice } = this.#names;
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(stream);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      try {
        info = await jsm.streams.add(
          {
            name: stream,
            subjects: [subject],
            retention: RetentionPolicy.Workqueue,
            storage: storage === "memory" ? "memory" : "file",
            max_msgs: this.#maxsize ? this.#maxsize : -1,
            discard: DiscardPolicy.New,
            description: `@mpjs/multiprocessing cluster queue ${this.#name}`,
          } as Parameters<JetStreamManager["streams"]["add"]>[0],
        );
      } catch {
        info = await jsm.streams.info(stream); // another process created it first
      }
    }
    const existing = info.config.max_msgs > 0 ? info.config.max_msgs : 0;
    if (this.#maxsize !== undefined && existing !== this.#maxsize) {
      throw new RangeError(
        `Cannot use cluster queue ${
          JSON.stringify(this.#name)
        } with maxsize ${this.#maxsize}: it exists with maxsize ${existing}`,
      );
    }
    this.#maxsize = existing;
    if (info.config.subjects?.includes(closedSubject)) this.#closed = true;
    const c = this.#consumer;
    const config = {
      durable_name: CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(c ? c.ackWait : 30_000),
      max_deliver: c && c.maxDeliver !== Infinity ? c.maxDeliver : -1,
      max_ack_pending: -1,
    };
    try {
      await jsm.consumers.info(stream, CONSUMER);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await jsm.consumers.add(stream, config).catch(async () => {
        await jsm.consumers.info(stream, CONSUMER); // another process added it first
      });
    }
    nc.subscribe(notice, {
      callback: () => {
        this.#closed = true;
        for (const wake of this.#wakers) wake();
      },
    });
    await nc.flush();
  }

  /** The most items the queue holds (`0`: unbounded); known once the queue was used. */
  get maxsize(): number | undefined {
    return this.#maxsize;
  }

  /**
   * Puts `item` at the end of the queue; waits for room while the queue is
   * full. Resolves once the server has stored it.
   *
   * @param item A structured-clone value (this library's handles cannot
   *   leave the process).
   * @param options `block`, `timeout`, `signal`; see {@linkcode ClusterPutOptions}.
   * @throws {FullError} (rejects) when there is no room: at once when not
   *   blocking, else after `timeout`.
   * @throws {ClosedError} (rejects) when the queue is closed; `.value` is the item.
   * @throws {TypeError} (rejects) when the item cannot be sent (the message
   *   names where); nothing is sent.
   *
   * @example A bounded queue refuses when full
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import { FullError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const q = c.Queue<string>(`doc_put_${Date.now()}`, { maxsize: 1 });
   *   await q.put("a");
   *   await assert.rejects(q.put("b", { timeout: 50 }), FullError);
   *   assert.equal(await q.get(), "a");
   * }
   * ```
   */
  async put(item: T, options?: ClusterPutOptions): Promise<void> {
    const { block, deadline, signal } = checkWait(options, "cluster Queue.put()");
    const bytes = encode(item, "item");
    if (signal?.aborted) throw signal.reason;
    await this.ready();
    await this.#publish(item, bytes, block, deadline, signal);
  }

  /**
   * Puts every item of `items`, in order, with their publishes in flight
   * together (a few thousand at a time), rather than one round trip each:
   * the fast way to fill a queue. Every item is encoded before anything is
   * sent.
   *
   * @param items The items.
   * @param options As {@linkcode ClusterQueueBase.put}'s, applied to each item.
   * @returns A promise that resolves once all are stored.
   * @throws {TypeError} (rejects) when an item cannot be sent (the message
   *   names it, e.g. `items[3].cb`); nothing is sent.
   * @throws {FullError} (rejects) as `put`; items before the refused one may be in.
   *
   * @example Filling a queue fast
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const q = c.Queue<number>(`doc_putmany_${Date.now()}`);
   *   await q.putMany(Array.from({ length: 1_000 }, (_, i) => i));
   *   assert.equal(await q.qsize(), 1_000);
   * }
   * ```
   */
  async putMany(items: Iterable<T>, options?: ClusterPutOptions): Promise<void> {
    const { block, deadline, signal } = checkWait(options, "cluster Queue.putMany()");
    const list = [...items];
    const encoded = list.map((item, i) => encode(item, `items[${i}]`));
    await this.ready();
    const WINDOW = 4096;
    for (let start = 0; start < list.length; start += WINDOW) {
      const end = Math.min(start + WINDOW, list.length);
      const sends: Promise<void>[] = [];
      for (let i = start; i < end; i++) sends.push(this.#publish(list[i], encoded[i], block, deadline, signal));
      await Promise.all(sends);
    }
  }

  /**
   * Puts `item` only if there is room now.
   *
   * @throws {FullError} (rejects) when the queue is full.
   */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  async #publish(
    item: T,
    bytes: Uint8Array,
    block: boolean,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.#closed) throw closedForPut(item);
    const msgID = crypto.randomUUID();
    let pause = 5;
    for (;;) {
      try {
        const left = deadline - Date.now();
        await this.#ctx.js.publish(this.#names.subject, bytes, {
          msgID,
          timeout: Math.max(1, Math.min(PUBLISH_TRY, left > 0 ? left : PUBLISH_TRY)),
        });
        return;
      } catch (e) {
        if (this.#ctx.nc.isClosed()) {
          throw new ClosedError("Cannot put: the cluster connection is closed", { value: item });
        }
        if (isFull(e)) {
          if (!block || Date.now() >= deadline) throw new FullError();
        } else if (/not enabled|no responders|503/i.test(`${(e as Error).name} ${(e as Error).message}`)) {
          // No stream listens on the subject: closed (or the server is still starting).
          if (await this.#closedOnServer()) throw closedForPut(item);
          if (Date.now() >= deadline) throw e;
        } else if (Date.now() >= deadline) throw e;
        // Otherwise a lost connection or a timeout: retry with the same id,
        // which the server stores once.
        const wait = Math.min(pause, Math.max(0, deadline - Date.now()));
        await sleep(wait, signal);
        pause = Math.min(pause * 2, ROOM_POLL_MAX);
      }
    }
  }

  /** Asks the server whether the queue is closed; `false` when it cannot tell. */
  async #closedOnServer(): Promise<boolean> {
    try {
      const info = await this.#ctx.jsm.streams.info(this.#names.stream);
      if (info.config.subjects?.includes(this.#names.closedSubject)) this.#closed = true;
    } catch (e) {
      if (isNotFound(e)) throw new Error(`The cluster queue ${JSON.stringify(this.#name)} was deleted from the server`);
    }
    return this.#closed;
  }

  /**
   * @internal Takes the next item's message, unacknowledged; `ClosedError` when the
   * queue is closed and drained, `EmptyError` when none came in time.
   */
  protected async pull(options: ClusterGetOptions | undefined, what: string): Promise<Msg> {
    const { block, deadline, signal } = checkWait(options, what);
    if (signal?.aborted) throw signal.reason;
    await this.ready();
    const held = this.#fromBuffer();
    if (held) return held;
    if (this.#prefetch > 1) {
      const got = await this.#grab(this.#prefetch);
      if (got.length > 0) {
        const at = Date.now();
        for (let i = 1; i < got.length; i++) this.#buffer.push({ m: got[i], at });
        return got[0];
      }
    }
    for (;;) {
      const left = deadline - Date.now();
      const wait = !block || left <= 0 || this.#closed ? 0 : Math.min(left, PULL_CHUNK);
      const m = await this.#pullOnce(wait, signal);
      if (m) return m;
      if (this.#closed || Date.now() >= deadline) {
        if (await this.#closedOnServer().catch(() => this.#closed)) {
          // Closed: one last look, then it is drained.
          const last = await this.#pullOnce(0, signal);
          if (last) return last;
          throw new ClosedError("The queue is closed and drained");
        }
        if (Date.now() >= deadline) {
          throw new EmptyError();
        }
      }
    }
  }

  /** The oldest prefetched item still fresh enough to return; stale ones go back to the server. */
  #fromBuffer(): Msg | undefined {
    const maxHold = (this.#consumer?.ackWait ?? 30_000) / 2;
    for (let e = this.#buffer.shift(); e; e = this.#buffer.shift()) {
      if (Date.now() - e.at < maxHold) return e.m;
      e.m.respond(NAK);
    }
    return undefined;
  }

  /** @internal Hands back every prefetched item (the cluster is closing). */
  [RELEASE](): void {
    for (const e of this.#buffer.splice(0)) e.m.respond(NAK);
  }

  /**
   * Up to `n` items that are there now, in one pull request (`no_wait`):
   * the server sends them, then a status that ends the batch.
   */
  #grab(n: number): Promise<Msg[]> {
    const { nc } = this.#ctx;
    return new Promise<Msg[]>((resolve, reject) => {
      const got: Msg[] = [];
      let open = true;
      const finish = () => {
        if (!open) return;
        open = false;
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(got);
      };
      const sub = nc.subscribe(`_INBOX.${crypto.randomUUID().replace(/-/g, "")}`, {
        callback: (_err, m) => {
          if (m.reply) {
            if (open) got.push(m);
            else m.respond(NAK);
            if (got.length < n) return;
          }
          finish();
        },
      });
      // Only a lost server leaves the batch without its ending status.
      const timer = setTimeout(finish, PULL_CHUNK);
      unrefTimer(timer);
      try {
        nc.publish(
          `$JS.API.CONSUMER.MSG.NEXT.${this.#names.stream}.${CONSUMER}`,
          JSON.stringify({ batch: n, no_wait: true }),
          { reply: sub.getSubject() },
        );
      } catch (e) {
        open = false;
        clearTimeout(timer);
        sub.unsubscribe();
        reject(e);
      }
    });
  }

  /**
   * One pull request for one message, waiting up to `wait` ms on the server
   * (none: `no_wait`). Its reply inbox stays subscribed until the server's
   * wait is over, so a message that arrives after the caller gave up (abort,
   * close notice) is handed back at once (`-NAK`) rather than left to time out.
   */
  #pullOnce(wait: number, signal: AbortSignal | undefined): Promise<Msg | null> {
    const { nc } = this.#ctx;
    return new Promise<Msg | null>((resolve, reject) => {
      let waiting = true;
      const inbox = `_INBOX.${crypto.randomUUID().replace(/-/g, "")}`;
      const finish = (m: Msg | null, err?: unknown) => {
        if (!waiting) return;
        waiting = false;
        this.#wakers.delete(wake);
        signal?.removeEventListener("abort", onAbort);
        if (err !== undefined) reject(err);
        else resolve(m);
      };
      const wake = () => finish(null);
      const onAbort = () => finish(null, signal!.reason);
      const sub = nc.subscribe(inbox, {
        callback: (_err, m) => {
          if (!m.reply) {
            // A status: 404 (none now), 408 (the wait ended), 409 (refused).
            end();
            finish(null);
            return;
          }
          end();
          if (waiting) finish(m);
          else m.respond(NAK);
        },
      });
      // The server's wait plus a margin; past it the request is gone (or the server restarted).
      const timer = setTimeout(() => {
        end();
        finish(null);
      }, wait + 1_000);
      unrefTimer(timer);
      const end = () => {
        clearTimeout(timer);
        sub.unsubscribe();
      };
      this.#wakers.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
      const request = wait > 0 ? { batch: 1, expires: nanos(wait) } : { batch: 1, no_wait: true };
      try {
        nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.#names.stream}.${CONSUMER}`, JSON.stringify(request), {
          reply: inbox,
        });
      } catch (e) {
        end();
        finish(null, e);
      }
    });
  }

  /**
   * The number of items waiting to be delivered (a snapshot; items taken by
   * a `JoinableQueue` getter and not yet done are not counted).
   */
  async qsize(): Promise<number> {
    await this.ready();
    const info = await this.#ctx.jsm.consumers.info(this.#names.stream, CONSUMER);
    return info.num_pending;
  }

  /** Whether no item waits to be delivered (a snapshot). */
  async empty(): Promise<boolean> {
    return (await this.qsize()) === 0;
  }

  /** Whether a put would now be refused for lack of room (a snapshot). */
  async full(): Promise<boolean> {
    await this.ready();
    if (!this.#maxsize) return false;
    const info = await this.#ctx.jsm.streams.info(this.#names.stream);
    return info.state.messages >= this.#maxsize;
  }

  /** Whether the queue was closed (by any process), as far as this process knows. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Closes the queue for every process using it (Python 3.13's
   * `Queue.shutdown()`): later puts reject with `ClosedError`; gets take what
   * is left, then reject with `ClosedError`; waiting gets wake. Idempotent.
   *
   * @example Ending consumers
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import { ClosedError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const q = c.Queue<number>(`doc_close_${Date.now()}`);
   *   await q.put(1);
   *   await q.close();
   *   await assert.rejects(q.put(2), ClosedError);
   *   assert.equal(await q.get(), 1); // what is left is still got
   *   await assert.rejects(q.get(), ClosedError);
   * }
   * ```
   */
  async close(): Promise<void> {
    await this.ready();
    const { jsm, nc } = this.#ctx;
    const info = await jsm.streams.info(this.#names.stream);
    if (!info.config.subjects?.includes(this.#names.closedSubject)) {
      await jsm.streams.update(this.#names.stream, { ...info.config, subjects: [this.#names.closedSubject] });
    }
    this.#closed = true;
    nc.publish(this.#names.notice);
    for (const wake of this.#wakers) wake();
  }

  /**
   * Yields items until the queue is closed and drained.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      try {
        yield await this.get();
      } catch (e) {
        if (e instanceof ClosedError) return;
        throw e;
      }
    }
  }

  /** Takes the next item. */
  abstract get(options?: ClusterGetOptions): Promise<T>;
}

function closedForPut(item: unknown): ClosedError {
  return new ClosedError("Cannot put an item in a closed queue", { value: item });
}

const ACK = new TextEncoder().encode("+ACK");
const NAK = new TextEncoder().encode("-NAK");
const PROGRESS = new TextEncoder().encode("+WPI");

/**
 * A queue on the NATS server, shared by every process that names it: made
 * by {@linkcode Cluster.Queue}. The local `Queue`'s methods, async: each
 * item is taken once (acknowledged on receipt).
 *
 * @example Producer and consumer
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   const q = c.Queue<number>(`doc_cq_${Date.now()}`); // a fresh name: a closed queue stays closed
 *   await q.putMany([1, 2, 3]);
 *   await q.close();
 *   const got: number[] = [];
 *   for await (const x of q) got.push(x);
 *   assert.deepEqual(got, [1, 2, 3]);
 * }
 * ```
 */
export class ClusterQueue<T = unknown> extends ClusterQueueBase<T> {
  /**
   * Takes the next item, waiting for one while the queue is empty.
   *
   * @param options `block`, `timeout`, `signal`; see {@linkcode ClusterGetOptions}.
   * @throws {EmptyError} (rejects) when no item came: at once when not
   *   blocking, else after `timeout`.
   * @throws {ClosedError} (rejects) when the queue is closed and drained.
   *
   * @example Fetching ahead
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const name = `doc_get_${Date.now()}`;
   *   await c.Queue<number>(name).putMany([1, 2, 3]);
   *   const q = c.Queue<number>(name, { prefetch: 100 }); // one round trip fetches all three
   *   assert.deepEqual([await q.get(), await q.get(), await q.get()], [1, 2, 3]);
   * }
   * ```
   */
  async get(options?: ClusterGetOptions): Promise<T> {
    const m = await this.pull(options, "cluster Queue.get()");
    m.respond(ACK);
    return decode(m.data) as T;
  }

  /**
   * Takes the next item if there is one now.
   *
   * @throws {EmptyError} (rejects) when the queue is empty.
   */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }
}

/**
 * A joinable queue on the NATS server: made by
 * {@linkcode Cluster.JoinableQueue}. An item got is acknowledged only by
 * {@linkcode ClusterJoinableQueue.taskDone}; if the process dies first, the
 * server hands the item to another consumer after `ackWait`.
 *
 * @example Workers mark items done; join waits for all of them
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   const q = c.JoinableQueue<number>("doc_jq");
 *   await q.putMany([1, 2]);
 *   let sum = 0;
 *   for (let i = 0; i < 2; i++) {
 *     sum += await q.get();
 *     await q.taskDone();
 *   }
 *   await q.join();
 *   assert.equal(sum, 3);
 * }
 * ```
 */
export class ClusterJoinableQueue<T = unknown> extends ClusterQueueBase<T> {
  #held: Msg[] = [];
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #ackWait: number;

  /** @internal Made by {@linkcode Cluster.JoinableQueue}. */
  constructor(
    ctx: QueueContext,
    names: QueueNames,
    name: string,
    maxsize: number | undefined,
    consumer: { ackWait: number; maxDeliver: number },
    prefetch: number,
  ) {
    super(ctx, names, name, maxsize, consumer, prefetch);
    this.#ackWait = consumer.ackWait;
  }

  /**
   * Takes the next item, unacknowledged until {@linkcode taskDone}; waits
   * while the queue is empty.
   *
   * @param options `block`, `timeout`, `signal`; see {@linkcode ClusterGetOptions}.
   * @throws {EmptyError} (rejects) when no item came in time.
   * @throws {ClosedError} (rejects) when the queue is closed and drained.
   */
  async get(options?: ClusterGetOptions): Promise<T> {
    const m = await this.pull(options, "cluster JoinableQueue.get()");
    let value: T;
    try {
      value = decode(m.data) as T;
    } catch (e) {
      m.respond(ACK); // an item nobody can decode would come back for ever
      throw e;
    }
    this.#held.push(m);
    this.#startHeartbeat();
    return value;
  }

  /** Takes the next item if there is one now. @throws {EmptyError} (rejects) when the queue is empty. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /**
   * Marks the oldest item this object got and has not marked yet as done:
   * the server forgets it. Resolves once the server has recorded it, so a
   * `join()` started afterwards (anywhere) does not wait for it.
   *
   * @throws {Error} (rejects) when called more times than items were got here.
   */
  async taskDone(): Promise<void> {
    const m = this.#held.shift();
    if (!m) {
      throw new Error("Cannot call cluster JoinableQueue.taskDone(): it was called more times than items were got");
    }
    if (this.#held.length === 0) this.#stopHeartbeat();
    for (let pause = 10;; pause = Math.min(pause * 2, 500)) {
      try {
        await this.ctx.nc.request(m.reply!, ACK, { timeout: 5_000 });
        return;
      } catch (e) {
        if (this.ctx.nc.isClosed()) throw e;
        await sleep(pause); // the connection is coming back: acknowledging twice is harmless
      }
    }
  }

  /**
   * Waits until every item put by any process has been marked done (the
   * stream is empty); with `timeout`, returns when it passes either way.
   *
   * @param options `timeout`, `signal`; see {@linkcode ClusterJoinOptions}.
   */
  async join(options?: ClusterJoinOptions): Promise<void> {
    const o = checkOptions<ClusterJoinOptions>(options, "cluster JoinableQueue.join()", false, "call ") ?? {};
    const deadline = Date.now() + checkTimeout(o.timeout, "cluster JoinableQueue.join()");
    const signal = checkSignal(o.signal, "cluster JoinableQueue.join()", "call ");
    if (signal?.aborted) throw signal.reason;
    await this.ready();
    for (let pause = 10;; pause = Math.min(pause * 2, 200)) {
      try {
        const info = await this.ctx.jsm.streams.info(this.stream);
        if (info.state.messages === 0) return;
      } catch (e) {
        if (this.ctx.nc.isClosed()) throw e;
      }
      const left = deadline - Date.now();
      if (left <= 0) return;
      await sleep(Math.min(pause, left), signal);
    }
  }

  /**
   * @internal Hands back the prefetched items and the items got and not yet
   * done, which the server then delivers again at once (the cluster is
   * closing).
   */
  override [RELEASE](): void {
    super[RELEASE]();
    this.#stopHeartbeat();
    for (const m of this.#held.splice(0)) m.respond(NAK);
  }

  /** Tells the server, while this process lives, that the items it holds are in progress. */
  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined) return;
    this.#heartbeat = setInterval(() => {
      if (this.ctx.nc.isClosed()) return this.#stopHeartbeat();
      for (const m of this.#held) m.respond(PROGRESS);
    }, Math.max(10, this.#ackWait / 3));
    unrefTimer(this.#heartbeat);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}

// ---- dict -----------------------------------------------------------------------

/** JetStream's error code for a compare-and-set that lost ("wrong last sequence"). */
const WRONG_LAST_SEQUENCE = 10071;

function lostRace(e: unknown): boolean {
  const err = e as { code?: number; message?: string };
  return err?.code === WRONG_LAST_SEQUENCE || /wrong last sequence|key exists/i.test(err?.message ?? "");
}

function present(entry: KvEntry | null): entry is KvEntry {
  return entry !== null && entry.operation === "PUT";
}

function showKey(key: unknown): string {
  return show(key);
}

/**
 * A dict on the NATS server (a JetStream key-value bucket), shared by every
 * process that names it: made by {@linkcode Cluster.dict}. The manager's
 * `DictProxy` methods, async only. Values are encoded with the library's
 * codec (structured-clone values); keys are strings, numbers, bigints,
 * booleans, `null` or `undefined`.
 *
 * @example Racing on one key: one process wins
 * ```ts
 * import { connect } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
 * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
 * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
 * else {
 *   await using c = cluster;
 *   const d = c.dict<string, string>("doc_race");
 *   await d.clear();
 *   const winners = await Promise.all([d.setdefault("k", "a"), d.setdefault("k", "b")]);
 *   assert.equal(winners[0], winners[1]);
 *   assert.equal(await d.pop("k"), winners[0]);
 * }
 * ```
 */
export class ClusterDict<K extends DictKey = DictKey, V = unknown> implements AsyncIterable<[K, V]> {
  #kvm: Kvm;
  #bucket: string;
  #name: string;
  #storage: "file" | "memory";
  #kv: Promise<KV> | undefined;

  /** @internal Made by {@linkcode Cluster.dict}. */
  constructor(kvm: Kvm, bucket: string, name: string, storage: "file" | "memory") {
    this.#kvm = kvm;
    this.#bucket = bucket;
    this.#name = name;
    this.#storage = storage;
  }

  /** The name this dict was made with. */
  get name(): string {
    return this.#name;
  }

  /** The JetStream key-value bucket that holds it. */
  get bucket(): string {
    return this.#bucket;
  }

  #open(): Promise<KV> {
    this.#kv ??= this.#kvm.create(this.#bucket, { history: 1, storage: this.#storage } as never).catch((e) => {
      this.#kv = undefined;
      throw e;
    });
    return this.#kv;
  }

  /**
   * The value of `key`, or `fallback` when it is missing.
   *
   * @throws {TypeError} (rejects) when `key` is not a valid key.
   */
  async get(key: K, fallback?: V): Promise<V | undefined> {
    const k = keyToKv(key, "cluster dict.get()");
    const entry = await (await this.#open()).get(k);
    return present(entry) ? decode(entry.value) as V : fallback;
  }

  /**
   * Sets `key` to `value`.
   *
   * @throws {TypeError} (rejects) when the key is not valid or the value
   *   cannot be sent (the message names where); nothing changes.
   */
  async set(key: K, value: V): Promise<void> {
    const k = keyToKv(key, "cluster dict.set()");
    const bytes = encode(value, "value");
    await (await this.#open()).put(k, bytes);
  }

  /** Whether `key` is there. */
  async has(key: K): Promise<boolean> {
    const k = keyToKv(key, "cluster dict.has()");
    return present(await (await this.#open()).get(k));
  }

  /**
   * Removes `key`.
   *
   * @throws {KeyError} (rejects) when `key` is missing (including when
   *   another process removed it first).
   */
  async delete(key: K): Promise<void> {
    await this.#take(keyToKv(key, "cluster dict.delete()"), key);
  }

  /** Removes `key` if it holds the revision read; the value taken, or `KeyError`. */
  async #take(k: string, key: unknown): Promise<V> {
    const kv = await this.#open();
    for (;;) {
      const entry = await kv.get(k);
      if (!present(entry)) throw new KeyError(showKey(key));
      try {
        await kv.delete(k, { previousSeq: entry.revision });
        return decode(entry.value) as V;
      } catch (e) {
        if (!lostRace(e)) throw e;
      }
    }
  }

  /** The number of keys (a snapshot). */
  async size(): Promise<number> {
    return (await this.#kvKeys()).length;
  }

  async #kvKeys(): Promise<string[]> {
    const kv = await this.#open();
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    return keys;
  }

  async #entries(): Promise<[string, KvEntry][]> {
    const kv = await this.#open();
    const keys = await this.#kvKeys();
    const entries = await Promise.all(keys.map((k) => kv.get(k)));
    const out: [string, KvEntry][] = [];
    keys.forEach((k, i) => {
      const e = entries[i];
      if (present(e)) out.push([k, e]);
    });
    return out;
  }

  /** The keys (a snapshot, in no set order). */
  async keys(): Promise<K[]> {
    return (await this.#kvKeys()).map((k) => keyFromKv(k) as K);
  }

  /** The values (a snapshot). */
  async values(): Promise<V[]> {
    return (await this.#entries()).map(([, e]) => decode(e.value) as V);
  }

  /** The `[key, value]` pairs (a snapshot). */
  async items(): Promise<[K, V][]> {
    return (await this.#entries()).map(([k, e]) => [keyFromKv(k) as K, decode(e.value) as V]);
  }

  /**
   * Sets every pair of `source` (an object, a `Map` or `[key, value]` pairs).
   * Every value is encoded first: a bad one changes nothing.
   */
  async update(source: Record<string, V> | Map<K, V> | Iterable<readonly [K, V]>): Promise<void> {
    if (source === null || typeof source !== "object") {
      throw new TypeError(
        `Cannot call cluster dict.update() as 'source' must be an object, a Map or [key, value] pairs: current value is ${
          show(source)
        }`,
      );
    }
    const pairs: [unknown, unknown][] = Symbol.iterator in source
      ? [...(source as Iterable<readonly [K, V]>)].map((p) => [p[0], p[1]])
      : Object.entries(source);
    const encoded = pairs.map(([k, v]) =>
      [keyToKv(k, "cluster dict.update()"), encode(v, `source[${show(k)}]`)] as const
    );
    const kv = await this.#open();
    await Promise.all(encoded.map(([k, bytes]) => kv.put(k, bytes)));
  }

  /**
   * The value of `key`; if it is missing, sets it to `fallback` and returns
   * that. Atomic: of processes racing on a missing key, one sets it and all
   * get that value.
   */
  async setdefault(key: K, fallback: V): Promise<V> {
    const k = keyToKv(key, "cluster dict.setdefault()");
    const bytes = encode(fallback, "default");
    const kv = await this.#open();
    for (;;) {
      const entry = await kv.get(k);
      if (present(entry)) return decode(entry.value) as V;
      try {
        if (entry) await kv.update(k, bytes, (entry as KvEntry).revision);
        else await kv.create(k, bytes);
        return fallback;
      } catch (e) {
        if (!lostRace(e)) throw e;
      }
    }
  }

  /**
   * Removes `key` and returns its value; when missing, returns `fallback` if
   * given, else rejects with `KeyError`. Atomic: of processes racing, one
   * gets the value.
   *
   * @example Taking a key once
   * ```ts
   * import { connect } from "@mpjs/multiprocessing/cluster";
   * import { KeyError } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const servers = (globalThis as any).process?.env?.NATS_URL ?? "nats://127.0.0.1:4222";
   * const cluster = await connect({ servers, timeout: 1_000 }).catch(() => undefined);
   * if (!cluster) console.log(`skipped: no NATS server at ${servers}`);
   * else {
   *   await using c = cluster;
   *   const d = c.dict<string, number>(`doc_pop_${Date.now()}`);
   *   await d.set("job", 7);
   *   assert.equal(await d.pop("job"), 7);
   *   assert.equal(await d.pop("job", 0), 0);
   *   await assert.rejects(d.pop("job"), KeyError);
   * }
   * ```
   */
  pop(key: K): Promise<V>;
  /** As above, with a fallback for a missing key. */
  pop<D>(key: K, fallback: D): Promise<V | D>;
  async pop<D>(key: K, ...fallback: [D?]): Promise<V | D> {
    const k = keyToKv(key, "cluster dict.pop()");
    try {
      return await this.#take(k, key);
    } catch (e) {
      if (e instanceof KeyError && fallback.length > 0) return fallback[0] as D;
      throw e;
    }
  }

  /**
   * Removes and returns the pair set most recently (Python's LIFO order).
   * Atomic.
   *
   * @throws {KeyError} (rejects) when the dict is empty.
   */
  async popitem(): Promise<[K, V]> {
    const kv = await this.#open();
    for (;;) {
      const entries = await this.#entries();
      if (entries.length === 0) throw new KeyError("popitem(): dictionary is empty");
      const [k, e] = entries.reduce((a, b) => (b[1].revision > a[1].revision ? b : a));
      try {
        await kv.delete(k, { previousSeq: e.revision });
        return [keyFromKv(k) as K, decode(e.value) as V];
      } catch (err) {
        if (!lostRace(err)) throw err;
      }
    }
  }

  /** Removes every key. */
  async clear(): Promise<void> {
    const kv = await this.#open();
    const keys = await this.#kvKeys();
    await Promise.all(keys.map((k) => kv.delete(k)));
  }

  /** A plain `Map` snapshot. */
  async copy(): Promise<Map<K, V>> {
    return new Map(await this.items());
  }

  /** Yields the `[key, value]` pairs of a snapshot. */
  async *[Symbol.asyncIterator](): AsyncIterator<[K, V]> {
    yield* await this.items();
  }
}
