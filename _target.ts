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
 * Imports `module` and returns its export `exportName`.
 *
 * @throws {TypeError} when the module has no exported function of that name.
 */
export async function importTarget(module: string, exportName: string): Promise<Fn> {
  const mod = await import(module) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot run target '${exportName}': module ${module} has no exported function of that name (export the target function)`,
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
      }' uses 'this', which is not its object in the thread: a function shipped by its source text is called on its own. Pass a plain function that takes what it needs as arguments, or export it and pass 'module: import.meta.url'`,
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

/** The allowed names `source` may mention, with their values here (names it cannot mention are left out). */
function bindings(source: string): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const g = globalThis as Record<string, unknown>;
  for (const [word] of source.matchAll(/[A-Za-z_$][\w$]*/g)) {
    if (word in values) continue;
    // eval stays a lookup, so that a call of it remains a direct eval.
    if (GLOBALS.has(word) && word !== "eval" && word in g) values[word] = g[word];
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
    error.message = `${error.message} to the ${owner}`;
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
    }', which does not exist in the thread: a target shipped by its source text must be self-contained. Export the function and pass 'module: import.meta.url' to the ${owner}`,
  );
  e.stack = `${e.name}: ${e.message}\n${stackFrames(error)}`;
  return e;
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
