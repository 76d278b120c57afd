// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Manager`: Python's `multiprocessing.Manager()` (`SyncManager`,
 * `BaseManager`). Objects live in one place, the manager's server thread,
 * and every thread uses them through proxies: `dict`, `list`, `Namespace`,
 * and instances of classes you register.
 *
 * - `new Manager()` starts the server thread at once. It is a daemon thread:
 *   it never keeps the program alive. `shutdown()` (or `await using`) ends
 *   it; so does collecting the `Manager` object once no proxy made by it is
 *   left in its thread (as Python's manager shuts down when collected).
 * - Proxies are handles: pass them in a thread's `args`, in queue items, pipe
 *   messages, pool tasks and results, or store them inside another managed
 *   object; whoever receives one can use it at once. A registered class's
 *   method gets the proxies in its arguments (at any depth) as proxies it
 *   can keep, return, or call: such a call is served at once, in the server
 *   thread, on copies of its values (a `Sync` call of a method that returns
 *   a Promise throws there: await the async twin).
 * - Every method comes async (`get`) and blocking (`getSync`, in threads and
 *   in the main thread of Deno, Bun and Node). A call is one request and one
 *   reply over a pair of shared-memory channels between the calling thread
 *   and the server (made the first time a thread calls); the server serves
 *   the threads round robin, one call at a time, and parks when idle.
 * - Values are those a `Queue` carries; one that cannot cross throws a
 *   `TypeError` naming where it sits, before anything changes.
 * - After `shutdown()`, or if the server thread dies, every pending and
 *   later call fails with `ClosedError` naming the manager.
 * - An object is freed once no proxy to it is left in any thread (each
 *   thread releases its proxies as they are collected) and no value in
 *   flight names it.
 *
 * `manager.Queue()`, `Lock()`, `Value()`, … return the library's plain
 * shared objects: they already live in shared memory, so a proxy would only
 * slow them down.
 *
 * @example A dictionary shared with a thread
 * ```ts
 * import { Manager, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const d = manager.dict<string, number>();
 * const t = new Thread({ target: (d: { setSync(k: string, v: number): void }) => d.setSync("answer", 42), args: [d] });
 * t.start();
 * await t.join();
 * assert.equal(await d.get("answer"), 42);
 * ```
 *
 * @module
 */

import { handlerFor, handlerForTag, registerHandler } from "./_handles.ts";
import { checkOptions, show } from "./_options.ts";
import { shareHandles } from "./_post.ts";
import { isIdentAlive, newHandleId, nextNameNumber, selfIdent } from "./_registry.ts";
import { NONE, SpscChannel } from "./_spsc.ts";
import { assertCanBlock, SLICE } from "./_wait.ts";
import { ClosedError, IndexError, KeyError, RemoteError } from "./errors.ts";
import { JoinableQueue, Queue } from "./queue.ts";
import {
  Barrier,
  type BarrierOptions,
  BoundedSemaphore,
  Condition,
  type ConditionLock,
  Event,
  Lock,
  RLock,
  Semaphore,
} from "./sync.ts";
import { type ElementType, type InputOf, SharedArray, SharedValue } from "./shared.ts";
import { Thread } from "./thread.ts";
import {
  ADOPT,
  CALL,
  CLOSED,
  CONTROL_WORDS,
  CREATE,
  CUSTOM,
  type CustomInit,
  decodingRefs,
  DICT,
  DOORBELL,
  encodingRefs,
  type ErrorReply,
  type Kind,
  LIST,
  type LocalServer,
  NAMESPACE,
  NEXT_ID,
  OBJECTS,
  PARKED,
  provideLocalProxies,
  type RefData,
  type Registration,
  REGS,
  RELEASE,
  REPLY_WRAPPED,
  RETURN,
  SERVER,
  STATE,
  TRANSFER,
} from "./_manager_protocol.ts";
import { serveManager, SERVER_MODULE } from "./_manager_server.ts";

/** How long (ms) an async call watches for its reply before it parks. */
const ASYNC_WATCH_MS = 0.02;
/** Bytes of each channel's first ring (it grows as needed). */
const CHANNEL_BYTES = 1 << 12;

// ## Links: what a thread knows of a manager

/** What crosses of a manager inside a proxy's data. */
interface LinkData {
  key: number;
  name: string;
  control: SharedArrayBuffer;
  registrations: unknown;
}

/** What a proxy calls: its thread's channels to the server, or the server itself in its own thread. */
interface Caller {
  callSync(what: string, frame: unknown[]): unknown;
  call(what: string, frame: unknown[]): Promise<unknown>;
}

/** A manager as one thread sees it (one per manager per thread). */
interface AnyLink {
  readonly key: number;
  readonly name: string;
  data(): LinkData;
  /** Why calls fail now, or `undefined` while the server serves. */
  closedReason(): string | undefined;
  closedError(what: string): ClosedError;
  client(): Caller;
  /** Tells the server of a frame that gets no reply (`RELEASE`, `TRANSFER`, `RETURN`), unless the manager is closed. */
  notice(op: number, id: number): void;
  /** A proxy of object `id` arrived inside a value: its `TRANSFER` hold becomes this thread's. */
  adopt(id: number): void;
}

function closedReasonOf(c: Int32Array): string | undefined {
  if (Atomics.load(c, STATE) === CLOSED) return "is shut down";
  const server = Atomics.load(c, SERVER);
  if (server !== 0 && !isIdentAlive(server)) return "has lost its server thread";
  return undefined;
}

function closedErrorOf(link: AnyLink, what: string): ClosedError {
  return new ClosedError(`Cannot call ${what}: the manager ${link.name} ${link.closedReason() ?? "is shut down"}`);
}

/** A manager as a client thread sees it. */
class Link implements AnyLink {
  readonly key: number;
  readonly name: string;
  readonly c: Int32Array;
  readonly registrations: Queue<Registration>;
  readonly #data: LinkData;
  /**
   * Proxies that arrived in values, whose `ADOPT` goes out before this
   * thread's next frame, and at the latest once the code that received
   * them yields (a microtask): a thread that dies later has told the
   * server what it held.
   */
  adopts: number[] = [];
  #client: Client | undefined;

  constructor(data: LinkData, registrations: Queue<Registration>) {
    this.key = data.key;
    this.name = data.name;
    this.c = new Int32Array(data.control);
    this.registrations = registrations;
    this.#data = data;
  }

  /** Uses channels registered already (the manager's own thread registers with the server's start). */
  adoptClient(client: Client): void {
    this.#client = client;
  }

  data(): LinkData {
    return this.#data;
  }

  closedReason(): string | undefined {
    return closedReasonOf(this.c);
  }

  closedError(what: string): ClosedError {
    return closedErrorOf(this, what);
  }

  /** This thread's channels to the server, registered on first use. */
  client(): Client {
    if (this.#client) return this.#client;
    const reg = newRegistration();
    this.registrations.putNowait(reg.registration);
    Atomics.add(this.c, REGS, 1);
    this.#client = reg.client(this);
    return this.#client;
  }

  notice(op: number, id: number): void {
    if (this.closedReason() !== undefined) return;
    this.client().send([op, id], "frame");
  }

  adopt(id: number): void {
    this.adopts.push(id);
    if (this.adopts.length === 1) queueMicrotask(() => this.#flushAdopts());
  }

  #flushAdopts(): void {
    if (this.adopts.length === 0 || this.closedReason() !== undefined) return;
    try {
      this.client().flushAdopts();
    } catch {
      // No channels in this thread (no mailbox): the next frame, if any, carries them.
    }
  }
}

/**
 * A manager as its server's own thread sees it: calls are served in place
 * (see `_manager_protocol.ts`), holds counted directly.
 */
class LocalLink implements AnyLink {
  readonly key: number;
  readonly name: string;
  readonly #c: Int32Array;
  readonly #data: LinkData;
  readonly #server: LocalServer;
  readonly #caller: Caller;

  constructor(data: LinkData, server: LocalServer) {
    this.key = data.key;
    this.name = data.name;
    this.#c = new Int32Array(data.control);
    this.#data = data;
    this.#server = server;
    this.#caller = {
      callSync: (what, frame) => {
        if (this.closedReason() !== undefined) throw this.closedError(what);
        return server.call(frame, true);
      },
      call: (what, frame) => {
        try {
          if (this.closedReason() !== undefined) throw this.closedError(what);
          return Promise.resolve(server.call(frame, false));
        } catch (e) {
          return Promise.reject(e);
        }
      },
    };
  }

  data(): LinkData {
    return this.#data;
  }

  closedReason(): string | undefined {
    return closedReasonOf(this.#c);
  }

  closedError(what: string): ClosedError {
    return closedErrorOf(this, what);
  }

  client(): Caller {
    return this.#caller;
  }

  notice(op: number, id: number): void {
    if (this.closedReason() !== undefined) return;
    if (op === TRANSFER) this.#server.hold(id);
    else this.#server.drop(id);
  }

  adopt(_id: number): void {
    // The TRANSFER hold is this proxy's: its finalizer drops it.
  }
}

/** This thread's links, by manager key. */
const links = new Map<number, AnyLink>();

provideLocalProxies((linkData, server) => {
  const data = linkData as LinkData;
  const link = new LocalLink(data, server);
  links.set(data.key, link);
  return {
    make: ([id, kind, typeid]) => makeProxy(link, id, kind, typeid, undefined),
    refOf: (v) => {
      const s = states.get(v);
      return s === undefined || s.link !== link ? undefined : refData(s);
    },
  };
});

function linkFor(data: LinkData): AnyLink {
  let link = links.get(data.key);
  if (!link) {
    const handler = handlerForTag("Queue")!;
    link = new Link(data, handler.deserialize(data.registrations) as Queue<Registration>);
    links.set(data.key, link);
  }
  return link;
}

function newRegistration(): { registration: Registration; client: (link: Link) => Client } {
  const request = SpscChannel.create(CHANNEL_BYTES);
  const reply = SpscChannel.create(CHANNEL_BYTES);
  const sent = new SharedArrayBuffer(4);
  return {
    registration: { ident: selfIdent(), request, reply, sent },
    client: (link) => new Client(link, request, reply, sent),
  };
}

// ## Clients: one thread's channels to one manager

/** A call waiting for its reply. */
interface Waiter {
  resolve?: (value: unknown) => void;
  reject?: (error: unknown) => void;
  /** The name of the call, for errors. */
  what: string;
}

/** Set by `#read` when the reply was an error. */
let replyFailed = false;

class Client {
  readonly link: Link;
  readonly #req: SpscChannel;
  readonly #rep: SpscChannel;
  readonly #sentWord: Int32Array;
  #sent = 0;
  readonly #waiters: Waiter[] = [];
  /** The marker of a reply whose value frame has not come yet, or -1. */
  #marker = -1;
  #pumping = false;
  readonly #refs = new Map<object, RefData>();
  readonly #hook = (v: object, path: string): boolean => {
    const s = states.get(v);
    if (s !== undefined && s.link === this.link) {
      this.#refs.set(v, refData(s));
      return true;
    }
    return shareHandles(v, path);
  };
  readonly #recv = (): unknown => this.#rep.recv();
  readonly #revive = (data: RefData): object => {
    const [id, kind, typeid] = data;
    return makeProxy(this.link, id, kind, typeid, undefined);
  };

  constructor(
    link: Link,
    req: import("./_spsc.ts").SpscMemory,
    rep: import("./_spsc.ts").SpscMemory,
    sent: SharedArrayBuffer,
  ) {
    this.link = link;
    this.#req = new SpscChannel(req);
    this.#rep = new SpscChannel(rep);
    this.#sentWord = new Int32Array(sent);
  }

  /**
   * Publishes one frame and rings the server's doorbell.
   *
   * @throws {TypeError} when the frame cannot be encoded; nothing is sent.
   */
  send(frame: unknown[], path: string): void {
    this.#publishAdopts();
    this.#publish(frame, path);
    this.#ring();
  }

  /** Publishes the `ADOPT`s waiting in the link, if any, and rings the server's doorbell. */
  flushAdopts(): void {
    if (this.link.adopts.length === 0) return;
    this.#publishAdopts();
    this.#ring();
  }

  #publishAdopts(): void {
    const link = this.link;
    if (link.adopts.length === 0) return;
    const adopts = link.adopts;
    link.adopts = [];
    for (const id of adopts) this.#publish([ADOPT, id], "frame");
  }

  #ring(): void {
    const c = this.link.c;
    Atomics.add(c, DOORBELL, 1);
    if (Atomics.load(c, PARKED) !== 0) Atomics.notify(c, DOORBELL);
  }

  #publish(frame: unknown[], path: string): void {
    const refs = this.#refs;
    try {
      encodingRefs(refs, () => this.#req.send(frame, path, this.#hook));
    } finally {
      refs.clear();
    }
    Atomics.store(this.#sentWord, 0, ++this.#sent);
  }

  /** The next reply, or `NONE` when it has not come; an error reply sets `replyFailed`. */
  #read(): unknown {
    if (this.#marker < 0) {
      const v = decodingRefs(this.#revive, this.#recv);
      if (v === NONE || !(v instanceof Uint8Array)) {
        replyFailed = false;
        return v;
      }
      this.#marker = v[0];
    }
    const v = decodingRefs(this.#revive, this.#recv);
    if (v === NONE) return NONE;
    replyFailed = this.#marker !== REPLY_WRAPPED;
    this.#marker = -1;
    return replyFailed ? rebuildError(v as ErrorReply) : v;
  }

  /** Rejects every waiting call: the manager is closed. */
  #failAll(): void {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.reject?.(this.link.closedError(w.what));
  }

  /** Settles the oldest waiting call with the reply just read. */
  #settle(value: unknown): Waiter {
    const w = this.#waiters.shift()!;
    if (replyFailed) w.reject?.(value);
    else w.resolve?.(value);
    return w;
  }

  callSync(what: string, frame: unknown[]): unknown {
    assertCanBlock(what);
    if (this.link.closedReason() !== undefined) throw this.link.closedError(what);
    this.send(frame, "args");
    const me: Waiter = { what };
    this.#waiters.push(me);
    for (;;) {
      let v = this.#read();
      if (v === NONE) {
        if (this.link.closedReason() !== undefined) {
          // A reply published before the close still counts.
          v = this.#read();
          if (v === NONE) {
            this.#failAll();
            throw this.link.closedError(what);
          }
        } else {
          this.#rep.waitSync(SLICE);
          continue;
        }
      }
      const w = this.#waiters[0];
      if (w !== me) {
        this.#settle(v);
        continue;
      }
      this.#waiters.shift();
      if (replyFailed) throw v;
      return v;
    }
  }

  call(what: string, frame: unknown[]): Promise<unknown> {
    if (this.link.closedReason() !== undefined) return Promise.reject(this.link.closedError(what));
    try {
      this.send(frame, "args");
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject, what });
      if (!this.#pumping) void this.#pump();
    });
  }

  /**
   * Watches for a reply for a few microseconds before an async wait parks:
   * the server usually answers within that, and a park and wake-up costs
   * tens (the event loop is held up no longer than that).
   */
  #watch(): boolean {
    const rep = this.#rep;
    const t0 = performance.now();
    do {
      for (let i = 0; i < 64; i++) if (rep.ready()) return true;
    } while (performance.now() - t0 < ASYNC_WATCH_MS);
    return false;
  }

  /** Reads replies for the waiting async calls until none is left. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#waiters.length > 0) {
        const v = this.#read();
        if (v !== NONE) {
          this.#settle(v);
          continue;
        }
        if (this.link.closedReason() !== undefined) {
          const last = this.#read();
          if (last !== NONE) {
            this.#settle(last);
            continue;
          }
          this.#failAll();
          return;
        }
        if (!this.#watch()) await this.#rep.wait(SLICE);
      }
    } finally {
      this.#pumping = false;
    }
  }
}

function rebuildError([name, message, stack, remote]: ErrorReply): Error {
  if (remote) return new RemoteError({ name, message, stack });
  const Cls = name === "KeyError"
    ? KeyError
    : name === "IndexError"
    ? IndexError
    : name === "TypeError"
    ? TypeError
    : name === "RangeError"
    ? RangeError
    : Error;
  const e = new Cls(message);
  if (e.name !== name) e.name = name;
  return e;
}

// ## Proxies

/** What a proxy knows: its manager, its object, and (in the manager's thread) the manager, which it keeps alive. */
interface ProxyState {
  link: AnyLink;
  id: number;
  kind: Kind;
  typeid: string | undefined;
  owner: Manager | undefined;
}

