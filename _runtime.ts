// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Everything that differs between Deno, Bun, Node and browsers lives here and
 * nowhere else: how a worker is spawned and stopped, how it reports its end,
 * whether it keeps the program alive, how a worker talks to its parent and
 * ends itself, and whether this thread may block. (Which worker entry runs,
 * and the mailbox each worker gets, are `_mailbox.ts`'s.)
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

/**
 * Whether `terminate()` stops a worker at any instruction (running
 * JavaScript, or parked in `Atomics.wait`) and reports when it has stopped:
 * Node and Bun. Deno's stops a worker only when it next returns to its event
 * loop, and reports nothing (its `node:worker_threads` "exit" event comes at
 * once, while the worker may still run), so a Deno thread is stopped by a
 * protocol of its own (`_status.ts`).
 */
export const terminateStops: boolean = runtime === "node" || runtime === "bun";

/** Starts a worker running `entry`; `callbacks` hear its messages and its end. */
export function spawnWorker(entry: URL, name: string, callbacks: SpawnCallbacks): WorkerHandle {
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
 * Ends the calling worker: no more of its code runs after this call
 * (messages it posted before still reach the parent), and it never returns.
 * Deno's `close()` (in a Web Worker and under `node:worker_threads` alike;
 * its `process.exit()` there could leave the worker running) usually stops
 * the worker on the spot, but now and then returns and lets the code after
 * it run on; Node's and Bun's `process.exit()` end only the worker.
 * Browsers: `close()`. Should the call return, the worker parks until the
 * runtime ends it (a wait in `Atomics.wait` is interrupted when it does), so
 * whoever was told it stopped can rely on that.
 */
export function exitWorker(code: number): never {
  if (runtime === "deno" || runtime === "browser") g.close();
  else processExit(code);
  const parked = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(parked, 0, 0, 1000);
}

/** Node's and Bun's own `process.exit`, before {@linkcode onExitCall} wraps it. */
const processExit: (code: number) => void = runtime === "node" || runtime === "bun"
  ? g.process.exit.bind(g.process)
  : () => {};

/**
 * In a worker: when the thread's code calls `process.exit(code)` (or
 * `Deno.exit(code)` on Deno, where it would only `close()` the worker and
 * drop the code), `hook` gets the exit code first, as Python's
 * `sys.exit(n)` gives the process exit code `n`; then the runtime's own
 * exit runs, as it would have. On Deno that is `close()`, which returns:
 * the code after the call runs on until the worker's next turn of its
 * event loop, where the worker ends (parking it here instead would keep it
 * from ever reaching that turn, and its end from being reported). Without a
 * code: `process.exitCode`, else 0; a code that is not an integer counts
 * as 1.
 */
export function onExitCall(hook: (code: number) => void): void {
  const denoExit = runtime === "deno" ? g.Deno.exit.bind(g.Deno) : undefined;
  const exit = (code?: unknown): void => {
    const c = code ?? g.process?.exitCode ?? 0;
    const n = typeof c === "number" || typeof c === "string" ? Number(c) : NaN;
    const exitCode = Number.isInteger(n) ? n : 1;
    hook(exitCode);
    if (denoExit) denoExit(exitCode);
    else processExit(exitCode);
  };
  if (typeof g.process?.exit === "function") g.process.exit = exit;
  if (runtime === "deno") g.Deno.exit = exit;
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

/** A new `MessageChannel` (Node's own where spawning uses `node:worker_threads`). */
export function newChannel(): MessageChannel {
  return new (nodeWT?.MessageChannel ?? g.MessageChannel)();
}

/** Lets the program exit while `port` is open (where ports can be unref'd). */
export function unrefPort(port: MessagePort): void {
  (port as any).unref?.();
}

/** In a worker: sends a control message to the parent. */
export function postToParent(message: ControlMessage, transfer?: Transferable[]): void {
  if (nodeWT?.parentPort) nodeWT.parentPort.postMessage(message, transfer as any);
  else g.postMessage(message, transfer ?? []);
}

/** In a worker: hears the parent's control messages (beside any other listener). */
export function onParentMessage(handler: (message: ControlMessage) => void): void {
  if (nodeWT?.parentPort) nodeWT.parentPort.on("message", handler);
  else g.addEventListener("message", (e: MessageEvent) => handler(e.data));
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
