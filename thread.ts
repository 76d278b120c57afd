// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Thread` (alias `Process`): run a function in another thread, Python's
 * `threading.Thread` / `multiprocessing.Process` on Web Workers.
 *
 * @example Start a thread and wait for it
 * ```ts
 * import { Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const t = new Thread({ target: (n: number) => { if (n !== 3) throw new Error("bad"); }, args: [3] });
 * t.start();
 * await t.join();
 * assert.equal(t.exitCode, 0);
 * ```
 *
 * @module
 */

import { RemoteError } from "./errors.ts";
import { pack } from "./_handles.ts";
import { addClass } from "./_codec.ts";
import {
  assertStarted,
  children,
  current,
  importAsTarget,
  kAdopt,
  MAIN_IDENT,
  markDead,
  nextNameNumber,
} from "./_registry.ts";
import {
  DONE,
  EXIT_CODE,
  exitCodeAsked,
  KILLED,
  readError,
  requestStop,
  STATE,
  STOP,
  TERMINATED,
  writeExit,
} from "./_status.ts";
import { startWorker } from "./_mailbox.ts";
import {
  cpuCount as runtimeCpuCount,
  isMainThread as runtimeIsMainThread,
  terminateStops,
  type WorkerHandle,
} from "./_runtime.ts";
import { assertCanBlock, now, until, untilSync } from "./_wait.ts";
import { checkOptions, checkTimeout, show } from "./_options.ts";
import type { TargetSpec } from "./_protocol.ts";
import { compile, importTarget, moduleUrl } from "./_target.ts";
import { Event } from "./_event.ts";
import { throwIfAborted, waitArgs, type WaitOptions } from "./_gate.ts";

/**
 * Options for {@linkcode Thread}.
 *
 * @example
 * ```ts
 * import { Thread, type ThreadOptions } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const options: ThreadOptions<[number]> = { target: (n: number) => n * 2, args: [21], name: "doubler" };
 * const t = new Thread(options);
 * t.start();
 * await t.join();
 * assert.equal(t.exitCode, 0);
 * ```
 */
export interface ThreadOptions<A extends unknown[] = unknown[]> {
  /**
   * The function to run in the thread. Shipped by name from `module` when
   * that is given, else by its source text (it must then be self-contained).
   * Without one (and without a `run()` override) the thread runs nothing.
   */
  target?: (...args: A) => unknown;
  /**
   * Arguments for `target`: structured-clone values and this library's
   * handles (queues, locks, connections, …), nested anywhere.
   * @default {[]}
   */
  args?: A;
  /**
   * The module that exports `target` (or the `Thread` subclass): its URL,
   * `import.meta.url` from inside it, or its file path, absolute or relative
   * to the current working directory. The worker imports it, as Python's
   * *spawn* does, so guard the main program with `if (isMainThread) { … }`.
   */
  module?: string | URL;
  /**
   * The thread's name. The default is `Thread-N`, or `Name-N` for a
   * subclass `Name`, with N counted over the whole program.
   * @default {"Thread-N"}
   */
  name?: string;
  /** A daemon thread does not keep the program alive. @default {false} */
  daemon?: boolean;
  /** @internal Set by the worker entry when it rebuilds a subclass instance. */
  [kAdopt]?: { ident: number };
}

/** How long terminate() waits for a Deno thread to stop itself before it resolves (ms). */
const STOP_GRACE = 1000;
/** How long join() waits, after the thread ended, for the report of its end and its output (ms). */
const OUTPUT_GRACE = 1000;