function refData(s: ProxyState): RefData {
  return s.typeid === undefined ? [s.id, s.kind] : [s.id, s.kind, s.typeid];
}

/** Every proxy of this thread (the objects users hold), with its state. */
const states = new WeakMap<object, ProxyState>();

/** When a proxy is collected, its hold on the object is released. */
const released = new FinalizationRegistry<[AnyLink, number]>(([link, id]) => {
  try {
    link.notice(RELEASE, id);
  } catch {
    // The thread's channels could not be made (no mailbox): nothing holds anything.
  }
});

function makeProxy(
  link: AnyLink,
  id: number,
  kind: Kind,
  typeid: string | undefined,
  owner: Manager | undefined,
): object {
  const state: ProxyState = { link, id, kind, typeid, owner };
  const proxy = kind === DICT
    ? Object.create(DictProxy.prototype)
    : kind === LIST
    ? Object.create(ListProxy.prototype)
    : kind === NAMESPACE
    ? namespaceProxy()
    : customProxy(typeid ?? "object");
  states.set(proxy, state);
  if (kind === NAMESPACE || kind === CUSTOM) states.set(targets.get(proxy)!, state);
  released.register(proxy, [link, id]);
  return proxy;
}

/** The wrapped object behind a `Proxy`-based proxy (Namespace, custom). */
const targets = new WeakMap<object, object>();

