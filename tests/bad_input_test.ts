// Copyright the @mpjs/multiprocessing authors. MIT license.
// Bad input, everywhere: walks every export of mod.ts and calls each public
// method, accessor, static method and constructor with wrong types and
// values drawn from fast-check arbitraries (wrong types per parameter,
// options with wrong fields, bad and huge timeouts, aborted signals), then
// uses objects in their other states (closed, detached, broken, finished).
//
// Each call must give its documented outcome (API.md and the @throws of its
// JSDoc): a sync method or constructor throws, an async method rejects and
// never throws synchronously, nothing hangs, and an object that refused a
// call is unchanged (same observable state, and valid calls still work).
//
// An export with no entry in SUBJECTS, or a member with no spec, fails the
// walk: a new export or method is caught until its bad inputs are listed.
// Library bugs the walk finds are listed in KNOWN_FAILURES; each entry is
// asserted to still fail, so the list must shrink as bugs are fixed.

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import * as mp from "../mod.ts";
import {
  AsyncResult,
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  BufferTooShort,
  CancelledError,
  ClosedError,
  Condition,
  type Connection,
  type DictProxy,
  EmptyError,
  Event,
  FullError,
  Future,
  IndexError,
  JoinableQueue,
  KeyError,
  type ListProxy,
  Lock,
  Manager,
  type NamespaceProxy,
  Pipe,
  Pool,
  ProcessPoolExecutor,
  Queue,
  RemoteError,
  RLock,
  Semaphore,
  SharedArray,
  SharedValue,
  SimpleQueue,
  Thread,
  TimeoutError,
  Timer,
} from "../mod.ts";

// ---- known failures ---------------------------------------------------------

/**
 * Checks that fail because of library bugs. A check's id is
 * `Export.member(param): family` (or `Export [state] member`); `*` matches
 * any run of characters. Every check an entry matches must still fail (a
 * fixed bug makes the walk fail until its entry is removed), and every entry
 * must match some check.
 */
const KNOWN_FAILURES: readonly { check: string; why: string }[] = [
  {
    check: "*(item): a structured-clone value",
    why: "holes in arrays come back as undefined: [1, , 3] arrives as [1, undefined, 3] (structured clone " +
      "keeps the hole, so `1 in got` differs)",
  },
];

// ---- settings -----------------------------------------------------------------

/** fast-check seed: fixed so that CI runs are reproducible; set WALK_SEED to explore. */
const SEED = process.env.WALK_SEED ? Number(process.env.WALK_SEED) : 20240519;
/** Random values per family, on top of the family's fixed examples. */
const RUNS = Number(process.env.WALK_RUNS ?? 8);
/** A call that has not settled after this long hangs (every walked call can settle at once). */
const HANG_MS = 1500;
/** How long a call with a huge timeout must still be waiting to show that the timeout did not fire early. */
const STILL_WAITING_MS = 60;

// ---- expectations and outcomes ---------------------------------------------------

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

type Expect =
  /** Throws (sync) or rejects (async) with an instance of one of `classes`. */
  | { kind: "error"; classes: ErrorClass[]; message?: RegExp }
  /** Throws or rejects with exactly `reason` (an aborted signal's). */
  | { kind: "reason"; reason: unknown }
  /** Completes; `check` may look at the result and the object. */
  | { kind: "ok"; check?: (result: unknown, obj: unknown) => unknown };

function err(...classes: ErrorClass[]): Expect {
  return { kind: "error", classes };
}
function errMatching(message: RegExp, ...classes: ErrorClass[]): Expect {
  return { kind: "error", classes, message };
}
function ok(check?: (result: unknown, obj: unknown) => unknown): Expect {
  return { kind: "ok", check };
}

type Outcome =
  | { how: "returned" | "resolved"; value: unknown }
  | { how: "threw" | "rejected"; error: unknown }
  | { how: "hung" }
  | { how: "not a promise"; value: unknown };

function show(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "symbol" || typeof v === "function") return String(v).slice(0, 60);
  try {
    return fc.stringify(v).slice(0, 120);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function showOutcome(o: Outcome): string {
  if (o.how === "hung") return `did not settle within ${HANG_MS} ms`;
  if (o.how === "threw" || o.how === "rejected") return `${o.how} ${show(o.error)}`;
  return `${o.how} ${show((o as { value: unknown }).value)}`;
}

/** The outcome's shape, for comparing two calls: how it ended and the error class. */
function shapeOf(o: Outcome): string {
  if (o.how === "threw" || o.how === "rejected") {
    return `${o.how} ${(o.error as Error)?.constructor?.name ?? typeof o.error}`;
  }
  return o.how;
}

/** Settles `p` or reports a hang after `ms`. */
async function settle(p: Promise<unknown>, ms = HANG_MS): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<Outcome>((resolve) => timer = setTimeout(() => resolve({ how: "hung" }), ms));
  try {
    return await Promise.race([
      p.then((value): Outcome => ({ how: "resolved", value }), (error): Outcome => ({ how: "rejected", error })),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls `f`; an async member must return a Promise (and never throw). */
async function call(f: () => unknown, isAsync: boolean): Promise<Outcome> {
  let r: unknown;
  try {
    r = f();
  } catch (error) {
    return { how: "threw", error };
  }
  if (!isAsync) return { how: "returned", value: r };
  if (!(r instanceof Promise)) return { how: "not a promise", value: r };
  return await settle(r);
}

/** What is wrong with `out` given `exp`, or `undefined` when it is as documented. */
async function verdict(out: Outcome, exp: Expect, isAsync: boolean, obj: unknown): Promise<string | undefined> {
  if (out.how === "hung") return showOutcome(out);
  if (out.how === "not a promise") return `${showOutcome(out)}: an async method returns a Promise`;
  if (isAsync && out.how === "threw") return `${showOutcome(out)}: an async method must reject, not throw`;
  const failed = out.how === "threw" || out.how === "rejected";
  const names = () =>
    exp.kind === "error"
      ? exp.classes.map((c) => c.name).join(" or ")
      : exp.kind === "reason"
      ? "the signal's reason"
      : "";
  switch (exp.kind) {
    case "error":
      if (!failed) return `${showOutcome(out)}; expected ${names()}`;
      if (!exp.classes.some((c) => out.error instanceof c)) return `${showOutcome(out)}; expected ${names()}`;
      if (exp.message && !exp.message.test((out.error as Error).message)) {
        return `${showOutcome(out)}; expected a message matching ${exp.message}`;
      }
      return undefined;
    case "reason":
      if (!failed || !Object.is(out.error, exp.reason)) return `${showOutcome(out)}; expected ${names()}`;
      return undefined;
    case "ok":
      if (failed) return `${showOutcome(out)}; expected the call to be accepted`;
      try {
        await exp.check?.((out as { value: unknown }).value, obj);
      } catch (error) {
        return `${showOutcome(out)}, but: ${error instanceof Error ? error.message.split("\n")[0] : show(error)}`;
      }
      return undefined;
  }
}

// ---- bad values, by family ----------------------------------------------------------

/** A family of bad (or notable) values for one parameter, and what they must give. */
interface Family {
  label: string;
  arb: fc.Arbitrary<unknown>;
  /** Values always tried first. */
  examples?: unknown[];
  expect: (value: unknown) => Expect;
  /** Only for methods that return a Promise (signals exist only there). */
  asyncOnly?: boolean;
}

/** A parameter: a valid value (used while another parameter is walked) and its bad families. */
interface Param {
  name: string;
  valid: () => unknown;
  families: Family[];
}

const SYMBOL = Symbol("walker");
const NOT_OBJECT = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt(),
  fc.constant(SYMBOL),
);
const NEGATIVE = fc.oneof(fc.integer({ max: -1 }), fc.double({ max: -Number.MIN_VALUE, noNaN: true }));
const NOT_FINITE = fc.constantFrom(NaN, Infinity, -Infinity);
const NON_INTEGER = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).filter((x) =>
  !Number.isInteger(x)
);
const NOT_NUMBER = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt(),
  fc.constant(SYMBOL),
  fc.object({ maxDepth: 0 }),
);
const NOT_FUNCTION = fc.oneof(NOT_NUMBER, fc.integer());
const NOT_ARRAY = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 }));

function fam(label: string, arb: fc.Arbitrary<unknown>, expect: Expect | ((v: unknown) => Expect), extra: {
  examples?: unknown[];
  asyncOnly?: boolean;
} = {}): Family {
  return { label, arb, expect: typeof expect === "function" ? expect : () => expect, ...extra };
}

/** A family of `field` values, given inside an options object. */
function inOptions(f: Family, field: string, base: () => Record<string, unknown> = () => ({})): Family {
  const wrap = (v: unknown) => ({ ...base(), [field]: v });
  return {
    label: `options.${field}: ${f.label}`,
    arb: f.arb.map(wrap),
    examples: f.examples?.map(wrap),
    expect: (o) => f.expect((o as Record<string, unknown>)[field]),
    asyncOnly: f.asyncOnly,
  };
}

const F = {
  optionsNotObject: fam("not an object", NOT_OBJECT, err(TypeError), { examples: [5, "x", true, null, SYMBOL] }),
  timeoutRange: fam("negative or not finite", fc.oneof(NEGATIVE, NOT_FINITE), err(RangeError), {
    examples: [-1, NaN, Infinity, -Infinity, -Number.MIN_VALUE],
  }),
  timeoutType: fam("not a number", NOT_NUMBER, err(TypeError, RangeError), { examples: ["10", null, true, 10n] }),
  signalAborted: fam(
    "an aborted signal",
    fc.oneof(fc.string(), fc.integer(), fc.constant(undefined), fc.string().map((m) => new Error(m))).map((reason) => {
      const c = new AbortController();
      c.abort(reason);
      return c.signal;
    }),
    (s) => ({ kind: "reason", reason: (s as AbortSignal).reason }),
    { asyncOnly: true },
  ),
  signalType: fam(
    "not an AbortSignal",
    fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant({ aborted: false }), fc.object({ maxDepth: 0 })),
    err(TypeError),
    { examples: ["signal", 1, { aborted: true, reason: "fake" }], asyncOnly: true },
  ),
  countType: fam("not a number", NOT_NUMBER, err(TypeError, RangeError), { examples: ["1", null, true, 1n] }),
  functionType: fam("not a function", NOT_FUNCTION, err(TypeError), {
    examples: [undefined, null, "fn", 1, {}],
  }),
  arrayType: fam("not an array", NOT_ARRAY, err(TypeError), { examples: ["ab", 1, {}, null] }),
};

/**
 * `n` must be an integer ≥ `min` (RangeError); other types give TypeError or
 * RangeError. `infinity`: `Infinity` is allowed (`Condition.notify(Infinity)`
 * is `notifyAll()`).
 */
function countParam(name: string, min: number, valid: unknown = min, infinity = false): Param {
  return {
    name,
    valid: () => valid,
    families: [
      fam(
        `below ${min}, not an integer, or not finite`,
        fc.oneof(fc.integer({ max: min - 1 }), NON_INTEGER, infinity ? fc.constantFrom(NaN, -Infinity) : NOT_FINITE),
        err(RangeError),
        {
          examples: [min - 1, 1.5, NaN, -Infinity],
        },
      ),
      F.countType,
    ],
  };
}

/** A timeout given alone (`join(timeout)`, `get(timeout)`): a finite number ≥ 0. */
function timeoutParam(valid: unknown = undefined): Param {
  return { name: "timeout", valid: () => valid, families: [F.timeoutRange, F.timeoutType] };
}

/** An options bag with `timeout` and, for async methods, `signal`. */
function optionsParam(name = "options", base: () => Record<string, unknown> = () => ({})): Param {
  return {
    name,
    valid: () => undefined,
    families: [
      F.optionsNotObject,
      inOptions(F.timeoutRange, "timeout", base),
      inOptions(F.timeoutType, "timeout", base),
      inOptions(F.signalAborted, "signal", base),
      inOptions(F.signalType, "signal", base),
    ],
  };
}

/** `timeout` as a number, or `{ timeout, signal }` (Event, Condition, Barrier waits). */
function waitParam(valid: unknown = undefined): Param {
  const notObject = NOT_NUMBER.filter((v) => typeof v !== "object" || v === null);
  return {
    name: "timeout",
    valid: () => valid,
    families: [
      F.timeoutRange,
      fam("not a number or an object", notObject, err(TypeError, RangeError), { examples: ["10", null, true, 10n] }),
      inOptions(F.timeoutRange, "timeout"),
      inOptions(F.timeoutType, "timeout"),
      inOptions(F.signalAborted, "signal"),
      inOptions(F.signalType, "signal"),
    ],
  };
}

/** Values that cannot cross threads: TypeError naming where they sit. */
const UNCLONEABLE = fc.oneof(
  fc.func(fc.integer()),
  fc.constant(SYMBOL),
  fc.constant(new WeakMap()),
  fc.constant(Promise.resolve()),
  fc.constant(
    new (class Point {
      #x = 1;
      get x(): number {
        return this.#x;
      }
    })(),
  ),
);

/** Values that can cross: any structured-clone value (plain prototypes; see `sameClone`). */
const CLONEABLE = fc.anything({
  maxDepth: 2,
  maxKeys: 4,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: false,
  withBoxedValues: false,
  withObjectString: false,
});

/** The item parameter of `put`/`send`: uncloneable values fail and change nothing; cloneable ones arrive equal. */
function itemParam(roundTrip: (item: unknown, obj: unknown) => unknown): Param {
  return {
    name: "item",
    valid: () => "item",
    families: [
      fam("cannot be cloned", UNCLONEABLE, err(TypeError), { examples: [() => 1, SYMBOL] }),
      fam(
        "holds a function deep inside",
        fc.tuple(CLONEABLE, fc.func(fc.integer())).map(([data, cb]) => ({ data, deep: [{ cb }] })),
        errMatching(/deep\[0\]\.cb/, TypeError),
      ),
      fam("a structured-clone value", CLONEABLE, (item) => ok((_, obj) => roundTrip(item, obj)), {
        examples: [undefined, null, -0, NaN, 2n ** 70n, new Map([[1, new Set([2])]]), [1, , 3], new Date(0), ""],
      }),
    ],
  };
}

/** Extra arguments to a method that takes none: ignored (same outcome as without them). */
const EXTRA_ARGS = fc.array(fc.oneof(fc.anything({ maxDepth: 1 }), fc.constant(SYMBOL)), {
  minLength: 1,
  maxLength: 3,
});

// ---- subjects -----------------------------------------------------------------

interface Waits<O> {
  /** An object on which a valid call waits. */
  make: () => O | Promise<O>;
  /** The arguments, given a huge timeout and a signal. */
  args: (timeout: number, signal: AbortSignal) => unknown[];
  /** Ends the wait when the call takes no signal; omitted: the signal aborts it. */
  end?: (obj: O) => unknown;
  /** What the call gives once ended by `end`. */
  expect?: Expect;
}

interface MethodSpec<O> {
  /** What each parameter takes; none: extra arguments must be ignored. */
  params: Param[];
  /** Returns a Promise (and so must never throw). */
  async?: boolean;
  /** The object to call it on (default: the subject's `make`). */
  make?: () => O | Promise<O>;
  /** Random values per family, when the call is costly. */
  runs?: number;
  /** Huge timeouts must not fire early: the call still waits after a while. */
  waits?: Waits<O>;
  /** Not walked with bad values, and why (still listed, so new members are noticed). */
  skip?: string;
}

