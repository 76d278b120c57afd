// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * How a worker finds the function it was sent: a module export looked up by
 * name, or a self-contained function rebuilt from its source text. Shared by
 * the thread entry (`_worker.ts`) and the pool's worker runner
 * (`_pool_worker.ts`), so both ship functions by the same rules and fail with
 * the same messages.
 *
 * @module
 */

/** A function as the worker calls it. */
export type Fn = (...args: unknown[]) => unknown;

/**
 * Imports `module` and returns its export `exportName`.
 *
 * @throws {TypeError} when the module has no exported function of that name.
 */
export async function importTarget(
  module: string,
  exportName: string,
  load: (module: string) => Promise<Record<string, unknown>> = (m) => import(m),
): Promise<Fn> {
  const mod = await load(module);
  const fn = mod[exportName];
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot run target '${exportName}': module ${module} has no exported function of that name (export the target function)`,
    );
  }
  return fn as Fn;
}

/**
 * Rebuilds a function from its source text (a function expression, an arrow
 * function or a method written in shorthand).
 *
 * @throws {SyntaxError} when the text cannot be rebuilt.
 */
export function compile(source: string, name: string): Fn {
  const indirectEval = eval;
  let fn: unknown;
  try {
    fn = indirectEval(`(${source})`);
  } catch {
    // A method written in shorthand (`work(x) { … }`) is not an expression.
    try {
      const holder = indirectEval(`({ ${source} })`) as Record<string, unknown>;
      fn = Object.values(holder)[0];
    } catch (error) {
      throw new SyntaxError(
        `Cannot rebuild target '${name}' from its source text (${
          (error as Error).message
        }): export it and pass 'module: import.meta.url'`,
      );
    }
  }
  if (typeof fn !== "function") throw new TypeError(`Cannot rebuild target '${name}' from its source text`);
  return fn as Fn;
}

/**
 * Rewrites "x is not defined", thrown by a function shipped by its source
 * text, into advice: the function must be self-contained, or be exported and
 * shipped with `module`.
 *
 * @param owner The class the user passes `module` to (`"Thread"`, `"Pool"`).
 */
export function explainMissingVariable(error: unknown, name: string, owner = "Thread"): unknown {
  if (!(error instanceof ReferenceError)) return error;
  const match = /^(\S+) is not defined$/.exec(error.message) ?? /^Can't find variable: (\S+)$/.exec(error.message);
  if (!match) return error;
  const e = new ReferenceError(
    `target '${name || "anonymous"}' refers to '${
      match[1]
    }', which does not exist in the thread: a target shipped by its source text must be self-contained. Export the function and pass 'module: import.meta.url' to the ${owner}`,
  );
  e.stack = `${e.name}: ${e.message}\n${(error.stack ?? "").split("\n").slice(1).join("\n")}`;
  return e;
}
