// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Event`: a flag threads wait for.
 *
 * Layout (`Int32Array` over 8 bytes):
 *
 * | index         | meaning                                                  |
 * |---------------|----------------------------------------------------------|
 * | `EVENT`       | `(generation << 1) | flag`                               |
 * | `EV_WAITERS`  | parked waiters (counted around parking, as for locks)    |
 *
 * `set()` CASes in the flag and a new generation, then notifies every
 * waiter when `EV_WAITERS > 0`; `clear()` clears the flag. A waiter returns
 * `true` when it sees the flag or a generation other than the one it
 * started in (the event was set and cleared again meanwhile), as Python's
 * `Event.wait` does. Waiters spin before they count themselves and park,
 * so a `set()` seen while spinning costs no system call.
 *
 * @module
 */

import { registerHandler } from "./_handles.ts";
import { assertCanBlock, notify, now, parkAsync, parkSync, spin } from "./_wait.ts";
import { throwIfAborted, waitArgs, type WaitOptions } from "./_gate.ts";

const EVENT = 0;
const EV_WAITERS = 1;

/**
 * Python's `multiprocessing.Event`: a flag that threads can wait for.
 *
 * @example
 * ```ts
 * import { Event } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const ev = new Event();
 * setTimeout(() => ev.set(), 10);
 * assert.equal(await ev.wait(), true);
 * assert.equal(ev.isSet(), true);
 * ev.clear();
 * assert.equal(await ev.wait(5), false);
 * ```
 */
export class Event {
  #cell: Int32Array;

  static {
    registerHandler<Event, SharedArrayBuffer>({
      tag: "Event",
      canHandle: (v): v is Event => v instanceof Event,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => {
        const ev = new Event();
        ev.#cell = new Int32Array(buffer);
        return ev;
      },
    });
  }

  /** Creates a cleared event. */
  constructor() {
    this.#cell = new Int32Array(new SharedArrayBuffer(8));
  }

  /**
   * Whether the flag is set.
   *
   * @returns The flag.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Event().isSet(), false);
   * ```
   */
  isSet(): boolean {
    return (Atomics.load(this.#cell, EVENT) & 1) === 1;
  }

  /**
   * Sets the flag and wakes every waiter.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const ev = new Event();
   * ev.set();
   * assert.equal(ev.waitSync(0), true);
   * ```
   */
  set(): void {
    const cell = this.#cell;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (v & 1) return;
      if (Atomics.compareExchange(cell, EVENT, v, ((v >>> 1) + 1) << 1 | 1) === v) break;
    }
    if (Atomics.load(cell, EV_WAITERS) > 0) notify(cell, EVENT);
  }

  /**
   * Clears the flag.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const ev = new Event();
   * ev.set();
   * ev.clear();
   * assert.equal(ev.isSet(), false);
   * ```
   */
  clear(): void {
    Atomics.and(this.#cell, EVENT, ~1);
  }

  /** `true` when the event is or was set since `start` was read. */
  #check(start: number): boolean {
    const v = Atomics.load(this.#cell, EVENT);
    return (v & 1) === 1 || (v >>> 1) !== (start >>> 1);
  }

  /**
   * Waits until the flag is set, without blocking the event loop.
   *
   * @param timeout Milliseconds, or `{ timeout, signal }`; no limit when omitted.
   * @returns `true` when the flag was set, `false` when `timeout` passed.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(await new Event().wait({ timeout: 5 }), false);
   * ```
   */
  async wait(timeout?: number | WaitOptions): Promise<boolean> {
    const { ms, signal } = waitArgs(timeout, "Event.wait()");
    throwIfAborted(signal);
    const cell = this.#cell;
    const start = Atomics.load(cell, EVENT);
    if (start & 1) return true;
    const end = now() + ms;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (this.#check(start)) return true;
      const left = end - now();
      if (left <= 0) return false;
      if (spin(cell, EVENT, v, true)) continue;
      Atomics.add(cell, EV_WAITERS, 1);
      try {
        if (Atomics.load(cell, EVENT) === v) await parkAsync(cell, EVENT, v, left, signal);
      } finally {
        Atomics.sub(cell, EV_WAITERS, 1);
      }
    }
  }

  /**
   * The blocking twin of {@linkcode Event.wait}.
   *
   * @param timeout Milliseconds; no limit when omitted.
   * @returns `true` when the flag was set, `false` when `timeout` passed.
   * @throws {RangeError} when `timeout` is invalid.
   *
   * @example
   * ```ts
   * import { Event } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Event().waitSync(5), false);
   * ```
   */
  waitSync(timeout?: number | Omit<WaitOptions, "signal">): boolean {
    const { ms } = waitArgs(timeout, "Event.waitSync()");
    const cell = this.#cell;
    const start = Atomics.load(cell, EVENT);
    if (start & 1) return true;
    if (ms === 0) return false;
    assertCanBlock("Event.waitSync()");
    const end = now() + ms;
    for (;;) {
      const v = Atomics.load(cell, EVENT);
      if (this.#check(start)) return true;
      const left = end - now();
      if (left <= 0) return false;
      if (spin(cell, EVENT, v)) continue;
      Atomics.add(cell, EV_WAITERS, 1);
      if (Atomics.load(cell, EVENT) === v) parkSync(cell, EVENT, v, left);
      Atomics.sub(cell, EV_WAITERS, 1);
    }
  }

  /** `<Event(set)>` or `<Event(unset)>`. */
  toString(): string {
    return `<Event(${this.isSet() ? "set" : "unset"})>`;
  }
}
