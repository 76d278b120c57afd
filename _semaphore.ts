// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * `Semaphore` and `BoundedSemaphore`: a permit count taken through the
 * shared slow path of `_gate.ts`, plus a record of who holds which permits
 * so that a dead holder's permits come back.
 *
 * Layout (`Int32Array`; the words of holder slot `s`, 0…63, start at
 * `slotAt(s)`):
 *
 * | index              | written by                                      | meaning                                     |
 * |--------------------|-------------------------------------------------|---------------------------------------------|
 * | `WORD` (0)         | movers (CAS), the pending move's owner (`and`)  | free permits and the pending move's tag     |
 * | `WAITERS` (1)      | waiters                                         | see `_gate.ts`                              |
 * | `STARVER` (2)      | one waiter                                      | see `_gate.ts`                              |
 * | `INITIAL` (3)      | constructor                                     | the initial value (the bound, if bounded)   |
 * | `BOUNDED` (4)      | constructor                                     | 1 for a `BoundedSemaphore`                  |
 * | `MOVE_WAITERS` (5) | releasers waiting out a move (`add`/`sub`)      | whether ending a move must ring `MOVE_BELL` |
 * | `MOVE_BELL` (6)    | whoever ends a move while one waits (`add`)     | futex word those releasers park on          |
 * | slot + `ID`        | a thread (CAS 0 → its ident), recoverers (CAS)  | who owns the slot (below)                   |
 * | slot + `STATE`     | the slot's owner (plain), recoverers (`store`)  | `2 * held + toggle` (below)                 |
 * | slot + `DELTA`     | the slot's owner (plain), before its move       | how many permits a `GIVE_N` move gives back |
 *
 * `WORD` holds the value in bits 0–22 (so at most `MAX_VALUE`)
 * and a tag in bits 23–31: 0, or `kind << 30 | toggle << 29 | s << 23` while
 * a move of slot `s` is not known to be recorded in its `STATE`. Kinds:
 * `TAKE` (one permit from the value to `held`), `GIVE` (one back), `GIVE_N`
 * (`DELTA` back).
 *
 * `ID`: 0 free; an ident: the thread that owns the slot, for as long as it
 * lives; `-ident`: that thread is recovering the slot of a dead owner;
 * `ORPHAN`: a dead owner's slot whose permits could not all go back yet.
 *
 * **Holders.** A thread that takes a permit owns a slot; `held` counts the
 * permits it took and has not given back. Its `release(n)` gives back up to
 * `n` of them; the rest of `n`, like a release by a thread holding none,
 * adds new permits. A thread that finds all 64 slots owned by live threads
 * takes without a record.
 *
 * **One word decides.** Moving permits between the value and a `held`
 * touches two words, and a thread may stop between any two instructions.
 * So a move is decided by one compareExchange on `WORD` that changes the
 * value and sets the tag, on an untagged word only: one move pends at a
 * time, and other movers wait out its few instructions. Then the owner
 * writes `STATE` with the new `held` and the tag's toggle, and clears the
 * tag with `Atomics.and` (which also publishes that plain write). Wherever
 * a thread stopped, the words say what happened: no tag of `s`: `held` is
 * exact; a tag of `s` whose toggle `STATE` carries: recorded, only the tag
 * is left to clear; a tag of `s` with the other toggle: the move is in the
 * value and not yet in `held`, and is applied to it. A toggle is enough:
 * the tag stays until its move is recorded, and only the slot's owner (or
 * its recoverer) moves for the slot, one move at a time. Takes by a thread
 * without a slot, and releases of permits nobody holds, change the value
 * with a compareExchange that keeps the tag.
 *
 * **Recovery.** A waiter that finds no permit scans the slots. A slot whose
 * owner is dead (the registry marks a thread dead only once it can run no
 * more, after all its writes) is claimed by one recoverer (CAS `ID` → -its
 * ident); a slot whose recoverer died is claimed again the same way, so
 * recovery may itself stop anywhere. The recoverer completes the slot's
 * pending move, then gives back `b = min(held, INITIAL - value - Σ held of
 * live slots)` permits as a move of that slot (tagged like any other, so a
 * recoverer that stops half way leaves it to the next), and moves the tag
 * straight on to a take of one permit into its own slot with one more
 * compareExchange, so the waiter that did the work gets a permit. It then
 * frees the slot, or marks it `ORPHAN` if permits are left, for later
 * scans. So each of a dead holder's permits comes back at most once (`held`
 * falls by what the move adds), and recovery never raises the value above
 * the initial value (`b` is bounded by the value its compareExchange
 * replaces). The live sum is read slot by slot; a move meanwhile changes
 * `WORD` and fails the compareExchange. The bound keeps permits consumed as
 * signals (taken from a `Semaphore(0)` released by another thread) from
 * being handed out again.
 *
 * A mover descheduled in the middle of its move holds up the others' moves
 * until it runs again; a waiting taker first spins, then parks (woken when
 * the move ends, as `wake` does); a releaser, and a try that does not wait
 * (Python's non-blocking acquire fails only at value 0), park on
 * `MOVE_BELL`.
 *
 * **Fault injection for tests.** A function stored on `globalThis` under
 * `Symbol.for("@mpjs/multiprocessing/sync.semaphoreStep")` before a
 * thread's first acquire is called with the name of each point between two
 * shared-memory writes of a move or a recovery (`"take.cas"`: the value
 * changed, `held` not yet): a test parks the thread there and declares it
 * dead.
 *
 * @module
 */

import { registerHandler } from "./_handles.ts";
import { DEATHS, isIdentAlive, registryCells, selfIdent } from "./_registry.ts";
import { canBlock } from "./_runtime.ts";
import { assertCanBlock, notify, now, parkSync, SEMAPHORE_TAG_SPIN as TAG_SPIN, SLICE, spin } from "./_wait.ts";
import { checkInteger } from "./_options.ts";
import {
  type Acquired,
  type AcquireOptions,
  acquireOptions,
  type AcquireResult,
  FAILED,
  type Gate,
  otherStarver,
  RECOVERED,
  scoped,
  scopedSync,
  slowAsync,
  slowSync,
  STARVER,
  throwIfAborted,
  WAITERS,
  WORD,
} from "./_gate.ts";

const INITIAL = 3;
const BOUNDED = 4;
const MOVE_WAITERS = 5;
const MOVE_BELL = 6;
/** Index of the first holder slot's words (byte 256, see `slotAt`). */
const HOLDERS = 64;
/** Holder slots per semaphore; threads beyond this are not tracked. */
const N_HOLDERS = 64;
const ID = 0;
const STATE = 1;
const DELTA = 2;
const SEM_BYTES = (HOLDERS + 4 * N_HOLDERS) * 4;
const VALUE_BITS = 23;
/** The largest value a semaphore holds (Python's `SEM_VALUE_MAX` is as low as 32,767 on some systems). */
const MAX_VALUE = (1 << VALUE_BITS) - 1;
const TAG = ~MAX_VALUE;
const SLOT_MASK = 63;
const TOGGLE_SHIFT = 29;
const KIND_SHIFT = 30;
const TAKE = 1;
const GIVE = 2;
const GIVE_N = 3;
/** `ID` of a dead owner's slot left holding permits (never a live ident). */
const ORPHAN = 0x7fff_ffff;
const STEP_HOOK = Symbol.for("@mpjs/multiprocessing/sync.semaphoreStep");
type StepHook = (point: string) => void;

/**
 * Index of slot `s`'s words. A slot is 16 bytes and slots 0–15, claimed
 * first, each start a 64-byte line of their own (slot `s` is in line
 * `s % 16`): a thread's record then shares no line with `WORD`, which other
 * threads poll, nor with the first fifteen other holders'.
 */
function slotAt(s: number): number {
  return HOLDERS + 16 * (s & 15) + 4 * (s >>> 4);
}

function moveTag(kind: number, toggle: number, s: number): number {
  return (kind << KIND_SHIFT) | (toggle << TOGGLE_SHIFT) | (s << VALUE_BITS);
}

/** The slot whose move `w` (a tagged word) carries. */
function tagSlot(w: number): number {
  return (w >>> VALUE_BITS) & SLOT_MASK;
}

/** Whether the owner recorded in an `ID` word can act no more (a free slot's 0 is not dead). */
function idDead(id: number): boolean {
  if (id === 0) return false;
  return id === ORPHAN || !isIdentAlive(id > 0 ? id : -id);
}

/**
 * Wakes parked semaphore waiters after permits were added: `n` of them, or
 * all when one is starving (it may not be first in the futex queue).
 */
function wake(cell: Int32Array, n: number): void {
  if (Atomics.load(cell, WAITERS) === 0) return;
  notify(cell, WORD, Atomics.load(cell, STARVER) === 0 ? n : Infinity);
}

/** Clears the tag of a recorded move, then wakes up to `n` waiters if permits are free. */
function endMove(cell: Int32Array, n: number): void {
  if ((Atomics.and(cell, WORD, MAX_VALUE) & MAX_VALUE) > 0) wake(cell, n);
  if (Atomics.load(cell, MOVE_WAITERS) > 0) {
    Atomics.add(cell, MOVE_BELL, 1);
    notify(cell, MOVE_BELL);
  }
}

/**
 * Completes the pending move of slot `s`, if `WORD` carries its tag: the
 * caller owns `s` (as its recoverer). Safe to repeat.
 */
function finishMove(cell: Int32Array, s: number, hook: StepHook | undefined): void {
  const w = Atomics.load(cell, WORD);
  if ((w & TAG) === 0 || tagSlot(w) !== s) return;
  const at = slotAt(s);
  const st = Atomics.load(cell, at + STATE);
  const toggle = (w >>> TOGGLE_SHIFT) & 1;
  if ((st & 1) !== toggle) {
    const kind = w >>> KIND_SHIFT;
    const d = kind === TAKE ? 1 : kind === GIVE ? -1 : -Atomics.load(cell, at + DELTA);
    Atomics.store(cell, at + STATE, (((st >>> 1) + d) << 1) | toggle);
    hook?.("finish.record");
  }
  // Waiters may have parked on the tagged word.
  endMove(cell, Infinity);
}

/**
 * Python's `multiprocessing.Semaphore`: a counter of permits shared between
 * threads. `acquire` takes one (waiting while there are none), `release(n)`
 * gives `n` back; any thread may release. The value is at most 8,388,607.
 *
 * Owner death: permits taken by a thread that ended without giving them back
 * are returned to the semaphore when a waiter finds no permit left (but
 * never so that the value rises above the initial value), and that waiter's
 * `ownerDied` reads `true`. Each permit comes back once, whatever
 * instruction its holder stopped at. Up to 64 live threads at a time are
 * tracked; the permits of a thread beyond that are not recovered if it dies.
 *
 * @example Limiting concurrency
 * ```ts
 * import { Semaphore } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const sem = new Semaphore(2);
 * assert.equal(sem.acquireSync(), true);
 * assert.equal(sem.acquireSync(), true);
 * assert.equal(sem.acquireSync({ block: false }), false);
 * sem.release(2);
 * assert.equal(sem.getValue(), 2);
 * ```
 */
export class Semaphore {
  #cell: Int32Array;
  #gate: Gate;
  #ownerDied = false;
  /** This thread's holder slot: -1 not looked for yet, -2 none was free (untracked until the next scan). */
  #slot = -1;
  #hook: StepHook | undefined;
  /** The death count at the last holder scan. */
  #deaths = -1;
  #scanned = 0;

  static {
    registerHandler<Semaphore, SharedArrayBuffer>({
      tag: "Semaphore",
      canHandle: (v): v is Semaphore => v instanceof Semaphore,
      serialize: (v) => v.#cell.buffer as SharedArrayBuffer,
      deserialize: (buffer) => {
        const bounded = new Int32Array(buffer)[BOUNDED] === 1;
        return (bounded ? new BoundedSemaphore(0) : new Semaphore(0)).#attach(buffer);
      },
    });
  }

  /**
   * Creates a semaphore with `value` free permits.
   *
   * @param value The initial number of permits, an integer from 0 to 8,388,607.
   * @throws {RangeError} when `value` is not such an integer.
   */
  constructor(value: number = 1) {
    checkInteger(value, `create ${new.target.name}`, "value", 0, MAX_VALUE);
    this.#cell = new Int32Array(new SharedArrayBuffer(SEM_BYTES));
    this.#cell[WORD] = value;
    this.#cell[INITIAL] = value;
    this.#cell[BOUNDED] = new.target === BoundedSemaphore ? 1 : 0;
    this.#gate = this.#makeGate();
  }

  #attach(buffer: SharedArrayBuffer): this {
    this.#cell = new Int32Array(buffer);
    this.#gate = this.#makeGate();
    return this;
  }

  #makeGate(): Gate {
    const cell = this.#cell;
    return {
      cell,
      take: (me, eager) => {
        if (!eager && otherStarver(cell, me)) return false;
        for (;;) {
          const w = Atomics.load(cell, WORD);
          if ((w & MAX_VALUE) === 0) return false;
          if (this.#take(me, w, eager)) return true;
          // A pending move: wait for it (the slow path watches WORD).
          if (!eager && (w & TAG) !== 0 && this.#slot >= 0) return false;
        }
      },
      recover: (me) => this.#recover(me),
      starve: (me) => Atomics.compareExchange(cell, STARVER, 0, me) === 0,
      unstarve: (me) => {
        // Others stood back, possibly parked beside free permits.
        if (Atomics.compareExchange(cell, STARVER, me, 0) === me) notify(cell, WORD);
      },
      parkValue: (me) => {
        const w = Atomics.load(cell, WORD);
        return (w & MAX_VALUE) > 0 && (w & TAG) === 0 && !otherStarver(cell, me) ? undefined : w;
      },
    };
  }

  /**
   * Whether the last successful acquire through this object got its permit
   * back from a thread that ended holding it.
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /**
   * One try at taking a permit, `w` being `WORD` as just read (value > 0).
   * False when the compareExchange lost, no permit is left, or (for a
   * holder, unless `eager`) another thread's move stays pending. An `eager`
   * take waits that move out as `release` does: the permit it would take
   * is free, so Python's non-blocking acquire would get it.
   */
  #take(me: number, w: number, eager = false): boolean {
    const cell = this.#cell;
    let s = this.#slot;
    if (s === -1) s = this.#claim(me);
    if (s < 0) return Atomics.compareExchange(cell, WORD, w, w - 1) === w;
    // Another thread's move is being recorded, a few instructions: wait it out.
    for (let i = 0; (w & TAG) !== 0; i++) {
      if (i === TAG_SPIN) {
        if (!eager) return false;
        this.#waitMove(w);
        i = 0;
      }
      w = Atomics.load(cell, WORD);
      if ((w & MAX_VALUE) === 0) return false;
    }
    const at = slotAt(s);
    const st = cell[at + STATE];
    const toggle = (st & 1) ^ 1;
    this.#hook?.("take.start");
    if (Atomics.compareExchange(cell, WORD, w, (w - 1) | moveTag(TAKE, toggle, s)) !== w) return false;
    this.#hook?.("take.cas");
    cell[at + STATE] = (((st >>> 1) + 1) << 1) | toggle;
    this.#hook?.("take.record");
    endMove(cell, 1);
    return true;
  }

  /** Finds or claims this thread's holder slot; -2 when every slot is owned by a live thread. */
  #claim(me: number): number {
    const cell = this.#cell;
    this.#hook = (globalThis as Record<symbol, unknown>)[STEP_HOOK] as StepHook | undefined;
    let free = -1;
    for (let s = 0; s < N_HOLDERS; s++) {
      const id = Atomics.load(cell, slotAt(s) + ID);
      if (id === me) return this.#slot = s;
      if (free < 0 && id === 0) free = s;
    }
    for (let s = free; s >= 0 && s < N_HOLDERS; s++) {
      if (Atomics.compareExchange(cell, slotAt(s) + ID, 0, me) === 0) return this.#slot = s;
    }
    // Take over a slot whose owner died holding nothing, with no move pending.
    // Recoverers never write a dead ident back, so the compareExchange cannot
    // succeed on a slot that changed hands meanwhile.
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (id <= 0 || id === ORPHAN || isIdentAlive(id) || Atomics.load(cell, at + STATE) >>> 1 !== 0) continue;
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0 && tagSlot(w) === s) continue;
      if (Atomics.compareExchange(cell, at + ID, id, me) === id) return this.#slot = s;
    }
    return this.#slot = -2;
  }

  /** Gives back permits of dead holders (see the layout), taking one of them; rate-limited. */
  #recover(me: number): boolean {
    const cell = this.#cell;
    const deaths = Atomics.load(registryCells(), DEATHS);
    const t = now();
    if (deaths === this.#deaths && t - this.#scanned < SLICE) return false;
    this.#deaths = deaths;
    this.#scanned = t;
    this.#hook = (globalThis as Record<symbol, unknown>)[STEP_HOOK] as StepHook | undefined;
    if (this.#slot === -2) this.#slot = -1;
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (!idDead(id)) continue;
      const w = Atomics.load(cell, WORD);
      const pending = (w & TAG) !== 0 && tagSlot(w) === s;
      if (!pending && Atomics.load(cell, at + STATE) >>> 1 === 0) continue;
      if (Atomics.compareExchange(cell, at + ID, id, -me) !== id) continue;
      if (this.#recoverSlot(me, s, true)) return true;
    }
    return false;
  }

  /**
   * Recovers slot `s`, which the caller claimed (`ID` = -me) from a dead
   * owner or recoverer: completes its pending move and gives its permits
   * back, as far as the bound allows. With `keep`, takes one of them.
   *
   * @returns Whether it took a permit.
   */
  #recoverSlot(me: number, s: number, keep: boolean): boolean {
    const cell = this.#cell;
    const at = slotAt(s);
    const hook = this.#hook;
    hook?.("recover.claim");
    finishMove(cell, s, hook);
    const mine = keep ? (this.#slot === -1 ? this.#claim(me) : this.#slot) : -2;
    for (;;) {
      const st = Atomics.load(cell, at + STATE);
      const held = st >>> 1;
      if (held === 0) {
        Atomics.store(cell, at + ID, 0);
        return false;
      }
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0) {
        if (this.#finishDead(me, w) || spin(cell, WORD, w)) continue;
        // A live thread's move lasts (it was descheduled): scan again on the next try.
        this.#deaths = -1;
        Atomics.store(cell, at + ID, ORPHAN);
        return false;
      }
      const b = Math.min(held, Atomics.load(cell, INITIAL) - w - this.#liveHeld());
      if (b <= 0) {
        Atomics.store(cell, at + ID, ORPHAN);
        return false;
      }
      const toggle = (st & 1) ^ 1;
      if (b > 1) Atomics.store(cell, at + DELTA, b);
      hook?.("recover.start");
      if (Atomics.compareExchange(cell, WORD, w, (w + b) | moveTag(b === 1 ? GIVE : GIVE_N, toggle, s)) !== w) {
        continue;
      }
      hook?.("recover.cas");
      Atomics.store(cell, at + STATE, ((held - b) << 1) | toggle);
      hook?.("recover.record");
      const took = keep && this.#takeOn(mine);
      endMove(cell, b);
      hook?.("recover.end");
      Atomics.store(cell, at + ID, held - b > 0 ? ORPHAN : 0);
      return took;
    }
  }

  /**
   * With `WORD` carrying the tag of a recorded give-back, takes one permit
   * for the caller: the same compareExchange puts the caller's own take in
   * place of the tag, so no other thread can take the permit first.
   */
  #takeOn(mine: number): boolean {
    const cell = this.#cell;
    for (;;) {
      const x = Atomics.load(cell, WORD);
      const value = x & MAX_VALUE;
      if (value === 0) return false;
      if (mine < 0) {
        if (Atomics.compareExchange(cell, WORD, x, value - 1) === x) return true;
        continue;
      }
      const at = slotAt(mine);
      const st = Atomics.load(cell, at + STATE);
      const toggle = (st & 1) ^ 1;
      if (Atomics.compareExchange(cell, WORD, x, (value - 1) | moveTag(TAKE, toggle, mine)) !== x) continue;
      this.#hook?.("recover.take");
      Atomics.store(cell, at + STATE, (((st >>> 1) + 1) << 1) | toggle);
      this.#hook?.("recover.taken");
      return true;
    }
  }

  /** Permits recorded by the slots of live threads (a snapshot). */
  #liveHeld(): number {
    const cell = this.#cell;
    let sum = 0;
    for (let s = 0; s < N_HOLDERS; s++) {
      const at = slotAt(s);
      const id = Atomics.load(cell, at + ID);
      if (id > 0 && id !== ORPHAN && isIdentAlive(id)) sum += Atomics.load(cell, at + STATE) >>> 1;
    }
    return sum;
  }

  /**
   * When the move pending in `w` belongs to a slot whose owner (or
   * recoverer) is dead, recovers that slot.
   *
   * @returns `false` when that owner is alive (its move will end shortly).
   */
  #finishDead(me: number, w: number): boolean {
    const at = slotAt(tagSlot(w)) + ID;
    const id = Atomics.load(this.#cell, at);
    if (!idDead(id)) return false;
    if (Atomics.compareExchange(this.#cell, at, id, -me) === id) this.#recoverSlot(me, tagSlot(w), false);
    return true;
  }

  #done(result: AcquireResult): boolean {
    if (result === FAILED) return false;
    this.#ownerDied = result === RECOVERED;
    return true;
  }

  #fast(me: number): boolean {
    const cell = this.#cell;
    if (Atomics.load(cell, STARVER) !== 0) return false;
    const w = Atomics.load(cell, WORD);
    if ((w & MAX_VALUE) === 0 || !this.#take(me, w)) return false;
    this.#ownerDied = false;
    return true;
  }

  /**
   * Takes a permit, waiting without blocking the event loop while none is free.
   *
   * @param options `block`, `timeout` (ms) and `signal`.
   * @returns `true` once taken; `false` on timeout or when not blocking.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * setTimeout(() => sem.release(), 10);
   * assert.equal(await sem.acquire(), true);
   * ```
   */
  async acquire(options?: AcquireOptions): Promise<boolean> {
    const { ms, signal } = acquireOptions(options, `${this.constructor.name}.acquire()`);
    throwIfAborted(signal);
    const me = selfIdent();
    if (this.#fast(me)) return true;
    return this.#done(await slowAsync(this.#gate, ms, signal));
  }

  /**
   * The blocking twin of {@linkcode Semaphore.acquire}.
   *
   * @param options `block` and `timeout` (ms).
   * @returns `true` once taken; `false` on timeout or when not blocking.
   * @throws {RangeError} when `timeout` is invalid.
   * @throws {TypeError} when `options` is not an object or `block` is not a boolean.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * assert.equal(sem.acquireSync({ timeout: 10 }), false);
   * ```
   */
  acquireSync(options?: AcquireOptions): boolean {
    const ms = options === undefined ? Infinity : acquireOptions(options, `${this.constructor.name}.acquireSync()`).ms;
    const me = selfIdent();
    if (this.#fast(me)) return true;
    if (ms !== 0) assertCanBlock(`${this.constructor.name}.acquireSync()`);
    return this.#done(slowSync(this.#gate, ms));
  }

  /**
   * Gives back `n` permits, waking as many waiters.
   *
   * @param n How many, an integer from 1 to 8,388,607.
   * @throws {RangeError} when `n` is not such an integer, or when the value
   *   would exceed the initial value (`BoundedSemaphore`) or 8,388,607.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(0);
   * sem.release(3);
   * assert.equal(sem.getValue(), 3);
   * ```
   */
  release(n: number = 1): void {
    const cell = this.#cell;
    if (n !== 1) checkInteger(n, `release ${this.constructor.name}`, "n", 1, MAX_VALUE);
    let s = this.#slot;
    if (s === -1) s = this.#claim(selfIdent());
    const at = s < 0 ? -1 : slotAt(s);
    const st = s < 0 ? 0 : cell[at + STATE];
    const held = st >>> 1;
    if (held === 0) {
      // Permits nobody here holds: new ones. Any pending move stays pending.
      for (;;) {
        const w = Atomics.load(cell, WORD);
        if ((w & MAX_VALUE) + n > this.#bound()) throw this.#tooMany();
        if (Atomics.compareExchange(cell, WORD, w, w + n) === w) break;
      }
      wake(cell, n);
      return;
    }
    const back = n < held ? n : held;
    const toggle = (st & 1) ^ 1;
    const tag = moveTag(back === 1 ? GIVE : GIVE_N, toggle, s);
    if (back > 1) cell[at + DELTA] = back;
    for (;;) {
      const w = Atomics.load(cell, WORD);
      if ((w & TAG) !== 0) {
        this.#waitMove(w);
        continue;
      }
      if (w + n > this.#bound()) throw this.#tooMany();
      this.#hook?.("give.start");
      if (Atomics.compareExchange(cell, WORD, w, (w + n) | tag) === w) break;
    }
    this.#hook?.("give.cas");
    cell[at + STATE] = ((held - back) << 1) | toggle;
    this.#hook?.("give.record");
    endMove(cell, n);
  }

  /** The most the value may reach: the initial value if bounded. */
  #bound(): number {
    return this.#cell[BOUNDED] ? this.#cell[INITIAL] : MAX_VALUE;
  }

  #tooMany(): RangeError {
    const name = this.constructor.name;
    return new RangeError(
      this.#cell[BOUNDED]
        ? `Cannot release ${name}: released too many times`
        : `Cannot release ${name}: its value would exceed ${MAX_VALUE}`,
    );
  }

  /**
   * Waits out another thread's pending move (a few instructions, unless that
   * thread was descheduled), or recovers its slot if that thread died.
   */
  #waitMove(w: number): void {
    const cell = this.#cell;
    if (this.#finishDead(selfIdent(), w) || spin(cell, WORD, w)) return;
    const bell = Atomics.load(cell, MOVE_BELL);
    Atomics.add(cell, MOVE_WAITERS, 1);
    if (Atomics.load(cell, WORD) === w) {
      if (canBlock) parkSync(cell, MOVE_BELL, bell, SLICE);
      else spin(cell, WORD, w);
    }
    Atomics.sub(cell, MOVE_WAITERS, 1);
  }

  /**
   * The number of free permits (a snapshot).
   *
   * @returns The current value.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Semaphore(5).getValue(), 5);
   * ```
   */
  getValue(): number {
    return Atomics.load(this.#cell, WORD) & MAX_VALUE;
  }

  /**
   * Takes a permit and returns a handle that gives it back when disposed.
   *
   * @param options As for {@linkcode Semaphore.acquire}.
   * @returns The held permit; rejects with `TimeoutError` when none came in time.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(1);
   * {
   *   await using _ = await sem.scoped();
   *   assert.equal(sem.getValue(), 0);
   * }
   * assert.equal(sem.getValue(), 1);
   * ```
   */
  scoped(options?: AcquireOptions): Promise<Acquired> {
    return scoped(this, "the semaphore", options);
  }

  /**
   * The blocking twin of {@linkcode Semaphore.scoped}.
   *
   * @param options As for {@linkcode Semaphore.acquireSync}.
   * @returns The held permit.
   * @throws {TimeoutError} when no permit came in time.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@mpjs/multiprocessing";
   * import assert from "node:assert/strict";
   *
   * const sem = new Semaphore(1);
   * {
   *   using _ = sem.scopedSync();
   *   assert.equal(sem.getValue(), 0);
   * }
   * assert.equal(sem.getValue(), 1);
   * ```
   */
  scopedSync(options?: AcquireOptions): Acquired {
    return scopedSync(this, "the semaphore", options);
  }

  /** `<Semaphore(value=1)>`. */
  toString(): string {
    return `<${this.constructor.name}(value=${this.getValue()})>`;
  }
}

/**
 * Python's `multiprocessing.BoundedSemaphore`: a {@linkcode Semaphore} whose
 * value may not rise above its initial value; releasing more than was taken
 * throws `RangeError` (Python's `ValueError`).
 *
 * @example
 * ```ts
 * import { BoundedSemaphore } from "@mpjs/multiprocessing";
 * import assert from "node:assert/strict";
 *
 * const sem = new BoundedSemaphore(1);
 * sem.acquireSync();
 * sem.release();
 * assert.throws(() => sem.release(), RangeError);
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  /**
   * Creates a bounded semaphore with `value` free permits.
   *
   * @param value The initial (and largest) number of permits, an integer ≥ 0.
   * @throws {RangeError} when `value` is not an integer ≥ 0.
   */
  constructor(value: number = 1) {
    super(value);
  }
}