function stateOf(proxy: object, what: string): ProxyState {
  const s = states.get(proxy);
  if (!s) throw new TypeError(`Cannot call ${what}: this object was not made by a Manager`);
  return s;
}

function callSync(
  proxy: object,
  cls: string,
  method: string,
  args: unknown[],
  what = `${cls}.${method}Sync()`,
): unknown {
  const s = stateOf(proxy, what);
  try {
    return s.link.client().callSync(what, [CALL, s.id, method, ...args]);
  } catch (e) {
    throw renamePath(e, cls, method);
  }
}

function callAsync(
  proxy: object,
  cls: string,
  method: string,
  args: unknown[],
  what = `${cls}.${method}()`,
): Promise<unknown> {
  let s: ProxyState;
  try {
    s = stateOf(proxy, what);
    return s.link.client().call(what, [CALL, s.id, method, ...args]).catch((e) => {
      throw renamePath(e, cls, method);
    });
  } catch (e) {
    return Promise.reject(renamePath(e, cls, method));
  }
}

/** Names the argument in a codec error: `args[4]` of a frame is the method's second argument. */
function renamePath(e: unknown, cls: string, method: string): unknown {
  if (!(e instanceof TypeError) || !e.message.includes("args[")) return e;
  const out = new TypeError(
    e.message.replace(/args\[(\d+)\]/, (_, n) => `${cls}.${method}() args[${Number(n) - 3}]`),
  );
  return out;
}

/**
 * The keys a managed dictionary takes: primitives, compared by value.
 *
 * @example Every kind of key
 * ```ts
 * import { type DictKey, Manager } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const d = manager.dict<DictKey, string>();
 * for (const key of ["a", 1, 2n, true, null, undefined]) await d.set(key, String(key));
 * assert.equal(await d.size(), 6);
 * assert.equal(await d.get(2n), "2");
 * ```
 */
export type DictKey = string | number | bigint | boolean | null | undefined;

function checkKey(key: unknown, what: string): void {
  const t = typeof key;
  if (t === "string" || t === "number" || t === "bigint" || t === "boolean" || key === null || key === undefined) {
    return;
  }
  throw new TypeError(
    `Cannot call ${what} as the key must be a string, number, bigint, boolean, null or undefined: current value is ${
      t === "object" ? Object.prototype.toString.call(key) : t
    }`,
  );
}

