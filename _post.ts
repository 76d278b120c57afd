// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Handles inside values that travel as bytes (queue items, pipe messages).
 *
 * Bytes in shared memory cannot hold a `SharedArrayBuffer` or a
 * `MessagePort`, and the thread that reads an item may never have seen the
 * handles it names. So a handle met while encoding is serialized by its
 * handler (`_handles.ts`), given a program-wide id (a counter in the
 * registry), and deposited at the post office (`_post_office.ts`) through
 * this thread's mailbox (`_runtime.ts`) before the item is published; the
 * bytes carry only `[tag, id]`, as a msgpackr extension. The reader looks the
 * id up in its own cache and, on a miss, asks the post office and waits for
 * the answer synchronously (`Atomics.wait` on its mailbox's bell word, then
 * `receiveMessageOnPort`): decoding stays synchronous, as `getSync` needs.
 *
 * - A shared handle (everything but a `Connection`) keeps one id per object
 *   in each thread (a `WeakMap`): sending it again posts nothing, and a
 *   thread that reads it again gets the same object back (cached by id, held
 *   weakly). Each such object (one per deposit and per fetch) is a hold on
 *   the post office's copy; when it is collected, the thread releases the
 *   hold and tells how many items naming the handle it sent (once they went
 *   in) and read since its last release (`tallies`). The post office frees
 *   the handle once nothing holds it and as many items were read as sent:
 *   see `_post_office.ts`.
 * - A moving handle (one whose handler has `moved`: a `Connection` end)
 *   gets a new id each time; the sender's copy is detached when the item is
 *   encoded (a queue holds the move back until the item is in, and gives it
 *   up, with the deposit, when the put fails: {@linkcode holdMoves}); the
 *   post office holds it in transit and drops it once fetched. A reader
 *   asks with its ident, and from the ask on the handle is that thread's;
 *   one inside a pipe message follows the pipe's receiving end
 *   ({@linkcode Reader}) until then (see `_post_office.ts`).
 * - Plain shared memory (a `SharedArrayBuffer`, or a view over one: handlers
 *   with `once`) is deposited for each item that carries it and dropped once
 *   fetched, so that buffers a program makes and drops are not kept.
 *
 * Values without handles never come here: plain trees take the codec's
 * plain path, and for the others the hook costs one lookup per object, as
 * refusing handles did.
 *
 * @module
 */

import { addExtension } from "msgpackr/pack";
import { EXT, type ObjectHook } from "./_codec.ts";
import { handlerFor, handlerForTag, type OwnerWord, type TransferHandler } from "./_handles.ts";
import { newHandleId, officeState, selfIdent } from "./_registry.ts";
import { type Mailbox, mailbox, needOffice } from "./_mailbox.ts";
import { receiveSync, runtime } from "./_runtime.ts";

/** The msgpackr extension type of a handle reference (`[tag, id]`). */
const EXT_HANDLE = EXT.HANDLE;

/** How long (ms) a reader waits for the post office before giving up (it answers in microseconds). */
const FETCH_TIMEOUT = 60_000;

/** A handle the hook met in the value being encoded, to be written by the extension. */
interface Pending {
  handler: TransferHandler;
  /** Serialized data, when it must be deposited. */
  data?: unknown;
  /** Its id, when it is deposited already. */
  id?: number;
  /** Who reads the value, when known (see {@linkcode shareHandlesWith}). */
  reader?: Reader;
}

/**
 * The one holder that will read a value, when there is one: a pipe's
 * receiving end, named by the words holding its owner's ident and whether
 * it is closed (`Int32Array` indexes into `buffer`). A handle that moves
 * with the value is closed by the post office if that holder's thread dies,
 * or the holder is closed, before the value is read.
 */
export interface Reader {
  buffer: SharedArrayBuffer;
  owner: number;
  closed: number;
}

/** Fault injection for tests: called (with the handle's id) right after a thread has asked the post office for a handle. */
const AFTER_ASK = Symbol.for("@mpjs/multiprocessing/post.afterAsk");

