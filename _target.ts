// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * How a worker finds the function it was sent: a module export looked up by
 * name, or a self-contained function rebuilt from its source text. Shared by
 * the thread entry (`_worker.ts`) and the pool's worker runner
 * (`_pool_worker.ts`), so both ship functions by the same rules and fail with
 * the same messages.
 *
 * A function rebuilt from its source sees only the names in {@link GLOBALS}
 * (as they are in the worker), whatever it declares itself, and nothing
 * else: the source is compiled inside `with (scope) { … }`, where `scope` is
 * a Proxy that claims every other name and throws a ReferenceError naming
 * it when it is read or written. A name the function declares is found
 * before the `with` scope is asked, so its own variables, parameters and
 * functions are untouched, in strict code too (a strict function may sit
 * inside a sloppy `with`; only the `with` statement itself is sloppy-only).
 * The allowed names the source mentions are bound as constants inside the
 * `with` block, so the engine resolves them statically: a `with` scope is
 * otherwise searched on every lookup, which makes a loop that uses `Math`
 * tens of times slower. The function is called with `this` bound to a Proxy
 * that throws on any use, as is `this` in an arrow function at its top
 * level: shipped alone, it has lost the object it belonged to.
 *
 * @module
 */

/** A function as the worker calls it. */
export type Fn = (...args: unknown[]) => unknown;

/**
 * Global names a function shipped by its source text may use: the standard
 * ECMAScript globals, the web APIs every runtime (and browser workers) has,
 * and the runtimes' own namespaces. Each means the same in the worker as
 * where the function was written. Any other name the function does not
 * declare was a variable of the module it came from (or, like Deno's `name`
 * and `location`, means something else in a worker), so it is refused.
 */
export const GLOBALS: ReadonlySet<string> = new Set(
  [
    // ECMAScript
    "globalThis Infinity NaN undefined eval isFinite isNaN parseFloat parseInt decodeURI decodeURIComponent",
    "encodeURI encodeURIComponent escape unescape AggregateError Array ArrayBuffer AsyncDisposableStack Atomics",
    "BigInt BigInt64Array BigUint64Array Boolean DataView Date DisposableStack Error EvalError FinalizationRegistry",
    "Float16Array Float32Array Float64Array Function Int8Array Int16Array Int32Array Intl Iterator JSON Map Math",
    "Number Object Promise Proxy RangeError ReferenceError Reflect RegExp Set SharedArrayBuffer String",
    "SuppressedError Symbol SyntaxError TypeError Uint8Array Uint8ClampedArray Uint16Array Uint32Array URIError",
    "WeakMap WeakRef WeakSet WebAssembly",
    // Web APIs
    "console setTimeout clearTimeout setInterval clearInterval queueMicrotask structuredClone atob btoa",
    "TextEncoder TextDecoder TextEncoderStream TextDecoderStream URL URLSearchParams performance crypto Crypto",
    "CryptoKey SubtleCrypto fetch Request Response Headers FormData AbortController AbortSignal Event EventTarget",
    "CustomEvent MessageChannel MessagePort MessageEvent BroadcastChannel Blob File DOMException ReadableStream",
    "WritableStream TransformStream ByteLengthQueuingStrategy CountQueuingStrategy CompressionStream",
    "DecompressionStream WebSocket navigator",
    // The runtimes' own
    "Deno Bun process Buffer setImmediate clearImmediate",
  ].join(" ").split(" "),
);

/**
 * The URL of the module given as the `module` option of `owner`: a URL
 * (`import.meta.url`, a `URL`), or a file path, absolute or relative to the
 * current working directory (as a runtime resolves the script named on its
 * command line; in a browser, relative to the page).
 *
 * @throws {TypeError} naming the option and what it takes.
 */
export function moduleUrl(
  value: unknown,
  owner: string,
  takes = "'module' must be the URL of the module that exports the target (pass import.meta.url) or a file path",
  cannot = `Cannot create ${owner}`,
): string {
  if (value instanceof URL) return value.href;
  if (typeof value !== "string" || value.trim() === "") {
    throw new TypeError(`${cannot} as ${takes}: current value is ${show(value)}`);
  }
  // A URL's scheme has two letters or more; `C:\…` is a Windows path.
  if (/^[A-Za-z][A-Za-z\d+.-]+:/.test(value)) {
    try {
      return new URL(value).href;
    } catch {
      throw new TypeError(`${cannot} as ${takes}: current value is ${show(value)}, not a valid URL`);
    }
  }
  const g = globalThis as { Deno?: { cwd(): string }; process?: { cwd?(): string }; location?: { href: string } };
  const cwd = g.Deno?.cwd() ?? g.process?.cwd?.();
  const windows = /^[A-Za-z]:[\\/]|^\\\\/.test(value) || (cwd !== undefined && /^[A-Za-z]:\\/.test(cwd));
  const base = cwd === undefined ? g.location?.href : pathUrl(cwd.replace(/[\\/]*$/, "/"), windows);
  if (base === undefined) {
    throw new TypeError(
      `${cannot} as ${takes}: current value is ${show(value)}, a relative path with no directory to resolve it in`,
    );
  }
  return new URL(pathUrl(value, windows), base).href;
}

