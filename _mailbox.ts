// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Mailboxes and the post office's start-up: how every thread gets its link
 * to the post office (`_post_office.ts`), which keeps the handles that travel
 * inside queue items and pipe messages (`_post.ts`), and how the post office
 * is started the first time one is needed. Also {@linkcode startWorker}, the
 * one start sequence of a thread's or a pool's worker (its status cells, its
 * ident, its packed arguments and its mailbox in the start message).
 *
 * @module
 */

import {
  markOfficeUp,
  newIdent,
  OFFICE_UP,
  OFFICE_WANTED,
  officeState,
  registryBuffer,
  wantOffice,
} from "./_registry.ts";
import {
  type ControlMessage,
  isMainThread,
  newChannel,
  onParentMessage,
  postToParent,
  receiveSync,
  runtime,
  type SpawnCallbacks,
  spawnWorker,
  unrefPort,
  type WorkerHandle,
} from "./_runtime.ts";
import { pack } from "./_handles.ts";
import { classModules } from "./_codec.ts";
import { ERROR_AT, RUNNING, STATE } from "./_status.ts";
import type { StartMessage, TargetSpec } from "./_protocol.ts";

const ownUrl = import.meta.url;
/** The worker entry, beside this file in the source tree (.ts) and in the npm build (.js). */
const workerEntry = new URL(ownUrl.endsWith(".ts") ? "./_worker.ts" : "./_worker.js", ownUrl);

/** What {@linkcode startWorker} starts: the worker's name and what it runs. */
export interface WorkerStart {
  name: string;
  daemon: boolean;
  target: TargetSpec;
  /** The target's arguments, packed here (they may hold handles). */
  args: unknown[];
  /** How a value of `args` is named in an error ("args", "initargs"). */
  argsName: string;
}

/** A started worker: its ident, its status cells (`_status.ts`) and its handle. */
export interface StartedWorker {
  ident: number;
  status: SharedArrayBuffer;
  cells: Int32Array;
  handle: WorkerHandle;
}

/**
 * Starts a worker that runs `start.target` (the one start sequence of
 * threads and pool workers): packs the arguments (throwing, before anything
 * starts, when one cannot be sent), makes the status cells and the ident,
 * spawns the worker and posts its start message. `callbacks` hear the
 * worker's messages and its end; a daemon worker is unref'd.
 */
export function startWorker(start: WorkerStart, callbacks: SpawnCallbacks): StartedWorker {
  const packed = pack(start.args, start.argsName);
  const status = new SharedArrayBuffer(ERROR_AT, { maxByteLength: 1 << 20 });
  const cells = new Int32Array(status, 0, ERROR_AT / 4);
  cells[STATE] = RUNNING;
  const ident = newIdent();
  const message: StartMessage = {
    type: "start",
    registry: registryBuffer(),
    status,
    ident,
    name: start.name,
    daemon: start.daemon,
    target: start.target,
    args: packed.data,
    hasHandles: packed.hasHandles,
    classes: classModules(),
  };
  const handle = spawn(start.name, callbacks);
  handle.post(message, packed.transfer);
  packed.commit(ident);
  if (start.daemon) handle.unref();
  return { ident, status, cells, handle };
}

/**
 * Starts a worker running this library's worker entry (`_worker.ts`).
 *
 * Its first message (the caller's start message) also carries its mailbox,
 * the link to the post office (see {@linkcode Mailbox}).
 */
function spawn(name: string, callbacks: SpawnCallbacks): WorkerHandle {
  const handle = spawnWorker(workerEntry, name, {
    onMessage: (m) => {
      if (onChildRequest(m)) return;
      callbacks.onMessage(m);
    },
    onExit: callbacks.onExit,
  });
  const child = childMailbox();
  if (child && !officeStarted && !asked && officeState() !== OFFICE_UP) officeWatch = watchOffice;
  // The mailbox rides in the first message (the start message): a message
  // of its own measured slower to start a worker on Bun.
  let first = child !== undefined;
  return {
    ...handle,
    post: (m, transfer) => {
      if (!first) return handle.post(m, transfer);
      first = false;
      handle.post({ ...m, [MAILBOX_KEY]: child }, [...(transfer ?? []), child!.port as Transferable]);
    },
  };
}

// ## Mailboxes and the post office
//
// Handles (`Queue`, `Lock`, `Connection`, …) inside queue items and pipe
// messages cannot be written into shared memory: their `SharedArrayBuffer`s
// must travel by `postMessage`. One small worker, the post office
// (`_post_office.ts`), keeps them; every thread has a mailbox, a
// `MessagePort` whose other end the post office holds, through which it
// deposits a handle before the item that names it is published, and fetches
// one it has not seen (`_post.ts`). A spawner makes each child's mailbox and
// hands the other end on through its own mailbox (the main thread keeps the
// ends itself until the post office runs: messages wait in a port that is
// not listened to, and travel with it when it is transferred).
//
// The post office starts only when a handle is first sent inside an item
// (starting a worker costs Deno's main thread ~100–300 ms, which the first
// thread's start should not pay): at once when the main thread needs it;
// when a worker does, it marks the registry word and asks its parent, which
// forwards up to the main thread. A thread that has children parks in
// slices while the post office is down, so that a parked main thread (or a
// parked forwarder) still sees a worker's request. The post office is
// unref'd (it never keeps the program alive), is no `Thread` (not in
// `enumerate()`/`activeCount()`), and sleeps in its event loop while idle.

/** A thread's link to the post office. */
export interface Mailbox {
  /** This thread's end; the post office holds (or will hold) the other. */
  port: MessagePort;
  /** A word the post office bumps (and notifies) after each reply to this thread. */
  bell: Int32Array;
  /** The post office's ident: alive for the program's life (owner of moved handles in transit). */
  office: number;
}