/** Handles met by the hook, waiting for the encoder to reach them. */
const pending = new WeakMap<object, Pending>();
/** The id of each shared handle this thread has deposited or received. */
const ids = new WeakMap<object, number>();
/** Shared handles by id, held weakly: a thread that reads one again gets the same object. */
const cache = new Map<number, WeakRef<object>>();
/**
 * Items naming each shared handle that this thread sent (once they went in)
 * and read, not yet told to the post office: told with each release.
 */
const tallies = new Map<number, Tally>();
/** When an object this thread holds for a shared handle is collected, the post office hears of it. */
const forget = new FinalizationRegistry<number>((id) => {
  if (cache.get(id)?.deref() === undefined) cache.delete(id);
  const t = tallies.get(id);
  tallies.delete(id);
  mailbox()?.port.postMessage({ t: "release", id, sent: t?.sent ?? 0, read: t?.read ?? 0 });
});

interface Tally {
  sent: number;
  read: number;
}

function tally(id: number): Tally {
  let t = tallies.get(id);
  if (!t) tallies.set(id, t = { sent: 0, read: 0 });
  return t;
}
/** Replies from the post office not yet asked for (an earlier fetch that gave up). */
const inbox = new Map<number, Reply>();

interface Reply {
  id: number;
  tag: string;
  data: unknown;
  once: boolean;
}

/** Stands for "a handle the hook met": msgpackr asks `instanceof` of each class instance it writes. */
class HandleRef {
  static [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === "object" && v !== null && pending.has(v);
  }
}

let writerInstalled = false;

// Readers need the extension from the start; the writer is installed on
// first use, so programs that never put a handle in an item keep msgpackr's
// extension list as it was.
addExtension({ type: EXT_HANDLE, read: readRef } as Parameters<typeof addExtension>[0]);

function installWriter(): void {
  writerInstalled = true;
  addExtension({ Class: HandleRef, type: EXT_HANDLE, write: writeRef, read: readRef });
}

/**
 * The {@linkcode ObjectHook} for values that travel as bytes: lets this
 * library's handles through (checking that they can be sent, naming `path`
 * otherwise) and marks them for the encoder, which deposits them.
 *
 * @throws {TypeError} when a handle cannot be sent (a moved or closed
 *   `Connection`), or on browsers (no synchronous receive to fetch it).
 */
export const shareHandles: ObjectHook = (v, path) => share(v, path, undefined);

/**
 * {@linkcode shareHandles} for values that one known holder will read
 * (`reader`): the moving handles in them follow it (see {@linkcode Reader}).
 */
export function shareHandlesWith(reader: Reader): ObjectHook {
  return (v, path) => share(v, path, reader);
}

function share(v: object, path: string, reader: Reader | undefined): boolean {
  const handler = handlerFor(v);
  if (!handler) return false;
  if (runtime === "browser") {
    throw new TypeError(
      `Cannot send ${path} through shared memory on a browser: it is a ${handler.tag}, and a reading thread could not fetch it (browsers cannot receive messages synchronously); pass it in a Thread's 'args' instead`,
    );
  }
  if (!writerInstalled) installWriter();
  if (handler.inFlight) {
    // Now, not as the encoder writes it: the count must not encode while the encoder runs.
    handler.inFlight(v, 1);
    if (holding) (held ??= []).push({ handler, value: v, to: undefined, id: 0, flight: true });
  }
  const id = handler.moved ? undefined : ids.get(v);
  if (id !== undefined) pending.set(v, { handler, id });
  else pending.set(v, { handler, data: handler.serialize(v, path), reader });
  return true;
}

/**
 * Tells the post office that a {@linkcode Reader} was closed: the handles
 * following it are closed. A no-op while nothing was ever deposited.
 */
export function readerClosed(): void {
  if (officeState() === 0) return;
  mailbox()?.port.postMessage({ t: "sweep" });
}

