// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Everything that differs between Deno, Bun, Node and browsers lives here and
 * nowhere else: how a worker is spawned and stopped, how it reports its end,
 * whether it keeps the program alive, where the worker entry file is, and
 * whether this thread may block.
 *
 * Node spawns with `node:worker_threads` (it has no other API). Bun and
 * browsers use the Web `Worker` API. Deno uses its Web `Worker` for workers
 * that always keep the program alive (non-daemon threads: it starts about
 * twice as fast) and `node:worker_threads` for the others, because a Deno
 * Web `Worker` cannot be unref'd and would keep a program alive for ever.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any

import {
  markOfficeUp,
  newIdent,
  OFFICE_UP,
  OFFICE_WANTED,
  officeState,
  registryBuffer,
  wantOffice,
} from "./_registry.ts";

/** The JavaScript runtime this code runs on. */
export type RuntimeName = "deno" | "bun" | "node" | "browser";

const g = globalThis as any;

/** Which runtime this is. */
export const runtime: RuntimeName = g.Deno?.version?.deno
  ? "deno"
  : g.Bun
  ? "bun"
  : g.process?.versions?.node
  ? "node"
  : "browser";

type NodeWorkerThreads = typeof import("node:worker_threads");

/**
 * Loads one of Node's built-in modules (Deno has them too). The name goes
 * through a variable so that a bundler making a browser build does not try
 * to resolve it: the browser never loads them.
 */
function builtin<T>(name: string): Promise<T> {
  return import(/* @vite-ignore */ /* webpackIgnore: true */ name);
}

/** Whether this is a Web Worker (Deno's `node:worker_threads` says "main thread" there). */
const inWebWorker: boolean = typeof g.WorkerGlobalScope !== "undefined" && g.self instanceof g.WorkerGlobalScope;

// Built-in modules are loaded only where they are used: each import costs
// every worker start a few ms (Bun needs none).
//
// Deno spawns with node:worker_threads too, though its Web Worker starts
// faster: a Deno Web Worker cannot be unref'd (a daemon thread would keep the
// program alive), and its terminate() does not stop a worker that is busy
// (spinning, or in Atomics.wait), which then keeps the program from exiting.
/** `node:worker_threads`, where workers are spawned with it. */
const nodeWT: NodeWorkerThreads | undefined = runtime === "node" || runtime === "deno"
  ? await builtin<NodeWorkerThreads>("node:worker_threads")
  : undefined;

/** Whether this is the program's main thread (not a worker). */
export const isMainThread: boolean = runtime === "browser" || (runtime === "deno" && inWebWorker)
  ? !inWebWorker
  : runtime === "bun"
  ? g.Bun.isMainThread !== false
  : nodeWT!.isMainThread;

/** Whether this thread may block with `Atomics.wait` (not a browser's main thread). */
export const canBlock: boolean = !(runtime === "browser" && isMainThread);

/**
 * The number of logical CPUs, at least 1.
 */
export function cpuCount(): number {
  if (nodeOs) return Math.max(1, nodeOs.availableParallelism?.() ?? nodeOs.cpus().length);
  const n = g.navigator?.hardwareConcurrency;
  return typeof n === "number" && n > 0 ? n : 1;
}

/** `node:os`, for Node 20, which has no `navigator.hardwareConcurrency`. */
const nodeOs: typeof import("node:os") | undefined = runtime === "node"
  ? await builtin<typeof import("node:os")>("node:os")
  : undefined;

/** A message sent over a worker's control channel. */
export type ControlMessage = { type: string; [key: string]: unknown };

/** The parent's side of a spawned worker. */
export interface WorkerHandle {
  /** Sends a control message (structured clone; `transfer` moves ports). */
  post(message: ControlMessage, transfer?: Transferable[]): void;
  /**
   * Stops the worker. Where {@linkcode terminateStops} holds, resolves once
   * the runtime confirmed that the worker stopped; elsewhere (Deno) at once,
   * and the worker stops only at its next turn of the event loop.
   */
  terminate(): Promise<void>;
  /**
   * Settles once the worker's end was reported to this thread: by the
   * runtime, or by the worker's own "exit" message (Deno, browsers). Output
   * the worker wrote before it ended has reached this thread by then.
   */
  readonly exited: Promise<void>;
  /** Lets the program exit while the worker runs (a daemon thread). */
  unref(): void;
  /** Keeps the program alive while the worker runs. */
  ref(): void;
}

/** What a spawned worker reports to its parent. */
export interface SpawnCallbacks {
  /** A control message from the worker. */
  onMessage(message: ControlMessage): void;
  /**
   * The worker stopped. `error` is set when it died of an uncaught error the
   * worker could not report itself.
   */
  onExit(error?: unknown): void;
}

const ownUrl = import.meta.url;
/** The worker entry, beside this file in the source tree (.ts) and in the npm build (.js). */
const workerEntry = new URL(ownUrl.endsWith(".ts") ? "./_worker.ts" : "./_worker.js", ownUrl);