/**
 * A function running in another thread (a Web Worker), with Python's
 * `threading.Thread` / `multiprocessing.Process` interface.
 *
 * The target is shipped one of two ways:
 * 1. `module: import.meta.url`: the worker imports that module and calls the
 *    export whose name is `target.name`; imports and TypeScript work.
 * 2. no `module`: `target` is shipped by its source text, so it must be
 *    self-contained: besides what it declares, it may use the standard
 *    globals (`Math`, `JSON`, `console`, timers, `fetch`, …) and the
 *    runtime's namespace, and `import()`. Another name (an outer variable,
 *    an import) makes it fail with a `ReferenceError` naming it; a method
 *    that uses `this` fails with a `TypeError`.
 *
 * Subclasses override `run()`, pass `module: import.meta.url` to `super()`
 * and must be exported from that module (`export class Worker extends
 * Thread`, or its default export): the worker imports the module, finds the
 * class by name and rebuilds the instance from its public fields (which
 * must be able to cross threads, as `args` do), without calling its
 * constructor. So `#private` fields and methods are not there: `run()`
 * must not use them.
 *
 * @example A self-contained target
 * ```ts
 * import { Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const t = new Thread({ target: async () => await new Promise((r) => setTimeout(r, 10)), name: "napper" });
 * assert.equal(t.ident, null);
 * t.start();
 * assert.equal(t.isAlive(), true);
 * await t.join();
 * assert.equal(t.isAlive(), false);
 * assert.equal(t.name, "napper");
 * ```
 */