/** This thread's mailbox, with the post office running or on its way. */
function officeOf(what: string): Mailbox {
  const mb = mailbox();
  if (!mb) throw new Error(`Cannot ${what}: this thread has no mailbox (it was not started by this library)`);
  needOffice();
  return mb;
}

/** msgpackr's writer for a handle the hook met: deposits it (when new) and writes `[tag, id]`. */
function writeRef(v: object): [string, number] {
  const p = pending.get(v)!;
  pending.delete(v);
  const { handler } = p;
  if (p.id !== undefined) {
    sent(handler, v, p.id);
    return [handler.tag, p.id];
  }
  const mb = officeOf(`send a ${handler.tag} inside an item`);
  const id = newHandleId();
  const transfer = handler.transferables?.(p.data) ?? [];
  const once = handler.once === true || handler.moved !== undefined || transfer.length > 0;
  const owner: OwnerWord | undefined = handler.owner?.(p.data);
  const reader = owner ? p.reader : undefined;
  mb.port.postMessage({ t: "put", id, tag: handler.tag, data: p.data, once, transfer, owner, reader }, transfer);
  if (!once) {
    remember(v, id);
    sent(handler, v, id);
  } else if (holding) (held ??= []).push({ handler, value: v, to: mb.office, id, owned: owner !== undefined });
  else handler.moved?.(v, mb.office);
  return [handler.tag, id];
}

/** Counts an item naming shared handle `id` as sent: now, or once it is in when moves are held. */
function sent(handler: TransferHandler, v: object, id: number): void {
  if (holding) (held ??= []).push({ handler, value: v, to: undefined, id, shared: true });
  else tally(id).sent++;
}

/**
 * A deposit made for one item only (a handle that moves with it, or plain
 * shared memory), settled once the item is in or has failed to go in.
 */
export interface Move {
  handler: TransferHandler;
  value: object;
  to: number | undefined;
  id: number;
  /** A shared handle the item names (no move, no deposit of its own): counted as sent once the item is in. */
  shared?: boolean;
  /** A moved handle with an owner word (a `Connection` end), which its taker must claim. */
  owned?: boolean;
  /** A copy counted in flight (`inFlight`), as the item was encoded: given back if it does not go. */
  flight?: boolean;
}

/** Whether moves are held back ({@linkcode holdMoves}). */
let holding = false;
/** Moves met while holding: done only once their item is in. */
let held: Move[] | undefined;

/** The holding state of the encodings a put interrupted (one made while an item is encoded). */
const outer: [boolean, Move[] | undefined][] = [];

/**
 * Makes the next encoding hold back the moves of the handles it meets (a
 * `Connection` end stays usable by the sender) until {@linkcode settleMoves}:
 * a put that then fails (full, closed, aborted) must not take the end with
 * it. Call {@linkcode heldMoves} right after the encoding. Nests: a put
 * made while an item is encoded (a thread's first frame to a manager
 * registers it with a put) holds its own moves.
 */
export function holdMoves(): void {
  outer.push([holding, held]);
  holding = true;
  held = undefined;
}

/** The moves held back since the matching {@linkcode holdMoves}; the outer encoding's holding resumes. */
export function heldMoves(): Move[] | undefined {
  const moves = held;
  [holding, held] = outer.pop() ?? [false, undefined];
  return moves;
}

/**
 * The ids of the held moves of handles with an owner word (`Connection`
 * ends) met so far: an item carrying them lists them (`_record.ts`), so that
 * its taker claims them before it lets go of the queue (`_ring.ts`).
 */
export function heldOwnedIds(): number[] | undefined {
  let ids: number[] | undefined;
  if (held) { for (const m of held) if (m.owned) (ids ??= []).push(m.id); }
  return ids;
}

/** Ids this thread asked the post office for ahead of decoding ({@linkcode claimMoved}). */
const claimed = new Set<number>();

/**
 * Asks the post office for moved handles `ids` now, on behalf of this
 * thread: from here on they live or die with it. The replies are taken when
 * the item is decoded.
 */
