// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * What a manager's clients (`manager.ts`) and its server thread
 * (`_manager_server.ts`) share: the control words, the frames of the
 * request and reply channels, and how a proxy is written inside a value that
 * travels to or from its own manager.
 *
 * ## Control words (`Int32Array` over one `SharedArrayBuffer`)
 *
 * | index      | written by               | Atomics op          | meaning |
 * |------------|--------------------------|---------------------|---------|
 * | `DOORBELL` | clients, the server's finalizers, `shutdown` | `add`, then `notify` if `PARKED` | bumped after each frame published; the server parks on it |
 * | `PARKED`   | server                   | `store`             | 1 while the server is parked (or about to) on `DOORBELL` |
 * | `STATE`    | `shutdown`, the server   | `store`             | `RUNNING` or `CLOSED` |
 * | `SERVER`   | the manager's owner      | `store`             | the server thread's ident (0 before it starts) |
 * | `NEXT_ID`  | clients                  | `add`               | the last object id handed out |
 * | `REGS`     | clients                  | `add`               | registrations put into the registration queue |
 * | `OBJECTS`  | server                   | `store`             | how many objects the server keeps (for tests) |
 *
 * The words sit 64 bytes apart where both sides write them often.
 * Waking: a client publishes its frame, `add`s `DOORBELL`, then reads
 * `PARKED` and notifies when it is set; the server reads `DOORBELL`, looks at
 * every channel, stores `PARKED = 1`, and parks while `DOORBELL` still holds
 * what it read. Either the client sees `PARKED` or the server's compare sees
 * the new `DOORBELL` (Dekker's pattern under sequential consistency), so no
 * request waits for a wake-up that never comes.
 *
 * ## Frames
 *
 * Each client thread has a pair of SPSC channels (`_spsc.ts`) to the server:
 * requests one way, replies the other, in order. A request is one array
 * frame `[op, id, …]`:
 *
 * | op         | frame                                   | reply |
 * |------------|-----------------------------------------|-------|
 * | `CALL`     | `[CALL, id, method, ...args]`           | yes   |
 * | `CREATE`   | `[CREATE, id, kind, init]`              | none (a failure is kept and given to the next call) |
 * | `RELEASE`  | `[RELEASE, id]`                         | none: a proxy of this thread was collected |
 * | `TRANSFER` | `[TRANSFER, id]`                        | none: a proxy left this thread inside a value |
 * | `ADOPT`    | `[ADOPT, id]`                           | none: a proxy arrived in this thread inside a value |
 * | `RETURN`   | `[RETURN, id]`                          | none: a value whose `TRANSFER` was sent did not go (a full queue) |
 *
 * A reply is one value frame, except that an error, or a value that is
 * itself a `Uint8Array`, comes as a one-byte bytes frame (`REPLY_ERROR` or
 * `REPLY_WRAPPED`) followed by the value frame: the marker's frame is the
 * only raw bytes frame ever sent, so the client tells them apart.
 *
 * ## Proxies in the server's own thread
 *
 * A proxy that reaches the server (in a request, or in a value the server's
 * objects receive some other way) becomes a proxy of the server's thread
 * whose calls the server serves in place ({@linkcode LocalServer}), with no
 * channel: the server cannot wait on itself. `manager.ts` makes those
 * proxies; the server loads it and finds its maker here
 * ({@linkcode provideLocalProxies}), so that neither module imports the other.
 *
 * @module
 */

import { addExtension } from "msgpackr/pack";
import type { SpscMemory } from "./_spsc.ts";
import { EXT } from "./_codec.ts";

/** Index of the doorbell word (see the module docs). */
export const DOORBELL = 0;
/** Index of the server's "parked" flag. */
export const PARKED = 16;
/** Index of the manager's state. */
export const STATE = 32;
/** Index of the server thread's ident. */
export const SERVER = 33;
/** Index of the object id counter. */
export const NEXT_ID = 48;
/** Index of the registration counter. */
export const REGS = 64;
/** Index of the server's object count. */
export const OBJECTS = 80;
/** Words in the control buffer. */
export const CONTROL_WORDS = 96;

/** `STATE`: serving. */
export const RUNNING = 0;
/** `STATE`: shut down; no call is served any more. */
export const CLOSED = 1;

/** Request ops (see the module docs). */
export const CALL = 1;
export const CREATE = 2;
export const RELEASE = 3;
export const TRANSFER = 4;
export const ADOPT = 5;
export const RETURN = 6;

/** Kinds of managed objects. */
export const DICT = 1;
export const LIST = 2;
export const NAMESPACE = 3;
export const CUSTOM = 4;
export type Kind = typeof DICT | typeof LIST | typeof NAMESPACE | typeof CUSTOM;

/** Reply marker: an error follows, as `[name, message, stack, remote]`. */
export const REPLY_ERROR = 0;
/** Reply marker: the value that follows is a `Uint8Array`. */
export const REPLY_WRAPPED = 1;

/** The `init` of a `CREATE` of a custom object. */
export type CustomInit = [typeid: string, module: string, exportName: string, args: unknown[]];

/** An error as it crosses in a reply: `remote` when raised by user code (it arrives as a `RemoteError`). */
export type ErrorReply = [name: string, message: string, stack: string | undefined, remote: boolean];

/** What a client puts into the manager's registration queue, once per thread. */
export interface Registration {
  /** The client thread's ident. */
  ident: number;
  /** Client → server. */
  request: SpscMemory;
  /** Server → client. */
  reply: SpscMemory;
  /** One word: frames the client published on `request` (`Atomics.store` after each). */
  sent: SharedArrayBuffer;
}

/** A proxy as written inside a value travelling to or from its own manager: its object id and kind. */
export type RefData = [id: number, kind: Kind, typeid?: string];

/** The msgpackr extension type of a {@linkcode RefData}. */
const EXT_REF = EXT.MANAGER_REF;

/** Objects the current encoding writes as {@linkcode RefData}: set by {@linkcode encodingRefs}. */
let marked: Map<object, RefData> | undefined;

/** Stands for "an object marked for this encoding" (msgpackr asks `instanceof` of each class instance). */
class RefMark {
  static [Symbol.hasInstance](v: unknown): boolean {
    return marked !== undefined && typeof v === "object" && v !== null && marked.has(v);
  }
}

/** Turns {@linkcode RefData} back into an object while a value is decoded: set by {@linkcode decodingRefs}. */
let reviver: ((data: RefData) => object) | undefined;

addExtension(
  {
    Class: RefMark,
    type: EXT_REF,
    write: (v: object) => marked!.get(v)!,
    read: (data: RefData) => {
      if (!reviver) throw new Error("Cannot decode a manager's proxy outside a call to it");
      return reviver(data);
    },
  } as Parameters<typeof addExtension>[0],
);

/**
 * Runs `encode` with `refs` as the objects to write as {@linkcode RefData}
 * (the caller's hook fills it while the value is checked).
 */
export function encodingRefs<R>(refs: Map<object, RefData>, encode: () => R): R {
  const outer = marked;
  marked = refs;
  try {
    return encode();
  } finally {
    marked = outer;
  }
}

/** Runs `decode` with `revive` rebuilding each {@linkcode RefData} met. */
export function decodingRefs<R>(revive: (data: RefData) => object, decode: () => R): R {
  const outer = reviver;
  reviver = revive;
  try {
    return decode();
  } finally {
    reviver = outer;
  }
}

/** What the server offers the proxies of its own thread: calls served in place, and holds. */
export interface LocalServer {
  /**
   * Serves `[CALL, id, method, ...args]` at once, on copies of the arguments
   * and of the result; `sync` when the caller cannot wait for a Promise.
   */
  call(frame: unknown[], sync: boolean): unknown;
  /** A hold on object `id` (one of this thread's proxies leaves inside a value). */
  hold(id: number): void;
  /** Drops a hold on object `id` (one of this thread's proxies was collected). */
  drop(id: number): void;
}

/** The proxies of one manager in its server's thread. */
export interface LocalProxies {
  /** A new proxy of object `data[0]` that holds it (the caller has counted the hold). */
  make(data: RefData): object;
  /** What `v` is when it is one of these proxies. */
  refOf(v: object): RefData | undefined;
}

/** Binds a manager's proxies in this thread (`linkData` as `manager.ts` sends it) to its server. */
export type BindLocalProxies = (linkData: unknown, server: LocalServer) => LocalProxies;

let binder: BindLocalProxies | undefined;

/** Called by `manager.ts` as it loads. */
export function provideLocalProxies(bind: BindLocalProxies): void {
  binder = bind;
}

/** The binder `manager.ts` provided, once it is loaded in this thread. */
export function localProxiesBinder(): BindLocalProxies | undefined {
  return binder;
}