/**
 * Starts a worker running this library's worker entry (`_worker.ts`).
 *
 * Its first message (the caller's start message) also carries its mailbox,
 * the link to the post office (see {@linkcode Mailbox}).
 */
export function spawn(name: string, callbacks: SpawnCallbacks): WorkerHandle {
  const handle = spawnEntry(workerEntry, name, {
    onMessage: (m) => onChildRequest(m) || callbacks.onMessage(m),
    onExit: callbacks.onExit,
  });
  const child = childMailbox();
  if (!child) return handle;
  if (!officeStarted && !asked && officeState() !== OFFICE_UP) parkHook = slicedPark;
  // The mailbox rides in the first message (the start message): a message
  // of its own measured slower to start a worker on Bun.
  let first = true;
  return {
    ...handle,
    post: (m, transfer) => {
      if (!first) return handle.post(m, transfer);
      first = false;
      handle.post({ ...m, [MAILBOX_KEY]: child }, [...(transfer ?? []), child.port as Transferable]);
    },
  };
}

/**
 * Whether `terminate()` stops a worker at any instruction (running
 * JavaScript, or parked in `Atomics.wait`) and reports when it has stopped:
 * Node and Bun. Deno's stops a worker only when it next returns to its event
 * loop, and reports nothing (its `node:worker_threads` "exit" event comes at
 * once, while the worker may still run), so a Deno thread is stopped by a
 * protocol of its own (`_status.ts`).
 */
export const terminateStops: boolean = runtime === "node" || runtime === "bun";

function spawnEntry(entry: URL, name: string, callbacks: SpawnCallbacks): WorkerHandle {
  let ended = false;
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => markExited = resolve);
  const exit = (error?: unknown) => {
    if (ended) return;
    ended = true;
    callbacks.onExit(error);
    markExited();
  };
  if (nodeWT) {
    const w = new nodeWT!.Worker(entry, { name } as any);
    let lastError: unknown;
    w.on("message", (m: ControlMessage) => callbacks.onMessage(m));
    w.on("error", (e: unknown) => lastError = e);
    const gone = new Promise<void>((resolve) =>
      w.on("exit", () => {
        exit(lastError);
        resolve();
      })
    );
    return {
      exited,
      post: (m, transfer) => w.postMessage(m, transfer as any),
      terminate: async () => {
        // Our own "exit" listener settles it too, so a worker that is
        // already ending cannot leave terminate() pending.
        await Promise.race([w.terminate(), gone]);
        exit();
      },
      unref: () => w.unref(),
      ref: () => w.ref(),
    };
  }
  const w = new g.Worker(entry, { type: "module", name });
  // Bun's Web Worker fires "close" once it has stopped, however it ended
  // (terminated, closed itself, or died of an error): that is the one sign
  // of its end there. Deno's and browsers' fire no such event; a worker that
  // ends itself says so first ("exit"), and one that dies of an uncaught
  // error is closed by the runtime as the "error" event fires.
  const closes = runtime === "bun";
  let lastError: unknown;
  const gone = new Promise<void>((resolve) =>
    w.addEventListener?.("close", () => {
      exit(lastError);
      resolve();
    })
  );
  w.onmessage = (e: MessageEvent) => {
    const m = e.data as ControlMessage;
    callbacks.onMessage(m);
    if (m.type === "exit" && !closes) exit();
  };
  w.onerror = (e: ErrorEvent) => {
    e.preventDefault?.();
    lastError = e.error ?? new Error(e.message);
    if (!closes) exit(lastError);
  };
  return {
    exited,
    post: (m, transfer) => w.postMessage(m, transfer ?? []),
    terminate: async () => {
      w.terminate();
      if (closes) await gone;
      else exit();
    },
    unref: () => w.unref?.(),
    ref: () => w.ref?.(),
  };
}

/** The worker's side of its control channel to the parent. */
export interface ParentPort {
  /** Sends a control message to the parent. */
  post(message: ControlMessage, transfer?: Transferable[]): void;
  /** Receives control messages from the parent. */
  onMessage(handler: (message: ControlMessage) => void): void;
  /** Ends this worker. Call after the last `post`. */
  close(code: number): void;
  /** Runs `hook` when this worker dies of an uncaught error. */
  onFatal(hook: (error: unknown) => void): void;
}

/** The control channel to the parent; only valid inside a worker. */
export function parentPort(): ParentPort {
  if (nodeWT?.parentPort) {
    const port = nodeWT!.parentPort!;
    const proc = g.process;
    return {
      post: (m, transfer) => port.postMessage(m, transfer as any),
      onMessage: (h) => port.on("message", h),
      close: exitWorker,
      onFatal: (hook) => {
        const fatal = (e: unknown) => {
          hook(e);
          exitWorker(1);
        };
        proc.on("uncaughtException", fatal);
        proc.on("unhandledRejection", fatal);
      },
    };
  }
  return {
    post: (m, transfer) => g.postMessage(m, transfer ?? []),
    onMessage: (h) => g.addEventListener("message", (e: MessageEvent) => h(e.data)),
    close: exitWorker,
    onFatal: (hook) => {
      g.addEventListener("error", (e: ErrorEvent) => {
        hook(e.error ?? e.message);
        exitWorker(1);
      });
      g.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
        e.preventDefault?.();
        hook(e.reason);
        exitWorker(1);
      });
    },
  };
}