function checkIndex(i: unknown, what: string, name = "index"): void {
  if (!Number.isInteger(i)) {
    throw new TypeError(`Cannot call ${what} as '${name}' must be an integer: current value is ${String(i)}`);
  }
}

/** Entries from an object, a `Map` or an iterable of `[key, value]` pairs, keys checked. */
function entriesOf(init: unknown, what: string): [unknown, unknown][] {
  let entries: [unknown, unknown][];
  if (init instanceof Map) entries = [...init];
  else if (init !== null && typeof init === "object" && Symbol.iterator in init) {
    entries = [...(init as Iterable<[unknown, unknown]>)];
    for (const e of entries) {
      if (!Array.isArray(e) || e.length !== 2) {
        throw new TypeError(`Cannot call ${what} as each entry must be a [key, value] pair`);
      }
    }
  } else if (init !== null && typeof init === "object") entries = Object.entries(init);
  else throw new TypeError(`Cannot call ${what} as the argument must be an object, a Map or [key, value] pairs`);
  for (const [k] of entries) checkKey(k, what);
  return entries;
}

/**
 * Defines `name` and `nameSync` on `cls.prototype` from one body that checks
 * and shapes the arguments (by default none are sent: extra arguments are
 * ignored).
 */
function method(
  cls: { prototype: object; name: string },
  name: string,
  shape: (args: unknown[], what: string) => unknown[] = () => [],
): void {
  const clsName = cls.name;
  const what = `${clsName}.${name}()`;
  const whatSync = `${clsName}.${name}Sync()`;
  Object.defineProperty(cls.prototype, name, {
    value: function (this: object, ...args: unknown[]) {
      try {
        args = shape(args, what);
      } catch (e) {
        return Promise.reject(e);
      }
      return callAsync(this, clsName, name, args, what);
    },
    writable: true,
    configurable: true,
  });
  Object.defineProperty(cls.prototype, `${name}Sync`, {
    value: function (this: object, ...args: unknown[]) {
      args = shape(args, whatSync);
      return callSync(this, clsName, name, args, whatSync);
    },
    writable: true,
    configurable: true,
  });
}

/**
 * A proxy for a dictionary kept by a {@linkcode Manager}, as Python's
 * `DictProxy`: made with `manager.dict()`. Keys are strings, numbers,
 * bigints, booleans, `null` and `undefined`; values are anything a `Queue`
 * carries, proxies included. Every method has a blocking `Sync` twin.
 *
 * @typeParam K The key type.
 * @typeParam V The value type.
 *
 * @example
 * ```ts
 * import { KeyError, Manager } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const d = manager.dict<string, number>({ a: 1 });
 * await d.set("b", 2);
 * assert.equal(await d.get("b"), 2);
 * assert.equal(await d.get("zz", 0), 0);
 * assert.deepEqual(await d.keys(), ["a", "b"]);
 * await assert.rejects(d.delete("zz"), KeyError);
 * ```
 */
export class DictProxy<K extends DictKey = DictKey, V = unknown> implements AsyncIterable<[K, V]> {
  /** Proxies are made by a {@linkcode Manager} (`manager.dict()`), not with `new`. */
  protected constructor() {
    throw new TypeError("Cannot create a DictProxy with 'new': use manager.dict()");
  }
  /** The value for `key`, or `defaultValue` when it is missing (Python's `d.get(key, default)`). */
  declare get: (key: K, defaultValue?: V) => Promise<V | undefined>;
  /** Blocking twin of {@linkcode DictProxy.get}. */
  declare getSync: (key: K, defaultValue?: V) => V | undefined;
  /** Sets `key` to `value` (`d[key] = value`). */
  declare set: (key: K, value: V) => Promise<void>;
  /** Blocking twin of {@linkcode DictProxy.set}. */
  declare setSync: (key: K, value: V) => void;
  /** Whether `key` is there (`key in d`). */
  declare has: (key: K) => Promise<boolean>;
  /** Blocking twin of {@linkcode DictProxy.has}. */
  declare hasSync: (key: K) => boolean;
  /** Removes `key` (`del d[key]`); a missing key rejects with `KeyError`. */
  declare delete: (key: K) => Promise<void>;
  /** Blocking twin of {@linkcode DictProxy.delete}. */
  declare deleteSync: (key: K) => void;
  /** How many keys (`len(d)`). */
  declare size: () => Promise<number>;
  /** Blocking twin of {@linkcode DictProxy.size}. */
  declare sizeSync: () => number;
  /** The keys, in insertion order. */
  declare keys: () => Promise<K[]>;
  /** Blocking twin of {@linkcode DictProxy.keys}. */
  declare keysSync: () => K[];
  /** The values, in insertion order. */
  declare values: () => Promise<V[]>;
  /** Blocking twin of {@linkcode DictProxy.values}. */
  declare valuesSync: () => V[];
  /** The `[key, value]` pairs, in insertion order. */
  declare items: () => Promise<[K, V][]>;
  /** Blocking twin of {@linkcode DictProxy.items}. */
  declare itemsSync: () => [K, V][];
  /** Sets every entry of an object, a `Map` or an iterable of pairs. */
  declare update: (entries: Record<string, V> | Map<K, V> | Iterable<[K, V]>) => Promise<void>;
  /** Blocking twin of {@linkcode DictProxy.update}. */
  declare updateSync: (entries: Record<string, V> | Map<K, V> | Iterable<[K, V]>) => void;
  /** The value for `key`, setting it to `defaultValue` first when it is missing. */
  declare setdefault: (key: K, defaultValue: V) => Promise<V>;
  /** Blocking twin of {@linkcode DictProxy.setdefault}. */
  declare setdefaultSync: (key: K, defaultValue: V) => V;
  /** Removes `key` and returns its value; when missing, `defaultValue` if given, else `KeyError`. */
  declare pop: (key: K, defaultValue?: V) => Promise<V>;
  /** Blocking twin of {@linkcode DictProxy.pop}. */
  declare popSync: (key: K, defaultValue?: V) => V;
  /** Removes and returns the last inserted pair; `KeyError` when empty. */
  declare popitem: () => Promise<[K, V]>;
  /** Blocking twin of {@linkcode DictProxy.popitem}. */
  declare popitemSync: () => [K, V];
  /** Removes every key. */
  declare clear: () => Promise<void>;
  /** Blocking twin of {@linkcode DictProxy.clear}. */
  declare clearSync: () => void;
  /** A snapshot as a plain `Map`. */
  declare copy: () => Promise<Map<K, V>>;
  /** Blocking twin of {@linkcode DictProxy.copy}. */
  declare copySync: () => Map<K, V>;

  /** Iterates over a snapshot of the pairs. */
  async *[Symbol.asyncIterator](): AsyncIterator<[K, V]> {
    yield* await this.items();
  }