/** A getter, or an accessor whose setter takes `set`. */
interface AccessorSpec {
  accessor: true;
  set?: Param;
}

interface StateCall {
  args?: unknown[];
  /** For an accessor: the value to set (else the getter is read). */
  set?: unknown;
  expect: Expect;
}

interface State<O> {
  make: () => O | Promise<O>;
  /** The documented outcome of each member with valid arguments in this state. */
  calls: Record<string, StateCall | "skip">;
}

interface ClassSubject<O> {
  kind: "class";
  /** A fresh object on which a valid call of every member completes at once. */
  make: () => O | Promise<O>;
  /** Its observable state, compared before and after a refused call. */
  snap: (o: O) => unknown;
  /** Valid calls work (may use the object up). */
  works: (o: O) => unknown;
  dispose?: (o: O) => unknown;
  /** The constructor's parameters (none: extra arguments are ignored); `false` when it is not for use. */
  ctor: Param[] | { always: Expect };
  statics?: Record<string, MethodSpec<undefined>>;
  members: Record<string, MethodSpec<O> | AccessorSpec>;
  states?: Record<string, State<O>>;
  /** Checks of objects the members return (ids `Export label`): the problem, or `undefined`. */
  extra?: Record<string, () => Promise<string | undefined>>;
}

interface FunctionSubject {
  kind: "function";
  params: Param[];
  async?: boolean;
}

interface ValueSubject {
  kind: "value";
  check: (v: unknown) => void;
}

interface AliasSubject {
  kind: "alias";
  of: string;
}

// deno-lint-ignore no-explicit-any
type Subject = ClassSubject<any> | FunctionSubject | ValueSubject | AliasSubject;

// deno-lint-ignore no-explicit-any
function method<O = any>(params: Param[], extra: Omit<MethodSpec<O>, "params"> = {}): MethodSpec<O> {
  return { params, ...extra };
}
// deno-lint-ignore no-explicit-any
function asyncMethod<O = any>(params: Param[], extra: Omit<MethodSpec<O>, "params" | "async"> = {}): MethodSpec<O> {
  return { params, async: true, ...extra };
}
const getter: AccessorSpec = { accessor: true };

// ---- parameters shared by several subjects ---------------------------------------

/** `{ block, timeout, signal }` of Lock/Semaphore/Queue methods. */
const OPTIONS = optionsParam();
/** The same options, for Connection.recvSync/recvBytesSync: their signal is checked before waiting. */
const SYNC_SIGNAL_OPTIONS: Param = {
  ...OPTIONS,
  families: OPTIONS.families.map((f) => ({
    ...f,
    asyncOnly: f.label.includes("an aborted signal") ? false : f.asyncOnly,
  })),
};

const TYPECODES = ["b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d", "c", "u"];
const typecodeParam: Param = {
  name: "typecode",
  valid: () => "i",
  families: [
    fam(
      "not a typecode or TypedArray constructor",
      fc.oneof(
        fc.string().filter((s) => !TYPECODES.includes(s)),
        fc.integer(),
        fc.constant(null),
        fc.constantFrom(Array, DataView, Object, ArrayBuffer, Number),
      ),
      err(TypeError),
      { examples: [undefined, "x", "ii", "I ", DataView, Array, 105] },
    ),
  ],
};

/** A value for typecode "i": integers (and booleans) only. */
function intValueParam(name: string, valid: unknown): Param {
  return {
    name,
    valid: () => valid,
    families: [
      fam(
        "not an integer",
        fc.oneof(NON_INTEGER, NOT_FINITE, fc.string(), fc.constant(null), fc.bigInt(), fc.object({ maxDepth: 0 })),
        err(TypeError),
        { examples: [1.5, NaN, "1", null, 1n, Infinity] },
      ),
    ],
  };
}

const sharedOptionsParam: Param = {
  name: "options",
  valid: () => undefined,
  families: [
    F.optionsNotObject,
    inOptions(
      fam(
        "not a boolean, Lock or RLock",
        fc.oneof(
          fc.string(),
          fc.integer(),
          fc.constant(null),
          fc.object({ maxDepth: 0 }),
          fc.constant(new Semaphore()),
        ),
        err(TypeError),
        { examples: [null, 1, "yes", new Event(), new Condition()] },
      ),
      "lock",
    ),
  ],
};

const lockParam: Param = {
  name: "lock",
  valid: () => undefined,
  families: [
    fam(
      "not a Lock or RLock",
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
      err(TypeError),
      { examples: [null, new Semaphore(), new Event(), new Condition(), {}] },
    ),
  ],
};

/** Any value is a message, as for `Error` (a symbol cannot become one: TypeError, as `new Error(Symbol())`). */
const messageParam: Param = {
  name: "message",
  valid: () => undefined,
  families: [
    fam("any value", fc.anything({ maxDepth: 1 }), ok((e) => assert.ok(e instanceof Error))),
    fam("a symbol", fc.constant(SYMBOL), err(TypeError)),
  ],
};

// ---- queues ----------------------------------------------------------------------

/** `close()` options of the queues: `{ immediate }`. */
const closeOptionsParam: Param = {
  name: "options",
  valid: () => undefined,
  families: [
    F.optionsNotObject,
    inOptions(
      fam(
        "not a boolean",
        fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.object({ maxDepth: 0 })),
        err(TypeError),
        {
          examples: [1, "yes", null, {}],
        },
      ),
      "immediate",
    ),
  ],
};

/** The queue made by `make` holds "first"; after a put of `item` it comes back second. */
function queueRoundTrip(item: unknown, obj: unknown): void {
  const q = obj as Queue<unknown>;
  assert.equal(q.getNowait(), "first");
  assert.deepStrictEqual(q.getNowait(), item);
}

