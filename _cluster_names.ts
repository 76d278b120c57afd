// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * How `cluster.ts` names things on the NATS server, and small helpers it
 * needs that have nothing to do with NATS.
 *
 * A user's name (`"jobs"`) must be 1 to 200 characters from
 * `[A-Za-z0-9_-]`: valid in a stream name, a KV bucket name and a subject
 * token alike, so one name maps to one stream or bucket and nothing is
 * escaped. Layout on the server:
 *
 * | object                  | JetStream                                                                |
 * | ----------------------- | ------------------------------------------------------------------------ |
 * | `Queue("jobs")`         | work-queue stream `mpjs_q_jobs`, subject `mpjs.q.jobs`, consumer `mpjs`  |
 * | `JoinableQueue("work")` | work-queue stream `mpjs_jq_work`, subject `mpjs.jq.work`, consumer `mpjs` |
 * | `dict("scores")`        | KV bucket `mpjs_d_scores` (stream `KV_mpjs_d_scores`)                    |
 *
 * A closed queue's stream listens on `mpjs.closed.<kind>.<name>` instead
 * (so a put to the queue's subject has no stream to land in); closing also
 * publishes a core NATS message on `mpjs.notice.<kind>.<name>` that wakes
 * waiting getters in every process.
 *
 * Dict keys become KV keys as a type letter followed by the base64url of
 * their text: `s` string, `n` number (`String(n)`, so `-0` is `0`), `b`
 * bigint, `t`/`f` booleans, `z` null, `u` undefined. Two keys are the same
 * KV key exactly when a `Map` would treat them as the same key.
 *
 * @module
 */

/** The longest user name accepted. */
export const MAX_NAME = 200;
const NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Checks a queue or dict name.
 *
 * @param what The call, as the message names it: `"create cluster Queue"`.
 * @throws {TypeError} when `name` is not a string of 1 to 200 letters, digits, `-` or `_`.
 */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.length > MAX_NAME || !NAME.test(name)) {
    throw new TypeError(
      `Cannot ${what} as 'name' must be 1 to ${MAX_NAME} letters, digits, '-' or '_' (a valid stream and bucket name): current value is ${
        typeof name === "string" ? JSON.stringify(name) : String(name)
      }`,
    );
  }
  return name;
}

/** The server-side names of one queue. */
export interface QueueNames {
  stream: string;
  subject: string;
  closedSubject: string;
  notice: string;
}

/** The stream and subjects of a queue; `kind` is `"q"` (Queue) or `"jq"` (JoinableQueue). */
export function queueNames(kind: "q" | "jq", name: string): QueueNames {
  return {
    stream: `mpjs_${kind}_${name}`,
    subject: `mpjs.${kind}.${name}`,
    closedSubject: `mpjs.closed.${kind}.${name}`,
    notice: `mpjs.notice.${kind}.${name}`,
  };
}

/** The durable consumer every process of a queue shares. */
export const CONSUMER = "mpjs";

/** The KV bucket of a dict. */
export function bucketName(name: string): string {
  return `mpjs_d_${name}`;
}

/**
 * A dict key: what a `Map` accepts here (primitives, compared by value).
 *
 * @example
 * ```ts
 * import type { DictKey } from "@mpjs/multiprocessing/cluster";
 * import assert from "node:assert/strict";
 *
 * const keys: DictKey[] = ["a", 1, 2n, true, null, undefined];
 * assert.equal(new Set(keys).size, 6);
 * ```
 */
export type DictKey = string | number | bigint | boolean | null | undefined;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64Url(text: string): string {
  let bin = "";
  for (const byte of encoder.encode(text)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(b64: string): string {
  const bin = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return decoder.decode(bytes);
}

/**
 * The KV key of a dict key.
 *
 * @param what The call, as the message names it: `"dict.get()"`.
 * @throws {TypeError} when `key` is not a string, number, bigint, boolean, null or undefined.
 */
export function keyToKv(key: unknown, what: string): string {
  switch (typeof key) {
    case "string":
      return "s" + toBase64Url(key);
    case "number":
      return "n" + toBase64Url(String(key));
    case "bigint":
      return "b" + toBase64Url(String(key));
    case "boolean":
      return key ? "t" : "f";
    case "undefined":
      return "u";
  }
  if (key === null) return "z";
  throw new TypeError(
    `Cannot call ${what} as a key must be a string, number, bigint, boolean, null or undefined: current value is ${
      typeof key === "symbol" ? key.toString() : Object.prototype.toString.call(key)
    }`,
  );
}

/** The dict key of a KV key made by {@linkcode keyToKv}. */
export function keyFromKv(kvKey: string): DictKey {
  const text = kvKey.length > 1 ? fromBase64Url(kvKey.slice(1)) : "";
  switch (kvKey[0]) {
    case "s":
      return text;
    case "n":
      return Number(text);
    case "b":
      return BigInt(text);
    case "t":
      return true;
    case "f":
      return false;
    case "z":
      return null;
    default:
      return undefined;
  }
}

/** Lets the program exit while `timer` is pending. */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === "number") {
    // deno-lint-ignore no-explicit-any
    (globalThis as any).Deno?.unrefTimer?.(timer);
  } else {
    (timer as { unref?: () => void }).unref?.();
  }
}

/**
 * Waits `ms` milliseconds; rejects with the signal's reason when `signal`
 * aborts first.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