  /** `DictProxy(#id)`. */
  toString(): string {
    return `DictProxy(#${states.get(this)?.id})`;
  }
}

/** The key, then up to `more` arguments (as many as were given: `pop` tells a missing default by the count). */
function keyArgs(more: number): (args: unknown[], what: string) => unknown[] {
  return (args, what) => {
    checkKey(args[0], what);
    return args.slice(0, Math.max(1, Math.min(args.length, 1 + more)));
  };
}
for (const name of ["has", "delete"]) method(DictProxy, name, keyArgs(0));
for (const name of ["get", "set", "setdefault", "pop"]) method(DictProxy, name, keyArgs(1));
for (const name of ["size", "keys", "values", "items", "popitem", "clear", "copy"]) method(DictProxy, name);
method(DictProxy, "update", (args, what) => [entriesOf(args[0], what)]);

/**
 * A proxy for a list kept by a {@linkcode Manager}, as Python's `ListProxy`:
 * made with `manager.list()`. Indexes may be negative (counted from the
 * end); out of range gives `IndexError`. Every method has a blocking `Sync`
 * twin.
 *
 * @typeParam T The item type.
 *
 * @example
 * ```ts
 * import { IndexError, Manager } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const l = manager.list<number>([3, 1]);
 * await l.append(2);
 * assert.equal(await l.get(-1), 2);
 * await l.sort();
 * assert.deepEqual(await l.toArray(), [1, 2, 3]);
 * await assert.rejects(l.get(5), IndexError);
 * ```
 */
export class ListProxy<T = unknown> implements AsyncIterable<T> {
  /** Proxies are made by a {@linkcode Manager} (`manager.list()`), not with `new`. */
  protected constructor() {
    throw new TypeError("Cannot create a ListProxy with 'new': use manager.list()");
  }
  /** The item at `index` (`l[i]`). */
  declare get: (index: number) => Promise<T>;
  /** Blocking twin of {@linkcode ListProxy.get}. */
  declare getSync: (index: number) => T;
  /** Sets the item at `index` (`l[i] = v`). */
  declare set: (index: number, value: T) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.set}. */
  declare setSync: (index: number, value: T) => void;
  /** Adds `value` at the end. */
  declare append: (value: T) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.append}. */
  declare appendSync: (value: T) => void;
  /** Adds every item of `values` at the end. */
  declare extend: (values: Iterable<T>) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.extend}. */
  declare extendSync: (values: Iterable<T>) => void;
  /** Inserts `value` before `index` (clamped, as Python's). */
  declare insert: (index: number, value: T) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.insert}. */
  declare insertSync: (index: number, value: T) => void;
  /** Removes and returns the item at `index` (default the last). */
  declare pop: (index?: number) => Promise<T>;
  /** Blocking twin of {@linkcode ListProxy.pop}. */
  declare popSync: (index?: number) => T;
  /** Removes the first item equal to `value` (structurally); an `Error` named `ValueError` when none is. */
  declare remove: (value: T) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.remove}. */
  declare removeSync: (value: T) => void;
  /** The index of the first item equal to `value` in `[start, end)`; `ValueError` when none is. */
  declare index: (value: T, start?: number, end?: number) => Promise<number>;
  /** Blocking twin of {@linkcode ListProxy.index}. */
  declare indexSync: (value: T, start?: number, end?: number) => number;
  /** How many items equal `value`. */
  declare count: (value: T) => Promise<number>;
  /** Blocking twin of {@linkcode ListProxy.count}. */
  declare countSync: (value: T) => number;
  /** How many items (`len(l)`). */
  declare length: () => Promise<number>;
  /** Blocking twin of {@linkcode ListProxy.length}. */
  declare lengthSync: () => number;
  /** A copy of `l[start:end]`. */
  declare slice: (start?: number, end?: number) => Promise<T[]>;
  /** Blocking twin of {@linkcode ListProxy.slice}. */
  declare sliceSync: (start?: number, end?: number) => T[];
  /** Reverses the list in place. */
  declare reverse: () => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.reverse}. */
  declare reverseSync: () => void;
  /**
   * Sorts in place, stably, in Python's order (numbers with numbers, strings
   * with strings; mixing them is a `TypeError`). A `key` function cannot
   * cross threads: sort a copy locally for that.
   */
  declare sort: (options?: { reverse?: boolean }) => Promise<void>;
  /** Blocking twin of {@linkcode ListProxy.sort}. */
  declare sortSync: (options?: { reverse?: boolean }) => void;
  /** A copy of the whole list. */
  declare toArray: () => Promise<T[]>;
  /** Blocking twin of {@linkcode ListProxy.toArray}. */
  declare toArraySync: () => T[];

  /** Iterates over a snapshot of the items. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.toArray();
  }

  /** `ListProxy(#id)`. */
  toString(): string {
    return `ListProxy(#${states.get(this)?.id})`;
  }
}

method(ListProxy, "get", (args, what) => {
  checkIndex(args[0], what);
  return [args[0]];
});
method(ListProxy, "set", (args, what) => {
  checkIndex(args[0], what);
  return [args[0], args[1]];
});
method(ListProxy, "insert", (args, what) => {
  checkIndex(args[0], what);
  return [args[0], args[1]];
});
method(ListProxy, "pop", (args, what) => {
  if (args[0] === undefined) return [];
  checkIndex(args[0], what);
  return [args[0]];
});
method(ListProxy, "extend", (args, what) => {
  const v = args[0];
  if (v === null || typeof v !== "object" || !(Symbol.iterator in v)) {
    throw new TypeError(`Cannot call ${what} as 'values' must be iterable`);
  }
  return [Array.isArray(v) ? v : [...(v as Iterable<unknown>)]];
});
method(ListProxy, "index", (args, what) => {
  if (args[1] !== undefined) checkIndex(args[1], what, "start");
  if (args[2] !== undefined) checkIndex(args[2], what, "end");
  return args.slice(0, 3);
});
method(ListProxy, "slice", (args, what) => {
  if (args[0] !== undefined) checkIndex(args[0], what, "start");
  if (args[1] !== undefined) checkIndex(args[1], what, "end");
  return args.slice(0, 2);
});
method(ListProxy, "sort", (args, what) => {
  const options = (args[0] ?? {}) as { key?: unknown; reverse?: unknown };
  if (options.key !== undefined) {
    throw new TypeError(`Cannot call ${what} with a 'key' function: functions cannot cross threads`);
  }
  return [options.reverse === true];
});
for (const name of ["append", "remove", "count"]) method(ListProxy, name, (args) => [args[0]]);
for (const name of ["length", "reverse", "toArray"]) method(ListProxy, name);