function queueSubject(cls: typeof Queue | typeof JoinableQueue): ClassSubject<Queue<unknown>> {
  const make = () => {
    const q = new cls<unknown>(2);
    q.putNowait("first");
    return q;
  };
  const empty = () => new cls<unknown>(2);
  const full = () => {
    const q = new cls<unknown>(1);
    q.putNowait("only");
    return q;
  };
  const closed = () => {
    const q = new cls<unknown>(2);
    q.close();
    return q;
  };
  const members: ClassSubject<Queue<unknown>>["members"] = {
    maxsize: getter,
    closed: getter,
    put: asyncMethod([itemParam(queueRoundTrip), OPTIONS], {
      waits: { make: full, args: (timeout, signal) => ["x", { timeout, signal }] },
    }),
    putSync: method([itemParam(queueRoundTrip), OPTIONS]),
    putNowait: method([itemParam(queueRoundTrip)]),
    get: asyncMethod([OPTIONS], { waits: { make: empty, args: (timeout, signal) => [{ timeout, signal }] } }),
    getSync: method([OPTIONS]),
    getNowait: method([]),
    qsize: method([]),
    empty: method([]),
    full: method([]),
    close: method([closeOptionsParam]),
    "[Symbol.asyncIterator]": method([]),
    "[Symbol.dispose]": method([]),
  };
  const closedCalls: State<Queue<unknown>>["calls"] = {
    maxsize: { expect: ok((v) => assert.equal(v, 2)) },
    closed: { expect: ok((v) => assert.equal(v, true)) },
    put: { args: ["x"], expect: err(ClosedError) },
    putSync: { args: ["x"], expect: err(ClosedError) },
    putNowait: { args: ["x"], expect: err(ClosedError) },
    get: { expect: err(ClosedError) },
    getSync: { expect: err(ClosedError) },
    getNowait: { expect: err(ClosedError) },
    qsize: { expect: ok((n) => assert.equal(n, 0)) },
    empty: { expect: ok((v) => assert.equal(v, true)) },
    full: { expect: ok((v) => assert.equal(v, false)) },
    close: { expect: ok() },
    "[Symbol.asyncIterator]": {
      expect: ok(async (it) =>
        assert.deepEqual(await (it as AsyncIterator<unknown>).next(), { done: true, value: undefined })
      ),
    },
    "[Symbol.dispose]": { expect: ok() },
  };
  const states: Record<string, State<Queue<unknown>>> = {
    "closed and drained": { make: closed, calls: closedCalls },
    "closed, holding an item": {
      make: () => {
        const q = make();
        q.close();
        return q;
      },
      calls: {
        ...closedCalls,
        get: { expect: ok((v) => assert.equal(v, "first")) },
        getSync: { expect: ok((v) => assert.equal(v, "first")) },
        getNowait: { expect: ok((v) => assert.equal(v, "first")) },
        qsize: { expect: ok((n) => assert.equal(n, 1)) },
        empty: { expect: ok((v) => assert.equal(v, false)) },
        "[Symbol.asyncIterator]": {
          expect: ok(async (it) =>
            assert.deepEqual(await (it as AsyncIterator<unknown>).next(), { done: false, value: "first" })
          ),
        },
      },
    },
    full: {
      make: full,
      calls: {
        maxsize: { expect: ok((v) => assert.equal(v, 1)) },
        closed: { expect: ok((v) => assert.equal(v, false)) },
        put: { args: ["x", { block: false }], expect: err(FullError) },
        putSync: { args: ["x", { timeout: 0 }], expect: err(FullError) },
        putNowait: { args: ["x"], expect: err(FullError) },
        get: { expect: ok((v) => assert.equal(v, "only")) },
        getSync: { expect: ok((v) => assert.equal(v, "only")) },
        getNowait: { expect: ok((v) => assert.equal(v, "only")) },
        qsize: { expect: ok((n) => assert.equal(n, 1)) },
        empty: { expect: ok((v) => assert.equal(v, false)) },
        full: { expect: ok((v) => assert.equal(v, true)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
    empty: {
      make: empty,
      calls: {
        maxsize: { expect: ok() },
        closed: { expect: ok() },
        put: { args: ["x"], expect: ok() },
        putSync: { args: ["x"], expect: ok() },
        putNowait: { args: ["x"], expect: ok() },
        get: { args: [{ block: false }], expect: err(EmptyError) },
        getSync: { args: [{ timeout: 0 }], expect: err(EmptyError) },
        getNowait: { expect: err(EmptyError) },
        qsize: { expect: ok((n) => assert.equal(n, 0)) },
        empty: { expect: ok((v) => assert.equal(v, true)) },
        full: { expect: ok((v) => assert.equal(v, false)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
  };
  if (cls === JoinableQueue) {
    members.taskDone = method([]);
    // Walked on a queue with no unfinished task, where a valid join returns at once.
    members.join = asyncMethod([optionsParam()], {
      make: empty,
      waits: { make, args: (timeout, signal) => [{ timeout, signal }] },
    });
    members.joinSync = method([optionsParam()], { make: empty });
    for (const [name, state] of Object.entries(states)) {
      const unfinished = name !== "closed and drained" && name !== "empty";
      state.calls.taskDone = unfinished ? { expect: ok() } : { expect: err(Error) };
      state.calls.join = unfinished ? { args: [{ timeout: 0 }], expect: ok() } : { expect: ok() };
      state.calls.joinSync = unfinished ? { args: [{ timeout: 0 }], expect: ok() } : { expect: ok() };
    }
  }
  return {
    kind: "class",
    make,
    snap: (q) => ({ qsize: q.qsize(), empty: q.empty(), full: q.full(), closed: q.closed, maxsize: q.maxsize }),
    works: (q) => {
      const held = q.qsize();
      for (let i = 0; i < held; i++) q.getNowait();
      assert.throws(() => q.getNowait(), EmptyError);
      q.putNowait("a");
      q.putNowait("b");
      assert.throws(() => q.putNowait("c"), FullError);
      assert.equal(q.getNowait(), "a");
      assert.equal(q.getNowait(), "b");
      assert.equal(q.empty(), true);
    },
    dispose: (q) => q.close(),
    ctor: [{
      name: "maxsize",
      valid: () => 2,
      families: [
        fam(
          "not an integer",
          fc.oneof(NON_INTEGER, NOT_FINITE, fc.maxSafeNat().filter((n) => n > 0x7fffffff)),
          err(RangeError),
          {
            examples: [1.5, NaN, Infinity, -Infinity, 2 ** 31],
          },
        ),
        fam("not a number", NOT_NUMBER, err(TypeError), { examples: ["2", null, true, 2n] }),
      ],
    }],
    members,
    states,
    extra: {
      "a refused put leaves a Connection end in the item with its sender": async () => {
        const refusals: [string, () => Queue<unknown>, (q: Queue<unknown>, item: unknown) => unknown, Expect][] = [
          ["putNowait on a full queue", full, (q, x) => q.putNowait(x), err(FullError)],
          ["put({ block: false }) on a full queue", full, (q, x) => q.put(x, { block: false }), err(FullError)],
          ["put({ timeout: 5 }) on a full queue", full, (q, x) => q.put(x, { timeout: 5 }), err(FullError)],
          ["putSync({ timeout: 0 }) on a full queue", full, (q, x) => q.putSync(x, { timeout: 0 }), err(FullError)],
          ["put on a closed queue", closed, (q, x) => q.put(x), err(ClosedError)],
          ["putNowait on a closed queue", closed, (q, x) => q.putNowait(x), err(ClosedError)],
          ["put with an uncloneable neighbour", make, (q, x) => q.put([x, () => 1]), err(TypeError)],
          ["putNowait with an uncloneable neighbour", make, (q, x) => q.putNowait([x, SYMBOL]), err(TypeError)],
          ["put with an aborted signal", full, (q, x) => {
            const c = new AbortController();
            c.abort("stop");
            return q.put(x, { signal: c.signal });
          }, { kind: "reason", reason: "stop" }],
          ["put aborted while it waits", full, (q, x) => {
            const c = new AbortController();
            setTimeout(() => c.abort("later"), 20);
            return q.put(x, { signal: c.signal });
          }, { kind: "reason", reason: "later" }],
        ];
        for (const [what, makeQ, refuse, expect] of refusals) {
          const q = makeQ();
          try {
            const problem = await endSurvives((item) => refuse(q, item), expect);
            if (problem) return `${what}: ${problem}`;
          } finally {
            q.close();
          }
        }
        return undefined;
      },
    },
  };
}

const simpleQueueSubject: ClassSubject<SimpleQueue<unknown>> = {
  kind: "class",
  make: () => {
    const q = new SimpleQueue<unknown>();
    q.put("first");
    return q;
  },
  snap: (q) => ({ empty: q.empty() }),
  works: async (q) => {
    assert.equal(q.getSync({ timeout: 0 }), "first");
    await q.put("a");
    assert.equal(await q.get({ block: false }), "a");
    assert.equal(q.empty(), true);
  },
  dispose: (q) => q.close(),
  ctor: [],
  members: {
    put: asyncMethod([itemParam((item, obj) => {
      const q = obj as SimpleQueue<unknown>;
      assert.equal(q.getSync({ timeout: 0 }), "first");
      assert.deepStrictEqual(q.getSync({ timeout: 0 }), item);
    })]),
    putSync: method([itemParam((item, obj) => {
      const q = obj as SimpleQueue<unknown>;
      assert.equal(q.getSync({ timeout: 0 }), "first");
      assert.deepStrictEqual(q.getSync({ timeout: 0 }), item);
    })]),
    get: asyncMethod([OPTIONS], {
      waits: { make: () => new SimpleQueue(), args: (timeout, signal) => [{ timeout, signal }] },
    }),
    getSync: method([OPTIONS]),
    empty: method([]),
    close: method([closeOptionsParam]),
    "[Symbol.asyncIterator]": method([]),
  },
  states: {
    closed: {
      make: () => {
        const q = new SimpleQueue();
        q.close();
        return q;
      },
      calls: {
        put: { args: ["x"], expect: err(ClosedError) },
        putSync: { args: ["x"], expect: err(ClosedError) },
        get: { expect: err(ClosedError) },
        getSync: { expect: err(ClosedError) },
        empty: { expect: ok((v) => assert.equal(v, true)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
      },
    },
    empty: {
      make: () => new SimpleQueue(),
      calls: {
        put: { args: ["x"], expect: ok() },
        putSync: { args: ["x"], expect: ok() },
        get: { args: [{ timeout: 0 }], expect: err(EmptyError) },
        getSync: { args: [{ block: false }], expect: err(EmptyError) },
        empty: { expect: ok((v) => assert.equal(v, true)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
      },
    },
  },
};

// ---- locks and semaphores ------------------------------------------------------------

type Gate = Lock | RLock | Semaphore;

function gateMembers<O extends Gate>(waits: Waits<O> | undefined): ClassSubject<O>["members"] {
  return {
    ownerDied: getter,
    acquire: asyncMethod([OPTIONS], { waits }),
    acquireSync: method([OPTIONS]),
    scoped: asyncMethod([OPTIONS], {
      waits: waits && { ...waits, args: (timeout, signal) => [{ timeout, signal }] },
    }),
    scopedSync: method([OPTIONS]),
    toString: method([]),
  };
}

function lockSubject(cls: typeof Lock | typeof RLock): ClassSubject<Lock | RLock> {
  const held = () => {
    const l = new cls();
    l.acquireSync();
    return l;
  };
  // An RLock held by this thread is entered again at once: it cannot make a call wait here.
  const waits: Waits<Lock | RLock> | undefined = cls === Lock
    ? { make: held, args: (timeout, signal) => [{ timeout, signal }] }
    : undefined;
  return {
    kind: "class",
    make: () => new cls(),
    snap: (l) => ({ text: String(l), locked: l.locked(), ownerDied: l.ownerDied }),
    works: (l) => {
      assert.equal(l.acquireSync({ block: false }), true);
      assert.equal(l.locked(), true);
      l.release();
      assert.equal(l.locked(), false);
    },
    ctor: [],
    members: { ...gateMembers(waits), release: method([]), locked: method([]) },
    states: {
      unlocked: {
        make: () => new cls(),
        calls: {
          ownerDied: { expect: ok((v) => assert.equal(v, false)) },
          acquire: { expect: ok((v) => assert.equal(v, true)) },
          acquireSync: { expect: ok((v) => assert.equal(v, true)) },
          scoped: { expect: ok() },
          scopedSync: { expect: ok() },
          toString: { expect: ok() },
          release: { expect: err(Error) },
          locked: { expect: ok((v) => assert.equal(v, false)) },
        },
      },
      "held by this thread": {
        make: held,
        calls: {
          ownerDied: { expect: ok((v) => assert.equal(v, false)) },
          // A Lock is not re-entrant: a second acquire fails; an RLock is entered again.
          acquire: { args: [{ block: false }], expect: ok((v) => assert.equal(v, cls === RLock)) },
          acquireSync: { args: [{ timeout: 0 }], expect: ok((v) => assert.equal(v, cls === RLock)) },
          scoped: { args: [{ block: false }], expect: cls === RLock ? ok() : err(TimeoutError) },
          scopedSync: { args: [{ timeout: 1 }], expect: cls === RLock ? ok() : err(TimeoutError) },
          toString: { expect: ok() },
          release: { expect: ok() },
          locked: { expect: ok((v) => assert.equal(v, true)) },
        },
      },
    },
  };
}

function semaphoreSubject(cls: typeof Semaphore | typeof BoundedSemaphore): ClassSubject<Semaphore> {
  const none = () => new cls(0);
  const takenOne = () => {
    const s = new cls(1);
    s.acquireSync();
    return s;
  };
  const bounded = cls === BoundedSemaphore;
  return {
    kind: "class",
    make: () => new cls(1),
    snap: (s) => ({ text: String(s), value: s.getValue(), ownerDied: s.ownerDied }),
    works: (s) => {
      const v = s.getValue();
      assert.equal(s.acquireSync({ block: false }), v > 0);
      if (v > 0) s.release();
      assert.equal(s.getValue(), v);
    },
    ctor: [countParam("value", 0, 1)],
    members: {
      ...gateMembers<Semaphore>({ make: none, args: (timeout, signal) => [{ timeout, signal }] }),
      // Walked with a permit taken, so that a valid release is allowed also when bounded.
      release: method([countParam("n", 1)], { make: takenOne }),
      getValue: method([]),
    },
    extra: bounded ? {} : {
      "release() past the largest count is refused, not wrapped": () => {
        const s = new cls(0);
        let accepted = 0;
        for (let i = 0; i < 3; i++) {
          try {
            s.release(0x3fff_ffff);
            accepted += 0x3fff_ffff;
          } catch (error) {
            if (!(error instanceof RangeError)) return Promise.resolve(`release() threw ${show(error)}`);
          }
        }
        const value = s.getValue();
        return Promise.resolve(
          value === accepted ? undefined : `getValue() is ${value} after releases of ${accepted} permits in all`,
        );
      },
    },
    states: {
      "no permit left": {
        make: bounded ? takenOne : none,
        calls: {
          ownerDied: { expect: ok((v) => assert.equal(v, false)) },
          acquire: { args: [{ block: false }], expect: ok((v) => assert.equal(v, false)) },
          acquireSync: { args: [{ timeout: 0 }], expect: ok((v) => assert.equal(v, false)) },
          scoped: { args: [{ block: false }], expect: err(TimeoutError) },
          scopedSync: { args: [{ timeout: 1 }], expect: err(TimeoutError) },
          toString: { expect: ok() },
          release: { expect: ok() },
          getValue: { expect: ok((v) => assert.equal(v, 0)) },
        },
      },
      "at its initial value": {
        make: () => new cls(2),
        calls: {
          ownerDied: { expect: ok() },
          acquire: { expect: ok((v) => assert.equal(v, true)) },
          acquireSync: { expect: ok((v) => assert.equal(v, true)) },
          scoped: { expect: ok() },
          scopedSync: { expect: ok() },
          toString: { expect: ok((v) => assert.match(String(v), /value=2/)) },
          // Python's BoundedSemaphore raises ValueError here; a plain Semaphore goes above.
          release: { args: [1], expect: bounded ? err(RangeError) : ok() },
          getValue: { expect: ok((v) => assert.equal(v, 2)) },
        },
      },
    },
  };
}

// ---- Event, Condition, Barrier ----------------------------------------------------------

const eventSubject: ClassSubject<Event> = {
  kind: "class",
  // Set, so that a wait accepted by mistake returns at once.
  make: () => {
    const e = new Event();
    e.set();
    return e;
  },
  snap: (e) => ({ set: e.isSet(), text: String(e) }),
  works: (e) => {
    assert.equal(e.waitSync(0), true);
    e.clear();
    assert.equal(e.waitSync(0), false);
    e.set();
    assert.equal(e.isSet(), true);
  },
  dispose: (e) => e.set(),
  ctor: [],
  members: {
    isSet: method([]),
    set: method([]),
    clear: method([]),
    wait: asyncMethod([waitParam()], {
      waits: { make: () => new Event(), args: (timeout, signal) => [{ timeout, signal }] },
    }),
    waitSync: method([waitParam()]),
    toString: method([]),
  },
  states: {
    unset: {
      make: () => new Event(),
      calls: {
        isSet: { expect: ok((v) => assert.equal(v, false)) },
        set: { expect: ok() },
        clear: { expect: ok() },
        wait: { args: [0], expect: ok((v) => assert.equal(v, false)) },
        waitSync: { args: [{ timeout: 0 }], expect: ok((v) => assert.equal(v, false)) },
        toString: { expect: ok() },
      },
    },
  },
};

function heldCondition(lock?: Lock | RLock): Condition {
  const c = new Condition(lock);
  c.acquireSync();
  return c;
}

const conditionSubject: ClassSubject<Condition> = {
  kind: "class",
  // The lock is not held: a wait or notify accepted by mistake fails at once instead of waiting.
  make: () => new Condition(),
  snap: (c) => ({ text: String(c) }),
  works: (c) => {
    c.acquireSync();
    assert.equal(c.waitSync(0), false);
    c.notify();
    c.notifyAll();
    c.release();
    assert.throws(() => c.release(), Error);
  },
  dispose: (c) => {
    if (c.acquireSync({ block: false })) {
      c.notifyAll();
      c.release();
    }
  },
  ctor: [lockParam],
  members: {
    acquire: asyncMethod([OPTIONS], {
      waits: { make: () => heldCondition(new Lock()), args: (timeout, signal) => [{ timeout, signal }] },
    }),
    acquireSync: method([OPTIONS]),
    release: method([]),
    scoped: asyncMethod([OPTIONS]),
    scopedSync: method([OPTIONS]),
    wait: asyncMethod([waitParam()], {
      waits: { make: () => heldCondition(), args: (timeout, signal) => [{ timeout, signal }] },
    }),
    waitSync: method([waitParam()]),
    waitFor: asyncMethod([
      { name: "predicate", valid: () => () => true, families: [F.functionType] },
      waitParam(),
    ], { make: () => new Condition() }),
    waitForSync: method([
      { name: "predicate", valid: () => () => false, families: [F.functionType] },
      waitParam(),
    ]),
    notify: method([countParam("n", 0, 1, true)]),
    notifyAll: method([]),
    toString: method([]),
  },
  states: {
    "lock held": {
      make: () => heldCondition(),
      calls: {
        acquire: { expect: ok((v) => assert.equal(v, true)) },
        acquireSync: { expect: ok((v) => assert.equal(v, true)) },
        release: { expect: ok() },
        scoped: { expect: ok() },
        scopedSync: { expect: ok() },
        wait: { args: [1], expect: ok((v) => assert.equal(v, false)) },
        waitSync: { args: [{ timeout: 0 }], expect: ok((v) => assert.equal(v, false)) },
        waitFor: { args: [() => 0, 1], expect: ok((v) => assert.equal(v, 0)) },
        waitForSync: { args: [() => "yes"], expect: ok((v) => assert.equal(v, "yes")) },
        notify: { args: [5], expect: ok() },
        notifyAll: { expect: ok() },
        toString: { expect: ok() },
      },
    },
    "lock not held": {
      make: () => new Condition(new Lock()),
      calls: {
        acquire: { expect: ok((v) => assert.equal(v, true)) },
        acquireSync: { expect: ok((v) => assert.equal(v, true)) },
        release: { expect: err(Error) },
        scoped: { expect: ok() },
        scopedSync: { expect: ok() },
        wait: { expect: err(Error) },
        waitSync: { expect: err(Error) },
        waitFor: { args: [() => 0, 50], expect: err(Error) },
        waitForSync: { args: [() => 0, 50], expect: err(Error) },
        notify: { expect: err(Error) },
        notifyAll: { expect: err(Error) },
        toString: { expect: ok() },
      },
    },
  },
};

const barrierSubject: ClassSubject<Barrier> = {
  kind: "class",
  // One party: a wait accepted by mistake passes at once.
  make: () => new Barrier(1),
  snap: (b) => ({ text: String(b), parties: b.parties, waiting: b.nWaiting, broken: b.broken }),
  works: async (b) => {
    assert.equal(b.waitSync(), 0);
    assert.equal(await b.wait(), 0);
    b.abort();
    assert.equal(b.broken, true);
    b.reset();
    assert.equal(b.waitSync(0), 0);
  },
  dispose: (b) => b.abort(),
  ctor: [
    countParam("parties", 1, 1),
    {
      name: "options",
      valid: () => undefined,
      families: [F.optionsNotObject, inOptions(F.timeoutRange, "timeout"), inOptions(F.timeoutType, "timeout")],
    },
  ],
  members: {
    parties: getter,
    nWaiting: getter,
    broken: getter,
    wait: asyncMethod([waitParam()], {
      waits: { make: () => new Barrier(2), args: (timeout, signal) => [{ timeout, signal }] },
    }),
    waitSync: method([waitParam()]),
    reset: method([]),
    abort: method([]),
    toString: method([]),
  },
  states: {
    broken: {
      make: () => {
        const b = new Barrier(2);
        b.abort();
        return b;
      },
      calls: {
        parties: { expect: ok((v) => assert.equal(v, 2)) },
        nWaiting: { expect: ok((v) => assert.equal(v, 0)) },
        broken: { expect: ok((v) => assert.equal(v, true)) },
        wait: { expect: err(BrokenBarrierError) },
        waitSync: { expect: err(BrokenBarrierError) },
        reset: { expect: ok() },
        abort: { expect: ok() },
        toString: { expect: ok((v) => assert.match(String(v), /broken/)) },
      },
    },
    "two parties, none waiting": {
      make: () => new Barrier(2, { timeout: 5 }),
      calls: {
        parties: { expect: ok((v) => assert.equal(v, 2)) },
        nWaiting: { expect: ok((v) => assert.equal(v, 0)) },
        broken: { expect: ok((v) => assert.equal(v, false)) },
        // A timeout breaks the barrier, as in Python.
        wait: { expect: err(BrokenBarrierError) },
        waitSync: { args: [0], expect: err(BrokenBarrierError) },
        reset: { expect: ok() },
        abort: { expect: ok() },
        toString: { expect: ok() },
      },
    },
  },
};

// ---- shared memory ---------------------------------------------------------------------

const sharedValueSubject: ClassSubject<SharedValue<"i">> = {
  kind: "class",
  make: () => new SharedValue("i", 7),
  snap: (v) => ({ value: v.value, typecode: v.typecode, text: String(v) }),
  works: (v) => {
    v.value = 3;
    assert.equal(v.value, 3);
    assert.equal(v.getObj()[0], 3);
    assert.ok(v.getLock() instanceof RLock);
  },
  ctor: [typecodeParam, intValueParam("initial", 7), sharedOptionsParam],
  members: {
    typecode: getter,
    value: { accessor: true, set: intValueParam("value", 1) },
    getLock: method([]),
    getObj: method([]),
    toString: method([]),
  },
  states: {
    "without a lock": {
      make: () => new SharedValue("i", 7, { lock: false }),
      calls: {
        typecode: { expect: ok((v) => assert.equal(v, "i")) },
        value: { set: 2, expect: ok() },
        getLock: { expect: err(Error) },
        getObj: { expect: ok() },
        toString: { expect: ok((v) => assert.equal(v, 'SharedValue("i", 7)')) },
      },
    },
  },
};

const LENGTH = 3;
const sharedArraySubject: ClassSubject<SharedArray> = {
  kind: "class",
  make: () => new SharedArray("i", [1, 2, 3]),
  snap: (a) => ({ items: a.toArray(), length: a.length, typecode: a.typecode }),
  works: (a) => {
    a.set(0, 5);
    assert.equal(a.get(0), 5);
    assert.equal(a.get(-1), 3);
    assert.deepEqual([...a], [5, 2, 3]);
    assert.equal(a.view.length, LENGTH);
  },
  ctor: [typecodeParam, {
    name: "sizeOrInitial",
    valid: () => 2,
    families: [
      fam("a size that is not an integer >= 0", fc.oneof(NEGATIVE, NON_INTEGER, NOT_FINITE), err(RangeError), {
        examples: [-1, 1.5, NaN, Infinity, 2 ** 31 + 1],
      }),
      fam(
        "neither a size nor an iterable",
        fc.oneof(fc.boolean(), fc.constant(null), fc.bigInt(), fc.object({ maxDepth: 0 })),
        err(TypeError),
        {
          examples: [undefined, null, true, 3n, {}],
        },
      ),
      fam(
        "an iterable with an element that does not fit",
        fc.tuple(
          fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 3 }),
          fc.oneof(NON_INTEGER, fc.string(), fc.constant(null)),
        ).map((
          [xs, bad],
        ) => [...xs, bad]),
        err(TypeError),
        { examples: ["12", [1, 1.5], [null]] },
      ),
    ],
  }, sharedOptionsParam],
  members: {
    typecode: getter,
    length: getter,
    view: getter,
    get: method([indexParam()]),
    set: method([indexParam(), intValueParam("value", 1)]),
    getLock: method([]),
    getObj: method([]),
    toArray: method([]),
    toString: method([]),
    "[Symbol.iterator]": method([]),
  },
  states: {
    "without a lock": {
      make: () => new SharedArray("i", 2, { lock: false }),
      calls: {
        typecode: { expect: ok() },
        length: { expect: ok((v) => assert.equal(v, 2)) },
        view: { expect: ok() },
        get: { args: [-2], expect: ok((v) => assert.equal(v, 0)) },
        set: { args: [1, 4], expect: ok() },
        getLock: { expect: err(Error) },
        getObj: { expect: ok() },
        toArray: { expect: ok((v) => assert.deepEqual(v, [0, 0])) },
        toString: { expect: ok() },
        "[Symbol.iterator]": { expect: ok() },
      },
    },
    empty: {
      make: () => new SharedArray("d", []),
      calls: {
        typecode: { expect: ok((v) => assert.equal(v, "d")) },
        length: { expect: ok((v) => assert.equal(v, 0)) },
        view: { expect: ok() },
        get: { args: [0], expect: err(RangeError) },
        set: { args: [-1, 1.5], expect: err(RangeError) },
        getLock: { expect: ok() },
        getObj: { expect: ok() },
        toArray: { expect: ok((v) => assert.deepEqual(v, [])) },
        toString: { expect: ok() },
        "[Symbol.iterator]": { expect: ok() },
      },
    },
  },
};

/** An index into an array of LENGTH elements: an integer in [-LENGTH, LENGTH). */
function indexParam(): Param {
  return {
    name: "index",
    valid: () => 0,
    families: [
      fam(
        "out of range, not an integer or not finite",
        fc.oneof(fc.integer({ min: LENGTH }), fc.integer({ max: -LENGTH - 1 }), NON_INTEGER, NOT_FINITE),
        err(RangeError),
        { examples: [LENGTH, -LENGTH - 1, 0.5, NaN, Infinity] },
      ),
      fam("not a number", NOT_NUMBER, err(TypeError, RangeError), { examples: ["0", null, true, 0n] }),
    ],
  };
}

// ---- Pipe and Connection ----------------------------------------------------------------

/** The other end of each walked connection, to send from and to close. */
const peers = new WeakMap<Connection<unknown>, Connection<unknown>>();

function pipe(duplex = true): [Connection<unknown>, Connection<unknown>] {
  const [a, b] = Pipe<unknown>(duplex);
  peers.set(a, b);
  peers.set(b, a);
  return [a, b];
}

/** An end with one message ("m1") waiting, so that every valid call completes at once. */
function readyEnd(): Connection<unknown> {
  const [a, b] = pipe();
  b.send("m1");
  return a;
}

function closeBoth(c: Connection<unknown>): void {
  c.close();
  peers.get(c)?.close();
}

const BYTES = () => new Uint8Array([1, 2, 3, 4]);

/**
 * A call that refuses an item holding a `Connection` end (`refuse` gets the
 * item) must leave the end with the sender, open and working.
 */
async function endSurvives(
  refuse: (item: unknown) => unknown,
  expect: Expect,
): Promise<string | undefined> {
  const [mine, theirs] = pipe();
  try {
    const out = await call(async () => await refuse({ note: "with an end", end: mine }), true);
    const problem = await verdict(out, expect, true, undefined);
    if (problem) return problem;
    if (mine.closed) return "the refused end is closed or moved";
    mine.send("still mine");
    const got = theirs.recvSync({ timeout: 0 });
    return got === "still mine" ? undefined : `the other end received ${show(got)}`;
  } catch (error) {
    return `the refused end no longer works: ${show(error)}`;
  } finally {
    closeBoth(mine);
  }
}

function byteCountParam(name: string): Param {
  return {
    name,
    valid: () => undefined,
    families: [
      fam(
        "negative, not an integer, or past the end",
        fc.oneof(NEGATIVE, NON_INTEGER, NOT_FINITE, fc.integer({ min: 5 })),
        err(RangeError),
        { examples: [-1, 1.5, NaN, 5, Infinity] },
      ),
      fam("not a number", NOT_NUMBER.filter((v) => v !== null), err(TypeError, RangeError), {
        examples: ["1", true, 1n],
      }),
    ],
  };
}

const recvBytesOptions = (sync: boolean): Param => {
  const base = sync ? SYNC_SIGNAL_OPTIONS : OPTIONS;
  return {
    ...base,
    families: [
      ...base.families,
      inOptions(
        fam(
          "not an integer >= 0",
          fc.oneof(NEGATIVE, NON_INTEGER, NOT_FINITE, fc.string(), fc.constant(null)),
          err(RangeError, TypeError),
          { examples: [-1, 1.5, NaN, "10"] },
        ),
        "maxLength",
      ),
    ],
  };
};

/** recvBytesInto's buffer: the valid one has room for any message the tests leave in the pipe. */
const intoBufferParam: Param = {
  name: "buffer",
  valid: () => new Uint8Array(64),
  families: [
    fam(
      "not a buffer",
      fc.oneof(
        fc.string(),
        fc.array(fc.integer({ min: 0, max: 255 })),
        fc.integer(),
        fc.constant(null),
        fc.object({ maxDepth: 0 }),
      ),
      err(TypeError),
      { examples: [undefined, null, "abc", [1, 2], 4] },
    ),
  ],
};

const intoOffsetParam: Param = {
  name: "offset",
  valid: () => 0,
  families: [
    fam(
      "negative, not an integer, or past the end",
      fc.oneof(NEGATIVE, NON_INTEGER, NOT_FINITE, fc.integer({ min: 65 })),
      err(RangeError),
      { examples: [-1, 1.5, NaN, 65, Infinity] },
    ),
    fam("not a number", NOT_NUMBER.filter((v) => v !== undefined), err(TypeError, RangeError), {
      examples: ["1", true, 1n, null],
    }),
  ],
};

const INTO = (): unknown[] => [new Uint8Array(64), 0];

const pollTimeoutParam: Param = {
  name: "timeout",
  valid: () => 0,
  families: [
    F.timeoutRange,
    fam("not a number or null", NOT_NUMBER.filter((v) => v !== null), err(TypeError, RangeError), {
      examples: ["10", true, 10n, {}],
    }),
  ],
};

const connectionSubject: ClassSubject<Connection<unknown>> = {
  kind: "class",
  make: readyEnd,
  snap: (c) => ({ closed: c.closed, readable: c.readable, writable: c.writable, ready: c.closed || c.pollSync(0) }),
  works: (c) => {
    assert.equal(c.recvSync({ timeout: 0 }), "m1");
    c.send("x");
    assert.equal(peers.get(c)!.recvSync({ timeout: 0 }), "x");
  },
  dispose: closeBoth,
  ctor: { always: err(TypeError) },
  extra: {
    "a refused send leaves a Connection end in the value with its sender": async () => {
      const refusals: [
        string,
        (c: Connection<unknown>) => void,
        (c: Connection<unknown>, v: unknown) => unknown,
        Expect,
      ][] = [
        ["send with an uncloneable neighbour", () => {}, (c, v) => c.send([v, () => 1]), err(TypeError)],
        ["send with one of the pipe's own ends beside it", () => {}, (c, v) => c.send([v, c]), err(TypeError)],
        ["send to a closed end", (c) => peers.get(c)!.close(), (c, v) => c.send(v), err(ClosedError)],
      ];
      for (const [what, prepare, refuse, expect] of refusals) {
        const c = readyEnd();
        try {
          prepare(c);
          const problem = await endSurvives((value) => refuse(c, value), expect);
          if (problem) return `${what}: ${problem}`;
        } finally {
          closeBoth(c);
        }
      }
      return undefined;
    },
  },
  members: {
    closed: getter,
    readable: getter,
    writable: getter,
    send: method([
      itemParam((item, obj) => assert.deepStrictEqual(peers.get(obj as Connection)!.recvSync({ timeout: 0 }), item)),
    ]),
    sendBytes: method([
      {
        name: "buffer",
        valid: BYTES,
        families: [
          fam(
            "not bytes",
            fc.oneof(
              fc.string(),
              fc.array(fc.integer({ min: 0, max: 255 })),
              fc.integer(),
              fc.constant(null),
              fc.object({ maxDepth: 0 }),
            ),
            err(TypeError),
            { examples: [undefined, null, "abc", [1, 2], 4] },
          ),
        ],
      },
      byteCountParam("offset"),
      byteCountParam("size"),
    ]),
    recv: asyncMethod([OPTIONS], {
      waits: { make: () => pipe()[0], args: (timeout, signal) => [{ timeout, signal }] },
    }),
    recvSync: method([SYNC_SIGNAL_OPTIONS]),
    recvBytes: asyncMethod([recvBytesOptions(false)], {
      waits: { make: () => pipe()[0], args: (timeout, signal) => [{ timeout, signal }] },
    }),
    recvBytesSync: method([recvBytesOptions(true)]),
    recvBytesInto: asyncMethod([intoBufferParam, intoOffsetParam, OPTIONS], {
      waits: { make: () => pipe()[0], args: (timeout, signal) => [...INTO(), { timeout, signal }] },
    }),
    recvBytesIntoSync: method([intoBufferParam, intoOffsetParam, SYNC_SIGNAL_OPTIONS]),
    poll: asyncMethod([pollTimeoutParam], {
      waits: {
        make: () => pipe()[0],
        args: (timeout) => [timeout],
        end: (c) => peers.get(c)!.send("late"),
        expect: ok((v) => assert.equal(v, true)),
      },
    }),
    pollSync: method([pollTimeoutParam]),
    close: method([]),
    "[Symbol.asyncIterator]": method([]),
    "[Symbol.dispose]": method([]),
  },
  states: {
    closed: {
      make: () => {
        const c = readyEnd();
        c.close();
        return c;
      },
      calls: {
        closed: { expect: ok((v) => assert.equal(v, true)) },
        readable: { expect: ok((v) => assert.equal(v, true)) },
        writable: { expect: ok((v) => assert.equal(v, true)) },
        send: { args: ["x"], expect: err(ClosedError) },
        sendBytes: { args: [BYTES()], expect: err(ClosedError) },
        recv: { expect: err(ClosedError) },
        recvSync: { expect: err(ClosedError) },
        recvBytes: { expect: err(ClosedError) },
        recvBytesSync: { expect: err(ClosedError) },
        recvBytesInto: { args: INTO(), expect: err(ClosedError) },
        recvBytesIntoSync: { args: INTO(), expect: err(ClosedError) },
        poll: { expect: err(ClosedError) },
        pollSync: { expect: err(ClosedError) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
    "moved away (sent inside a queue item)": {
      make: () => {
        const c = readyEnd();
        const q = new Queue();
        q.putNowait({ end: c });
        return c;
      },
      calls: {
        closed: { expect: ok((v) => assert.equal(v, true)) },
        readable: { expect: ok() },
        writable: { expect: ok() },
        send: { args: ["x"], expect: errMatching(/moved/, Error) },
        sendBytes: { args: [BYTES()], expect: errMatching(/moved/, Error) },
        recv: { expect: errMatching(/moved/, Error) },
        recvSync: { expect: errMatching(/moved/, Error) },
        recvBytes: { expect: errMatching(/moved/, Error) },
        recvBytesSync: { expect: errMatching(/moved/, Error) },
        recvBytesInto: { args: INTO(), expect: errMatching(/moved/, Error) },
        recvBytesIntoSync: { args: INTO(), expect: errMatching(/moved/, Error) },
        poll: { expect: errMatching(/moved/, Error) },
        pollSync: { expect: errMatching(/moved/, Error) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
    "other end closed, nothing left": {
      make: () => {
        const [a, b] = pipe();
        b.close();
        return a;
      },
      calls: {
        closed: { expect: ok((v) => assert.equal(v, false)) },
        readable: { expect: ok() },
        writable: { expect: ok() },
        send: { args: ["x"], expect: err(ClosedError) },
        sendBytes: { args: [BYTES()], expect: err(ClosedError) },
        recv: { expect: err(ClosedError) },
        recvSync: { expect: err(ClosedError) },
        recvBytes: { expect: err(ClosedError) },
        recvBytesSync: { expect: err(ClosedError) },
        recvBytesInto: { args: INTO(), expect: err(ClosedError) },
        recvBytesIntoSync: { args: INTO(), expect: err(ClosedError) },
        poll: { expect: ok((v) => assert.equal(v, true)) },
        pollSync: { args: [null], expect: ok((v) => assert.equal(v, true)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": {
          expect: ok(async (it) => assert.equal((await (it as AsyncIterator<unknown>).next()).done, true)),
        },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
    "read-only end of Pipe(false)": {
      make: () => pipe(false)[0],
      calls: {
        closed: { expect: ok((v) => assert.equal(v, false)) },
        readable: { expect: ok((v) => assert.equal(v, true)) },
        writable: { expect: ok((v) => assert.equal(v, false)) },
        send: { args: ["x"], expect: errMatching(/read-only/, Error) },
        sendBytes: { args: [BYTES()], expect: errMatching(/read-only/, Error) },
        recv: { args: [{ timeout: 0 }], expect: err(TimeoutError) },
        recvSync: { args: [{ timeout: 0 }], expect: err(TimeoutError) },
        recvBytes: { args: [{ timeout: 1 }], expect: err(TimeoutError) },
        recvBytesSync: { args: [{ timeout: 1 }], expect: err(TimeoutError) },
        recvBytesInto: { args: [...INTO(), { timeout: 1 }], expect: err(TimeoutError) },
        recvBytesIntoSync: { args: [...INTO(), { timeout: 1 }], expect: err(TimeoutError) },
        poll: { expect: ok((v) => assert.equal(v, false)) },
        pollSync: { args: [1], expect: ok((v) => assert.equal(v, false)) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
    "write-only end of Pipe(false)": {
      make: () => pipe(false)[1],
      calls: {
        closed: { expect: ok((v) => assert.equal(v, false)) },
        readable: { expect: ok((v) => assert.equal(v, false)) },
        writable: { expect: ok((v) => assert.equal(v, true)) },
        send: { args: ["x"], expect: ok() },
        sendBytes: { args: [BYTES(), 1, 2], expect: ok() },
        recv: { expect: errMatching(/write-only/, Error) },
        recvSync: { expect: errMatching(/write-only/, Error) },
        recvBytes: { expect: errMatching(/write-only/, Error) },
        recvBytesSync: { expect: errMatching(/write-only/, Error) },
        recvBytesInto: { args: INTO(), expect: errMatching(/write-only/, Error) },
        recvBytesIntoSync: { args: INTO(), expect: errMatching(/write-only/, Error) },
        poll: { expect: errMatching(/write-only/, Error) },
        pollSync: { expect: errMatching(/write-only/, Error) },
        close: { expect: ok() },
        "[Symbol.asyncIterator]": { expect: ok() },
        "[Symbol.dispose]": { expect: ok() },
      },
    },
  },
};

// ---- threads -------------------------------------------------------------------------

let finishedThread: Promise<Thread> | undefined;
/** One thread that ran and ended, shared by the checks of that state. */
function finished(): Promise<Thread> {
  return finishedThread ??= (async () => {
    const t = new Thread({ target: () => 1, name: "walked-finished" });
    t.start();
    await t.join();
    return t;
  })();
}

const threadOptionsParam: Param = {
  name: "options",
  valid: () => ({ target: () => 1, name: "walked" }),
  families: [
    F.optionsNotObject,
    inOptions(fam("not a function", NOT_FUNCTION, err(TypeError), { examples: [null, "f", 1, {}] }), "target"),
    inOptions(F.arrayType, "args"),
    inOptions(
      fam(
        "not a URL or a path",
        fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
        err(TypeError),
        {
          examples: ["  ", "", 5, null],
        },
      ),
      "module",
    ),
    inOptions(
      fam(
        "not a string",
        fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
        err(TypeError),
        {
          examples: [1, null, {}],
        },
      ),
      "name",
    ),
  ],
};

/** Every member of `subject` expected to complete, with some overridden. */
function allOk<O>(members: ClassSubject<O>["members"], overrides: State<O>["calls"]): State<O>["calls"] {
  const calls: State<O>["calls"] = {};
  for (const name of Object.keys(members)) calls[name] = { expect: ok() };
  return { ...calls, ...overrides };
}

const threadMembers: ClassSubject<Thread>["members"] = {
  name: {
    accessor: true,
    set: {
      name: "value",
      valid: () => "renamed",
      families: [
        fam(
          "any value: its string form",
          fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined)),
          (v) => ok((_, t) => assert.equal((t as Thread).name, String(v))),
        ),
      ],
    },
  },
  ident: getter,
  pid: getter,
  daemon: {
    accessor: true,
    set: {
      name: "value",
      valid: () => true,
      families: [
        fam(
          "any value: its truthiness",
          fc.anything({ maxDepth: 0 }),
          (v) => ok((_, t) => assert.equal((t as Thread).daemon, Boolean(v))),
        ),
      ],
    },
  },
  exitCode: getter,
  error: getter,
  start: method([], { runs: 1 }),
  run: method([]),
  join: asyncMethod([waitParam()], {
    waits: {
      make: () => {
        const t = new Thread({ target: () => new Promise((r) => setTimeout(r, 300)) });
        t.start();
        return t as Thread;
      },
      args: (timeout) => [timeout],
      end: () => {},
      expect: ok((_, t) => assert.equal((t as Thread).isAlive(), false)),
    },
  }),
  joinSync: method([timeoutParam()]),
  isAlive: method([]),
  is_alive: method([]),
  terminate: asyncMethod([]),
  kill: asyncMethod([]),
  toString: method([]),
  "[Symbol.asyncDispose]": asyncMethod([]),
};

const threadSubject: ClassSubject<Thread> = {
  kind: "class",
  make: () => new Thread({ target: () => 1, name: "walked" }),
  snap: (t) => ({ name: t.name, daemon: t.daemon, started: t.ident !== null, exitCode: t.exitCode }),
  works: (t) => {
    assert.equal(t.run(), 1);
    assert.equal(t.isAlive(), false);
  },
  dispose: async (t) => {
    if (t.ident !== null) await t.join();
  },
  ctor: [threadOptionsParam],
  members: threadMembers,
  extra: {
    "a refused start leaves a Connection end in args with its owner": () =>
      endSurvives(
        (item) => new Thread({ target: (_a: unknown, _b: unknown) => {}, args: [item, () => 1] }).start(),
        err(TypeError),
      ),
  },
  states: {
    unstarted: {
      make: () => new Thread({ target: () => 1, name: "walked" }),
      calls: allOk(threadMembers, {
        ident: { expect: ok((v) => assert.equal(v, null)) },
        exitCode: { expect: ok((v) => assert.equal(v, null)) },
        join: { expect: err(Error) },
        joinSync: { expect: err(Error) },
        isAlive: { expect: ok((v) => assert.equal(v, false)) },
        daemon: { set: true, expect: ok() },
      }),
    },
    finished: {
      make: finished,
      calls: allOk(threadMembers, {
        start: { expect: err(Error) },
        exitCode: { expect: ok((v) => assert.equal(v, 0)) },
        error: { expect: ok((v) => assert.equal(v, undefined)) },
        isAlive: { expect: ok((v) => assert.equal(v, false)) },
        daemon: { set: true, expect: err(Error) },
        toString: { expect: ok((v) => assert.match(String(v), /stopped/)) },
      }),
    },
    "args hold a function": {
      make: () => new Thread({ target: (f: unknown) => f, args: [{ cb: () => 1 }] }),
      calls: allOk(threadMembers, {
        start: { expect: errMatching(/args\[0\]\.cb/, TypeError) },
        join: { expect: err(Error) },
        joinSync: { expect: err(Error) },
      }),
    },
  },
};

const timerMembers: ClassSubject<Timer>["members"] = {
  ...(threadMembers as ClassSubject<Timer>["members"]),
  join: asyncMethod([waitParam()], {
    waits: {
      make: () => {
        const t = new Timer(300, () => 1);
        t.start();
        return t;
      },
      args: (timeout) => [timeout],
      end: () => {},
      expect: ok((_, t) => assert.equal((t as Timer).isAlive(), false)),
    },
  }),
  cancel: method([]),
};

const timerSubject: ClassSubject<Timer> = {
  kind: "class",
  make: () => new Timer(0, () => 1, [], { name: "walked-timer" }),
  snap: (t) => ({ name: t.name, interval: t.interval, started: t.ident !== null, cancelled: t.finished.isSet() }),
  works: async (t) => {
    t.start();
    await t.join();
    assert.equal(t.exitCode, 0);
  },
  dispose: async (t) => {
    t.cancel();
    if (t.ident !== null) await t.join();
  },
  ctor: [
    { name: "interval", valid: () => 0, families: [F.timeoutRange, F.timeoutType] },
    {
      name: "fn",
      valid: () => () => 1,
      families: [fam("not a function", NOT_FUNCTION, err(TypeError), { examples: [null, "f", 1, {}] })],
    },
    { name: "args", valid: () => [], families: [F.arrayType] },
    {
      name: "options",
      valid: () => ({ name: "walked-timer" }),
      families: [
        F.optionsNotObject,
        inOptions(
          fam("not a URL or a path", fc.oneof(fc.integer(), fc.boolean(), fc.constant(null)), err(TypeError), {
            examples: ["  ", "", 5, null],
          }),
          "module",
        ),
      ],
    },
  ],
  members: timerMembers,
  states: {
    cancelled: {
      make: () => {
        const t = new Timer(60_000, () => 1);
        t.cancel();
        return t;
      },
      calls: allOk(timerMembers, {
        ident: { expect: ok((v) => assert.equal(v, null)) },
        exitCode: { expect: ok((v) => assert.equal(v, null)) },
        join: { expect: err(Error) },
        joinSync: { expect: err(Error) },
        isAlive: { expect: ok((v) => assert.equal(v, false)) },
        daemon: { set: true, expect: ok() },
        run: { expect: ok() },
      }),
    },
  },
};

// ---- pools ---------------------------------------------------------------------------

let sharedPool: Pool | undefined;
/** One running pool for the walk; terminated by the Pool test. */
function runningPool(): Pool {
  return sharedPool ??= new Pool({ processes: 1 });
}
const statePools = new Map<string, Pool>();
function poolIn(state: "closed" | "terminated"): Pool {
  let p = statePools.get(state);
  if (!p) {
    p = new Pool({ processes: 1 });
    if (state === "closed") p.close();
    else void p.terminate();
    statePools.set(state, p);
  }
  return p;
}

const fnParam: Param = { name: "fn", valid: () => (x: number) => x, families: [F.functionType] };
const argsParam: Param = {
  name: "args",
  valid: () => [1],
  families: [
    F.arrayType,
    fam(
      "hold a value that cannot be cloned",
      UNCLONEABLE.map((v) => [1, { cb: v }]),
      errMatching(/\[1\]\.cb/, TypeError),
    ),
  ],
};
const iterableParam: Param = {
  name: "iterable",
  valid: () => [1, 2],
  families: [
    fam(
      "not iterable",
      fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
      err(TypeError),
      { examples: [undefined, null, 5, {}] },
    ),
  ],
};
const chunksizeParam: Param = {
  name: "chunksize",
  valid: () => undefined,
  families: [
    fam("not a positive integer", fc.oneof(fc.integer({ max: 0 }), NON_INTEGER, NOT_FINITE), err(RangeError), {
      examples: [0, -1, 1.5, NaN, Infinity],
    }),
    fam("not a number", NOT_NUMBER.filter((v) => v !== null), err(TypeError), { examples: ["2", true, 2n] }),
  ],
};

/** Task options: `signal` (and for the AsyncResult forms `callback` / `errorCallback`). */
function taskOptionsParam(returns: "promise" | "result"): Param {
  const aborted: Family = {
    ...F.signalAborted,
    asyncOnly: false,
    expect: (s) => {
      const reason = (s as AbortSignal).reason;
      if (returns === "promise") return { kind: "reason", reason };
      return ok(async (r) => {
        const out = await settle((r as AsyncResult).get());
        assert.ok(out.how === "rejected" && Object.is(out.error, reason), `get() ${showOutcome(out)}`);
      });
    },
  };
  const families = [
    fam("not an object", NOT_OBJECT.filter((v) => v !== null), err(TypeError), { examples: [5, "x", true] }),
    inOptions({ ...F.signalType, asyncOnly: false }, "signal"),
    inOptions(aborted, "signal"),
  ];
  if (returns === "result") {
    const notFn = fam(
      "not a function",
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.object({ maxDepth: 0 })),
      err(TypeError),
      {
        examples: ["cb", 1, {}],
      },
    );
    families.push(inOptions(notFn, "callback"), inOptions(notFn, "errorCallback"));
  }
  return { name: "options", valid: () => undefined, families };
}

const poolPositive = (field: string) =>
  inOptions(
    fam("not a positive integer", fc.oneof(fc.integer({ max: 0 }), NON_INTEGER, NOT_FINITE), err(RangeError), {
      examples: [0, -1, 1.5, NaN, Infinity],
    }),
    field,
  );
const poolPositiveType = (field: string) =>
  inOptions(
    fam("not a number", NOT_NUMBER.filter((v) => v !== null), err(TypeError), { examples: ["1", true, 1n] }),
    field,
  );

const poolMembers: ClassSubject<Pool>["members"] = {
  applyAsync: method([fnParam, argsParam, taskOptionsParam("result")]),
  apply: asyncMethod([fnParam, argsParam, taskOptionsParam("promise")]),
  map: asyncMethod([fnParam, iterableParam, chunksizeParam, taskOptionsParam("promise")]),
  mapAsync: method([fnParam, iterableParam, chunksizeParam, taskOptionsParam("result")]),
  starmap: asyncMethod([
    fnParam,
    { ...iterableParam, valid: () => [[1]] },
    chunksizeParam,
    taskOptionsParam("promise"),
  ]),
  starmapAsync: method([fnParam, { ...iterableParam, valid: () => [[1]] }, chunksizeParam, taskOptionsParam("result")]),
  imap: method([fnParam, iterableParam, chunksizeParam]),
  imapUnordered: method([fnParam, iterableParam, chunksizeParam]),
  // These end the pool: walked on pools of their own.
  close: method([], { runs: 1, make: () => new Pool({ processes: 1 }) }),
  terminate: asyncMethod([], { runs: 1, make: () => new Pool({ processes: 1 }) }),
  join: asyncMethod([], { runs: 1, make: () => new Pool({ processes: 1 }) }),
  "[Symbol.asyncDispose]": asyncMethod([], { runs: 1, make: () => new Pool({ processes: 1 }) }),
};

/** The iterator of `imap()` refuses a bad `next(timeout)` (Python's `IMapIterator.next(timeout)`). */
function imapNext(family: Family): Promise<string | undefined> {
  return forAll(family.arb, family.examples, RUNS, async (bad) => {
    const it = runningPool().imap((x: number) => x, [1]);
    try {
      const next = it.next as (timeout?: unknown) => Promise<IteratorResult<unknown>>;
      return await verdict(await call(() => next.call(it, bad), true), family.expect(bad), true, it);
    } finally {
      await cleanup(it);
    }
  });
}

function stoppedPoolCalls(): State<Pool>["calls"] {
  const refused = err(ClosedError);
  return {
    applyAsync: { args: [(x: number) => x, [1]], expect: refused },
    apply: { args: [(x: number) => x, [1]], expect: refused },
    map: { args: [(x: number) => x, [1]], expect: refused },
    mapAsync: { args: [(x: number) => x, [1]], expect: refused },
    starmap: { args: [(x: number) => x, [[1]]], expect: refused },
    starmapAsync: { args: [(x: number) => x, [[1]]], expect: refused },
    imap: { args: [(x: number) => x, [1]], expect: refused },
    imapUnordered: { args: [(x: number) => x, [1]], expect: refused },
    close: { expect: ok() },
    terminate: { expect: ok() },
    join: { expect: ok() },
    "[Symbol.asyncDispose]": { expect: ok() },
  };
}

const poolSubject: ClassSubject<Pool> = {
  kind: "class",
  make: runningPool,
  snap: () => ({}),
  works: async (p) => assert.equal(await p.apply((x: number) => x + 1, [1]), 2),
  dispose: (p) => {
    if (p !== sharedPool && ![...statePools.values()].includes(p)) return p.terminate();
  },
  ctor: [{
    name: "options",
    valid: () => ({ processes: 1 }),
    families: [
      F.optionsNotObject,
      poolPositive("processes"),
      poolPositiveType("processes"),
      poolPositive("maxTasksPerChild"),
      poolPositiveType("maxTasksPerChild"),
      inOptions(
        fam(
          "not a function",
          fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.object({ maxDepth: 0 })),
          err(TypeError),
        ),
        "initializer",
        () => ({ processes: 1 }),
      ),
      inOptions(F.arrayType, "initargs", () => ({ processes: 1 })),
      inOptions(argsParam.families[1], "initargs", () => ({ processes: 1 })),
      inOptions(
        fam("not a URL or a path", fc.oneof(fc.integer(), fc.boolean(), fc.object({ maxDepth: 0 })), err(TypeError), {
          examples: ["", 5],
        }),
        "module",
        () => ({ processes: 1 }),
      ),
    ],
  }],
  members: poolMembers,
  extra: {
    "a refused task leaves a Connection end in args with its owner": async () => {
      const pool = runningPool();
      return await endSurvives((item) => pool.apply((_a: unknown, _b: unknown) => 0, [item, SYMBOL]), err(TypeError)) ??
        await endSurvives((item) => poolIn("closed").apply((_a: unknown) => 0, [item]), err(ClosedError));
    },
    "imap() iterator next(timeout): negative or not finite": () => imapNext(F.timeoutRange),
    "imap() iterator next(timeout): not a number": () => imapNext(F.timeoutType),
    "imap() iterator next(timeout): a huge timeout still waits": async () => {
      const it = runningPool().imap((x: number) => new Promise((r) => setTimeout(() => r(x), 200)), [7]);
      try {
        const p = it.next(2 ** 31);
        const early = await settle(p, STILL_WAITING_MS);
        if (early.how !== "hung") return `${showOutcome(early)} at once; it should still wait`;
        return await verdict(await settle(p), ok((v) => assert.deepEqual(v, { value: 7, done: false })), true, it);
      } finally {
        await cleanup(it);
      }
    },
  },
  states: {
    closed: { make: () => poolIn("closed"), calls: stoppedPoolCalls() },
    terminated: { make: () => poolIn("terminated"), calls: stoppedPoolCalls() },
  },
};

// deno-lint-ignore no-explicit-any
function slowResult(): AsyncResult<any> {
  return runningPool().applyAsync(() => new Promise<number>((r) => setTimeout(() => r(7), 200)));
}

// deno-lint-ignore no-explicit-any
const asyncResultSubject: ClassSubject<AsyncResult<any>> = {
  kind: "class",
  // Made by hand it never settles: a get or wait accepted by mistake hangs (and is reported).
  make: () => new AsyncResult(),
  snap: (r) => ({ ready: r.ready() }),
  works: async (r) => {
    assert.equal(r.ready(), false);
    assert.throws(() => r.successful(), Error);
    await assert.rejects(r.get(0), TimeoutError);
  },
  ctor: [],
  members: {
    ready: method([]),
    successful: method([]),
    get: asyncMethod([timeoutParam(0)], {
      waits: { make: slowResult, args: (t) => [t], end: () => {}, expect: ok((v) => assert.equal(v, 7)) },
    }),
    wait: asyncMethod([timeoutParam(0)], {
      waits: {
        make: slowResult,
        args: (t) => [t],
        end: () => {},
        expect: ok((_, r) => assert.equal((r as AsyncResult).ready(), true)),
      },
    }),
  },
  states: {
    "not settled": {
      make: () => new AsyncResult(),
      calls: {
        ready: { expect: ok((v) => assert.equal(v, false)) },
        successful: { expect: err(Error) },
        get: { args: [0], expect: err(TimeoutError) },
        wait: { args: [1], expect: ok() },
      },
    },
    "settled with a value": {
      make: async () => {
        // deno-lint-ignore no-explicit-any
        const r: AsyncResult<any> = runningPool().applyAsync(() => 5);
        await r.wait();
        return r;
      },
      calls: {
        ready: { expect: ok((v) => assert.equal(v, true)) },
        successful: { expect: ok((v) => assert.equal(v, true)) },
        get: { expect: ok((v) => assert.equal(v, 5)) },
        wait: { expect: ok() },
      },
    },
    "settled with an error": {
      make: async () => {
        // deno-lint-ignore no-explicit-any
        const r: AsyncResult<any> = runningPool().applyAsync((): number => {
          throw new TypeError("no");
        });
        await r.wait();
        return r;
      },
      calls: {
        ready: { expect: ok((v) => assert.equal(v, true)) },
        successful: { expect: ok((v) => assert.equal(v, false)) },
        get: { expect: err(RemoteError) },
        wait: { expect: ok() },
      },
    },
  },
};

// ---- futures ---------------------------------------------------------------------------

let sharedExecutor: ProcessPoolExecutor | undefined;
function runningExecutor(): ProcessPoolExecutor {
  return sharedExecutor ??= new ProcessPoolExecutor({ maxWorkers: 1 });
}
let stoppedExecutor: ProcessPoolExecutor | undefined;
function shutExecutor(): ProcessPoolExecutor {
  if (!stoppedExecutor) {
    stoppedExecutor = new ProcessPoolExecutor({ maxWorkers: 1 });
    void stoppedExecutor.shutdown();
  }
  return stoppedExecutor;
}

/** A future that finishes with 7 after 200 ms. */
function slowFuture(): Future<unknown> {
  const f = new Future<unknown>();
  setTimeout(() => f.setResult(7), 200);
  return f;
}

function futureWaitParam(): Param {
  return optionsParam();
}

const futureSubject: ClassSubject<Future<unknown>> = {
  kind: "class",
  // Pending and never settled: a wait accepted by mistake hangs (and is reported).
  make: () => new Future(),
  snap: (f) => ({ done: f.done(), cancelled: f.cancelled(), running: f.running(), text: String(f) }),
  works: async (f) => {
    assert.equal(f.done(), false);
    await assert.rejects(f.result({ timeout: 0 }), TimeoutError);
    f.setResult(3);
    assert.equal(await f.result(), 3);
  },
  ctor: [],
  members: {
    cancel: method([]),
    cancelled: method([]),
    running: method([]),
    done: method([]),
    result: asyncMethod([futureWaitParam()], {
      waits: { make: slowFuture, args: (timeout, signal) => [{ timeout, signal }] },
    }),
    exception: asyncMethod([futureWaitParam()], {
      waits: { make: slowFuture, args: (timeout, signal) => [{ timeout, signal }] },
    }),
    addDoneCallback: method([{ name: "fn", valid: () => () => {}, families: [F.functionType] }]),
    setRunningOrNotifyCancel: method([]),
    setResult: method([{
      name: "result",
      valid: () => 1,
      families: [
        fam("any value", fc.anything({ maxDepth: 1 }), ok((_, f) => assert.equal((f as Future).done(), true))),
      ],
    }]),
    setException: method([{
      name: "error",
      valid: () => new Error("e"),
      families: [
        fam("any value", fc.anything({ maxDepth: 1 }), ok((_, f) => assert.equal((f as Future).done(), true))),
      ],
    }]),
    toString: method([]),
  },
  states: {
    cancelled: {
      make: () => {
        const f = new Future();
        f.cancel();
        return f;
      },
      calls: {
        cancel: { expect: ok((v) => assert.equal(v, true)) },
        cancelled: { expect: ok((v) => assert.equal(v, true)) },
        running: { expect: ok((v) => assert.equal(v, false)) },
        done: { expect: ok((v) => assert.equal(v, true)) },
        result: { expect: err(CancelledError) },
        exception: { expect: err(CancelledError) },
        addDoneCallback: { args: [() => {}], expect: ok() },
        setRunningOrNotifyCancel: { expect: ok((v) => assert.equal(v, false)) },
        setResult: { args: [1], expect: err(Error) },
        setException: { args: [new Error("e")], expect: err(Error) },
        toString: { expect: ok((v) => assert.equal(v, "<Future state=cancelled>")) },
      },
    },
    "finished with an error": {
      make: () => {
        const f = new Future();
        f.setException(new RangeError("r"));
        return f;
      },
      calls: {
        cancel: { expect: ok((v) => assert.equal(v, false)) },
        cancelled: { expect: ok((v) => assert.equal(v, false)) },
        running: { expect: ok((v) => assert.equal(v, false)) },
        done: { expect: ok((v) => assert.equal(v, true)) },
        result: { expect: err(RangeError) },
        exception: { expect: ok((v) => assert.ok(v instanceof RangeError)) },
        addDoneCallback: { args: [() => {}], expect: ok() },
        setRunningOrNotifyCancel: { expect: err(Error) },
        setResult: { args: [1], expect: err(Error) },
        setException: { args: [new Error("e")], expect: err(Error) },
        toString: { expect: ok() },
      },
    },
  },
};

const executorSubject: ClassSubject<ProcessPoolExecutor> = {
  kind: "class",
  make: runningExecutor,
  snap: () => ({}),
  works: async (e) => assert.equal(await e.submit((x: number) => x + 1, 1).result(), 2),
  dispose: (e) => {
    if (e !== sharedExecutor && e !== stoppedExecutor) return e.shutdown({ cancelFutures: true });
  },
  ctor: [{
    name: "options",
    valid: () => ({ maxWorkers: 1 }),
    families: [
      F.optionsNotObject,
      inOptions(
        fam(
          "not a positive integer",
          fc.oneof(fc.integer({ max: 0 }), NON_INTEGER, NOT_FINITE, NOT_NUMBER),
          err(RangeError),
          {
            examples: [0, -1, 1.5, NaN, "2", null],
          },
        ),
        "maxWorkers",
      ),
      inOptions(
        fam("not a URL or a path", fc.oneof(fc.integer(), fc.boolean(), fc.object({ maxDepth: 0 })), err(TypeError), {
          examples: ["", 5],
        }),
        "module",
        () => ({ maxWorkers: 1 }),
      ),
    ],
  }],
  members: {
    submit: method([fnParam, {
      name: "arg",
      valid: () => 1,
      families: [fam("a value that cannot be cloned", UNCLONEABLE, errMatching(/args\[0\]/, TypeError))],
    }]),
    map: method([fnParam, {
      ...iterableParam,
      families: [
        fam(
          "not iterable",
          fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
          err(TypeError),
          { examples: [undefined, null, 5, {}] },
        ),
        fam("hold a value that cannot be cloned", UNCLONEABLE.map((v) => [1, v]), errMatching(/args\[1\]/, TypeError)),
      ],
    }]),
    shutdown: asyncMethod([{
      name: "options",
      valid: () => undefined,
      families: [
        F.optionsNotObject,
        inOptions(fam("not a boolean", fc.oneof(fc.integer(), fc.string(), fc.constant(null)), err(TypeError)), "wait"),
        inOptions(
          fam("not a boolean", fc.oneof(fc.integer(), fc.string(), fc.constant(null)), err(TypeError)),
          "cancelFutures",
        ),
      ],
    }], {
      runs: 1,
      make: () => new ProcessPoolExecutor({ maxWorkers: 1 }),
    }),
    "[Symbol.asyncDispose]": asyncMethod([], { runs: 1, make: () => new ProcessPoolExecutor({ maxWorkers: 1 }) }),
  },
  states: {
    "shut down": {
      make: shutExecutor,
      calls: {
        submit: { args: [(x: number) => x, 1], expect: err(Error) },
        map: { args: [(x: number) => x, [1]], expect: err(Error) },
        shutdown: { expect: ok() },
        "[Symbol.asyncDispose]": { expect: ok() },
      },
    },
  },
};

const futuresListParam: Param = {
  name: "fs",
  valid: () => [],
  families: [
    fam(
      "not an iterable of futures",
      fc.oneof(NOT_NUMBER, fc.integer(), fc.array(fc.integer(), { minLength: 1 })),
      err(TypeError),
      {
        examples: [undefined, null, 5, [1], [new AsyncResult()]],
      },
    ),
  ],
};

const waitSubject: FunctionSubject = {
  kind: "function",
  async: true,
  params: [futuresListParam, {
    ...optionsParam(),
    families: [
      ...optionsParam().families,
      inOptions(
        fam("not one of the three constants", fc.oneof(fc.string(), fc.integer(), fc.constant(null)), err(TypeError), {
          examples: ["first", 1, null],
        }),
        "returnWhen",
      ),
    ],
  }],
};

const asCompletedSubject: FunctionSubject = {
  kind: "function",
  params: [futuresListParam, {
    name: "options",
    valid: () => undefined,
    families: [
      F.optionsNotObject,
      inOptions(F.timeoutRange, "timeout"),
      inOptions(F.timeoutType, "timeout"),
      inOptions({ ...F.signalType, asyncOnly: false }, "signal"),
    ],
  }],
};

// ---- errors ----------------------------------------------------------------------------

function errorSubject(cls: ErrorClass, ctor: Param[] = [messageParam]): ClassSubject<Error> {
  return {
    kind: "class",
    make: () => new cls(),
    snap: (e) => ({ name: e.name, message: e.message }),
    works: (e) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, cls.name);
    },
    ctor,
    members: {},
  };
}

const remoteInit: Param = {
  name: "init",
  valid: () => ({ name: "TypeError", message: "m" }),
  families: [
    fam(
      "a remote error's name, message and stack",
      fc.record({ name: fc.string(), message: fc.string(), stack: fc.option(fc.string(), { nil: undefined }) }),
      (init) =>
        ok((e) => {
          const { name, message, stack } = init as { name: string; message: string; stack?: string };
          const re = e as RemoteError;
          assert.equal(re.name, name || "Error");
          assert.equal(re.message, message);
          assert.equal(typeof re.remoteStack, "string");
          if (stack !== undefined) assert.equal(re.remoteStack, stack);
        }),
    ),
  ],
};

const remoteErrorSubject: ClassSubject<Error> = {
  ...errorSubject(RemoteError, [remoteInit]),
  make: () => new RemoteError({ name: "TypeError", message: "m" }),
  works: (e) => assert.equal(e.name, "TypeError"),
  statics: {
    describe: method([{
      name: "error",
      valid: () => new Error("x"),
      families: [
        fam(
          "anything a thread may throw",
          fc.oneof(fc.anything({ maxDepth: 1, withNullPrototype: true }), fc.string().map((m) => new RangeError(m))),
          ok((init) => {
            const { name, message, stack } = init as { name: unknown; message: unknown; stack: unknown };
            assert.equal(typeof name, "string");
            assert.equal(typeof message, "string");
            assert.equal(typeof stack, "string");
          }),
          { examples: [Object.create(null), { toString: 1 }, SYMBOL, undefined, new Error("m")] },
        ),
      ],
    }]),
  },
};

/** A fresh class each call, with a name of its own (registering one twice under one name is an error). */
let walkedClasses = 0;
function freshClass(): new () => object {
  const cls = class {};
  Object.defineProperty(cls, "name", { value: `Walked${++walkedClasses}` });
  return cls;
}

const registerClassSubject: FunctionSubject = {
  kind: "function",
  params: [
    {
      name: "cls",
      valid: freshClass,
      families: [
        fam(
          "not a class, or a built-in one",
          fc.oneof(NOT_NUMBER, fc.integer(), fc.constantFrom(() => 1, Map, Error, Object, Uint8Array, Promise)),
          err(TypeError),
          { examples: [undefined, null, 1, () => 1, Map, RangeError, Float64Array] },
        ),
      ],
    },
    {
      name: "options",
      valid: () => ({ module: import.meta.url }),
      families: [
        fam("not an object", fc.oneof(NOT_OBJECT, fc.constant(undefined)), err(TypeError), {
          examples: [undefined, 5, "x", null, SYMBOL],
        }),
        inOptions(
          fam(
            "not a URL or a path",
            fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 })),
            err(TypeError),
            { examples: ["  ", "", 5, null, undefined] },
          ),
          "module",
        ),
        inOptions(
          fam(
            "not a non-empty string",
            fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 0 }), fc.constant("")),
            err(TypeError),
            { examples: ["", 1, null, {}] },
          ),
          "name",
          () => ({ module: import.meta.url }),
        ),
      ],
    },
  ],
};

// ---- the table of exports ---------------------------------------------------------

// ---- manager ---------------------------------------------------------------------

let sharedManager: Manager | undefined;
/** One manager serves every walked proxy (a manager starts a thread). */
function walkManager(): Manager {
  return sharedManager ??= new Manager({ name: "WalkManager" });
}

/** Keys a managed dictionary refuses. */
const keyParam: Param = {
  name: "key",
  valid: () => "k",
  families: [
    fam(
      "not a primitive key",
      fc.oneof(fc.object({ maxDepth: 0 }), fc.array(fc.integer()), fc.constant(SYMBOL), fc.func(fc.integer())),
      err(TypeError),
      { examples: [{}, [], SYMBOL, new Map()] },
    ),
  ],
};

/** A value stored under "k" (or appended): comes back equal. */
function storedItem(read: (obj: unknown) => unknown): Param {
  return itemParam((item, obj) => assert.deepStrictEqual(read(obj), item));
}

/** An index: integers only. */
function listIndexParam(name = "index", valid: unknown = 0): Param {
  return {
    name,
    valid: () => valid,
    families: [
      fam("not an integer", fc.oneof(NON_INTEGER, NOT_FINITE, NOT_NUMBER), err(TypeError), {
        examples: [1.5, NaN, "0", null, 0n],
      }),
    ],
  };
}

const entriesParam: Param = {
  name: "entries",
  valid: () => ({ b: 2 }),
  families: [
    fam(
      "not an object, Map or pairs",
      fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean()),
      err(TypeError),
      {
        examples: [1, "ab", null, true, undefined],
      },
    ),
    fam("pairs that are not pairs", fc.constant([[1, 2, 3]]), err(TypeError), { examples: [[[1]], [1]] }),
  ],
};

/** `name` and `nameSync` with the same spec. */
function twins(
  name: string,
  params: Param[],
  extra: { skip?: string } = {},
  // deno-lint-ignore no-explicit-any
): Record<string, MethodSpec<any>> {
  return { [name]: asyncMethod(params, extra), [`${name}Sync`]: method(params, extra) };
}

const dictSubject: ClassSubject<DictProxy<string, unknown>> = {
  kind: "class",
  make: () => walkManager().dict<string, unknown>({ a: 1 }),
  snap: (d) => d.itemsSync(),
  works: async (d) => {
    await d.set("w", 1);
    assert.equal(d.getSync("w"), 1);
    assert.equal(await d.has("a"), true);
  },
  ctor: { always: err(TypeError) },
  members: {
    ...twins("get", [keyParam]),
    ...twins("set", [keyParam, storedItem((d) => (d as DictProxy<string, unknown>).getSync("k"))]),
    ...twins("has", [keyParam]),
    ...twins("delete", [keyParam], { skip: "a missing key gives KeyError; key checks as get()" }),
    ...twins("size", []),
    ...twins("keys", []),
    ...twins("values", []),
    ...twins("items", []),
    ...twins("update", [entriesParam]),
    ...twins("setdefault", [keyParam]),
    ...twins("pop", [keyParam], { skip: "a missing key gives KeyError; key checks as get()" }),
    ...twins("popitem", []),
    ...twins("clear", []),
    ...twins("copy", []),
    "[Symbol.asyncIterator]": method([], { skip: "an async generator over items(): nothing to check" }),
    toString: method([]),
  },
};

const listSubject: ClassSubject<ListProxy<unknown>> = {
  kind: "class",
  make: () => walkManager().list<unknown>([1, 2]),
  snap: (l) => l.toArraySync(),
  works: async (l) => {
    await l.append(3);
    assert.equal(l.getSync(-1), 3);
  },
  ctor: { always: err(TypeError) },
  members: {
    ...twins("get", [listIndexParam()]),
    ...twins("set", [listIndexParam(), storedItem((l) => (l as ListProxy<unknown>).getSync(0))]),
    ...twins("append", [storedItem((l) => (l as ListProxy<unknown>).getSync(-1))]),
    ...twins("extend", [{
      name: "values",
      valid: () => [3],
      families: [fam("not iterable", fc.oneof(fc.integer(), fc.constant(null), fc.boolean()), err(TypeError), {
        examples: [1, null, true, undefined],
      })],
    }]),
    ...twins("insert", [listIndexParam(), storedItem((l) => (l as ListProxy<unknown>).getSync(0))]),
    ...twins("pop", [{ ...listIndexParam(), valid: () => undefined }]),
    ...twins("remove", [], { skip: "a missing value gives ValueError; values as append()" }),
    ...twins("index", [], { skip: "a missing value gives ValueError; start/end as slice()" }),
    ...twins("count", [], { skip: "any value; values as append()" }),
    ...twins("length", []),
    ...twins("slice", [listIndexParam("start", undefined), listIndexParam("end", undefined)]),
    ...twins("reverse", []),
    ...twins("sort", [{
      name: "options",
      valid: () => undefined,
      families: [fam("a key function", fc.func(fc.integer()).map((key) => ({ key })), err(TypeError))],
    }]),
    ...twins("toArray", []),
    "[Symbol.asyncIterator]": method([], { skip: "an async generator over toArray(): nothing to check" }),
    toString: method([]),
  },
};

const nameParam: Param = {
  name: "name",
  valid: () => "x",
  families: [fam("not a string", NOT_NUMBER.filter((v) => typeof v !== "string"), err(TypeError), {
    examples: [1, null, SYMBOL, {}],
  })],
};

const namespaceSubject: ClassSubject<NamespaceProxy> = {
  kind: "class",
  make: () => walkManager().Namespace({ a: 1 }),
  snap: (ns) => ns.toObjectSync(),
  works: async (ns) => {
    await ns.set("w", 1);
    assert.equal(ns.getSync("w"), 1);
  },
  ctor: { always: err(TypeError) },
  members: {
    ...twins("get", [nameParam]),
    ...twins("set", [nameParam, storedItem((ns) => (ns as NamespaceProxy).getSync("x"))]),
    ...twins("has", [nameParam]),
    ...twins("delete", [nameParam]),
    ...twins("toObject", []),
  },
};

const managerSubject: ClassSubject<Manager> = {
  kind: "class",
  make: walkManager,
  snap: (m) => ({ name: m.name }),
  works: async (m) => {
    const d = m.dict({ a: 1 });
    assert.equal(await d.get("a"), 1);
  },
  ctor: [{
    name: "options",
    valid: () => undefined,
    families: [
      F.optionsNotObject,
      fam(
        "a name that is not a string",
        fc.oneof(fc.integer(), fc.boolean()).map((name) => ({ name })),
        err(TypeError),
      ),
    ],
  }],
  statics: {
    register: method([
      {
        name: "typeid",
        valid: () => "WalkType",
        families: [fam("not a non-empty string", fc.oneof(fc.integer(), fc.constant("")), err(TypeError))],
      },
      {
        name: "options",
        valid: () => ({ module: "file:///walk.ts", export: "X" }),
        families: [
          F.optionsNotObject,
          fam("no module", fc.constant({ export: "X" }), err(TypeError)),
          fam(
            "an export that is not a string",
            fc.integer().map((e) => ({ module: "file:///walk.ts", export: e })),
            err(TypeError),
          ),
        ],
      },
    ]),
  },
  members: {
    name: getter,
    dict: method([{
      name: "init",
      valid: () => undefined,
      families: [
        fam("an object with a value that cannot cross", fc.func(fc.integer()).map((f) => ({ f })), err(TypeError)),
        fam("not an object", fc.oneof(fc.integer(), fc.boolean()), err(TypeError)),
      ],
    }]),
    list: method([{
      name: "init",
      valid: () => undefined,
      families: [fam("not iterable", fc.oneof(fc.integer(), fc.boolean(), fc.constant(null)), err(TypeError))],
    }]),
    Namespace: method([{
      name: "init",
      valid: () => undefined,
      families: [fam("not an object", fc.oneof(fc.integer(), fc.boolean(), fc.constant(null)), err(TypeError))],
    }]),
    create: method([{
      name: "typeid",
      valid: () => "WalkType",
      families: [fam("not registered", fc.string().map((s) => `unregistered-${s}`), err(Error))],
    }], { skip: "a registered type's object is made by the server; tests/manager_test.ts covers it" }),
    Queue: method([], { skip: "the plain Queue's constructor (walked as Queue)" }),
    JoinableQueue: method([], { skip: "the plain JoinableQueue's constructor" }),
    Lock: method([], { skip: "the plain Lock's constructor" }),
    RLock: method([], { skip: "the plain RLock's constructor" }),
    Semaphore: method([], { skip: "the plain Semaphore's constructor" }),
    BoundedSemaphore: method([], { skip: "the plain BoundedSemaphore's constructor" }),
    Event: method([], { skip: "the plain Event's constructor" }),
    Condition: method([], { skip: "the plain Condition's constructor" }),
    Barrier: method([], { skip: "the plain Barrier's constructor" }),
    Value: method([], { skip: "the plain SharedValue's constructor" }),
    Array: method([], { skip: "the plain SharedArray's constructor" }),
    numberOfObjects: method([]),
    shutdown: asyncMethod([], { skip: "ends the walk's manager; tests/manager_test.ts covers it" }),
    "[Symbol.asyncDispose]": asyncMethod([], { skip: "shutdown()" }),
  },
};

const SUBJECTS: Record<string, Subject> = {
  EmptyError: errorSubject(EmptyError),
  FullError: errorSubject(FullError),
  ClosedError: errorSubject(ClosedError, [messageParam, {
    name: "options",
    valid: () => undefined,
    families: [
      fam(
        "carries any value",
        fc.record({ value: fc.anything({ maxDepth: 1 }) }),
        (o) => ok((e) => assert.equal((e as ClosedError).value, (o as { value: unknown }).value)),
      ),
    ],
  }]),
  TimeoutError: errorSubject(TimeoutError),
  BrokenBarrierError: errorSubject(BrokenBarrierError),
  RemoteError: remoteErrorSubject,
  Thread: threadSubject,
  Timer: timerSubject,
  Process: { kind: "alias", of: "Thread" },
  currentThread: { kind: "function", params: [] },
  currentProcess: { kind: "function", params: [] },
  mainThread: { kind: "function", params: [] },
  getIdent: { kind: "function", params: [] },
  getNativeId: { kind: "function", params: [] },
  enumerate: { kind: "function", params: [] },
  activeCount: { kind: "function", params: [] },
  activeChildren: { kind: "function", params: [] },
  cpuCount: { kind: "function", params: [] },
  registerClass: registerClassSubject,
  isMainThread: { kind: "value", check: (v) => assert.equal(v, true) },
  // Its bad input (lists, objects, timeouts) is tested in tests/pipe_test.ts.
  connection: {
    kind: "value",
    check: (v) => assert.deepEqual(Object.keys(v as object).sort(), ["wait", "waitSync"]),
  },
  Queue: queueSubject(Queue),
  JoinableQueue: queueSubject(JoinableQueue),
  SimpleQueue: simpleQueueSubject,
  Lock: lockSubject(Lock),
  RLock: lockSubject(RLock),
  Semaphore: semaphoreSubject(Semaphore),
  BoundedSemaphore: semaphoreSubject(BoundedSemaphore),
  Event: eventSubject,
  Condition: conditionSubject,
  Barrier: barrierSubject,
  SharedValue: sharedValueSubject,
  SharedArray: sharedArraySubject,
  Connection: connectionSubject,
  Pipe: {
    kind: "function",
    params: [{
      name: "duplex",
      valid: () => true,
      families: [
        fam("any value: its truthiness picks duplex", fc.anything({ maxDepth: 0 }), (duplex) =>
          ok((ends) => {
            const [a, b] = ends as [Connection, Connection];
            try {
              assert.equal(a.readable, true);
              assert.equal(b.writable, true);
              // `undefined` is the default: duplex.
              assert.equal(a.writable, duplex === undefined || Boolean(duplex));
              assert.equal(b.readable, duplex === undefined || Boolean(duplex));
            } finally {
              a.close();
              b.close();
            }
          })),
      ],
    }],
  },
  Pool: poolSubject,
  AsyncResult: asyncResultSubject,
  CancelledError: errorSubject(CancelledError),
  Future: futureSubject,
  ProcessPoolExecutor: executorSubject,
  ThreadPoolExecutor: { kind: "alias", of: "ProcessPoolExecutor" },
  wait: waitSubject,
  asCompleted: asCompletedSubject,
  FIRST_COMPLETED: { kind: "value", check: (v) => assert.equal(v, "FIRST_COMPLETED") },
  FIRST_EXCEPTION: { kind: "value", check: (v) => assert.equal(v, "FIRST_EXCEPTION") },
  ALL_COMPLETED: { kind: "value", check: (v) => assert.equal(v, "ALL_COMPLETED") },
  KeyError: errorSubject(KeyError),
  IndexError: errorSubject(IndexError),
  BufferTooShort: errorSubject(BufferTooShort, [
    { name: "data", valid: () => new Uint8Array(1), families: [] },
    messageParam,
  ]),
  Manager: managerSubject,
  DictProxy: dictSubject,
  ListProxy: listSubject,
  NamespaceProxy: namespaceSubject,
};

// ---- the walk ------------------------------------------------------------------------

interface Member {
  key: string | symbol;
  name: string;
  desc: PropertyDescriptor;
}

const WELL_KNOWN = ["iterator", "asyncIterator", "dispose", "asyncDispose"] as const;

/** `name`, or `[Symbol.dispose]` for a well-known symbol (Node 20 describes its own as `nodejs.dispose`). */
function memberName(key: string | symbol): string {
  if (typeof key === "string") return key;
  const known = WELL_KNOWN.find((w) => (Symbol as unknown as Record<string, symbol>)[w] === key);
  return known ? `[Symbol.${known}]` : `[${key.description}]`;
}

/** The members of a class: own properties of its prototype chain up to a built-in prototype. */
function membersOf(cls: { prototype: object }): Member[] {
  const out: Member[] = [];
  const seen = new Set<string | symbol>();
  for (let p = cls.prototype; p && p !== Object.prototype && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    for (const key of Reflect.ownKeys(p)) {
      if (key === "constructor" || seen.has(key)) continue;
      seen.add(key);
      out.push({ key, name: memberName(key), desc: Object.getOwnPropertyDescriptor(p, key)! });
    }
  }
  return out;
}

function staticsOf(cls: object): Member[] {
  return Reflect.ownKeys(cls)
    .filter((k) => k !== "length" && k !== "name" && k !== "prototype")
    .map((key) => ({ key, name: memberName(key), desc: Object.getOwnPropertyDescriptor(cls, key)! }))
    .filter((m) => typeof m.desc.value === "function");
}

/** The results of one subject's checks: check id → what went wrong (`undefined`: as documented). */
type Results = Map<string, string | undefined>;

/** Every check id run, for the final look at KNOWN_FAILURES. */
const ran = new Set<string>();

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}
const known = KNOWN_FAILURES.map((k) => ({ ...k, re: globToRegExp(k.check) }));

/** Fails unless every check passed, or failed and is listed in KNOWN_FAILURES. */
function report(subject: string, results: Results): void {
  const problems: string[] = [];
  for (const [id, problem] of results) {
    ran.add(id);
    const listed = known.find((k) => k.re.test(id));
    if (problem !== undefined && !listed) problems.push(`${id}\n    ${problem}`);
    if (problem === undefined && listed) {
      problems.push(`${id}\n    passes now: remove it from KNOWN_FAILURES (entry "${listed.check}")`);
    }
  }
  assert.ok(problems.length === 0, `${subject}: ${problems.length} check(s) failed:\n  ${problems.join("\n  ")}`);
}

/** Ends whatever an accepted call returned that holds something (iterators, scopes, pools). */
async function cleanup(value: unknown): Promise<void> {
  if (value instanceof Pool) return void await value.terminate();
  if (typeof value !== "object" || value === null) return;
  try {
    const v = value as Partial<AsyncIterator<unknown> & Disposable>;
    if (typeof v.return === "function") await settle(Promise.resolve(v.return()), 200);
    if (typeof v[Symbol.dispose] === "function") v[Symbol.dispose]!();
  } catch {
    // what it holds is not ours to judge here
  }
}

async function make<O>(f: () => O | Promise<O>): Promise<O> {
  return await f();
}

/**
 * Runs one fast-check property over `arb`; returns the first problem found
 * (fixed examples first, then random values; no shrinking, since a failing
 * call may hang for HANG_MS each time).
 */
async function forAll(
  arb: fc.Arbitrary<unknown>,
  examples: unknown[] | undefined,
  runs: number,
  check: (v: unknown) => Promise<string | undefined>,
): Promise<string | undefined> {
  let first: string | undefined;
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (v) => {
        const problem = await check(v);
        if (problem !== undefined) {
          first ??= `with ${show(v)}: ${problem}`;
          throw new Error(problem);
        }
      }),
      { seed: SEED, numRuns: runs, examples: examples?.map((e) => [e]), endOnFailure: true },
    );
  } catch (error) {
    return first ?? (error instanceof Error ? error.message.split("\n")[0] : show(error));
  }
  return undefined;
}

/** Calls `obj[key](...args)` (or reads/sets an accessor) and judges the outcome. */
async function probe<O>(
  subject: ClassSubject<O>,
  obj: O,
  isAsync: boolean,
  run: (obj: O) => unknown,
  expect: Expect,
): Promise<string | undefined> {
  const before = subject.snap(obj);
  const out = await call(() => run(obj), isAsync);
  let problem = await verdict(out, expect, isAsync, obj);
  if ((out.how === "returned" || out.how === "resolved")) await cleanup(out.value);
  if (problem === undefined && expect.kind !== "ok") {
    // Refused: the object must be as it was, and still work.
    try {
      assert.deepStrictEqual(subject.snap(obj), before);
    } catch (error) {
      problem = `changed the object: ${(error as Error).message.split("\n").slice(1).join(" ").replace(/\s+/g, " ")}`;
    }
    if (problem === undefined) {
      try {
        await subject.works(obj);
      } catch (error) {
        problem = `the object no longer works: ${show(error)}`;
      }
    }
  }
  return problem;
}

async function walkParams<O>(
  id: string,
  params: Param[],
  isAsync: boolean,
  runs: number,
  results: Results,
  once: (args: unknown[], expect: Expect) => Promise<string | undefined>,
): Promise<void> {
  for (const [i, param] of params.entries()) {
    for (const family of param.families) {
      if (family.asyncOnly && !isAsync) continue;
      results.set(
        `${id}(${param.name}): ${family.label}`,
        await forAll(family.arb, family.examples, runs, (bad) => {
          const args = params.map((p) => p.valid());
          args[i] = bad;
          // Trailing `undefined`s are left out, as a caller would.
          while (args.length > 0 && args[args.length - 1] === undefined && args.length - 1 !== i) args.pop();
          return once(args, family.expect(bad));
        }),
      );
    }
  }
}

/** Calls with junk extra arguments give what a call without them gives. */
async function extraArgsIgnored(
  runs: number,
  once: (args: unknown[]) => Promise<{ out: Outcome; after: unknown }>,
): Promise<string | undefined> {
  return await forAll(EXTRA_ARGS, undefined, runs, async (junk) => {
    const base = await once([]);
    const got = await once(junk as unknown[]);
    if (got.out.how === "hung") return showOutcome(got.out);
    if (shapeOf(base.out) !== shapeOf(got.out)) {
      return `${showOutcome(got.out)}; without extra arguments it ${showOutcome(base.out)}`;
    }
    try {
      assert.deepStrictEqual(got.after, base.after);
    } catch {
      return `left the object as ${show(got.after)}; without extra arguments ${show(base.after)}`;
    }
    return undefined;
  });
}

/** A huge timeout (≥ 2^31 ms) must not end the wait early; the wait then ends as documented. */
async function hugeTimeouts<O>(
  subject: ClassSubject<O>,
  member: Member,
  spec: MethodSpec<O>,
): Promise<string | undefined> {
  const waits = spec.waits!;
  return await forAll(
    fc.constantFrom(2 ** 31, 2 ** 32 + 5, 1e20, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE),
    [2 ** 31],
    1,
    async (huge) => {
      const obj = await make(waits.make);
      const before = subject.snap(obj);
      const controller = new AbortController();
      const reason = new Error("walker abort");
      let p: Promise<unknown>;
      try {
        p = (obj as Record<string | symbol, (...a: unknown[]) => Promise<unknown>>)[member.key](
          ...waits.args(huge as number, controller.signal),
        );
      } catch (error) {
        return `threw ${show(error)}`;
      }
      try {
        const early = await settle(p, STILL_WAITING_MS);
        if (early.how !== "hung") return `${showOutcome(early)} at once; it should still wait`;
        if (waits.end) await waits.end(obj);
        else controller.abort(reason);
        const out = await settle(p);
        const problem = await verdict(out, waits.expect ?? { kind: "reason", reason }, true, obj);
        if (problem) return problem;
        if (!waits.end) {
          try {
            assert.deepStrictEqual(subject.snap(obj), before);
          } catch {
            return `an aborted wait changed the object: ${show(before)} became ${show(subject.snap(obj))}`;
          }
        }
        return undefined;
      } finally {
        await subject.dispose?.(obj);
      }
    },
  );
}

async function walkClass<O>(name: string, subject: ClassSubject<O>): Promise<Results> {
  const cls = (mp as unknown as Record<string, new (...args: unknown[]) => O>)[name];
  const results: Results = new Map();
  const members = membersOf(cls);
  for (const m of members) {
    if (!(m.name in subject.members)) results.set(`${name}.${m.name}`, `no spec for ${name}.${m.name}: add one`);
  }
  for (const spec of Object.keys(subject.members)) {
    if (!members.some((m) => m.name === spec)) results.set(`${name}.${spec}`, `the spec names no member ${spec}`);
  }
  for (const m of staticsOf(cls)) {
    if (!subject.statics?.[m.name]) results.set(`${name}.${m.name}`, `no spec for static ${name}.${m.name}: add one`);
  }

  // The constructor.
  const ctorId = `new ${name}`;
  const construct = async (args: unknown[], expect: Expect): Promise<string | undefined> => {
    const out = await call(() => new cls(...args), false);
    const problem = await verdict(out, expect, false, undefined);
    if (out.how === "returned") {
      await cleanup(out.value);
      await subject.dispose?.(out.value as O);
    }
    return problem;
  };
  if ("always" in subject.ctor) {
    const expect = subject.ctor.always;
    results.set(
      `${ctorId}: any arguments`,
      await forAll(
        fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
        [[]],
        RUNS,
        (args) => construct(args as unknown[], expect),
      ),
    );
  } else if (subject.ctor.length === 0) {
    results.set(
      `${ctorId}: extra arguments are ignored`,
      await extraArgsIgnored(RUNS, async (args) => {
        const out = await call(() => new cls(...args), false);
        const after = out.how === "returned" ? subject.snap(out.value as O) : undefined;
        if (out.how === "returned") await subject.dispose?.(out.value as O);
        return { out, after };
      }),
    );
  } else {
    await walkParams(ctorId, subject.ctor, false, RUNS, results, construct);
  }

  // Statics.
  for (const [sname, spec] of Object.entries(subject.statics ?? {})) {
    const fn = (cls as unknown as Record<string, (...a: unknown[]) => unknown>)[sname];
    await walkParams(`${name}.${sname}`, spec.params, !!spec.async, RUNS, results, async (args, expect) => {
      const out = await call(() => fn.apply(cls, args), !!spec.async);
      return await verdict(out, expect, !!spec.async, undefined);
    });
  }

  // Members, on a fresh object per call.
  for (const m of members) {
    const spec = subject.members[m.name];
    if (!spec) continue;
    const id = `${name}.${m.name}`;
    if ("accessor" in spec) {
      const obj = await make(subject.make);
      try {
        const out = await call(() => (obj as Record<string | symbol, unknown>)[m.key], false);
        if (out.how !== "returned") results.set(`${id}: read`, showOutcome(out));
      } finally {
        await subject.dispose?.(obj);
      }
      if (!spec.set) continue;
      if (!m.desc.set) {
        results.set(id, `the spec gives a setter, but ${id} has none`);
        continue;
      }
      await walkParams(`${id} =`, [spec.set], false, RUNS, results, async ([value], expect) => {
        const o = await make(subject.make);
        try {
          return await probe(subject, o, false, (x) => (x as Record<string | symbol, unknown>)[m.key] = value, expect);
        } finally {
          await subject.dispose?.(o);
        }
      });
      continue;
    }
    if (typeof m.desc.value !== "function") {
      results.set(id, `${id} is not a method`);
      continue;
    }
    const isAsync = !!spec.async;
    const runs = spec.runs ?? RUNS;
    const invoke = (args: unknown[]) => (o: O) =>
      (o as Record<string | symbol, (...a: unknown[]) => unknown>)[m.key](...args);
    if (spec.skip) continue;
    if (spec.params.length === 0) {
      results.set(
        `${id}: extra arguments are ignored`,
        await extraArgsIgnored(runs, async (args) => {
          const o = await make(spec.make ?? subject.make);
          try {
            const out = await call(() => invoke(args)(o), isAsync);
            if (out.how === "returned" || out.how === "resolved") await cleanup(out.value);
            return { out, after: subject.snap(o) };
          } finally {
            await subject.dispose?.(o);
          }
        }),
      );
    } else {
      await walkParams(id, spec.params, isAsync, runs, results, async (args, expect) => {
        const o = await make(spec.make ?? subject.make);
        try {
          return await probe(subject, o, isAsync, invoke(args), expect);
        } finally {
          await subject.dispose?.(o);
        }
      });
    }
    if (spec.waits) results.set(`${id}: a huge timeout still waits`, await hugeTimeouts(subject, m, spec));
  }

  // Other states: the documented outcome of each member with valid arguments.
  for (const [state, { make: makeState, calls }] of Object.entries(subject.states ?? {})) {
    for (const m of members) {
      const id = `${name} [${state}] ${m.name}`;
      const entry = calls[m.name];
      if (entry === undefined) {
        results.set(id, `no expectation for ${name}.${m.name} in state "${state}": add one`);
        continue;
      }
      if (entry === "skip") continue;
      const spec = subject.members[m.name];
      const isAsync = !!spec && !("accessor" in spec) && !!spec.async;
      const o = await make(makeState);
      try {
        const accessor = m.desc.get !== undefined || m.desc.set !== undefined;
        const out = await call(() => {
          const target = o as Record<string | symbol, unknown>;
          if (!accessor) return (target[m.key] as (...a: unknown[]) => unknown)(...(entry.args ?? []));
          if ("set" in entry) return target[m.key] = entry.set;
          return target[m.key];
        }, isAsync);
        results.set(id, await verdict(out, entry.expect, isAsync, o));
        if (out.how === "returned" || out.how === "resolved") await cleanup(out.value);
      } finally {
        await subject.dispose?.(o);
      }
    }
    for (const k of Object.keys(calls)) {
      if (!members.some((m) => m.name === k)) results.set(`${name} [${state}] ${k}`, `names no member ${k}`);
    }
  }
  for (const [label, check] of Object.entries(subject.extra ?? {})) results.set(`${name} ${label}`, await check());
  return results;
}

async function walkFunction(name: string, subject: FunctionSubject): Promise<Results> {
  const fn = (mp as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
  const results: Results = new Map();
  const isAsync = !!subject.async;
  if (subject.params.length === 0) {
    results.set(
      `${name}(): extra arguments are ignored`,
      await extraArgsIgnored(RUNS, async (args) => {
        const out = await call(() => fn(...args), isAsync);
        return { out, after: out.how === "returned" || out.how === "resolved" ? out.value : undefined };
      }),
    );
  } else {
    await walkParams(name, subject.params, isAsync, RUNS, results, async (args, expect) => {
      const out = await call(() => fn(...args), isAsync);
      return await verdict(out, expect, isAsync, undefined);
    });
  }
  return results;
}

// ---- tests ---------------------------------------------------------------------------

test("every export of mod.ts has an entry in the walk (a new export fails here until it has one)", () => {
  const missing = Object.keys(mp).filter((name) => !(name in SUBJECTS));
  assert.deepEqual(missing.map((n) => `no factory for export ${n}: add one`), []);
  const stale = Object.keys(SUBJECTS).filter((name) => !(name in mp));
  assert.deepEqual(stale.map((n) => `SUBJECTS names ${n}, which mod.ts does not export`), []);
  for (const [name, subject] of Object.entries(SUBJECTS)) {
    const value = (mp as Record<string, unknown>)[name];
    if (subject.kind === "alias") assert.equal(value, (mp as Record<string, unknown>)[subject.of], name);
    else if (subject.kind === "value") subject.check(value);
    else assert.equal(typeof value, "function", name);
  }
});

for (const [name, subject] of Object.entries(SUBJECTS)) {
  if (subject.kind === "alias" || subject.kind === "value") continue;
  const what = subject.kind === "class" ? `new ${name}() and every member of ${name}` : `${name}()`;
  test(`${what}: bad input gets the documented error, never a hang or a changed object`, async () => {
    const results = subject.kind === "class" ? await walkClass(name, subject) : await walkFunction(name, subject);
    if (process.env.WALK_VERBOSE) console.log(`${name}: ${results.size} checks`, [...results.keys()].join(" | "));
    report(name, results);
  });
}

test("the walk's pools are terminated", async () => {
  await sharedPool?.terminate();
  await sharedExecutor?.shutdown({ cancelFutures: true });
  await stoppedExecutor?.shutdown();
  for (const p of statePools.values()) await p.terminate();
});

test("the walk's manager is shut down", async () => {
  await sharedManager?.shutdown();
});

test("every KNOWN_FAILURES entry names checks that ran", () => {
  const unmatched = known.filter((k) => ![...ran].some((id) => k.re.test(id)));
  assert.deepEqual(unmatched.map((k) => k.check), []);
});