export function claimMoved(ids: number[]): void {
  const mb = officeOf("claim a handle moved inside an item");
  const ident = selfIdent();
  for (const id of ids) {
    claimed.add(id);
    mb.port.postMessage({ t: "get", id, ident });
  }
}

/**
 * Tells the post office to close moved handles `ids`: their taker died
 * before it claimed them (`_ring.ts` finds this when it takes over the
 * dead taker's lock).
 */
export function closeMoved(ids: number[]): void {
  officeOf("close handles whose taker died").port.postMessage({ t: "close", ids });
}

/**
 * Completes held moves (`done`: the item is in; each sender's copy is
 * detached) or gives them up (the item never went in: the post office
 * forgets the deposits, the sender keeps its ends), also the deposits of
 * plain shared memory, which would otherwise stay for good. A handle that
 * counts its copies in flight hears of a copy that did not go.
 */
export function settleMoves(moves: Move[] | undefined, done: boolean): void {
  if (moves === undefined) return;
  for (const m of moves) {
    if (m.flight) {
      if (!done) m.handler.inFlight?.(m.value, -1);
    } else if (m.shared) {
      if (done) tally(m.id).sent++;
    } else if (done) m.handler.moved?.(m.value, m.to);
    else mailbox()?.port.postMessage({ t: "drop", id: m.id });
  }
}

function remember(v: object, id: number): void {
  ids.set(v, id);
  cache.set(id, new WeakRef(v));
  forget.register(v, id);
}

/** msgpackr's reader of `[tag, id]`: the handle, from this thread's cache or the post office. */
function readRef(ref: [string, number]): object {
  const [tag, id] = ref;
  const hit = cache.get(id)?.deref();
  if (hit) {
    tally(id).read++;
    return hit;
  }
  const handler = handlerForTag(tag);
  if (!handler) throw new Error(`Cannot rebuild a '${tag}' in this thread: its module is not loaded`);
  const reply = fetch(id, tag);
  const v = handler.deserialize(reply.data) as object;
  if (!reply.once) {
    remember(v, id);
    tally(id).read++;
  }
  return v;
}

/** Asks the post office for handle `id` and waits for the reply. */
function fetch(id: number, tag: string): Reply {
  const early = inbox.get(id);
  if (early) {
    inbox.delete(id);
    return early;
  }
  const mb = officeOf(`receive a ${tag} inside an item`);
  if (!claimed.delete(id)) mb.port.postMessage({ t: "get", id, ident: selfIdent() });
  (globalThis as { [AFTER_ASK]?: (id: number) => void })[AFTER_ASK]?.(id);
  return awaitReply(mb, id, () =>
    new Error(
      `Cannot rebuild a '${tag}' received in an item: the post office did not hand over handle #${id} within ${FETCH_TIMEOUT} ms (the main thread starts it: is it busy without ever waiting or yielding?)`,
    ));
}

/** Waits for the post office's reply `id`, keeping the others for later. */
function awaitReply<R extends { id: number }>(mb: Mailbox, id: number, timedOut: () => Error): R {
  const end = Date.now() + FETCH_TIMEOUT;
  for (;;) {
    const seq = Atomics.load(mb.bell, 0);
    for (let m = receiveSync(mb.port) as Reply | undefined; m !== undefined; m = receiveSync(mb.port) as Reply) {
      if (m.id === id) return m as unknown as R;
      inbox.set(m.id, m);
    }
    const left = end - Date.now();
    if (left <= 0) throw timedOut();
    Atomics.wait(mb.bell, 0, seq, Math.min(left, 100));
  }
}

/**
 * For tests: how many handles the post office keeps (starting it if it is
 * down). Blocks until it answers.
 */
export function keptHandles(): number {
  const mb = officeOf("count the post office's handles");
  mb.port.postMessage({ t: "count" });
  return awaitReply<{ id: number; count: number }>(mb, 0, () => new Error("The post office did not answer")).count;
}

/** For tests: makes the post office ignore releases from now on, so that it keeps every shared handle. */
export function keepAllHandles(): void {
  officeOf("keep the post office's handles").port.postMessage({ t: "keep" });
}