/**
 * A proxy for a namespace kept by a {@linkcode Manager}, as Python's
 * `Namespace`: made with `manager.Namespace()`. `get(name)`/`set(name, value)`
 * (and their `Sync` twins) work everywhere; where blocking is allowed
 * (threads, and the main thread of Deno, Bun and Node) plain attribute
 * access works too and waits: `ns.x = 1; ns.x`. A missing attribute reads as
 * `undefined`. Names of the proxy's own methods (`get`, `set`, `has`,
 * `delete`, `toObject` and their twins) are reached through `get`/`set` only.
 *
 * @example
 * ```ts
 * import { Manager } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const ns = manager.Namespace();
 * ns.x = 1;
 * await ns.set("y", 2);
 * assert.equal(ns.x, 1);
 * assert.deepEqual(await ns.toObject(), { x: 1, y: 2 });
 * ```
 */
export class NamespaceProxy {
  /** Proxies are made by a {@linkcode Manager} (`manager.Namespace()`), not with `new`. */
  protected constructor() {
    throw new TypeError("Cannot create a NamespaceProxy with 'new': use manager.Namespace()");
  }
  /** The attribute `name`, or `undefined`. */
  declare get: (name: string) => Promise<unknown>;
  /** Blocking twin of {@linkcode NamespaceProxy.get}. */
  declare getSync: (name: string) => unknown;
  /** Sets the attribute `name`. */
  declare set: (name: string, value: unknown) => Promise<void>;
  /** Blocking twin of {@linkcode NamespaceProxy.set}. */
  declare setSync: (name: string, value: unknown) => void;
  /** Whether the attribute `name` is set. */
  declare has: (name: string) => Promise<boolean>;
  /** Blocking twin of {@linkcode NamespaceProxy.has}. */
  declare hasSync: (name: string) => boolean;
  /** Removes the attribute `name`; whether it was there. */
  declare delete: (name: string) => Promise<boolean>;
  /** Blocking twin of {@linkcode NamespaceProxy.delete}. */
  declare deleteSync: (name: string) => boolean;
  /** Every attribute, as a plain object. */
  declare toObject: () => Promise<Record<string, unknown>>;
  /** Blocking twin of {@linkcode NamespaceProxy.toObject}. */
  declare toObjectSync: () => Record<string, unknown>;
}

const nameArg = (args: unknown[], what: string) => {
  if (typeof args[0] !== "string") {
    throw new TypeError(`Cannot call ${what} as 'name' must be a string: current value is ${String(args[0])}`);
  }
  return args.slice(0, 2);
};
for (const name of ["get", "has", "delete"]) {
  method(NamespaceProxy, name, (args, what) => nameArg(args, what).slice(0, 1));
}
method(NamespaceProxy, "set", nameArg);
method(NamespaceProxy, "toObject");

/**
 * A namespace proxy's type: its methods, and its attributes.
 *
 * @example
 * ```ts
 * import { Manager, type Namespace } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const ns: Namespace = manager.Namespace({ x: 1 });
 * ns.y = 2;
 * assert.deepEqual(await ns.toObject(), { x: 1, y: 2 });
 * ```
 */
export type Namespace = NamespaceProxy & Record<string, unknown>;

function namespaceProxy(): object {
  const target = Object.create(NamespaceProxy.prototype) as NamespaceProxy;
  const proxy = new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === "symbol" || prop in t || prop === "then") return Reflect.get(t, prop, receiver);
      return callSync(receiver, "NamespaceProxy", "get", [prop]);
    },
    set(t, prop, value, receiver) {
      if (typeof prop === "symbol" || prop in t) {
        throw new TypeError(
          `Cannot set '${String(prop)}' on a NamespaceProxy by assignment: use set('${String(prop)}', value)`,
        );
      }
      callSync(receiver, "NamespaceProxy", "set", [prop, value]);
      return true;
    },
    deleteProperty(t, prop) {
      if (typeof prop === "symbol" || prop in t) return false;
      callSync(proxy, "NamespaceProxy", "delete", [prop]);
      return true;
    },
  });
  targets.set(proxy, target);
  return proxy;
}

/**
 * A proxy for an instance of a class registered with
 * {@linkcode Manager.register}, made with `manager.create(typeid, ...args)`
 * (untyped; see {@linkcode ProxyOf} for a typed one): `proxy.name(...args)`
 * calls the instance's method `name` in the server thread and resolves with
 * its result; `proxy.nameSync(...args)` waits for it. Calls are served one at
 * a time. An error thrown by the method arrives as a `RemoteError`. Methods
 * whose names start with `_` are not exposed (as in Python), nor those of
 * `Object.prototype` (`toString`, …).
 *
 * @example
 * ```ts
 * import type { ObjectProxy } from "@mpjs/multiprocessing";
 *
 * async function bump(counter: ObjectProxy): Promise<number> {
 *   return await counter.increment(1) as number;
 * }
 * ```
 */
export type ObjectProxy = {
  // deno-lint-ignore no-explicit-any
  readonly [method: string]: (...args: any[]) => any;
};

/**
 * The typed proxy of a `T` made by `manager.create<T>(typeid)`: each method
 * of `T` resolves with its (awaited) result, and has a `Sync` twin.
 *
 * @typeParam T The registered class's instance type.
 *
 * @example
 * ```ts
 * import type { ProxyOf } from "@mpjs/multiprocessing";
 *
 * class Counter {
 *   n = 0;
 *   increment(by: number): number {
 *     return this.n += by;
 *   }
 * }
 * function bump(counter: ProxyOf<Counter>): number {
 *   return counter.incrementSync(1);
 * }
 * ```
 */
export type ProxyOf<T> =
  & {
    readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends
      (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
  }
  & {
    readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? `${K & string}Sync` : never]: T[K] extends
      (...args: infer A) => infer R ? (...args: A) => Awaited<R> : never;
  };

/** The object behind a custom proxy. */
class CustomTarget {
  readonly typeid: string;
  constructor(typeid: string) {
    this.typeid = typeid;
  }
  toString(): string {
    return `${this.typeid}Proxy`;
  }
}

function customProxy(typeid: string): object {
  const target = new CustomTarget(typeid);
  const fns = new Map<string, unknown>();
  const proxy = new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === "symbol" || prop in t || prop === "then") return Reflect.get(t, prop, receiver);
      let fn = fns.get(prop);
      if (fn === undefined) {
        const cls = `${typeid}Proxy`;
        const sync = prop.endsWith("Sync") && prop.length > 4;
        const method = sync ? prop.slice(0, -4) : prop;
        const what = `${cls}.${prop}()`;
        fn = sync
          ? (...args: unknown[]) => callSync(receiver, cls, method, args, what)
          : (...args: unknown[]) => callAsync(receiver, cls, method, args, what);
        fns.set(prop, fn);
      }
      return fn;
    },
    set() {
      return false;
    },
  });
  targets.set(proxy, target);
  return proxy;
}

/** A proxy's data as it crosses threads: its manager, object id, kind, type. */
type ProxyData = [LinkData, number, Kind, string | undefined];