/**
 * Ends the calling worker at once: no more of its code runs after this call
 * (messages it posted before still reach the parent). Deno's `close()` stops
 * the worker on the spot, in a Web Worker and under `node:worker_threads`
 * alike (its `process.exit()` there could leave the worker running). Node's
 * and Bun's `process.exit()` end only the worker. Browsers: `close()`.
 */
export function exitWorker(code: number): void {
  if (runtime === "deno" || runtime === "browser") g.close();
  else g.process.exit(code);
}

/**
 * A new `Uint8Array` of `length` bytes over an `ArrayBuffer` of its own, for
 * a caller that overwrites every byte at once (a copy out of shared memory).
 * On Node and Bun its memory is not zeroed first (`Buffer.allocUnsafeSlow`,
 * `Bun.allocUnsafe`). Measured on this project's machine: zeroing costs about
 * as much as the copy, and the zeroing allocators also keep taking fresh
 * pages from the system for large sizes (a 16 MiB copy then took ~60 ms of
 * page faults instead of ~1–2 ms in most rounds; without zeroing, in 1 round
 * of 30). Deno's `Buffer.allocUnsafeSlow` measured no faster than a plain
 * array, so Deno and browsers get a plain array.
 */
export const bytesToOverwrite: (length: number) => Uint8Array = runtime === "bun"
  ? (length) => g.Bun.allocUnsafe(length)
  : runtime === "node"
  ? (length) => new Uint8Array(g.Buffer.allocUnsafeSlow(length).buffer, 0, length)
  : (length) => new Uint8Array(length);

/** Writes text to standard error (the console on browsers). */
export function writeStderr(text: string): void {
  if (runtime === "browser") {
    g.console.error(text);
    return;
  }
  if (runtime === "deno") {
    g.Deno.stderr.writeSync(new TextEncoder().encode(text));
    return;
  }
  g.process.stderr.write(text);
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

function newChannel(): MessageChannel {
  return new (nodeWT?.MessageChannel ?? g.MessageChannel)();
}

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
  const h = spawnEntry(officeEntry, "mpjs-post-office", { onMessage: () => {}, onExit: () => {} });
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
  const m = { type: "mpjs-need-office" };
  if (nodeWT?.parentPort) nodeWT.parentPort.postMessage(m);
  else g.postMessage(m);
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

function unrefPort(port: MessagePort): void {
  (port as any).unref?.();
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
  if (nodeWT?.parentPort) nodeWT.parentPort.on("message", adopt);
  else g.addEventListener("message", (e: MessageEvent) => adopt(e.data));
}

/** How long (ms) a thread with children parks at a time while the post office is down. */
const PARK_SLICE = 50;

/**
 * Called by `_wait.ts` instead of `Atomics.wait` while set: in a thread that
 * has started workers, while the post office is down, parks in slices and
 * starts (main thread) or asks for (worker) the post office once a worker
 * wants it, so that a parked thread cannot leave a worker waiting for it.
 */
export let parkHook:
  | ((cell: Int32Array, index: number, expected: number, timeout: number) => "ok" | "not-equal" | "timed-out")
  | undefined;

function slicedPark(
  cell: Int32Array,
  index: number,
  expected: number,
  timeout: number,
): "ok" | "not-equal" | "timed-out" {
  const end = performance.now() + timeout;
  for (;;) {
    if (officeStarted || asked || officeState() === OFFICE_UP) {
      parkHook = undefined;
      return Atomics.wait(cell, index, expected, Math.max(0, end - performance.now()));
    }
    if (officeState() === OFFICE_WANTED) {
      needOffice();
      continue;
    }
    const left = end - performance.now();
    if (left <= 0) return "timed-out";
    const r = Atomics.wait(cell, index, expected, Math.min(left, PARK_SLICE));
    if (r !== "timed-out") return r;
  }
}

let nodeWTSync: NodeWorkerThreads | undefined = nodeWT;

/**
 * Takes the next message waiting on `port` without waiting
 * (`receiveMessageOnPort`, which Node, Deno and Bun have), or `undefined`.
 *
 * @throws {Error} on browsers, which cannot receive synchronously.
 */
export function receiveSync(port: MessagePort): unknown {
  if (!nodeWTSync) {
    if (runtime === "bun") {
      nodeWTSync = g.process.getBuiltinModule?.("node:worker_threads") ??
        (import.meta as any).require("node:worker_threads");
    } else throw new Error("Cannot receive a message synchronously on a browser");
  }
  const got = nodeWTSync!.receiveMessageOnPort(port as any);
  return got === undefined ? undefined : got.message;
}
