// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A manager's server: the entry of its thread ({@linkcode serveManager}),
 * which keeps the managed objects and serves every client thread's requests,
 * one at a time (see `_manager_protocol.ts` for the words and frames,
 * `manager.ts` for the clients).
 *
 * ## Serving
 *
 * Clients register their channel pair through the registration queue (once
 * per thread) and bump `REGS`. The loop reads `DOORBELL`, takes new
 * registrations, then visits the clients round robin, taking up to
 * {@linkcode BATCH} frames from each, so that no client can keep the others
 * waiting. A request is served to the end (an async method of a custom
 * object is awaited) before the next. With nothing to do it spins briefly on
 * `DOORBELL` (`_wait.ts`'s adaptive budget), then parks on it with
 * `Atomics.waitAsync` and no timeout, so an idle server uses no CPU and its
 * event loop runs (finalizers, a stop request). What else must wake it rings
 * the doorbell too: `shutdown`, a collected proxy of its own thread, and the
 * death of any thread while it has clients (a watch on the registry's
 * `DEATHS`), after which it drops the holds of clients that died.
 *
 * ## Lifetimes
 *
 * Each object counts its holds: a proxy in a client thread (one per
 * `CREATE`, per reply that carries a proxy, per `ADOPT`), a proxy in flight
 * inside a value (`TRANSFER`, turned into the receiver's by its `ADOPT`,
 * or given back by a `RETURN` when the value did not go),
 * and a proxy of the server's own thread (one per proxy met in a request:
 * what a managed object keeps, stored in a dictionary or received by a
 * method; released when collected). A client's own holds are also kept per
 * client, and dropped when its thread dies.
 *
 * ## Proxies inside the server
 *
 * A proxy in a request's arguments reaches the object as a working proxy of
 * this thread (Python passes a proxy to the method too). A dictionary or
 * list keeps it; a custom object may keep it, return it (the caller gets a
 * proxy of its own) or call it: the call is served in place, at once, on
 * copies of the arguments and result made through the codec (as a thread
 * would get them). A `Sync` call of a custom method that returns a Promise
 * throws a `TypeError` (the server cannot wait on itself): await the async
 * twin.
 *
 * A `TRANSFER` from the sender and the receiver's `ADOPT` and `RELEASE`
 * travel on different channels, so the count can reach 0 while a `TRANSFER`
 * published earlier is still unread. An object whose count reaches 0 is
 * therefore freed only once every client's frames published before that
 * moment (its `sent` word, read then) have been processed, and if its count
 * is still 0. The snapshot takes in clients registered but not yet served
 * (the sender of such a `TRANSFER` registered before it sent it).
 *
 * ## Order
 *
 * Frames of different clients can be served in another order than they
 * were sent: a thread may call (or pass on) an object before the server has
 * read its `CREATE` from the creator's channel, though the `CREATE` was sent
 * first. So a frame that names an object that does not exist, or carries a
 * proxy of one, is held back (its client's channel waits behind it) until
 * the object exists; the holds of its proxies are counted then. If it never
 * comes (every frame sent before the stall was served, or a round served
 * nothing), the frame is served as it is: the call fails as naming an
 * object that no longer exists.
 *
 * @module
 */

import { decode, encode } from "./_codec.ts";
import { handlerFor } from "./_handles.ts";
import { SpscChannel } from "./_spsc.ts";
import { EOF, NONE } from "./_spsc.ts";
import { shareHandles } from "./_post.ts";
import { DEATHS, importAsTarget, isIdentAlive, registryCells } from "./_registry.ts";
import { parkAsync } from "./_wait.ts";
import { IndexError, KeyError } from "./errors.ts";
import type { Queue } from "./queue.ts";
import {
  ADOPT,
  type BindLocalProxies,
  CALL,
  CLOSED,
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
  type LocalProxies,
  localProxiesBinder,
  type LocalServer,
  NAMESPACE,
  OBJECTS,
  PARKED,
  type RefData,
  type Registration,
  REGS,
  RELEASE,
  REPLY_ERROR,
  REPLY_WRAPPED,
  RETURN,
  STATE,
  TRANSFER,
} from "./_manager_protocol.ts";

/** This module's URL: the manager's thread runs {@linkcode serveManager} from it. */
export const SERVER_MODULE: string = import.meta.url;

/** The most frames taken from one client before the next client's turn. */
const BATCH = 64;
/** How long (ms) the loop serves without a turn of its event loop. */
const YIELD_EVERY = 20;
/** How long (ms) an idle server watches its doorbell before parking, at most and at least. */
const SPIN_MAX_MS = 0.2;
const SPIN_MIN_MS = 0.005;
/** An idle turn watches for the full length when `turns & PROBE` is 0. */
const PROBE = 63;

/** A managed object. */
interface Managed {
  kind: Kind;
  // deno-lint-ignore no-explicit-any
  value: any;
  typeid?: string;
  holds: number;
  /** Why a custom object could not be created: every call gets it. */
  error?: ErrorReply;
}

/** A client thread. */
interface Client {
  ident: number;
  req: SpscChannel;
  rep: SpscChannel;
  sent: Int32Array;
  processed: number;
  /** Holds of this thread's proxies, by object id. */
  held: Map<number, number>;
  /** A frame that names objects not created yet, served once they are (see "Order" in the module docs). */
  stalled: Stalled | undefined;
}

/** A frame held back until the objects it names exist. */
interface Stalled {
  frame: unknown[];
  /** The objects its proxies name (their holds are counted once they exist). */
  refs: number[];
  /** Each client's `sent` word when it stalled: once all are served, what is still missing never comes. */
  snapshot: Map<Client, number>;
}

/** Errors the server itself raised about a call (no such method): they arrive as they are, not as `RemoteError`s. */
const ours = new WeakSet<object>();

function valueError(message: string): Error {
  const e = new Error(message);
  e.name = "ValueError";
  return e;
}

/** How a key is named in a `KeyError`, as Python's `repr`. */
export function keyRepr(key: unknown): string {
  if (typeof key === "string") return `'${key}'`;
  if (typeof key === "bigint") return `${key}n`;
  return String(key);
}

/** The proxies of this thread's server (one server per thread), for {@linkcode equal}. */
let local: LocalProxies | undefined;

/** Python's `==` for the values a list holds (decoded copies): structural; proxies by their object. */
function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b) || a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ra = local?.refOf(a);
  const rb = local?.refOf(b);
  if (ra !== undefined || rb !== undefined) return ra !== undefined && rb !== undefined && ra[0] === rb[0];
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => equal(x, bb[i]));
  }
  if (a instanceof Map) {
    const bb = b as Map<unknown, unknown>;
    if (a.size !== bb.size) return false;
    for (const [k, v] of a) if (!bb.has(k) || !equal(v, bb.get(k))) return false;
    return true;
  }
  if (a instanceof Set) {
    const bb = b as Set<unknown>;
    return a.size === bb.size && [...a].every((x) => bb.has(x));
  }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const bv = b as ArrayBufferView;
    const y = new Uint8Array(bv.buffer, bv.byteOffset, bv.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Python's ordering for `sort()`: numbers (and bigints) with numbers, strings with strings. */
function compare(a: unknown, b: unknown): number {
  const num = (x: unknown) => typeof x === "number" || typeof x === "bigint" || typeof x === "boolean";
  if (num(a) && num(b)) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  throw new TypeError(`'<' not supported between ${typeof a} and ${typeof b} values`);
}

/** Python's index rules for `get`/`set`/`pop`: negative counts from the end. */
function index(list: unknown[], i: number, what: string): number {
  const j = i < 0 ? i + list.length : i;
  if (j < 0 || j >= list.length) throw new IndexError(`${what} index out of range`);
  return j;
}

/**
 * The manager's thread: serves until the manager is shut down.
 *
 * @param control The control words (see `_manager_protocol.ts`).
 * @param registrations Where the other clients register their channels.
 * @param owner The channels of the thread that made the manager.
 * @param linkData The manager as its proxies carry it.
 * @param managerModule The URL of `manager.ts`, which makes this thread's proxies.
 */
export async function serveManager(
  control: SharedArrayBuffer,
  registrations: Queue<Registration>,
  owner: Registration,
  linkData: unknown,
  managerModule: string,
): Promise<void> {
  await import(managerModule);
  const server = new Server(new Int32Array(control), registrations, localProxiesBinder()!, linkData);
  server.add(owner);
  try {
    await server.run();
  } finally {
    server.close();
  }
}

class Server implements LocalServer {
  readonly #c: Int32Array;
  readonly #local: LocalProxies;
  readonly #registrations: Queue<Registration>;
  readonly #objects = new Map<number, Managed>();
  #clients: Client[] = [];
  #regsSeen = 0;
  #rr = 0;
  /** How long the next idle watch lasts (ms), and idle turns so far: see {@linkcode Server.#spin}. */
  #spinMs = SPIN_MAX_MS;
  #idle = 0;
  /** The registry's `DEATHS` when the clients were last checked; whether a dead one had frames left then. */
  #deathsSeen = -1;
  #dying = false;
  /** Whether a death watch is set ({@linkcode Server.#watchDeaths}). */
  #watching = false;
  /** Objects whose count reached 0, with each client's `sent` word read then. */
  #candidates = new Map<number, Map<Client, number>>();
  /** The proxies met while a reply is encoded (each becomes a proxy of the client's). */
  #refs = new Map<object, RefData>();
  /** The hook for replies: marks this server's proxies (written as `RefData`), lets other handles through the post office. */
  readonly #hook = (v: object, path: string): boolean => {
    const ref = this.#local.refOf(v);
    if (ref !== undefined) {
      this.#refs.set(v, ref);
      return true;
    }
    return shareHandles(v, path);
  };
  /** Objects named by proxies in the frame being decoded that do not exist (yet). */
  #missing: number[] = [];
  /** Rebuilds a proxy met in a request as a proxy of this thread, which holds its object. */
  readonly #revive = (data: RefData): object => {
    const obj = this.#objects.get(data[0]);
    if (obj) obj.holds++;
    else this.#missing.push(data[0]);
    return this.#local.make(data);
  };

  constructor(c: Int32Array, registrations: Queue<Registration>, bind: BindLocalProxies, linkData: unknown) {
    this.#c = c;
    this.#registrations = registrations;
    this.#local = local = bind(linkData, this);
  }

  /** A call of one of this thread's proxies: served in place (see `_manager_protocol.ts`). */
  call(frame: unknown[], sync: boolean): unknown {
    const id = frame[1] as number;
    const method = frame[2] as string;
    const obj = this.#objects.get(id);
    if (!obj) throw new Error(`The managed object #${id} no longer exists`);
    if (obj.error) {
      const [name, message] = obj.error;
      const e = new Error(message);
      e.name = name;
      throw e;
    }
    const result = this.#call(obj, method, this.#copy(frame, "args") as unknown[]);
    if (obj.kind === CUSTOM && isThenable(result)) {
      if (sync) {
        throw new TypeError(
          `Cannot call ${obj.typeid}Proxy.${method}Sync() in the manager's own thread: the method returned a Promise, which the server cannot wait for; call ${method}() and await it`,
        );
      }
      return Promise.resolve(result).then((v) => this.#copy(v, "result"));
    }
    return this.#copy(result, "result");
  }

  /**
   * A copy of `v`, as a thread would get it: through the codec, with every
   * handle (a proxy, a queue, shared memory) kept as the same object.
   */
  #copy(v: unknown, path: string): unknown {
    if (typeof v !== "object" || v === null) return v;
    const table: object[] = [];
    const marks = new Map<object, RefData>();
    const bytes = encodingRefs(marks, () =>
      encode(v, path, (o) => {
        if (handlerFor(o) === undefined) return false;
        marks.set(o, [table.length] as unknown as RefData);
        table.push(o);
        return true;
      }));
    return decodingRefs((data) => table[data[0]], () => decode(bytes));
  }

  hold(id: number): void {
    const obj = this.#objects.get(id);
    if (obj) obj.holds++;
  }

  drop(id: number): void {
    this.#drop(id, 1);
    // Wake the loop: the object may be free now.
    Atomics.add(this.#c, DOORBELL, 1);
    Atomics.notify(this.#c, DOORBELL);
  }

  async run(): Promise<void> {
    const c = this.#c;
    const registry = registryCells();
    let lastYield = performance.now();
    for (;;) {
      const bell = Atomics.load(c, DOORBELL);
      if (Atomics.load(c, STATE) === CLOSED) return;
      if (Atomics.load(c, REGS) !== this.#regsSeen) this.#register();
      const deaths = Atomics.load(registry, DEATHS);
      if (deaths !== this.#deathsSeen || this.#dying) {
        this.#deathsSeen = deaths;
        this.#dying = this.#checkClients();
      }
      let served = this.#round();
      if (typeof served !== "number") served = await served;
      this.#stuck = served === 0 && !this.#stuck && this.#clients.some((client) => client.stalled !== undefined);
      if (this.#stuck) continue;
      if (this.#candidates.size > 0) this.#freeCandidates();
      if (served > 0) {
        if (performance.now() - lastYield > YIELD_EVERY) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          lastYield = performance.now();
        }
        continue;
      }
      if (this.#spin(bell)) continue;
      this.#watchDeaths();
      Atomics.store(c, PARKED, 1);
      try {
        await parkAsync(c, DOORBELL, bell);
      } finally {
        Atomics.store(c, PARKED, 0);
      }
      lastYield = performance.now();
    }
  }

  /**
   * Rings the doorbell on the next death of any thread (the registry's
   * `DEATHS`), so that a parked server drops a dead client's holds with no
   * timeout: one watch at a time, set again each time it fires.
   */
  #watchDeaths(): void {
    if (this.#watching || this.#clients.length === 0) return;
    this.#watching = true;
    const c = this.#c;
    void parkAsync(registryCells(), DEATHS, this.#deathsSeen).then(() => {
      this.#watching = false;
      Atomics.add(c, DOORBELL, 1);
      Atomics.notify(c, DOORBELL);
    });
  }

  /**
   * Watches `DOORBELL` for a while before parking: a client calling in a
   * loop sends its next request within microseconds of its reply, and a
   * park and wake-up costs tens. The watch doubles when it pays and halves
   * when it does not (down to {@linkcode SPIN_MIN_MS}), with a full-length
   * probe every {@linkcode PROBE} idle turns.
   */
  #spin(bell: number): boolean {
    const c = this.#c;
    const probe = (++this.#idle & PROBE) === 0;
    const limit = probe ? SPIN_MAX_MS : this.#spinMs;
    const t0 = performance.now();
    do {
      for (let i = 0; i < 128; i++) {
        if (Atomics.load(c, DOORBELL) !== bell) {
          this.#spinMs = Math.min(SPIN_MAX_MS, Math.max(this.#spinMs, 2 * (performance.now() - t0), SPIN_MIN_MS * 4));
          return true;
        }
      }
    } while (performance.now() - t0 < limit);
    this.#spinMs = Math.max(SPIN_MIN_MS, this.#spinMs / 2);
    return false;
  }

  /** Ends: every client waiting for a reply wakes and finds the manager closed. */
  close(): void {
    Atomics.store(this.#c, STATE, CLOSED);
    for (const client of this.#clients) client.rep.wakeConsumers();
    this.#objects.clear();
    this.#candidates.clear();
    Atomics.store(this.#c, OBJECTS, 0);
  }

  #register(): void {
    // Every registration counted in REGS was put before it was counted.
    const seen = Atomics.load(this.#c, REGS);
    for (;;) {
      let r: Registration;
      try {
        r = this.#registrations.getNowait();
      } catch {
        break;
      }
      this.add(r);
    }
    this.#regsSeen = seen;
  }

  /** Serves a client thread's channels from now on. */
  add(r: Registration): void {
    this.#clients.push({
      ident: r.ident,
      req: new SpscChannel(r.request),
      rep: new SpscChannel(r.reply),
      sent: new Int32Array(r.sent),
      processed: 0,
      held: new Map(),
      stalled: undefined,
    });
  }

  /** One round robin turn over the clients: how many frames were served (a Promise while one is awaited). */
  #round(): number | Promise<number> {
    const clients = this.#clients;
    const n = clients.length;
    let served = 0;
    const start = this.#rr++ % (n || 1);
    for (let k = 0; k < n; k++) {
      const client = clients[(start + k) % n];
      for (let b = 0; b < BATCH; b++) {
        let frame: unknown[];
        if (client.stalled) {
          const stalled = client.stalled;
          if (!this.#resume(stalled)) break;
          client.stalled = undefined;
          frame = stalled.frame;
        } else {
          const read = decodingRefs(this.#revive, () => client.req.recv());
          if (read === NONE || read === EOF) break;
          client.processed++;
          frame = read as unknown[];
          if (this.#missing.length > 0 || this.#names(frame) !== undefined) {
            client.stalled = { frame, refs: this.#missing.splice(0), snapshot: this.#snapshot(client) };
            served++;
            break;
          }
        }
        served++;
        const pending = this.#serve(client, frame);
        if (pending !== undefined) {
          // An awaited request: finish the round after it.
          return pending.then(() => {
            const more = this.#round();
            return typeof more === "number" ? served + more : more.then((m) => served + m);
          });
        }
      }
    }
    return served;
  }

  /** The object a frame names that does not exist, if any (`CREATE` and `ADOPT` need none). */
  #names(frame: unknown[]): number | undefined {
    const op = frame[0];
    if (op === CREATE || op === ADOPT) return undefined;
    const id = frame[1] as number;
    return this.#objects.has(id) ? undefined : id;
  }

  /**
   * Whether a stalled frame can be served now: the objects it names exist
   * (their holds are counted then), or will never come (every frame sent
   * before it stalled has been served, or no client can go on: the call
   * then fails as naming an object that no longer exists).
   */
  #resume(s: Stalled): boolean {
    const exists = this.#names(s.frame) === undefined && s.refs.every((id) => this.#objects.has(id));
    if (!exists && !this.#stuck && !this.#served(s.snapshot)) return false;
    for (const id of s.refs) {
      const obj = this.#objects.get(id);
      if (obj) obj.holds++;
    }
    return true;
  }

  /** Set for one round when the last one served nothing while frames were stalled. */
  #stuck = false;

  /** Each client's `sent` word now (registering new clients first: their frames count too), but `except`'s. */
  #snapshot(except?: Client): Map<Client, number> {
    if (Atomics.load(this.#c, REGS) !== this.#regsSeen) this.#register();
    const snapshot = new Map<Client, number>();
    for (const client of this.#clients) if (client !== except) snapshot.set(client, Atomics.load(client.sent, 0));
    return snapshot;
  }

  /**
   * Whether every client's frames counted in `snapshot` have been served
   * (or the client is gone): a stalled frame is read but not served yet.
   */
  #served(snapshot: Map<Client, number>): boolean {
    for (const [client, sent] of snapshot) {
      const served = client.processed - (client.stalled === undefined ? 0 : 1);
      if (served - sent < 0 && this.#clients.includes(client)) return false;
    }
    return true;
  }

  /** Serves one frame; a Promise when it awaits (a custom object's async method, an import). */
  #serve(client: Client, frame: unknown[]): Promise<void> | undefined {
    const op = frame[0] as number;
    const id = frame[1] as number;
    switch (op) {
      case CALL: {
        const obj = this.#objects.get(id);
        let result: unknown;
        try {
          if (!obj) throw new Error(`The managed object #${id} no longer exists`);
          if (obj.error) {
            this.#replyError(client, obj.error);
            return undefined;
          }
          result = this.#call(obj, frame[2] as string, frame);
        } catch (e) {
          this.#replyError(client, describe(e, obj?.kind === CUSTOM && !ours.has(e as object)));
          return undefined;
        }
        if (result instanceof Promise || (obj!.kind === CUSTOM && isThenable(result))) {
          return Promise.resolve(result).then(
            (v) => this.#reply(client, v),
            (e) => this.#replyError(client, describe(e, true)),
          );
        }
        this.#reply(client, result);
        return undefined;
      }
      case CREATE:
        return this.#create(client, id, frame[2] as Kind, frame[3]);
      case RELEASE: {
        const n = client.held.get(id) ?? 0;
        if (n <= 1) client.held.delete(id);
        else client.held.set(id, n - 1);
        this.#drop(id, 1);
        return undefined;
      }
      case TRANSFER: {
        const obj = this.#objects.get(id);
        if (obj) obj.holds++;
        return undefined;
      }
      case ADOPT:
        client.held.set(id, (client.held.get(id) ?? 0) + 1);
        return undefined;
      case RETURN:
        this.#drop(id, 1);
        return undefined;
    }
    return undefined;
  }

  #create(client: Client, id: number, kind: Kind, init: unknown): Promise<void> | undefined {
    const obj: Managed = { kind, value: undefined, holds: 1 };
    client.held.set(id, (client.held.get(id) ?? 0) + 1);
    this.#objects.set(id, obj);
    Atomics.store(this.#c, OBJECTS, this.#objects.size);
    switch (kind) {
      case DICT:
        obj.value = new Map(init as [unknown, unknown][]);
        return undefined;
      case LIST:
        obj.value = init as unknown[];
        return undefined;
      case NAMESPACE:
        obj.value = new Map(Object.entries(init as Record<string, unknown>));
        return undefined;
    }
    const [typeid, module, exportName, args] = init as CustomInit;
    obj.typeid = typeid;
    return importAsTarget(module).then((mod) => {
      const cls = mod[exportName];
      if (typeof cls !== "function") {
        throw new TypeError(
          `Cannot create '${typeid}': module ${module} has no exported class '${exportName}'`,
        );
      }
      obj.value = Reflect.construct(cls, args);
    }).catch((e) => {
      obj.error = describe(e, !(e instanceof TypeError));
    });
  }

  /** Calls `method` on `obj`; the arguments start at `frame[3]`. */
  #call(obj: Managed, method: string, f: unknown[]): unknown {
    const v = obj.value;
    switch (obj.kind) {
      case DICT:
        return dictCall(v as Map<unknown, unknown>, method, f);
      case LIST:
        return listCall(v as unknown[], method, f);
      case NAMESPACE:
        return namespaceCall(v as Map<string, unknown>, method, f);
    }
    const fn = v?.[method];
    if (typeof fn !== "function" || method === "constructor" || method.startsWith("_")) {
      const e = new Error(`'${obj.typeid}' object has no method '${method}'`);
      e.name = "AttributeError";
      ours.add(e);
      throw e;
    }
    return fn.apply(v, f.slice(3));
  }

  #reply(client: Client, value: unknown): void {
    const refs = this.#refs;
    refs.clear();
    try {
      encodingRefs(refs, () => {
        if (value instanceof Uint8Array) client.rep.sendBytes(new Uint8Array([REPLY_WRAPPED]));
        client.rep.send(value, "result", this.#hook);
      });
    } catch (e) {
      refs.clear();
      this.#replyError(client, describe(e, false));
      return;
    }
    // Each proxy in the reply becomes a proxy of the client's.
    for (const [, [id]] of refs) {
      const obj = this.#objects.get(id);
      if (obj) obj.holds++;
      client.held.set(id, (client.held.get(id) ?? 0) + 1);
    }
    refs.clear();
  }

  #replyError(client: Client, error: ErrorReply): void {
    client.rep.sendBytes(new Uint8Array([REPLY_ERROR]));
    client.rep.send(error, "error");
  }

  /** Drops `n` holds of object `id`; an object left with none becomes a candidate for freeing. */
  #drop(id: number, n: number): void {
    const obj = this.#objects.get(id);
    if (!obj) return;
    obj.holds -= n;
    if (obj.holds > 0 || this.#candidates.has(id)) return;
    this.#candidates.set(id, this.#snapshot());
  }

  /** Frees the candidates whose every earlier frame has been served (see the module docs). */
  #freeCandidates(): void {
    for (const [id, snapshot] of this.#candidates) {
      if (!this.#served(snapshot)) continue;
      this.#candidates.delete(id);
      const obj = this.#objects.get(id);
      if (obj && obj.holds <= 0) this.#objects.delete(id);
    }
    Atomics.store(this.#c, OBJECTS, this.#objects.size);
  }

  /**
   * Drops clients whose thread died, once their last frames are served,
   * with their holds; whether a dead client still has frames to serve.
   */
  #checkClients(): boolean {
    let waiting = false;
    for (const client of [...this.#clients]) {
      if (client.ident <= 0 || isIdentAlive(client.ident)) continue;
      // A stalled frame is served first: the holds its proxies take must be counted.
      if (client.req.ready() || client.stalled !== undefined) {
        waiting = true;
        continue;
      }
      this.#clients = this.#clients.filter((c) => c !== client);
      for (const [id, n] of client.held) this.#drop(id, n);
      client.held.clear();
    }
    if (this.#candidates.size > 0) this.#freeCandidates();
    return waiting;
  }
}

function isThenable(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** An error as a reply carries it. */
function describe(e: unknown, remote: boolean): ErrorReply {
  if (e instanceof Error) return [e.name, e.message, e.stack, remote];
  return ["Error", String(e), undefined, remote];
}

function dictCall(m: Map<unknown, unknown>, method: string, f: unknown[]): unknown {
  const key = f[3];
  switch (method) {
    case "get":
      return m.has(key) ? m.get(key) : f[4];
    case "set":
      m.set(key, f[4]);
      return undefined;
    case "has":
      return m.has(key);
    case "delete":
      if (!m.delete(key)) throw new KeyError(keyRepr(key));
      return undefined;
    case "size":
      return m.size;
    case "keys":
      return [...m.keys()];
    case "values":
      return [...m.values()];
    case "items":
      return [...m.entries()];
    case "update":
      for (const [k, v] of key as [unknown, unknown][]) m.set(k, v);
      return undefined;
    case "setdefault":
      if (!m.has(key)) m.set(key, f[4]);
      return m.get(key);
    case "pop":
      if (m.has(key)) {
        const v = m.get(key);
        m.delete(key);
        return v;
      }
      if (f.length > 4) return f[4];
      throw new KeyError(keyRepr(key));
    case "popitem": {
      if (m.size === 0) throw new KeyError("'popitem(): dictionary is empty'");
      let last: [unknown, unknown] | undefined;
      for (const e of m) last = e;
      m.delete(last![0]);
      return last;
    }
    case "clear":
      m.clear();
      return undefined;
    case "copy":
      return new Map(m);
  }
  throw new TypeError(`DictProxy has no method '${method}'`);
}

function listCall(l: unknown[], method: string, f: unknown[]): unknown {
  switch (method) {
    case "get":
      return l[index(l, f[3] as number, "list")];
    case "set":
      l[index(l, f[3] as number, "list assignment")] = f[4];
      return undefined;
    case "append":
      l.push(f[3]);
      return undefined;
    case "extend":
      for (const x of f[3] as unknown[]) l.push(x);
      return undefined;
    case "insert": {
      let i = f[3] as number;
      if (i < 0) i = Math.max(0, i + l.length);
      l.splice(Math.min(i, l.length), 0, f[4]);
      return undefined;
    }
    case "pop": {
      if (l.length === 0) throw new IndexError("pop from empty list");
      const i = index(l, f.length > 3 ? f[3] as number : -1, "pop");
      return l.splice(i, 1)[0];
    }
    case "remove": {
      const i = l.findIndex((x) => equal(x, f[3]));
      if (i < 0) throw valueError("list.remove(x): x not in list");
      l.splice(i, 1);
      return undefined;
    }
    case "index": {
      const n = l.length;
      const norm = (x: number | undefined, d: number) =>
        x === undefined ? d : x < 0 ? Math.max(0, x + n) : Math.min(x, n);
      const start = norm(f[4] as number | undefined, 0);
      const end = norm(f[5] as number | undefined, n);
      for (let i = start; i < end; i++) if (equal(l[i], f[3])) return i;
      throw valueError("list.index(x): x not in list");
    }
    case "count": {
      let n = 0;
      for (const x of l) if (equal(x, f[3])) n++;
      return n;
    }
    case "length":
      return l.length;
    case "slice":
      return l.slice(f[3] as number | undefined, f[4] as number | undefined);
    case "reverse":
      l.reverse();
      return undefined;
    case "sort": {
      // Stable both ways, as Python's: reversed order compares the other way round.
      const sorted = [...l].sort(f[3] === true ? (a, b) => compare(b, a) : compare);
      for (let i = 0; i < sorted.length; i++) l[i] = sorted[i];
      return undefined;
    }
    case "toArray":
      return l;
  }
  throw new TypeError(`ListProxy has no method '${method}'`);
}

function namespaceCall(m: Map<string, unknown>, method: string, f: unknown[]): unknown {
  const name = f[3] as string;
  switch (method) {
    case "get":
      return m.get(name);
    case "set":
      m.set(name, f[4]);
      return undefined;
    case "has":
      return m.has(name);
    case "delete":
      return m.delete(name);
    case "toObject":
      return Object.fromEntries(m);
  }
  throw new TypeError(`NamespaceProxy has no method '${method}'`);
}
