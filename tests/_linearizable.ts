// Copyright the @mpjs/multiprocessing authors. MIT license.
// A linearizability checker for small histories (Wing & Gong's search, with
// Lowe's memoisation of (operations done, model state)).
//
// A history is a list of completed operations, each with the interval in
// which it ran: `start` is read from a shared clock before the call and
// `end` after it returned. The clock is one counter every thread advances
// with `Atomics.add`, so `a.end < b.start` proves that `a` returned before
// `b` was called (the converse need not hold: the check then allows more
// orders, never fewer). The history is linearizable when some order of all
// operations keeps that real-time order and is accepted, step by step, by a
// sequential model of the object.

/** One completed operation. */
export interface Operation<I = unknown, O = unknown> {
  /** Which thread ran it (for messages). */
  thread: number;
  input: I;
  output: O;
  /** Clock tick read just before the call. */
  start: number;
  /** Clock tick read just after it returned (> start). */
  end: number;
}

/** A sequential specification: states are values, `step` never mutates its argument. */
export interface Model<S, I, O> {
  init: S;
  /**
   * The state after `op` ran alone in `state`, or `undefined` when `op`
   * could not have given its `output` there. It may look at `op.start` and
   * `op.end` (a barrier needs the waits of one generation to overlap).
   */
  step(state: S, op: Operation<I, O>): S | undefined;
  /** A string that is equal for equal states (the memo key). */
  key(state: S): string;
}

/** The outcome of a check: an order that works, or the longest prefix of one that was found. */
export type Verdict<I, O> =
  | { linearizable: true; order: Operation<I, O>[] }
  | { linearizable: false; longest: Operation<I, O>[] };

/** The most operations a history may have (the search keeps a bit set of them in a number). */
export const MAX_OPERATIONS = 30;

/**
 * Searches for a linearization of `history` under `model`. Exhaustive:
 * `linearizable: false` means that no order exists.
 */
export function checkLinearizable<S, I, O>(history: Operation<I, O>[], model: Model<S, I, O>): Verdict<I, O> {
  const ops = [...history].sort((a, b) => a.start - b.start);
  const n = ops.length;
  if (n > MAX_OPERATIONS) throw new RangeError(`Cannot check ${n} operations: at most ${MAX_OPERATIONS}`);
  for (const op of ops) {
    if (!(op.end > op.start)) throw new RangeError(`Operation ${describeOperation(op)} ends before it starts`);
  }
  const full = n === 30 ? 0x3fffffff : (1 << n) - 1;
  const seen = new Set<string>();
  const order: number[] = [];
  let longest: number[] = [];

  const search = (done: number, state: S): boolean => {
    if (done === full) return true;
    const memo = `${done}:${model.key(state)}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    // An operation may come next only if no pending one returned before it was called.
    let minEnd = Infinity;
    for (let i = 0; i < n; i++) if ((done & (1 << i)) === 0 && ops[i].end < minEnd) minEnd = ops[i].end;
    for (let i = 0; i < n; i++) {
      if ((done & (1 << i)) !== 0 || ops[i].start > minEnd) continue;
      const next = model.step(state, ops[i]);
      if (next === undefined) continue;
      order.push(i);
      if (order.length > longest.length) longest = [...order];
      if (search(done | (1 << i), next)) return true;
      order.pop();
    }
    return false;
  };

  if (search(0, model.init)) return { linearizable: true, order: order.map((i) => ops[i]) };
  return { linearizable: false, longest: longest.map((i) => ops[i]) };
}

/** `t1 put(5) -> ok [3, 8]`. */
export function describeOperation<I, O>(op: Operation<I, O>): string {
  return `t${op.thread} ${JSON.stringify(op.input)} -> ${JSON.stringify(op.output)} [${op.start}, ${op.end}]`;
}

/** The history as lines, in start order, for a failure message. */
export function describeHistory<I, O>(history: Operation<I, O>[]): string {
  return [...history].sort((a, b) => a.start - b.start).map(describeOperation).join("\n");
}