/** Where a worker's mailbox rides in its first message (see {@linkcode spawn}). */
const MAILBOX_KEY = "mpjsMailbox";

/** A worker's mailbox, as its spawner sends it. */
interface MailboxMessage {
  port: MessagePort;
  bell: SharedArrayBuffer;
  office: number;
}

/** The post office's end of a thread's mailbox, with that thread's bell. */
interface Client {
  port: MessagePort;
  bell: SharedArrayBuffer;
}

let ownMailbox: Mailbox | undefined;
/** Main thread: the mailbox ends the post office will serve, kept until it starts. */
let reception: Client[] = [];
let officeStarted = false;
/** Whether this thread asked its parent to have the post office started. */
let asked = false;

const officeEntry = new URL(ownUrl.endsWith(".ts") ? "./_post_office.ts" : "./_post_office.js", ownUrl);

/**
 * This thread's mailbox (the main thread makes its own on first call; a
 * worker has one from its spawner), or `undefined` on browsers (no
 * synchronous receive there, see {@linkcode receiveSync}). The post office
 * may not run yet: call {@linkcode needOffice} before waiting for it.
 */
export function mailbox(): Mailbox | undefined {
  if (ownMailbox || !isMainThread || runtime === "browser") return ownMailbox;
  const { port1, port2 } = newChannel();
  const bell = new Int32Array(new SharedArrayBuffer(4));
  unrefPort(port1);
  reception.push({ port: port2, bell: bell.buffer as SharedArrayBuffer });
  ownMailbox = { port: port1, bell, office: newIdent() };
  return ownMailbox;
}

/**
 * Makes sure the post office runs or is about to: starts it in the main
 * thread; in a worker, marks the registry and asks the parent (once).
 */
export function needOffice(): void {
  if (officeStarted) return;
  if (isMainThread) {
    startOffice();
    return;
  }
  if (officeState() === OFFICE_UP) {
    officeStarted = true;
    return;
  }
  wantOffice();
  askParent();
}

function startOffice(): void {
  if (officeStarted || runtime === "browser") return;
  officeStarted = true;
  mailbox();
  const h = spawnWorker(officeEntry, "mpjs-post-office", { onMessage: () => {}, onExit: () => {} });
  // Each waiting end goes over with what it holds already, taken out here:
  // Node closes (and will not transfer) the end of a thread that ended,
  // whose deposits must still reach the post office. A child's mailbox
  // announced by a worker ("adopt") is handled the same way.
  const ends = reception;
  reception = [];
  while (ends.length > 0) {
    const c = ends.shift()!;
    const backlog: unknown[] = [];
    const transfer: Transferable[] = [];
    for (let m = receiveSync(c.port) as Deposit | undefined; m !== undefined; m = receiveSync(c.port) as Deposit) {
      if (m.t === "adopt") ends.push({ port: m.port!, bell: m.bell! });
      else {
        backlog.push(m);
        if (m.transfer) transfer.push(...m.transfer);
      }
    }
    const start = {
      type: "mpjs-office",
      port: c.port as MessagePort | undefined,
      bell: c.bell,
      backlog,
      registry: registryBuffer(),
    };
    try {
      h.post(start, [c.port as Transferable, ...transfer]);
    } catch {
      start.port = undefined;
      h.post(start, transfer);
    }
  }
  h.unref();
  markOfficeUp();
}

/** A message from a thread to the post office, as far as the main thread looks into it. */
interface Deposit {
  t: string;
  port?: MessagePort;
  bell?: SharedArrayBuffer;
  transfer?: Transferable[];
}

function askParent(): void {
  if (asked) return;
  asked = true;
  postToParent({ type: "mpjs-need-office" });
}

/** Handles a child's request for the post office; `true` when `m` was one. */
function onChildRequest(m: ControlMessage): boolean {
  if (m?.type !== "mpjs-need-office") return false;
  needOffice();
  return true;
}

/** A new mailbox for a child about to start, its other end on its way to the post office. */
function childMailbox(): MailboxMessage | undefined {
  const own = mailbox();
  if (!own) return undefined;
  const { port1, port2 } = newChannel();
  const bell = new SharedArrayBuffer(4);
  if (isMainThread && !officeStarted) reception.push({ port: port2, bell });
  else own.port.postMessage({ t: "adopt", port: port2, bell }, [port2 as Transferable]);
  return { port: port1, bell, office: own.office };
}

// A worker adopts its mailbox from the first message its spawner sends
// (every worker entry imports this module first, so this listener runs
// before the entry's own).
if (!isMainThread && runtime !== "browser") {
  const adopt = (m: ControlMessage) => {
    const mm = m?.[MAILBOX_KEY] as MailboxMessage | undefined;
    if (!mm || ownMailbox) return;
    unrefPort(mm.port);
    ownMailbox = { port: mm.port, bell: new Int32Array(mm.bell), office: mm.office };
  };
  onParentMessage(adopt);
}

/**
 * Set while this thread must look out, as it parks, for a worker that wants
 * the post office: in a thread that has started workers, while the post
 * office is down. `_wait.ts` then parks in slices and calls it in between;
 * it starts (main thread) or asks for (worker) the post office once a worker
 * wants it, so that a parked thread cannot leave a worker waiting for it.
 * Returns `true` once there is nothing left to look out for.
 */
export let officeWatch: (() => boolean) | undefined;

function watchOffice(): boolean {
  if (officeState() === OFFICE_WANTED) needOffice();
  if (officeStarted || asked || officeState() === OFFICE_UP) {
    officeWatch = undefined;
    return true;
  }
  return false;
}
