// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The one home of option checks: an options bag, `block`, `timeout`
 * (milliseconds), `signal`, callbacks, integer counts, and how a bad value is
 * printed in an error. Every
 * public module checks its options here, so the same mistake gets the same
 * error everywhere: `TypeError` for a wrong type, `RangeError` for a value
 * out of range, each naming the call and the option (the Deno std style,
 * `Cannot <what> as '<option>' must be …: current value is …`).
 *
 * @module
 */

/**
 * A value as an error message shows it: strings quoted, bigints with their
 * `n`, functions by name, anything else as `String()` would; never throws.
 */
export function show(value: unknown): string {
  try {
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "bigint") return `${value}n`;
    if (typeof value === "function") return value.name || "function";
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Checks an options bag: `undefined` (and `null` where `allowNull`) means
 * "no options"; anything else must be an object.
 *
 * @param what What was being done, as the message names it after `verb`:
 *   `"Queue.get()"` with the verb `"call "`, or `"create Pool"` with none.
 *   The message is built only when the check fails (these checks run on
 *   every put, get and receive).
 * @throws {TypeError} when `options` is not an object.
 */
export function checkOptions<T extends object>(
  options: unknown,
  what: string,
  allowNull = false,
  verb = "",
): T | undefined {
  if (options === undefined || (allowNull && options === null)) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${verb}${what} as 'options' must be an object: current value is ${show(options)}`);
  }
  return options as T;
}

/**
 * Checks a `timeout` option: `undefined` means "no limit"; otherwise it must
 * be a finite number ≥ 0 (milliseconds).
 *
 * @param what The call, as the message names it: `"Queue.get()"`.
 * @returns The timeout in milliseconds, `Infinity` for none.
 * @throws {RangeError} when the timeout is not a finite number ≥ 0.
 */
export function checkTimeout(timeout: number | undefined, what: string): number {
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
    throw new RangeError(
      `Cannot wait in ${what} as 'timeout' must be a finite number >= 0 (milliseconds): current value is ${
        show(timeout)
      }`,
    );
  }
  return timeout;
}

/**
 * Checks a `block` option: `undefined` means "wait"; otherwise it must be a
 * boolean (a truthy or falsy stand-in such as `0` or `"no"` would mean
 * different things to different readers, so it is refused).
 *
 * @param what What was being done, after `verb` (see {@linkcode checkOptions}).
 * @returns Whether to wait.
 * @throws {TypeError} when `block` is given and is not a boolean.
 */
export function checkBlock(block: unknown, what: string, verb = ""): boolean {
  if (block === undefined) return true;
  if (typeof block !== "boolean") {
    throw new TypeError(`Cannot ${verb}${what} as 'block' must be a boolean: current value is ${show(block)}`);
  }
  return block;
}

/** The default upper bound of {@linkcode checkInteger}: what a shared `Int32Array` word holds with room to spare. */
const INT_MAX = 0x3fff_ffff;

/**
 * Checks an integer argument or option (`value`, `n`, `parties`, …).
 *
 * @param what What was being done: `"create Semaphore"`.
 * @param max The largest value allowed; the message names it only when given.
 * @returns `value`.
 * @throws {RangeError} when `value` is not an integer from `min` to `max`.
 */
export function checkInteger(value: unknown, what: string, name: string, min: number, max = INT_MAX): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === INT_MAX ? `>= ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`Cannot ${what} as '${name}' must be an integer ${range}: current value is ${show(value)}`);
  }
  return value;
}

/**
 * Checks a `signal` option.
 *
 * @param what What was being done, after `verb` (see {@linkcode checkOptions}).
 * @throws {TypeError} when `signal` is given and is not an `AbortSignal`.
 */
export function checkSignal(signal: unknown, what: string, verb = ""): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${verb}${what} as 'signal' must be an AbortSignal: current value is ${show(signal)}`);
  }
  return signal;
}

/**
 * Checks a callback option (`callback`, `errorCallback`, …).
 *
 * @throws {TypeError} when `fn` is given and is not a function.
 */
export function checkCallback(fn: unknown, name: string, what: string): void {
  if (fn !== undefined && typeof fn !== "function") {
    throw new TypeError(`Cannot ${what} as '${name}' must be a function: current value is ${show(fn)}`);
  }
}