registerHandler<object, ProxyData>({
  tag: "ManagerProxy",
  // Each crossing carries a hold of its own (a TRANSFER, adopted by the receiver; a RETURN if it does not go).
  once: true,
  canHandle: (v): v is object => typeof v === "object" && v !== null && states.has(v),
  serialize: (v) => {
    const s = states.get(v)!;
    return [s.link.data(), s.id, s.kind, s.typeid];
  },
  inFlight: (v, delta) => {
    const s = states.get(v)!;
    s.link.notice(delta > 0 ? TRANSFER : RETURN, s.id);
  },
  deserialize: ([data, id, kind, typeid]) => {
    const link = linkFor(data);
    link.adopt(id);
    return makeProxy(link, id, kind, typeid, undefined);
  },
});

// ## The manager

/**
 * How {@linkcode Manager.register} finds a class: the module that exports
 * it, and the export's name. The server thread imports that module.
 *
 * @example
 * ```ts
 * import { Manager, type RegisterOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * // In the module that exports `class Counter`:
 * const options: RegisterOptions = { module: import.meta.url, export: "Counter" };
 * Manager.register("Counter", options);
 * assert.throws(() => Manager.register("Counter", { module: import.meta.url, export: 1 as never }), TypeError);
 * ```
 */
export interface RegisterOptions {
  /** The module's URL or path (usually `import.meta.url`). */
  module: string | URL;
  /** The name of the exported class. */
  export: string;
}

/**
 * Options of `new Manager()`.
 *
 * @example
 * ```ts
 * import { Manager, type ManagerOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: ManagerOptions = { name: "Settings" };
 * await using manager = new Manager(options);
 * assert.equal(manager.name, "Settings");
 * ```
 */
export interface ManagerOptions {
  /**
   * The name of the manager and of its server thread.
   *
   * @default {"SyncManager-N"}
   */
  name?: string;
}

const registry = new Map<string, { module: string; export: string }>();

/** Shuts down a manager that was collected without `shutdown()`. */
const collected = new FinalizationRegistry<Int32Array>((c) => {
  Atomics.store(c, STATE, CLOSED);
  Atomics.add(c, DOORBELL, 1);
  Atomics.notify(c, DOORBELL);
});

/**
 * Python's `multiprocessing.Manager()`: a server thread that keeps objects
 * every thread uses through proxies. See the module documentation.
 *
 * @example Shared dictionary, list and namespace
 * ```ts
 * import { Manager } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * await using manager = new Manager();
 * const d = manager.dict<string, unknown>();
 * await d.set("inner", manager.list([1]));
 * const inner = await d.get("inner") as import("@mpjs/multiprocessing").ListProxy<number>;
 * await inner.append(2);
 * assert.deepEqual(await inner.toArray(), [1, 2]);
 * ```
 */
export class Manager implements AsyncDisposable {
  readonly #link: Link;
  readonly #thread: Thread;
  #shutdown: Promise<void> | undefined;

  /**
   * Registers a class whose instances `manager.create(typeid, ...args)` makes
   * in the server thread (Python's `BaseManager.register`). The module is
   * imported by the server thread: guard its main program with
   * `if (isMainThread) { … }`.
   *
   * @param typeid The name `create` takes.
   * @param options Where the class is exported.
   * @throws {TypeError} when an argument has the wrong type.
   *
   * @example
   * ```ts ignore
   * // counter.ts
   * export class Counter { n = 0; increment(by = 1) { return this.n += by; } }
   * Manager.register("Counter", { module: import.meta.url, export: "Counter" });
   * ```
   */
  static register(typeid: string, options: RegisterOptions): void {
    if (typeof typeid !== "string" || typeid === "") {
      throw new TypeError(`Cannot register as 'typeid' must be a non-empty string: current value is ${String(typeid)}`);
    }
    checkOptions(options, `'${typeid}'`, false, "register ");
    const module = options?.module;
    if (!(module instanceof URL) && typeof module !== "string") {
      throw new TypeError(`Cannot register '${typeid}' as 'module' must be a URL or a string`);
    }
    if (typeof options.export !== "string") {
      throw new TypeError(`Cannot register '${typeid}' as 'export' must be a string`);
    }
    registry.set(typeid, { module: moduleHref(module), export: options.export });
  }