/** `path` as a URL (absolute) or a URL path (relative), with what a URL would read as syntax escaped. */
function pathUrl(path: string, windows: boolean): string {
  let p = path.replace(/%/g, "%25").replace(/#/g, "%23").replace(/\?/g, "%3F").replace(/\n/g, "%0A")
    .replace(/\r/g, "%0D").replace(/\t/g, "%09");
  p = windows ? p.replace(/\\/g, "/") : p.replace(/\\/g, "%5C");
  if (/^[A-Za-z]:\//.test(p)) return `file:///${p}`;
  if (windows && p.startsWith("//")) return `file:${p}`; // a UNC path, \\server\share\…
  if (p.startsWith("/")) return `file://${p}`;
  return p;
}

/** `value` as a message shows it. */
function show(value: unknown): string {
  try {
    return typeof value === "string" ? JSON.stringify(value) : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * The export of `mod` named `name`, or its default export when that is a
 * function or class of that name (`export default function work…`).
 */
export function exported(mod: Record<string, unknown>, name: string): unknown {
  const value = mod[name];
  if (value !== undefined) return value;
  const fallback = mod.default;
  return typeof fallback === "function" && fallback.name === name ? fallback : undefined;
}

/**
 * Imports `module` and returns its export `exportName` (see {@link exported}).
 *
 * @throws {TypeError} when the module has no exported function of that name,
 *   with advice fitting the likely cause.
 */
export async function importTarget(
  module: string,
  exportName: string,
  load: (module: string) => Promise<Record<string, unknown>> = (m) => import(m),
): Promise<Fn> {
  const mod = await load(module);
  const fn = exported(mod, exportName);
  if (typeof fn !== "function") {
    const advice = exportName === "default"
      ? "The target is the default export of another module: pass that module's URL as 'module'"
      : exportName === "target"
      ? "A function written inline as 'target: (…) => …' is named 'target' after the option: export a named function (export function work(…)) and pass it, or leave out 'module' to ship a self-contained function by its source text"
      : `Export it from that module (export function ${exportName}(…)), or pass the URL of the module that exports it as 'module'`;
    throw new TypeError(
      `Cannot run target '${exportName}': module ${module} has no exported function of that name. ${advice}`,
    );
  }
  return fn as Fn;
}

/** Marks the errors the compile scope and the `this` guard throw, for {@link explainMissingVariable}. */
const kShipped = Symbol("shipped function error");

/** A ReferenceError as a missing variable gives, marked as ours. */
function notDefined(name: string): ReferenceError {
  const error = new ReferenceError(`${name} is not defined`);
  (error as unknown as Record<symbol, unknown>)[kShipped] = name;
  return error;
}

/** Whether the wrapper is running its own code, which reads `arguments`. */
let compiling = false;

/** The `with` scope: every name that is not allowed is claimed, and refused on use. */
const scope: object = new Proxy(Object.create(null), {
  has: (_, key) => typeof key === "string" && !GLOBALS.has(key) && !(compiling && key === "arguments"),
  // Symbol.unscopables is asked for after `has`: none.
  get: (_, key) => {
    if (typeof key === "symbol") return undefined;
    throw notDefined(key);
  },
  set: (_, key) => {
    throw notDefined(String(key));
  },
});

/** What `this` is in a function shipped by its source text: refused on any use. */
function thisGuard(name: string): object {
  const refuse = (): never => {
    const error = new TypeError(
      `target '${
        name || "anonymous"
      }' uses 'this', which is not its object in the thread: a function shipped by its source text is called on its own. Pass a plain function that takes what it needs as arguments`,
    );
    (error as unknown as Record<symbol, unknown>)[kShipped] = "this";
    throw error;
  };
  return new Proxy(Object.create(null), {
    get: refuse,
    set: refuse,
    has: refuse,
    deleteProperty: refuse,
    defineProperty: refuse,
    getOwnPropertyDescriptor: refuse,
    ownKeys: refuse,
    getPrototypeOf: refuse,
    setPrototypeOf: refuse,
    isExtensible: refuse,
    preventExtensions: refuse,
  });
}

// ---- transpiler helpers --------------------------------------------------
//
// A compiler that lowers syntax the target runtime lacks writes calls of
// helper functions into the function bodies and defines the helpers once at
// the top of the module, where a function shipped by its source text cannot
// see them. These are ours, with the semantics of the helpers that
// TypeScript (`tsc`, tslib) and esbuild (and so `tsx`) emit for the syntax a
// worker target plausibly uses on a runtime this library supports: `using`
// and `await using`, relative `import()` with `rewriteRelativeImportExtensions`,
// `#private` members below ES2022, and esbuild's `keepNames`.

/** A resource as TypeScript's `using` records it in `env.stack`. */
interface TsResource {
  value?: unknown;
  dispose?: () => unknown;
  async: boolean;
}

/** The record TypeScript keeps for a block with `using` declarations. */
interface TsDisposeEnv {
  stack: TsResource[];
  error: unknown;
  hasError: boolean;
}

/** `SuppressedError(error, suppressed, message)`, built by hand where the runtime lacks it (Node 20). */
function suppressed(error: unknown, earlier: unknown, message: string): Error {
  const Suppressed = (globalThis as Record<string, unknown>).SuppressedError as
    | (new (error: unknown, suppressed: unknown, message: string) => Error)
    | undefined;
  if (Suppressed) return new Suppressed(error, earlier, message);
  return Object.assign(new Error(message), { name: "SuppressedError", error, suppressed: earlier });
}

/**
 * The disposer of `value` for a `using` (`async` false) or `await using`
 * declaration, or `undefined` for `null`/`undefined`.
 */
function disposerOf(value: unknown, async: boolean): (() => unknown) | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== "object" && typeof value !== "function") throw new TypeError("Object expected.");
  const v = value as Record<symbol, unknown>;
  let dispose = async ? v[Symbol.asyncDispose] : undefined;
  let sync: ((this: unknown) => unknown) | undefined;
  if (dispose === undefined) {
    dispose = v[Symbol.dispose];
    if (async) sync = dispose as (this: unknown) => unknown;
  }
  if (typeof dispose !== "function") throw new TypeError("Object not disposable.");
  // An `await using` of a resource with only Symbol.dispose awaits nothing
  // from it, and its throw becomes a rejection.
  if (sync) {
    const f = sync;
    return function (this: unknown) {
      try {
        f.call(this);
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  return dispose as () => unknown;
}

/**
 * Disposes `stack` last in first out, as the end of a block with `using`
 * declarations does: synchronously while no resource is `await using` (then
 * it throws the error, the errors of several disposals nested in
 * `SuppressedError`s), else it returns a Promise that settles so. Entries
 * are `[async, dispose, value]`.
 */
function disposeAll(
  stack: [boolean, (() => unknown) | undefined, unknown][],
  error: unknown,
  hasError: boolean,
  done: (error: unknown, hasError: boolean) => void,
): Promise<void> | undefined {
  const fail = (e: unknown) => {
    error = hasError ? suppressed(e, error, "An error was suppressed during disposal.") : e;
    hasError = true;
  };
  const next = (): Promise<void> | undefined => {
    for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
      const [async, dispose, value] = entry;
      try {
        const result = dispose?.call(value);
        if (async) return Promise.resolve(result).then(next, (e) => (fail(e), next()));
      } catch (e) {
        fail(e);
      }
    }
    done(error, hasError);
    if (hasError) throw error;
  };
  return next();
}

/** Whether `receiver` has the private member whose brand is `state` (a WeakMap/WeakSet, or the class for statics). */
function hasPrivate(receiver: unknown, state: unknown, f: unknown): boolean {
  return typeof state === "function" ? receiver === state && f !== undefined : (state as WeakSet<object>).has(
    receiver as object,
  );
}

/** The helpers by the names the compilers give them. */
const HELPERS: Record<string, unknown> = {
  // TypeScript: `using` / `await using`.
  __addDisposableResource(env: TsDisposeEnv, value: unknown, async: boolean): unknown {
    const dispose = disposerOf(value, async);
    if (dispose) env.stack.push({ value, dispose, async });
    else if (async) env.stack.push({ async: true });
    return value;
  },
  __disposeResources(env: TsDisposeEnv): Promise<void> | undefined {
    const stack = env.stack.map((r) => [r.async, r.dispose, r.value] as [boolean, () => unknown, unknown]);
    env.stack.length = 0;
    return disposeAll(stack, env.error, env.hasError, (error, hasError) => {
      env.error = error;
      env.hasError = hasError;
    });
  },
  // TypeScript: `import(specifier)` under `rewriteRelativeImportExtensions`.
  __rewriteRelativeImportExtension(path: unknown, preserveJsx?: boolean): unknown {
    if (typeof path !== "string" || !/^\.\.?\//.test(path)) return path;
    if (/\.tsx$/i.test(path)) return path.slice(0, -4) + (preserveJsx ? ".jsx" : ".js");
    const m = /\.([cm]?)ts$/i.exec(path);
    if (!m) return path;
    const stem = path.slice(0, m.index);
    // A declaration file (`x.d.ts`, `x.d.mts`, `x.d.css.ts`) stays as it is.
    if (/\.d$/i.test(stem) || (m[1] === "" && /\.d\.[^./]+$/i.test(stem))) return path;
    return `${stem}.${m[1].toLowerCase()}js`;
  },
  // TypeScript below ES2022: `#private` members.
  __classPrivateFieldGet(receiver: unknown, state: unknown, kind: string, f?: unknown): unknown {
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a getter");
    if (!hasPrivate(receiver, state, f)) {
      throw new TypeError("Cannot read private member from an object whose class did not declare it");
    }
    if (kind === "m") return f;
    if (kind === "a") return (f as (this: unknown) => unknown).call(receiver);
    return f ? (f as { value: unknown }).value : (state as WeakMap<object, unknown>).get(receiver as object);
  },
  __classPrivateFieldSet(receiver: unknown, state: unknown, value: unknown, kind: string, f?: unknown): unknown {
    if (kind === "m") throw new TypeError("Private method is not writable");
    if (kind === "a" && !f) throw new TypeError("Private accessor was defined without a setter");
    if (!hasPrivate(receiver, state, f)) {
      throw new TypeError("Cannot write private member to an object whose class did not declare it");
    }
    if (kind === "a") (f as (this: unknown, v: unknown) => unknown).call(receiver, value);
    else if (f) (f as { value: unknown }).value = value;
    else (state as WeakMap<object, unknown>).set(receiver as object, value);
    return value;
  },
  __classPrivateFieldIn(state: unknown, receiver: unknown): boolean {
    if (receiver === null || (typeof receiver !== "object" && typeof receiver !== "function")) {
      throw new TypeError("Cannot use 'in' operator on non-object");
    }
    return typeof state === "function" ? receiver === state : (state as WeakSet<object>).has(receiver as object);
  },
  // esbuild: `keepNames`, `using` / `await using`.
  __name<F>(target: F, value: string): F {
    return Object.defineProperty(target, "name", { value, configurable: true });
  },
  __using(stack: [boolean, (() => unknown)?, unknown?][], value: unknown, async?: boolean): unknown {
    const dispose = disposerOf(value, Boolean(async));
    if (dispose) stack.push([Boolean(async), dispose, value]);
    else if (async) stack.push([true]);
    return value;
  },
  __callDispose(
    stack: [boolean, (() => unknown)?, unknown?][],
    error: unknown,
    hasError: boolean,
  ): Promise<void> | undefined {
    return disposeAll(stack as [boolean, (() => unknown) | undefined, unknown][], error, hasError, () => {});
  },
};

/**
 * The allowed names and helpers `source` may mention, with their values
 * here (names it cannot mention are left out).
 */
function bindings(source: string): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const g = globalThis as Record<string, unknown>;
  for (const [word] of source.matchAll(/[A-Za-z_$][\w$]*/g)) {
    if (word in values) continue;
    // eval stays a lookup, so that a call of it remains a direct eval.
    if (GLOBALS.has(word) && word !== "eval" && word in g) values[word] = g[word];
    else if (Object.hasOwn(HELPERS, word)) values[word] = HELPERS[word];
  }
  return values;
}

/**
 * Rebuilds a function from its source text (a function expression, an arrow
 * function or a method written in shorthand), seeing only {@link GLOBALS}
 * besides what it declares.
 *
 * @throws {SyntaxError} when the text cannot be rebuilt.
 */
export function compile(source: string, name: string): Fn {
  const values = bindings(source);
  const names = Object.keys(values).join(", ");
  // The with object and the values are read from `arguments` before (and,
  // for the values, while only `arguments` is let through) the with scope
  // claims it; the line break ends a trailing line comment.
  const wrap = (expression: string) =>
    `with (arguments[0]) { const { ${names} } = arguments[1]; return (${expression}\n); }`;
  const guard = thisGuard(name);
  let fn: unknown;
  compiling = true;
  try {
    try {
      fn = new Function(wrap(source)).call(guard, scope, values);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // A method written in shorthand (`work(x) { … }`) is not an expression.
      let holder: object;
      try {
        holder = new Function(wrap(`{ ${source}\n}`)).call(guard, scope, values);
      } catch (error) {
        throw new SyntaxError(
          `Cannot rebuild target '${name}' from its source text (${
            (error as Error).message
          }): export it and pass 'module: import.meta.url'`,
        );
      }
      const [descriptor] = Object.values(Object.getOwnPropertyDescriptors(holder));
      fn = descriptor?.value ?? descriptor?.get ?? descriptor?.set;
    }
  } finally {
    compiling = false;
  }
  if (typeof fn !== "function") throw new TypeError(`Cannot rebuild target '${name}' from its source text`);
  // A function that never says `this` cannot use it (an arrow function's is the wrapper's, the guard).
  return (/\bthis\b/.test(source) ? fn.bind(guard) : fn) as Fn;
}

/**
 * Rewrites the errors a function shipped by its source text fails with when
 * it is not self-contained ("x is not defined", or a use of `this`) into
 * advice: the function must be self-contained, or be exported and shipped
 * with `module`. Other errors are returned as they are.
 *
 * @param owner The class the user passes `module` to (`"Thread"`, `"Pool"`).
 */
export function explainMissingVariable(error: unknown, name: string, owner = "Thread"): unknown {
  if (!(error instanceof Error)) return error;
  const marked = (error as unknown as Record<symbol, unknown>)[kShipped];
  if (marked === "this") {
    error.message = `${error.message}. ${shipAdvice(name, owner)}`;
    error.stack = `${error.name}: ${error.message}\n${stackFrames(error)}`;
    return error;
  }
  if (!(error instanceof ReferenceError)) return error;
  const match = /^(\S+) is not defined$/.exec(error.message) ?? /^Can't find variable: (\S+)$/.exec(error.message);
  // An engine's own "x is not defined" is about the target only for an
  // allowed global this runtime does not have (`Deno` on Node).
  if (!match || (marked === undefined && !GLOBALS.has(match[1]))) return error;
  const e = new ReferenceError(
    `target '${name || "anonymous"}' refers to '${
      match[1]
    }', which does not exist in the thread: a target shipped by its source text must be self-contained. ${
      shipAdvice(name, owner)
    }`,
  );
  e.stack = `${e.name}: ${e.message}\n${stackFrames(error)}`;
  return e;
}

/**
 * Rewrites the engine's error for a `#private` member used by a `Thread`
 * subclass rebuilt in the worker, which the instance there lacks: the worker
 * builds it with `Thread`'s constructor only and gives it the public fields
 * it was sent, so no subclass constructor runs to add its private members.
 * Other errors are returned as they are.
 */
export function explainSubclassError(error: unknown, className: string): unknown {
  if (!(error instanceof TypeError)) return error;
  const engine = error.message;
  // V8 (Deno, Node) and JavaScriptCore (Bun) word it differently.
  if (!/private (member|field|method)|must be an instance of class/i.test(engine)) return error;
  const e = new TypeError(
    `${className}.run() uses a #private member, which the instance in the thread does not have (${engine}): the thread rebuilds a Thread subclass from its public fields, without calling its constructor. Keep what run() needs in public fields, or pass a target function and its 'args' instead`,
  );
  e.stack = `${e.name}: ${e.message}\n${stackFrames(error)}`;
  return e;
}

/** How to ship a function by module instead, for the message of a source-shipped function `name` that is not self-contained. */
function shipAdvice(name: string, owner: string): string {
  // Functions are looked up by name, so an unnamed one is shipped by its source even with 'module'.
  if (!name) {
    return `An anonymous function can only be shipped by its source text (with 'module', functions are found by name): declare it as a named, exported function (export function work(…)), pass that, and pass 'module: import.meta.url' to the ${owner}`;
  }
  return `Export the function and pass 'module: import.meta.url' to the ${owner}`;
}

/** The frames of `error`'s stack, without the message and the frames of this module above the target's. */
function stackFrames(error: Error): string {
  const url = import.meta.url;
  const path = decodeURIComponent(new URL(url).pathname);
  const frames = (error.stack ?? "").split("\n").slice(1);
  const ours = (frame: string) => !frame.includes("eval") && (frame.includes(url) || frame.includes(path));
  while (frames.length > 0 && ours(frames[0])) frames.shift();
  return frames.join("\n");
}
