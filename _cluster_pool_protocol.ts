// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * What the cluster pool's callers (`_cluster_pool.ts`) and its worker
 * processes (`_cluster_pool_worker.ts`) share: the names on the server, the
 * messages (as types), and the one place the task stream is set up.
 *
 * Layout on the server for `cluster.Pool({ name: "render" })`:
 *
 * | what              | where                                                                        |
 * | ----------------- | ---------------------------------------------------------------------------- |
 * | tasks             | work-queue stream `mpjs_pool_render`, subjects `mpjs.pool.render.t.<caller>` |
 * | workers' consumer | durable pull consumer `mpjs` (explicit ack, `ackWait`, `maxDeliver`)         |
 * | results           | core request to `mpjs.pool.render.r.<caller>`, answered by the caller        |
 * | cancels           | core message on `mpjs.pool.render.cancel`                                    |
 * | poison tasks      | the server's advisory `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.mpjs` |
 *
 * A task is one stream message (one `apply`, or one chunk of a map). A
 * worker acknowledges it only after the caller answered the result's
 * request, so a result is never lost between the two: either the caller has
 * it, or the task is still in the stream. The caller keeps the first result
 * of each task id and drops the others.
 *
 * @module
 */

import { AckPolicy, type JetStreamClient, type JetStreamManager, RetentionPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { RemoteErrorInit } from "./errors.ts";

/** What both sides need of a connection. */
export interface PoolContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  storage: "file" | "memory";
}

/** The durable consumer every worker of a pool shares. */
export const POOL_CONSUMER = "mpjs";

/** The server-side names of one pool. */
export interface PoolNames {
  stream: string;
  /** `mpjs.pool.<name>.t.>`: every caller's tasks. */
  tasks: string;
  cancel: string;
  advisory: string;
  /** The task subject of one caller. */
  taskSubject(caller: string): string;
  /** The result subject of one caller. */
  resultSubject(caller: string): string;
}

/** The names of pool `name` (already checked by `checkName`). */
export function poolNames(name: string): PoolNames {
  const stream = `mpjs_pool_${name}`;
  return {
    stream,
    tasks: `mpjs.pool.${name}.t.>`,
    cancel: `mpjs.pool.${name}.cancel`,
    advisory: `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${POOL_CONSUMER}`,
    taskSubject: (caller) => `mpjs.pool.${name}.t.${caller}`,
    resultSubject: (caller) => `mpjs.pool.${name}.r.${caller}`,
  };
}

/** How a task names its function: an export of a served module, or self-contained source. */
export type FnRef = { module: string; name: string } | { source: string; name: string };

/** What one task asks: `fn(...data)` (`apply`), `data.map(fn)` (`map`) or `data.map((a) => fn(...a))` (`star`). */
export interface TaskMessage {
  caller: string;
  id: number;
  kind: "apply" | "map" | "star";
  fn: FnRef;
  /** The codec bytes of the arguments (`apply`), the items (`map`) or the argument lists (`star`). */
  data: Uint8Array;
  /** The pool's ack wait (ms): the worker reports progress three times per period. */
  ackWait: number;
}

/** A task's outcome, sent as a request to the caller's result subject. */
export type ResultMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: RemoteErrorInit };

/** Stops tasks of one caller: the ids named, or all of them. */
export interface CancelMessage {
  caller: string;
  ids: number[] | "all";
}

/** The ack wait and delivery limit of a pool's consumer. */
export interface ConsumerLimits {
  ackWait: number;
  maxDeliver: number;
}

/** The pool's defaults. */
export const DEFAULT_LIMITS: ConsumerLimits = { ackWait: 30_000, maxDeliver: 5 };

function nanos(ms: number): number {
  return Math.round(ms * 1e6);
}

function isNotFound(e: unknown): boolean {
  return /not found/i.test((e as Error)?.message ?? "");
}

/**
 * Creates the pool's stream and consumer, or checks the ones there. With
 * `limits` (a caller), a consumer with other limits is updated to them; a
 * worker (no `limits`) takes what is there, or the defaults.
 *
 * @returns The limits in force.
 */
export async function ensurePoolStream(
  ctx: PoolContext,
  names: PoolNames,
  limits: ConsumerLimits | undefined,
): Promise<ConsumerLimits> {
  const { jsm } = ctx;
  try {
    await jsm.streams.info(names.stream);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    await jsm.streams.add(
      {
        name: names.stream,
        subjects: [names.tasks],
        retention: RetentionPolicy.Workqueue,
        storage: ctx.storage,
        description: "@mpjs/multiprocessing cluster pool",
      } as Parameters<JetStreamManager["streams"]["add"]>[0],
    ).catch(async (err) => {
      await jsm.streams.info(names.stream).catch(() => {
        throw err;
      }); // another process created it first
    });
  }
  const want = limits ?? DEFAULT_LIMITS;
  const config = {
    durable_name: POOL_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(want.ackWait),
    max_deliver: want.maxDeliver === Infinity ? -1 : want.maxDeliver,
    max_ack_pending: -1,
    filter_subject: names.tasks,
  };
  let info;
  try {
    info = await jsm.consumers.info(names.stream, POOL_CONSUMER);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    info = await jsm.consumers.add(names.stream, config as never).catch(() =>
      jsm.consumers.info(names.stream, POOL_CONSUMER) // another process added it first
    );
  }
  const have: ConsumerLimits = {
    ackWait: (info.config.ack_wait ?? 30e9) / 1e6,
    maxDeliver: (info.config.max_deliver ?? -1) > 0 ? info.config.max_deliver! : Infinity,
  };
  if (limits && (have.ackWait !== limits.ackWait || have.maxDeliver !== limits.maxDeliver)) {
    await jsm.consumers.update(names.stream, POOL_CONSUMER, {
      ack_wait: config.ack_wait,
      max_deliver: config.max_deliver,
    } as never);
    return limits;
  }
  return have;
}
