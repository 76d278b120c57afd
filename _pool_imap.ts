// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The iterator `Pool.imap` and `Pool.imapUnordered` return (CPython's
 * `IMapIterator`): it reads its input in chunks as its results are
 * consumed, keeping a bounded number of chunks in flight, and hands the
 * results out in input order (or as they finish). The pool submits, cancels
 * and says whether it is closed or terminated; everything else is here.
 *
 * A failed single-item chunk keeps its place: as in Python, `next()`
 * throws its error and the call after goes on. A failure that ends the
 * iteration (the input threw, or a chunk of several items failed) is thrown
 * once the results before it were consumed.
 *
 * @module
 */

import { TimeoutError } from "./errors.ts";
import { checkTimeout } from "./_options.ts";
import { asNumbers } from "./_pool_protocol.ts";
import { type Settle, waitInList } from "./_pool_tasks.ts";

/** What an {@linkcode IMapIterator} needs from its pool. */
export interface IMapHost {
  /**
   * Submits one chunk whose first item is input item `at`; `settle` gets
   * its results. Returns the task id; throws when the chunk cannot be sent.
   */
  submit(chunk: unknown[] | Float64Array, at: number, settle: Settle): number;
  /** Drops a chunk not yet finished. */
  cancel(id: number): void;
  /** Whether the pool is closed: the input is then read to its end, as Python's task handler does. */
  closed(): boolean;
  /** Whether the pool was terminated. */
  terminated(): boolean;
  /** The iterator reads no more of its input. */
  inputEnded(iterator: IMapIterator<unknown>): void;
}

/** A failed single-item chunk, kept at its place among the results. */
class ItemFailure {
  constructor(readonly error: unknown) {}
}

type Entry<R> = R[] | ItemFailure;

/** The results of a pool's `imap`/`imapUnordered`, as an async iterator. */
export class IMapIterator<R> implements AsyncIterableIterator<R> {
  #host: IMapHost;
  #source: Iterator<unknown> | AsyncIterator<unknown>;
  #isAsync: boolean;
  #size: number;
  /** Chunks submitted and not yet handed to the consumer: bounds memory. */
  #window: number;
  #ordered: boolean;
  #what: string;
  /** Ordered: chunk number → its results. */
  #done = new Map<number, Entry<R>>();
  /** Unordered: results as they came. */
  #arrived: Entry<R>[] = [];
  #inflight = new Set<number>();
  #submitted = 0;
  #consumed = 0;
  /** Items read. */
  #offset = 0;
  #inputDone = false;
  #stopped = false;
  #feeding = false;
  /**
   * The first failure that ends the iterator, and the chunk count consumed
   * when it is thrown: ordered, its chunk's place; unordered, after the
   * chunks that came before.
   */
  #failure: { at: number; error: unknown } | undefined;
  #buffer: R[] = [];
  #index = 0;
  /** Pending next() calls wait here; each re-checks in call order when woken. */
  #waiting: (() => void)[] = [];

  /**
   * Makes the iterator; {@linkcode IMapIterator.feed} starts reading `iterable`.
   *
   * @param host The pool.
   * @param iterable The input.
   * @param size Items per chunk.
   * @param window Chunks in flight at most (while the pool is not closed).
   * @param ordered Results in input order, or as they finish.
   * @param what The method's name, for messages.
   */
  constructor(
    host: IMapHost,
    iterable: Iterable<unknown> | AsyncIterable<unknown>,
    size: number,
    window: number,
    ordered: boolean,
    what: string,
  ) {
    this.#host = host;
    const sync = typeof (iterable as Iterable<unknown>)[Symbol.iterator] === "function";
    this.#source = sync
      ? (iterable as Iterable<unknown>)[Symbol.iterator]()
      : (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    this.#isAsync = !sync;
    this.#size = size;
    this.#window = window;
    this.#ordered = ordered;
    this.#what = what;
    // Callable apart from the object, as the iterator's methods were before it was a class.
    this.next = this.next.bind(this);
    this.return = this.return.bind(this);
  }

  #wake(): void {
    if (this.#waiting.length === 0) return;
    const all = this.#waiting;
    this.#waiting = [];
    for (const w of all) w();
  }

  #endInput(): void {
    if (this.#inputDone) return;
    this.#inputDone = true;
    this.#host.inputEnded(this);
  }

  #fail(at: number, error: unknown): void {
    if (!this.#failure || at < this.#failure.at) this.#failure = { at, error };
  }

  /** Where an error seen now is thrown: ordered, at chunk `seq`; unordered, after what arrived. */
  #failAt(seq: number): number {
    return this.#ordered ? seq : this.#consumed + this.#arrived.length;
  }