  /**
   * Starts a manager and its server thread.
   *
   * @param options See {@linkcode ManagerOptions}.
   * @throws {TypeError} when `options` is not an object or `name` not a string.
   */
  constructor(options: ManagerOptions = {}) {
    const opts = checkOptions<ManagerOptions>(options, "Manager", false, "create ") ?? {};
    if (opts.name !== undefined && typeof opts.name !== "string") {
      throw new TypeError(`Cannot create Manager as 'name' must be a string: current value is ${show(opts.name)}`);
    }
    const name = opts.name ?? `SyncManager-${nextNameNumber()}`;
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const registrations = new Queue<Registration>();
    const data: LinkData = {
      // Unique in the program: the registry's handle ids serve.
      key: newHandleId(),
      name,
      control,
      registrations: handlerFor(registrations)!.serialize(registrations, "registrations"),
    };
    // This thread's channels go with the thread's arguments: its calls need no post office.
    const reg = newRegistration();
    const link = new Link(data, registrations);
    links.set(data.key, link);
    this.#link = link;
    this.#thread = new Thread({
      target: serveManager,
      args: [control, registrations, reg.registration, data, import.meta.url],
      module: SERVER_MODULE,
      name,
      daemon: true,
    });
    link.adoptClient(reg.client(link));
    this.#thread.start();
    Atomics.store(link.c, SERVER, this.#thread.ident!);
    collected.register(this, link.c, this);
  }

  /** The manager's name (its server thread's). */
  get name(): string {
    return this.#link.name;
  }

  #make(kind: Kind, init: unknown, what: string): object {
    const link = this.#link;
    if (link.closedReason() !== undefined) throw link.closedError(what);
    const id = Atomics.add(link.c, NEXT_ID, 1) + 1;
    try {
      link.client().send([CREATE, id, kind, init], "init");
    } catch (e) {
      // Name what the caller passed: `init` is frame[3], a custom object's arguments init[3].
      if (!(e instanceof TypeError)) throw e;
      throw new TypeError(
        e.message.replace(/init\[3\](\[3\])?/, (_, args) => args ? `${what} args` : `${what} init`),
      );
    }
    return makeProxy(link, id, kind, kind === CUSTOM ? (init as CustomInit)[0] : undefined, this);
  }

  /**
   * A new managed dictionary (Python's `manager.dict()`), made without waiting.
   *
   * @param init Entries to start with: an object, a `Map` or `[key, value]` pairs.
   * @throws {TypeError} when a key or value cannot be kept (naming it).
   * @throws {ClosedError} when the manager is shut down.
   *
   * @example
   * ```ts
   * import { Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict({ a: 1 });
   * assert.equal(await d.size(), 1);
   * ```
   */
  dict<K extends DictKey = string, V = unknown>(
    init?: Record<string, V> | Map<K, V> | Iterable<[K, V]>,
  ): DictProxy<K, V> {
    const entries = init === undefined ? [] : entriesOf(init, "Manager.dict()");
    return this.#make(DICT, entries, "Manager.dict()") as DictProxy<K, V>;
  }

  /**
   * A new managed list (Python's `manager.list()`), made without waiting.
   *
   * @param init Items to start with.
   * @throws {TypeError} when an item cannot be kept (naming it).
   * @throws {ClosedError} when the manager is shut down.
   *
   * @example
   * ```ts
   * import { Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const l = manager.list([1, 2]);
   * assert.equal(await l.length(), 2);
   * ```
   */
  list<T = unknown>(init?: Iterable<T>): ListProxy<T> {
    if (init !== undefined && (init === null || typeof init !== "object" || !(Symbol.iterator in init))) {
      throw new TypeError("Cannot call Manager.list() as 'init' must be iterable");
    }
    const items = init === undefined ? [] : Array.isArray(init) ? init : [...init];
    return this.#make(LIST, items, "Manager.list()") as ListProxy<T>;
  }

  /**
   * A new managed namespace (Python's `manager.Namespace()`).
   *
   * @param init Attributes to start with.
   *
   * @example
   * ```ts
   * import { Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const ns = manager.Namespace({ x: 1 });
   * assert.equal(await ns.get("x"), 1);
   * ```
   */
  Namespace(init: Record<string, unknown> = {}): Namespace {
    if (init === null || typeof init !== "object") {
      throw new TypeError("Cannot call Manager.Namespace() as 'init' must be an object");
    }
    return this.#make(NAMESPACE, { ...init }, "Manager.Namespace()") as Namespace;
  }

  /**
   * A new instance of the class registered as `typeid`, made in the server
   * thread with `args`; returns its proxy at once. If the module cannot be
   * imported or the constructor throws, every call on the proxy rejects
   * with that error.
   *
   * @param typeid A name given to {@linkcode Manager.register}.
   * @param args The constructor's arguments.
   * @throws {Error} when `typeid` is not registered.
   *
   * @example
   * ```ts ignore
   * const counter = manager.create("Counter");
   * assert.equal(await counter.increment(2), 2);
   * ```
   */
  create<T = never>(typeid: string, ...args: unknown[]): [T] extends [never] ? ObjectProxy : ProxyOf<T> {
    const spec = registry.get(typeid);
    if (!spec) {
      throw new Error(
        `Cannot create '${typeid}': it is not registered (call Manager.register('${typeid}', { module, export }) first)`,
      );
    }
    const init: CustomInit = [typeid, spec.module, spec.export, args];
    return this.#make(CUSTOM, init, `Manager.create('${typeid}')`) as [T] extends [never] ? ObjectProxy : ProxyOf<T>;
  }

  /**
   * A plain {@linkcode Queue} (Python's `manager.Queue()`): it lives in shared memory already.
   *
   * @example
   * ```ts
   * import { Manager, Queue } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * assert.ok(manager.Queue() instanceof Queue);
   * ```
   */
  Queue<T = unknown>(maxsize?: number): Queue<T> {
    return new Queue<T>(maxsize);
  }

  /** A plain {@linkcode JoinableQueue} (Python's `manager.JoinableQueue()`). */
  JoinableQueue<T = unknown>(maxsize?: number): JoinableQueue<T> {
    return new JoinableQueue<T>(maxsize);
  }

  /** A plain {@linkcode Lock}. */
  Lock(): Lock {
    return new Lock();
  }

  /** A plain {@linkcode RLock}. */
  RLock(): RLock {
    return new RLock();
  }

  /** A plain {@linkcode Semaphore}. */
  Semaphore(value?: number): Semaphore {
    return new Semaphore(value);
  }

  /** A plain {@linkcode BoundedSemaphore}. */
  BoundedSemaphore(value?: number): BoundedSemaphore {
    return new BoundedSemaphore(value);
  }

  /** A plain {@linkcode Event}. */
  Event(): Event {
    return new Event();
  }

  /** A plain {@linkcode Condition}. */
  Condition(lock?: ConditionLock): Condition {
    return new Condition(lock);
  }

  /** A plain {@linkcode Barrier}. */
  Barrier(parties: number, options?: BarrierOptions): Barrier {
    return new Barrier(parties, options);
  }

  /**
   * A plain {@linkcode SharedValue} (Python's `manager.Value(typecode, value)`).
   *
   * @example
   * ```ts
   * import { Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const v = manager.Value("i", 7);
   * assert.equal(v.value, 7);
   * ```
   */
  Value<C extends ElementType>(typecode: C, value?: InputOf<C>): SharedValue<C> {
    return new SharedValue(typecode, value);
  }

  /** A plain {@linkcode SharedArray} (Python's `manager.Array(typecode, sequence)`). */
  Array<C extends ElementType>(typecode: C, sequence: number | Iterable<InputOf<C>>): SharedArray<C> {
    return new SharedArray(typecode, sequence);
  }

  /**
   * Stops the server: every pending and later call on a proxy of this
   * manager fails with `ClosedError`. Idempotent.
   *
   * @example
   * ```ts
   * import { ClosedError, Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const manager = new Manager();
   * const d = manager.dict();
   * await manager.shutdown();
   * await assert.rejects(d.get("a"), ClosedError);
   * ```
   */
  shutdown(): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    const c = this.#link.c;
    Atomics.store(c, STATE, CLOSED);
    Atomics.add(c, DOORBELL, 1);
    Atomics.notify(c, DOORBELL);
    collected.unregister(this);
    const thread = this.#thread;
    this.#shutdown = (async () => {
      await thread.join(1_000);
      if (thread.isAlive()) await thread.terminate();
    })();
    return this.#shutdown;
  }

  /**
   * How many objects the server keeps now (Python's private
   * `_number_of_objects()`), for diagnostics: an object is counted until
   * no proxy to it is left and the server has seen the last release.
   *
   * @example
   * ```ts
   * import { Manager } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * await using manager = new Manager();
   * const d = manager.dict();
   * await d.size();
   * assert.equal(manager.numberOfObjects(), 1);
   * ```
   */
  numberOfObjects(): number {
    return Atomics.load(this.#link.c, OBJECTS);
  }

  /** `await using manager = new Manager()` shuts it down at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

function moduleHref(module: string | URL): string {
  if (module instanceof URL) return module.href;
  try {
    return new URL(module).href;
  } catch {
    return new URL(module, `file://${(globalThis as { process?: { cwd(): string } }).process?.cwd?.() ?? ""}/`).href;
  }
}