export class Thread<A extends unknown[] = unknown[]> {
  // Typed loosely so that Thread<A> stays assignable to Thread (what
  // enumerate() returns); the constructor checks the target against A.
  // deno-lint-ignore no-explicit-any
  #target: ((...args: any[]) => unknown) | undefined;
  #args: A;
  #module: string | undefined;
  #name: string;
  #daemon: boolean;
  #ident: number | null = null;
  #status: SharedArrayBuffer | undefined;
  #cells: Int32Array | undefined;
  #handle: WorkerHandle | undefined;
  #self = false;
  #error: RemoteError | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * Creates a thread; nothing runs until {@linkcode Thread.start}.
   *
   * @param options What to run and how; see {@linkcode ThreadOptions}.
   * @throws {TypeError} when `target` is given and is not a function, or an
   *   option has the wrong type.
   */
  constructor(options: ThreadOptions<A> = {}) {
    checkOptions(options, "create Thread");
    const { target, args, module, name, daemon } = options;
    if (target !== undefined && typeof target !== "function") {
      throw new TypeError(`Cannot create Thread as 'target' must be a function: current value is ${String(target)}`);
    }
    if (args !== undefined && !Array.isArray(args)) {
      throw new TypeError(`Cannot create Thread as 'args' must be an array: current value is ${String(args)}`);
    }
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError(`Cannot create Thread as 'name' must be a string: current value is ${String(name)}`);
    }
    this.#target = target;
    this.#args = (args ?? []) as A;
    this.#module = module === undefined ? undefined : moduleUrl(module, "Thread");
    // Python names a Process subclass after its class: Squarer-1.
    this.#name = name ?? `${new.target === Thread ? "Thread" : new.target.name || "Thread"}-${nextNameNumber()}`;
    this.#daemon = Boolean(daemon);
    const adopt = options[kAdopt];
    if (adopt) {
      this.#ident = adopt.ident;
      this.#self = true;
    }
  }

  /** The thread's name; settable at any time. Default `Thread-N` (`Name-N` for a subclass `Name`). */
  get name(): string {
    return this.#name;
  }
  /**
   * Renames the thread, before or after `start()`.
   *
   * @param value The new name; anything else is converted with `String()`.
   */
  set name(value: string) {
    this.#name = String(value);
  }

  /** A unique number for the thread, `null` before `start()`. */
  get ident(): number | null {
    return this.#ident;
  }

  /** Python's `Process.pid`: the same number as {@linkcode Thread.ident}. */
  get pid(): number | null {
    return this.#ident;
  }

  /**
   * Whether this is a daemon thread, which does not keep the program alive.
   * Settable before `start()` only.
   */
  get daemon(): boolean {
    return this.#daemon;
  }
  /**
   * Makes the thread a daemon (`true`) or not, before `start()`.
   *
   * @param value Whether the thread is a daemon; converted with `Boolean()`.
   * @throws {Error} when the thread has been started.
   */
  set daemon(value: boolean) {
    if (this.#ident !== null) throw new Error("Cannot set daemon status of an active thread");
    this.#daemon = Boolean(value);
  }

  /**
   * `null` while running or before start; `0` after a normal return; `1`
   * after an uncaught error; `-15` after `terminate()`, `-9` after `kill()`.
   */
  get exitCode(): number | null {
    const cells = this.#cells;
    if (!cells || Atomics.load(cells, STATE) !== DONE) return null;
    return Atomics.load(cells, EXIT_CODE);
  }

  /** The error the target threw, rebuilt as a {@linkcode RemoteError}; else `undefined`. */
  get error(): RemoteError | undefined {
    if (this.#error) return this.#error;
    const cells = this.#cells;
    if (!cells || Atomics.load(cells, STATE) !== DONE) return undefined;
    const init = readError(this.#status!);
    if (init === undefined) return undefined;
    this.#error = new RemoteError(init);
    return this.#error;
  }

  /**
   * Starts the thread. Arguments are checked and packed first: a value that
   * cannot cross throws before anything starts.
   *
   * @throws {Error} when called twice ("threads can only be started once").
   * @throws {TypeError} when an argument cannot be sent, naming where it sits
   *   (`args[1].cb`), or when the target cannot be shipped (a native or bound
   *   function, an unnamed target with `module`, a subclass without `module`).
   */
  start(): void {
    if (this.#ident !== null) throw new Error("threads can only be started once");
    assertStarted("start a thread");
    const target = this.#spec();
    const { ident, status, cells, handle } = startWorker(
      { name: this.#name, daemon: this.#daemon, target, args: this.#args, argsName: "args" },
      {
        onMessage: () => {},
        // The runtime says the worker stopped: it can run no more code, so it
        // is dead now (a thread that ended by itself already said so). A
        // worker stopped on request gets the code that was asked for.
        onExit: (error) => {
          markDead(ident);
          const asked = Atomics.load(cells, STOP);
          const exiting = exitCodeAsked(status);
          writeExit(status, error !== undefined ? 1 : asked !== 0 ? asked : exiting ?? 1, error);
          children.delete(this);
        },
      },
    );
    this.#status = status;
    this.#cells = cells;
    this.#ident = ident;
    this.#handle = handle;
    children.add(this);
  }

  #spec(): TargetSpec {
    const isSubclass = this.run !== Thread.prototype.run;
    if (isSubclass) {
      const cls = this.constructor as { name: string };
      if (!this.#module) {
        throw new TypeError(
          `Cannot start ${cls.name}: a Thread subclass must pass 'module: import.meta.url' to super() and be exported from that module`,
        );
      }
      const fields = pack({ ...this }, "this");
      return {
        kind: "subclass",
        module: this.#module,
        className: cls.name,
        fields: fields.data,
        hasHandles: fields.hasHandles,
      };
    }
    const target = this.#target;
    // As with Python's Thread(): with no target, run() does nothing.
    if (!target) return { kind: "source", source: "() => {}", name: "run" };
    if (this.#module) {
      if (!target.name) {
        throw new TypeError(
          "Cannot start Thread: with 'module', the thread looks 'target' up by its name, and this function has none: export a named function (export function work(…)) and pass it, or leave out 'module' to ship a self-contained function by its source text",
        );
      }
      if (target.name.startsWith("bound ")) {
        throw new TypeError(
          `Cannot start Thread: with 'module', the thread looks 'target' up by its name, and a bound function ('${target.name}') is not exported: pass the exported function itself, with its arguments in 'args'`,
        );
      }
      return { kind: "module", module: this.#module, exportName: target.name };
    }
    const source = Function.prototype.toString.call(target);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
      throw new TypeError(
        `Cannot start Thread: target '${target.name}' is a native or bound function and has no source to ship; export a function and pass 'module'`,
      );
    }
    return { kind: "source", source, name: target.name };
  }

  /**
   * What the thread runs: calls `target(...args)` in the calling thread.
   * Subclasses override it.
   *
   * @returns What the target returned.
   */
  run(): unknown {
    return this.#target?.(...this.#args);
  }

  /**
   * Waits until the thread ends or `timeout` ms pass. Like Python, it does
   * not say which: check {@linkcode Thread.isAlive} afterwards.
   *
   * @param timeout Milliseconds (no limit when omitted), or
   *   `{ timeout, signal }`.
   * @returns A Promise that resolves when the thread ended or time is up;
   *   rejects when the thread was never started or `timeout` is invalid,
   *   and with the signal's reason when it aborts first.
   */
  async join(timeout?: number | WaitOptions): Promise<void> {
    const { ms, signal } = waitArgs(timeout, "Thread.join()");
    throwIfAborted(signal);
    const cells = this.#joinable();
    // Atomics.waitAsync does not keep Deno or Node alive: without this timer
    // a program awaiting a daemon thread (or a timed join) would just exit.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const end = now() + ms;
    try {
      await until(cells, STATE, () => Atomics.load(cells, STATE) === DONE || undefined, ms, signal);
      // As a Python child's output comes before what its parent prints after
      // join(): wait until the worker's end, and so its output, reached this
      // thread (at most OUTPUT_GRACE ms: the status cells are final already).
      const handle = this.#handle;
      if (handle && Atomics.load(cells, STATE) === DONE) {
        const wait = Math.min(OUTPUT_GRACE, end - now());
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([handle.exited, new Promise((resolve) => timer = setTimeout(resolve, wait))]);
        clearTimeout(timer);
      }
    } finally {
      clearInterval(keepAlive);
    }
  }

  /**
   * The blocking twin of {@linkcode Thread.join} (not on a browser's main thread).
   *
   * @param timeout Milliseconds; no limit when omitted.
   * @throws {Error} when the thread was never started.
   * @throws {RangeError} when `timeout` is invalid.
   */
  joinSync(timeout?: number): void {
    const ms = checkTimeout(timeout, "Thread.joinSync()");
    const cells = this.#joinable();
    assertCanBlock("Thread.joinSync()");
    if (this.#stopping !== undefined && terminateStops && Atomics.load(cells, STATE) !== DONE) {
      // The runtime reports the stop on this thread's event loop, which a
      // blocking wait would hold up for ever.
      throw new Error("Cannot joinSync() a thread this thread is terminating: await terminate() first");
    }
    untilSync(cells, STATE, () => Atomics.load(cells, STATE) === DONE || undefined, ms);
  }

  #joinable(): Int32Array {
    if (this.#self) throw new Error("cannot join current thread");
    if (!this.#cells) throw new Error("cannot join thread before it is started");
    return this.#cells;
  }

  /** Whether the thread has started and not yet ended. */
  isAlive(): boolean {
    if (this.#self) return true;
    const cells = this.#cells;
    return cells !== undefined && Atomics.load(cells, STATE) !== DONE;
  }

  /** Python 3.8's spelling of {@linkcode Thread.isAlive}. */
  is_alive(): boolean {
    return this.isAlive();
  }

  /**
   * Stops the thread (Python's SIGTERM). The exit code becomes -15, and
   * locks and permits it held are recovered by their next acquirer, once
   * the thread can run no more code: never while it still runs.
   *
   * On Node and Bun the thread stops at once, whatever it is doing. Deno
   * cannot interrupt running JavaScript: there the thread stops when it next
   * waits in this library or returns to its event loop (awaits, or ends its
   * current task). A thread that runs JavaScript without doing either (a
   * loop that never yields, or a raw `Atomics.wait`) keeps running and keeps
   * what it holds; the Promise then resolves after a second with the thread
   * still alive ({@linkcode Thread.isAlive}), and the thread stops, with exit
   * code -15, as soon as it reaches one of those points.
   *
   * The runtime reports the stop on the calling thread's event loop: await
   * the Promise before this thread blocks (`joinSync()`, `acquireSync()` of
   * a lock the stopped thread held), or the report waits behind the block.
   *
   * @returns A Promise that resolves once the thread has stopped (on Deno,
   *   at the latest after a second, see above).
   */
  terminate(): Promise<void> {
    return this.#stop(TERMINATED);
  }

  /** Like {@linkcode Thread.terminate}, with exit code -9 (Python's SIGKILL). */
  kill(): Promise<void> {
    return this.#stop(KILLED);
  }

  #stop(code: number): Promise<void> {
    if (this.#self) return Promise.reject(new Error("cannot terminate the current thread from itself"));
    const handle = this.#handle;
    if (!handle || !this.isAlive()) return this.#stopping ?? Promise.resolve();
    this.#stopping ??= this.#stopConfirmed(handle, code);
    return this.#stopping;
  }

  /** Asks the worker to stop and waits until it can run no more code (`_status.ts`). */
  async #stopConfirmed(handle: WorkerHandle, code: number): Promise<void> {
    const cells = this.#cells!;
    requestStop(this.#status!, code);
    try {
      handle.post({ type: "stop" });
    } catch {
      // already gone: the runtime reports its end
    }
    if (terminateStops) {
      await handle.terminate();
    } else {
      const keepAlive = setInterval(() => {}, 1 << 30);
      try {
        await until(cells, STATE, () => Atomics.load(cells, STATE) === DONE || undefined, STOP_GRACE);
      } finally {
        clearInterval(keepAlive);
      }
      if (Atomics.load(cells, STATE) !== DONE) return; // still running: it stops itself later
      await handle.terminate();
    }
    children.delete(this);
  }

  /** Stops the thread when leaving an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.isAlive() ? this.terminate() : Promise.resolve();
  }

  /** `Thread(name, started 12)`, as Python shows it. */
  toString(): string {
    const state = this.#ident === null ? "initial" : this.isAlive() ? "started" : "stopped";
    return `${this.constructor.name}(${this.#name}, ${state}${this.#ident === null ? "" : ` ${this.#ident}`}${
      this.#daemon ? " daemon" : ""
    })`;
  }
}

/**
 * Python's `multiprocessing.Process`: the same class as {@linkcode Thread}.
 *
 * @example
 * ```ts
 * import { Process, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Process, Thread);
 * ```
 *
 * @example
 * ```ts
 * import { Process } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const p: Process = new Process({ target: () => {} });
 * assert.equal(p.ident, null);
 * ```
 */
export const Process: typeof Thread = Thread;

/** This module's URL: a {@linkcode Timer}'s worker rebuilds it from here. */
const THREAD_MODULE = import.meta.url;

/**
 * Python's `multiprocessing.Process`: the same class as {@linkcode Thread}.
 *
 * @typeParam A The target's argument types.
 *
 * @example
 * ```ts
 * import { type Process, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const p: Process<[number]> = new Thread({ target: (n: number) => console.log(n), args: [1] });
 * assert.equal(p.isAlive(), false);
 * ```
 */
export type Process<A extends unknown[] = unknown[]> = Thread<A>;

/**
 * What {@linkcode currentThread} returns.
 *
 * @example
 * ```ts
 * import { currentThread, type ThreadInfo } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const me: ThreadInfo = currentThread();
 * assert.equal(me.name, "MainThread");
 * ```
 */
export interface ThreadInfo {
  /** The thread's name (`MainThread` in the main thread); settable. */
  name: string;
  /** The thread's ident. */
  readonly ident: number;
}

/** Classes whose instances (or their subclasses') {@linkcode registerClass} refuses. */
const BUILTIN_CLASSES: (abstract new (...args: never[]) => unknown)[] = [
  Object,
  Function,
  Array,
  Map,
  Set,
  Date,
  RegExp,
  Error,
  ArrayBuffer,
  SharedArrayBuffer,
  DataView,
  Object.getPrototypeOf(Int8Array) as typeof Int8Array, // the typed arrays' base class
  Boolean,
  Number,
  String,
  Promise,
  WeakMap,
  WeakSet,
];

/**
 * Options of {@linkcode registerClass}.
 *
 * @example
 * ```ts
 * import { registerClass, type RegisterClassOptions } from "@mpjs/multiprocessing";
 *
 * class Money {
 *   constructor(public cents: number) {}
 * }
 * const options: RegisterClassOptions = { module: import.meta.url, name: "Money" };
 * registerClass(Money, options);
 * ```
 */
export interface RegisterClassOptions {
  /**
   * The module that defines the class and calls `registerClass` at its top
   * level: `import.meta.url` (or a file path). Threads started afterwards
   * import it before they run, so that they know the class.
   */
  module: string | URL;
  /** The name the class is known by in every thread; defaults to its own `name`. */
  name?: string;
}

/**
 * Lets instances of `cls` cross threads (as Python pickles instances of a
 * class by its module and name): in `args`, queue items, pipe messages,
 * pool tasks and results. An instance crosses as its own enumerable
 * fields, which may hold any value that crosses (cycles and shared
 * references included), and is rebuilt on the other side with the class's
 * prototype, without running its constructor (as unpickling does). Its
 * `#private` fields, symbol keys and the fields of its base classes'
 * private state are not carried. Only `cls` itself is registered, not its
 * subclasses.
 *
 * Call it at the top level of the module that defines the class, outside
 * any `isMainThread` guard: each thread that imports that module registers
 * the class too, and threads started after the call import it first. A
 * thread that receives an instance without knowing its class throws a
 * `TypeError` saying which module to import.
 *
 * @param cls The class.
 * @param options The module that registers it, and the name it goes by.
 * @throws {TypeError} when `cls` is not a class whose instances need
 *   registering (a plain function or arrow, `Object`, `Array`, `Map`,
 *   `Error`, … which cross already), when `module` is not a URL or path,
 *   when the class has no name and none is given, or when the class or the
 *   name is already registered otherwise.
 *
 * @example
 * ```ts
 * import { Queue, registerClass } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * class Point {
 *   constructor(public x: number, public y: number) {}
 *   norm(): number {
 *     return Math.hypot(this.x, this.y);
 *   }
 * }
 * registerClass(Point, { module: import.meta.url });
 *
 * const q = new Queue<Point>();
 * await q.put(new Point(3, 4));
 * const p = await q.get();
 * assert.ok(p instanceof Point);
 * assert.equal(p.norm(), 5);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function registerClass(cls: abstract new (...args: any[]) => object, options: RegisterClassOptions): void {
  const proto = typeof cls === "function" ? cls.prototype : undefined;
  if (typeof proto !== "object" || proto === null) {
    throw new TypeError(`Cannot register ${show(cls)}: it is not a class`);
  }
  const builtin = BUILTIN_CLASSES.find((b) => proto === b.prototype || (b !== Object && proto instanceof b));
  if (builtin !== undefined) {
    throw new TypeError(
      `Cannot register class ${cls.name || "(anonymous)"}: instances of ${
        builtin.name || "built-in classes"
      } are not registered (they cross as they are, or not at all)`,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot register class ${
        cls.name || "(anonymous)"
      } as 'options' must be an object such as { module: import.meta.url }: current value is ${show(options)}`,
    );
  }
  const name = options.name === undefined ? cls.name : options.name;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(
      `Cannot register ${cls.name ? `class ${cls.name}` : "an anonymous class"} as 'name' must be a non-empty string${
        options.name === undefined ? " (the class has no name: pass one)" : ""
      }: current value is ${show(options.name)}`,
    );
  }
  const module = moduleUrl(
    options.module,
    `class ${name}`,
    "'module' must be the URL of the module that registers the class (pass import.meta.url) or a file path",
    `Cannot register class ${name}`,
  );
  addClass(proto, name, module);
}

/**
 * The calling thread's name and ident (`MainThread` in the main thread).
 * Setting `name` renames the thread, as in Python.
 *
 * @returns The calling thread's `{ name, ident }`.
 *
 * @example
 * ```ts
 * import { currentThread, isMainThread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isMainThread, true);
 * assert.equal(currentThread().name, "MainThread");
 * ```
 */
export function currentThread(): ThreadInfo {
  return current;
}

/**
 * Python's `multiprocessing.current_process()`: the same as {@linkcode currentThread}.
 *
 * @returns The calling thread's `{ name, ident }`.
 *
 * @example
 * ```ts
 * import { currentProcess } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof currentProcess().ident, "number");
 * ```
 */
export function currentProcess(): ThreadInfo {
  return current;
}

/**
 * Options of {@linkcode Timer}.
 *
 * @example
 * ```ts
 * import { Timer, type TimerOptions } from "@mpjs/multiprocessing";
 *
 * const options: TimerOptions = { name: "reminder" };
 * const t = new Timer(10, () => console.log("time"), [], options);
 * t.start();
 * await t.join();
 * ```
 */
export interface TimerOptions {
  /** The module that exports `fn` (as a `Thread`'s `module`); without it, `fn` is shipped by its source text. */
  module?: string | URL;
  /** The thread's name. @default {"Timer-N"} */
  name?: string;
  /** A daemon timer does not keep the program alive. @default {false} */
  daemon?: boolean;
}

/** How a timer's worker finds its function: by source text, or by module and export name. */
type TimerFunction = { source: string; name: string } | { module: string; exportName: string };

/**
 * Python's `threading.Timer`: a thread that waits `interval` milliseconds,
 * then calls `fn(...args)`, unless {@linkcode Timer.cancel} was called
 * first. It is a {@linkcode Thread}: `start()`, `join()`, `isAlive()`,
 * `exitCode` and `error` work as there.
 *
 * @example
 * ```ts
 * import { SharedValue, Timer } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const hit = new SharedValue("i", 0);
 * const t = new Timer(20, (v: SharedValue<"i">) => (v.value = 1), [hit]);
 * t.start();
 * await t.join();
 * assert.equal(hit.value, 1);
 *
 * const never = new Timer(60_000, (v: SharedValue<"i">) => (v.value = 2), [hit]);
 * never.start();
 * never.cancel();
 * await never.join();
 * assert.equal(hit.value, 1);
 * ```
 */
export class Timer extends Thread {
  /** The wait before `fn` runs, in milliseconds. */
  readonly interval: number;
  /** Set by {@linkcode Timer.cancel} (or once `fn` has run): the timer does nothing more. */
  readonly finished: Event;
  /** @ignore How the worker finds the function. */
  readonly timerFunction: TimerFunction;
  /** @ignore The function's arguments. */
  readonly timerArgs: unknown[];

  /**
   * Makes a timer; `start()` starts it.
   *
   * @param interval Milliseconds to wait, a finite number ≥ 0.
   * @param fn What to call: exported from `options.module`, or self-contained (shipped by its source text).
   * @param args Arguments for `fn`: structured-clone values and this library's handles.
   * @param options `module`, `name`, `daemon`.
   * @throws {RangeError} when `interval` is not a finite number ≥ 0.
   * @throws {TypeError} when `fn` is not a function (or a native or bound one without `module`), or `args` not an array.
   */
  constructor(interval: number, fn: (...args: never[]) => unknown, args: unknown[] = [], options: TimerOptions = {}) {
    const ms = checkTimeout(interval, "Timer()");
    if (ms === Infinity) {
      throw new RangeError(`Cannot create Timer as 'interval' must be finite: current value is ${show(interval)}`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot create Timer as 'fn' must be a function: current value is ${show(fn)}`);
    }
    if (!Array.isArray(args)) {
      throw new TypeError(`Cannot create Timer as 'args' must be an array: current value is ${show(args)}`);
    }
    const opts = checkOptions<TimerOptions>(options, "create Timer") ?? {};
    let timerFunction: TimerFunction;
    if (opts.module !== undefined) {
      if (!fn.name) {
        throw new TypeError(
          "Cannot create Timer: with 'module', 'fn' is looked up by its name, and this function has none",
        );
      }
      timerFunction = { module: moduleUrl(opts.module, "Timer"), exportName: fn.name };
    } else {
      const source = Function.prototype.toString.call(fn);
      if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
        throw new TypeError(
          `Cannot create Timer: '${fn.name}' is a native or bound function and has no source to ship; export a function and pass 'module'`,
        );
      }
      timerFunction = { source, name: fn.name };
    }
    super({ module: THREAD_MODULE, name: opts.name, daemon: opts.daemon });
    this.interval = ms;
    this.finished = new Event();
    this.timerFunction = timerFunction;
    this.timerArgs = args;
  }

  /** Stops the timer if it is still waiting (Python's `cancel()`); it then ends without calling `fn`. */
  cancel(): void {
    this.finished.set();
  }

  /** Runs in the timer's thread: waits, then calls the function unless cancelled. */
  override async run(): Promise<void> {
    if (await this.finished.wait(this.interval)) return;
    const f = this.timerFunction;
    const fn = "source" in f ? compile(f.source, f.name) : await importTarget(f.module, f.exportName, importAsTarget);
    try {
      await fn(...this.timerArgs);
    } finally {
      this.finished.set();
    }
  }
}

/**
 * Python's `threading.main_thread()`: the program's main thread, as
 * {@linkcode currentThread} describes it there. Its ident is the same in
 * every thread.
 *
 * @returns `{ name: "MainThread", ident }` of the main thread.
 *
 * @example
 * ```ts
 * import { currentThread, mainThread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mainThread().name, "MainThread");
 * assert.equal(mainThread().ident, currentThread().ident); // here, in the main thread
 * ```
 */
export function mainThread(): ThreadInfo {
  return { name: "MainThread", ident: MAIN_IDENT };
}

/**
 * Python's `threading.get_ident()`: the calling thread's ident, a number
 * unique among the program's live threads (`currentThread().ident`).
 *
 * @returns The calling thread's ident.
 *
 * @example
 * ```ts
 * import { currentThread, getIdent } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(getIdent(), currentThread().ident);
 * ```
 */
export function getIdent(): number {
  return current.ident;
}

/**
 * Python's `threading.get_native_id()`. JavaScript runtimes do not expose
 * the operating system's thread id, so this is the same number as
 * {@linkcode getIdent}: unique among the program's live threads, which is
 * what the native id is used for.
 *
 * @returns The calling thread's ident.
 *
 * @example
 * ```ts
 * import { getIdent, getNativeId } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(getNativeId(), getIdent());
 * ```
 */
export function getNativeId(): number {
  return current.ident;
}

/**
 * The live `Thread`s started from the calling thread.
 *
 * @returns A new array, in start order.
 *
 * @example
 * ```ts
 * import { enumerate, Thread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const t = new Thread({ target: () => new Promise((r) => setTimeout(r, 50)) });
 * t.start();
 * assert.ok(enumerate().includes(t));
 * await t.join();
 * assert.ok(!enumerate().includes(t));
 * ```
 */
export function enumerate(): Thread[] {
  return [...children].filter((t): t is Thread => t instanceof Thread && t.isAlive());
}

/**
 * How many threads are alive, counting the calling thread as Python counts
 * the main thread: `enumerate().length + 1`.
 *
 * @returns The number of live threads.
 *
 * @example
 * ```ts
 * import { activeCount } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.ok(activeCount() >= 1);
 * ```
 */
export function activeCount(): number {
  return enumerate().length + 1;
}

/**
 * Python's `multiprocessing.active_children()`: the live threads started
 * from the calling thread.
 *
 * @returns A new array, in start order.
 *
 * @example
 * ```ts
 * import { activeChildren } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.ok(Array.isArray(activeChildren()));
 * ```
 */
export function activeChildren(): Thread[] {
  return enumerate();
}

/**
 * The number of logical CPUs (Python's `os.cpu_count()`), the default size
 * of a `Pool`.
 *
 * @returns At least 1.
 *
 * @example
 * ```ts
 * import { cpuCount } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.ok(cpuCount() >= 1);
 * ```
 */
export function cpuCount(): number {
  return runtimeCpuCount();
}

/**
 * `true` in the program's main thread, `false` in threads this library
 * starts: the equivalent of Python's `if __name__ == "__main__":` guard for
 * modules that a worker also imports.
 *
 * @example
 * ```ts
 * import { isMainThread } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isMainThread, true);
 * ```
 */
export const isMainThread: boolean = runtimeIsMainThread;