  /** Reads and submits chunks while the window has room (or the pool is closed). */
  async feed(): Promise<void> {
    if (this.#feeding) return;
    this.#feeding = true;
    const host = this.#host;
    try {
      while (
        !this.#inputDone && !this.#stopped &&
        (this.#submitted - this.#consumed < this.#window || host.closed())
      ) {
        const chunk: unknown[] = [];
        while (chunk.length < this.#size) {
          const step = this.#isAsync ? await this.#source.next() : this.#source.next() as IteratorResult<unknown>;
          if (step.done) {
            this.#endInput();
            break;
          }
          chunk.push(step.value);
        }
        if (chunk.length === 0 || this.#stopped) break;
        if (host.terminated()) throw new Error("Pool was terminated");
        const seq = this.#submitted;
        const at = this.#offset;
        this.#offset += chunk.length;
        let id = 0;
        id = host.submit(asNumbers(chunk) ?? chunk, at, (ok, value) => {
          this.#inflight.delete(id);
          if (ok || this.#size === 1) {
            const entry = ok ? value as R[] : new ItemFailure(value);
            if (this.#ordered) this.#done.set(seq, entry);
            else this.#arrived.push(entry);
          } else {
            this.#fail(this.#failAt(seq), value);
          }
          this.#wake();
        });
        this.#inflight.add(id);
        this.#submitted++;
      }
    } catch (error) {
      this.#fail(this.#failAt(this.#submitted), error);
      this.#endInput();
    } finally {
      this.#feeding = false;
      this.#wake();
    }
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const id of this.#inflight) this.#host.cancel(id);
    this.#inflight.clear();
    if (!this.#inputDone) {
      this.#endInput();
      try {
        const r = this.#source.return?.();
        if (r instanceof Promise) r.catch(() => {});
      } catch {
        // The source's own cleanup failed: nothing more to stop.
      }
    }
  }

  /**
   * The next result. As Python's `IMapIterator.next(timeout)`: rejects with
   * `TimeoutError` when none comes within `timeout` ms, and the result still
   * comes to a later call.
   */
  async next(timeout?: number): Promise<IteratorResult<R>> {
    const ms = checkTimeout(timeout, `the ${this.#what}() iterator's next()`);
    const deadline = performance.now() + ms;
    for (;;) {
      if (this.#index < this.#buffer.length) return { value: this.#buffer[this.#index++], done: false };
      if (this.#stopped) return { value: undefined, done: true };
      const failure = this.#failure;
      if (failure && failure.at === this.#consumed) {
        this.#stop();
        throw failure.error;
      }
      const next = this.#ordered ? this.#done.get(this.#consumed) : this.#arrived.shift();
      if (next) {
        if (this.#ordered) this.#done.delete(this.#consumed);
        this.#consumed++;
        void this.feed();
        if (next instanceof ItemFailure) throw next.error;
        this.#buffer = next;
        this.#index = 0;
        continue;
      }
      if (this.#inputDone && this.#consumed === this.#submitted && !this.#feeding) {
        this.#stop();
        return { value: undefined, done: true };
      }
      const left = deadline - performance.now();
      if (!(left > 0 && await waitInList(this.#waiting, left))) {
        throw new TimeoutError(`The ${this.#what}() iterator had no result within ${ms} ms`);
      }
    }
  }

  /** Stops the iteration: chunks not finished are dropped and the input is closed. */
  return(): Promise<IteratorResult<R>> {
    this.#stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
