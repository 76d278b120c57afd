// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The shared-memory transport under `Queue`, `JoinableQueue` and
 * `SimpleQueue` (and reusable by anything that needs a multi-producer,
 * multi-consumer channel of byte records, such as a pool's task dispatch).
 *
 * A {@linkcode Ring} is a byte ring in one growable `SharedArrayBuffer`.
 * Producers append records at `TAIL`, consumers take them at `HEAD`; each
 * record is copied in once by its producer and out once by the consumer that
 * takes it. There is no broker thread and no `postMessage` per record.
 *
 * ## API
 *
 * - `Ring.create(maxsize)` / `Ring.from(memory)`: a new ring / the same ring
 *   in another thread (send `ring.memory` along).
 * - Blocking put and take, with a timeout (ms) and, for the Promise forms, a
 *   signal: `ring.putSync` / `ring.putAsync` return a {@linkcode PutStatus}
 *   (`OK`, `CLOSED`, or `FULL` once the time is up); `ring.takeSync` returns
 *   a {@linkcode Taken} record or a {@linkcode TakeStatus}, `ring.takeAsync`
 *   hands the record to a callback in the turn it is taken. The futex
 *   protocol (count yourself, read the word, re-check, park) is theirs alone.
 * - One attempt: `ring.put(bytes, kind, wait)` and `ring.take(wait)`, which
 *   may also return `BUSY` when `wait` is `false` and a lock is taken; for
 *   callers with a waiting policy of their own (the pool), `ring.itemsSeq()`
 *   and `ring.waitItems*` (a wait for a put after `itemsSeq()` was read).
 * - `ring.close()`, `ring.size()`, `ring.puts()`, `ring.hasRecords()`,
 *   `ring.isFull()`.
 * - Records are framed as `_record.ts` says; turning values into records
 *   (the codec, or raw bytes) is `_record.ts`'s too.
 *
 * ## Layout
 *
 * `cells` is an `Int32Array` over a `SharedArrayBuffer` of its own,
 * {@linkcode HEADER_BYTES} (1,036) bytes; the record area, `CAP` bytes long, is
 * a growable `SharedArrayBuffer`. They are apart because Bun (JavaScriptCore)
 * makes every access through a view of a growable buffer slower, even a
 * fixed-length one (measured: an `Atomics` operation 17 ns against 6 ns,
 * a plain read 3.6 ns against 0.7 ns), and a record costs about a dozen
 * accesses to the words below. Words are grouped by who touches them on
 * every record, each group on cache lines of its own: the producers' lock
 * group, the consumers' lock group, the "published" group (`TAIL`, which
 * consumers watch, with the bell they park on) and the "given back" group
 * (`HEAD` with the word producers wait on for room). A put then moves one
 * line the consumer reads (plus the record's), and a take one line the
 * producer reads only when its cached bound of `HEAD` runs out. Groups
 * start 256 bytes apart, not 64: a plain `SharedArrayBuffer` is only as
 * aligned as the runtime's allocator makes it (8 or 16 bytes), so words 64
 * bytes apart may still share a line, and processors also fetch lines in
 * pairs. (Measured with groups 64 bytes apart: 9 of 20 Deno processes ran a
 * one-to-one queue at half speed, the producer slowed by the consumer's
 * polling; 256 bytes apart, 1 of 20.)
 *
 * | index          | byte | written by                          | meaning                                          |
 * |----------------|------|-------------------------------------|--------------------------------------------------|
 * | `CAP`          | 0    | a producer holding both locks       | size of the record area (a power of two)         |
 * | `MAXSIZE`      | 4    | the creator                         | item limit, 0 = unbounded                        |
 * | `CLOSED`       | 8    | `close()`, holding `PLOCK`          | 1 once closed                                    |
 * | —              | 12–255 | nobody                            | padding                                          |
 * | `PLOCK`        | 256  | producers, `Atomics.compareExchange`| ident of the producer holding the lock, 0 = free |
 * | `PUTS`         | 264  | the `PLOCK` holder, after `TAIL`    | records ever appended                            |
 * | `P_END`        | 268  | the `PLOCK` holder                  | intent: `TAIL` after the put in progress         |
 * | `P_CNT`        | 272  | the `PLOCK` holder                  | intent: `PUTS` after the put in progress         |
 * | `PLOCK`+5      | 276  | producers waiting for `PLOCK`       | count, so unlock notifies only when needed       |
 * | `P_HEAD`       | 280  | the `PLOCK` holder                  | `HEAD` as last read by a producer (a lower bound)|
 * | `P_TAIL`       | 284  | the `PLOCK` holder                  | `TAIL` as last stored by a producer              |
 * | `CLOCK`        | 512  | consumers, `Atomics.compareExchange`| ident of the consumer holding the lock, 0 = free |
 * | `GETS`         | 520  | the `CLOCK` holder, after `HEAD`    | records ever taken                               |
 * | `C_END`        | 524  | the `CLOCK` holder                  | intent: `HEAD` after the take in progress        |
 * | `C_CNT`        | 528  | the `CLOCK` holder                  | intent: `GETS` after the take in progress        |
 * | `CLOCK`+5      | 532  | consumers waiting for `CLOCK`       | count                                            |
 * | `C_TAIL`       | 536  | the `CLOCK` holder                  | `TAIL` as last read by a consumer (a lower bound)|
 * | `C_MOVES`      | 544  | the `CLOCK` holder                  | moved-handle ids the take in progress must claim |
 * | `C_MOVED`      | 548–767 | the `CLOCK` holder               | those ids (at most 55)                           |
 * | `ITEMS_BELL`   | 768  | a producer waking a consumer, and `close` | futex word consumers park on           |
 * | `ITEM_WAITERS` | 772  | consumers (+1 to park), wakers and leavers (see "Wake-ups") | counted waiters not yet woken |
 * | `TAIL`         | 776  | the `PLOCK` holder, `Atomics.store` | byte position where the next record goes         |
 * | `ITEM_CREDITS` | 780  | wakers and leavers (see "Wake-ups") | waiters taken off `ITEM_WAITERS` by a waker, not yet gone |
 * | `SPACE_SEQ`    | 1024 | consumers (after a take, when a producer waits) and `close` | futex word: "room was made" |
 * | `SPACE_WAITERS`| 1028 | producers waiting for room          | count                                            |
 * | `HEAD`         | 1032 | the `CLOCK` holder, `Atomics.store` | byte position of the oldest record               |
 *
 * Words marked "the `PLOCK` holder" / "the `CLOCK` holder" without an
 * `Atomics` operation are plain reads and writes: taking the lock (an
 * `Atomics.compareExchange`) orders them after the previous holder's, and
 * the `Atomics.store` that publishes `TAIL` / `HEAD` orders them before
 * what a reader of that word does next. Every `Atomics` operation costs
 * 7–18 ns here (more than the rest of a small put), so the hot paths use as
 * few as they can: `P_HEAD` and `C_TAIL` spare reading the other side's
 * cache line on every record, and `P_TAIL` reading the published line that
 * waiting consumers poll.
 *
 * Positions (`TAIL`, `HEAD`) count bytes for ever, modulo 2^32; a position's
 * place in the record area is `position % CAP`, which stays consistent across
 * wrap-around because `CAP` is a power of two. Records are framed as
 * `_record.ts` says (`kind`, `length`, payload padded to 8 bytes); header
 * words never straddle the end of the area, payloads may wrap.
 *
 * ## Why it is correct, and survives a thread that dies mid-operation
 *
 * - Only the `PLOCK` holder writes past `TAIL` and moves `TAIL`; only the
 *   `CLOCK` holder reads records and moves `HEAD`. A record becomes visible
 *   with one `Atomics.store` to `TAIL`, after all its bytes are written, and
 *   its room is given back with one `Atomics.store` to `HEAD`, after all its
 *   bytes are copied out. So a producer that dies mid-copy leaves nothing
 *   visible, and a consumer that dies mid-copy leaves the record in place for
 *   the next consumer: every record of a completed put is taken exactly once.
 * - `PUTS`/`GETS` (hence `qsize`) are stored after `TAIL`/`HEAD`. The holder
 *   first records its intent (`P_END`, `P_CNT`), so whoever takes over the
 *   lock of a dead holder can finish the counter: if `TAIL === P_END` the
 *   record was published and `PUTS` must become `P_CNT`. `P_END` is stored
 *   before `P_CNT` and can never equal the old `TAIL`, so a half-written
 *   intent is never applied. The taker also copies `TAIL` to `P_TAIL`,
 *   which the dead holder may not have updated.
 * - A lock whose holder died is taken over at once. A thread is marked
 *   dead (`markDead`) only once its runtime confirmed it can run no more
 *   instructions, so a waiter that finds the holder's ident dead
 *   (`isIdentAlive`) swaps in its own with `Atomics.compareExchange` and
 *   finishes what the holder left (above), wherever it stopped. The
 *   holder's plain writes are visible to it: they came before the holder
 *   stopped, hence before the `Atomics` operation that marked it dead, which
 *   the waiter's read of the registry follows. Nothing is timed, so waiters
 *   that die in turn cannot put the takeover off: each waiter checks the
 *   holder before it parks, and a parked one at least every `SLICE` ms
 *   (it parks on the lock word, so the registry's death notification cannot
 *   reach it). As a guard should a thread ever run on once marked dead, it
 *   checks that it is still marked alive just before it publishes a put or
 *   a take.
 * - Growing happens when a record does not fit: the producer (holding
 *   `PLOCK`) also takes `CLOCK`, grows the buffer, copies the bytes whose
 *   place changes under the larger `CAP` to the new upper part (never over a
 *   byte still needed, since the old area is the lower part), then stores
 *   `CAP`. Dying before that store leaves the old ring intact. Positions do
 *   not change, so nothing else needs repair. Room is reused once drained;
 *   a growable buffer cannot shrink.
 * - Wake-ups: a writer changes the watched word, then reads the waiter count
 *   and notifies only if someone counted themselves (all `Atomics`
 *   operations are sequentially consistent). Consumers watch `TAIL`, which
 *   every put moves anyway: a consumer first spins on it uncounted, then
 *   counts itself in `ITEM_WAITERS`, reads `ITEMS_BELL`, checks `TAIL` and
 *   `CLOSED` once more and parks on `ITEMS_BELL`. A put that sees someone
 *   counted rings the bell (adds to `ITEMS_BELL`, then notifies); either the
 *   consumer's last check sees the put, or the put sees the count and the
 *   bell changes after the consumer read it, so `Atomics.wait` returns or
 *   is woken. A put with no counted consumer touches no word but `TAIL`
 *   (a shared counter bumped on every put cost a contended read-modify-write
 *   on the line consumers poll). The producer that wakes a
 *   consumer first moves one count from `ITEM_WAITERS` to `ITEM_CREDITS`,
 *   so the puts made while it wakes up (tens of µs) do not wake it again
 *   (see `docs/design.md`). When `notify` found nobody parked, the producer moves the
 *   count back. A consumer that stops waiting, for whatever reason (woken,
 *   timed out, aborted, or the word had changed), takes one off: a credit
 *   if there is one, else from `ITEM_WAITERS`. Every move between the two
 *   words adds to one before it takes from the other, so
 *   `ITEM_WAITERS + ITEM_CREDITS` never drops below the number of counted
 *   consumers (a taker that finds both at 0 looks again: the count is in
 *   flight), and a consumer takes from `ITEM_WAITERS` only when there is no
 *   credit. One window remains: a consumer whose count a producer moved,
 *   and whose `notify` found it not yet parked, may park before the count
 *   is moved back (it read the bell after the ring), and a put in that
 *   window sees no one counted. That put stored `TAIL` before the count came
 *   back, so the producer, after moving it back, rings once more if `TAIL`
 *   moved past its own record. So no wake-up is lost, and a wake-up result
 *   that reaches its waiter late (an async waiter aborted meanwhile) cannot
 *   unbalance the count (`tests/ring_test.ts` parks each side in this
 *   window). A take bumps `SPACE_SEQ`
 *   only when a producer has counted itself waiting for room, so producers
 *   count themselves before they first re-check. Either way a waiter sees
 *   the change or is woken. A put wakes one consumer, a take one producer:
 *   only waiters that can progress.
 * - Moved handles: an item carrying `Connection` ends lists their ids at
 *   the end of its payload (kind flag `MOVES`, `_record.ts`). The taker
 *   copies the ids to `C_MOVED` and their number to `C_MOVES` after its
 *   intent and before publishing `HEAD`, asks the post office for the ends
 *   (`claimMoved`: from then on they live or die with it) after publishing,
 *   and clears `C_MOVES`, all before it unlocks. A consumer that takes the
 *   lock over from a dead holder with `C_MOVES > 0` clears it, and if `HEAD`
 *   reached `C_END` (the take was published) tells the post office to close
 *   those ends (`closeMoved`): nobody can take that item any more (a take
 *   that finds the ring empty takes over a dead holder's lock for this
 *   too). If `HEAD`
 *   did not move, the item is still in, for the next taker. `C_MOVES` is
 *   written after `C_END`, so a non-zero count always goes with its own
 *   take's intent.
 * - Gathering: a consumer that finds records streaming in faster than it
 *   takes them pauses a few µs (up to 32) before taking, so that it takes
 *   several at a time instead of chasing the producer record by record
 *   (see `Ring.#gather`). It only delays a take; it changes no word.
 *
 * @module
 */

import { scratch, scratchWords } from "./_codec.ts";
import { claimMoved, closeMoved } from "./_post.ts";
import { Kind, KIND_WORD, LENGTH_WORD, movedIds, RECORD_HEADER, recordBytes } from "./_record.ts";
import { isIdentAlive, isSelfAliveHint, selfIdent } from "./_registry.ts";
import { bytesToOverwrite, canBlock } from "./_runtime.ts";
import {
  assertCanBlock,
  GATHER_MAX_MS,
  GATHER_MIN_MS,
  GATHER_PROBE_EVERY,
  GATHER_PROBE_MS,
  GATHER_RECORDS,
  LOCK_SPIN,
  notify,
  now,
  parkAsync,
  parkSync,
  RECHECK,
  SLICE,
  spin,
  waitAsync,
  waitSync,
  WOKEN_SPIN,
} from "./_wait.ts";

// Cell indices (see the table above). Each group of words starts a
// multiple of GROUP apart (see "Layout").
const GROUP = 64;
const CAP = 0;
const MAXSIZE = 1;
const CLOSED = 2;
// The two lock groups share one layout: the lock word, then, at these
// offsets from it, the side's record count, its intent (see "Why it is
// correct") and the count of threads waiting for the lock.
const COUNT_AT = 2;
const INTENT_END_AT = 3;
const INTENT_COUNT_AT = 4;
const WAITERS_AT = 5;
const PLOCK = GROUP;
const PUTS = PLOCK + COUNT_AT;
const P_END = PLOCK + INTENT_END_AT;
const P_CNT = PLOCK + INTENT_COUNT_AT;
const P_HEAD = PLOCK + 6;
const P_TAIL = PLOCK + 7;
const CLOCK = 2 * GROUP;
const GETS = CLOCK + COUNT_AT;
const C_END = CLOCK + INTENT_END_AT;
const C_CNT = CLOCK + INTENT_COUNT_AT;
const C_TAIL = CLOCK + 6;
/** How many moved-handle ids the take in progress must claim (see "Moved handles"). */
const C_MOVES = CLOCK + 8;
/** Those ids, from here on. */
const C_MOVED = CLOCK + 9;
/** The most ids a take records for its repair; an item's ends past these are claimed only by its decode. */
const MAX_MOVED = GROUP - 9;
// The futex words sit on lines of their own: waiters poll them while they
// spin, and polling a line the lock holder writes slows every put and take.
const ITEMS_BELL = 3 * GROUP;
const ITEM_WAITERS = ITEMS_BELL + 1;
const TAIL = ITEMS_BELL + 2;
const ITEM_CREDITS = ITEMS_BELL + 3;
const SPACE_SEQ = 4 * GROUP;
const SPACE_WAITERS = SPACE_SEQ + 1;
const HEAD = SPACE_SEQ + 2;

/** Bytes of a ring's control words. */
export const HEADER_BYTES = (4 * GROUP + 3) * 4;
/** Initial size of the record area. */
const INITIAL_CAP = 1 << 16;
/** Largest record area: 1 GiB (growable buffers reserve address space, not memory). */
export const MAX_CAP = 1 << 30;
/** The largest payload a ring can hold. */
export const MAX_PAYLOAD = MAX_CAP - RECORD_HEADER;
/** Payloads up to this many bytes are copied by a loop of words (cheaper than a view and `set`). */
const SMALL_COPY = 64;
/** Decrements `c[index]` if it is above 0; returns whether it did. */
function takeOne(c: Int32Array, index: number): boolean {
  for (let k = Atomics.load(c, index); k > 0;) {
    const seen = Atomics.compareExchange(c, index, k, k - 1);
    if (seen === k) return true;
    k = seen;
  }
  return false;
}

/**
 * Takes one off `ITEM_CREDITS + ITEM_WAITERS`, a credit if there is one: a
 * counted waiter for records that stops waiting, or a waker taking back what
 * it added (see "Wake-ups"). The sum always covers the caller's own count, so
 * one of the two is above 0 whenever it looks; it may look again while a
 * waker moves a count between them.
 */
function dropItemWaiter(c: Int32Array): void {
  while (!takeOne(c, ITEM_CREDITS) && !takeOne(c, ITEM_WAITERS));
}

/** Changes the futex word `c[index]` and wakes one thread parked on it; returns how many it woke (0 or 1). */
function bump(c: Int32Array, index: number): number {
  Atomics.add(c, index, 1);
  return notify(c, index, 1);
}

/**
 * The points of a put, a grow and a take where a {@linkcode setStopHook}
 * hook is called, in the order they are passed, each while the lock is held:
 * `locked` (just taken), `copied` (the record's bytes are copied, nothing
 * published), `end` (the intent's end position is stored), `intent` (its
 * count too), `published` (`TAIL` / `HEAD` is stored), `counted` (`PUTS` /
 * `GETS` too), and for a take of an item with moved handles `take:claimed`
 * (the post office was asked for them); a grow holds both locks: `grow:locked`, `grow:grown` (the
 * buffer is larger), `grow:moved` (the bytes are moved, `CAP` not stored),
 * `grow:stored` (`CAP` is stored). Two more points mark the wake-up windows
 * (see "Wake-ups" in the module doc), with no lock held: `wait:counted` (a
 * consumer counted itself in `ITEM_WAITERS`, not yet read the bell) and
 * `wake:unheard` (a producer rang for a moved count and `notify` found
 * nobody parked; the count is not yet moved back).
 */
export type StopPoint =
  | "put:locked"
  | "put:copied"
  | "put:end"
  | "put:intent"
  | "put:published"
  | "put:counted"
  | "grow:locked"
  | "grow:grown"
  | "grow:moved"
  | "grow:stored"
  | "take:locked"
  | "take:copied"
  | "take:end"
  | "take:intent"
  | "take:published"
  | "take:counted"
  | "take:claimed"
  | "wait:counted"
  | "wake:unheard";

let stopHook: ((point: StopPoint) => void) | undefined;

/**
 * For tests: calls `hook` at each {@linkcode StopPoint} this thread passes,
 * so a test can stop a thread there as if it were killed at that
 * instruction. `undefined` removes it.
 */
export function setStopHook(hook: ((point: StopPoint) => void) | undefined): void {
  stopHook = hook;
}

/** The error a thread marked dead (terminated) gets if it still runs. */
function terminated(): Error {
  return new Error("This thread was terminated: it may no longer use the queue");
}

/**
 * What one attempt to put or take ended with, when it did not take a
 * record. Numbers, so that `typeof result === "number"` tells a status from
 * a {@linkcode Taken}.
 */
export const RingStatus = {
  /** The record is in. */
  OK: 0,
  /** The ring holds `maxsize` records, or no room can be made (or a wait for room timed out). */
  FULL: 1,
  /** The ring is closed (for a take: closed and drained). */
  CLOSED: 2,
  /** A lock is held by someone else and the caller asked not to wait for it. */
  BUSY: 3,
  /** Nothing to take (or a wait for a record timed out). */
  EMPTY: 4,
} as const;
/** What a put ends with. */
export type PutStatus =
  | typeof RingStatus.OK
  | typeof RingStatus.FULL
  | typeof RingStatus.CLOSED
  | typeof RingStatus.BUSY;
/** What a take that took nothing ends with. */
export type TakeStatus = typeof RingStatus.EMPTY | typeof RingStatus.CLOSED | typeof RingStatus.BUSY;

// The statuses and kinds as plain module constants, for the hot paths.
const S_OK = RingStatus.OK;
const S_FULL = RingStatus.FULL;
const S_CLOSED = RingStatus.CLOSED;
const S_BUSY = RingStatus.BUSY;
const S_EMPTY = RingStatus.EMPTY;
const K_PLAIN = Kind.PLAIN;
const K_MOVES = Kind.MOVES;

/** Milliseconds left until `end` (`Infinity` without reading the clock). */
function remaining(end: number): number {
  return end === Infinity ? Infinity : end - now();
}

/** The end of a wait of `timeout` ms from now. */
function deadline(timeout: number): number {
  return timeout === Infinity ? Infinity : now() + timeout;
}

/**
 * A record taken from the ring: its payload is the first `length` bytes of
 * `bytes`. For codec records `bytes` may be this thread's scratch buffer,
 * valid until the next take; raw binary records get a buffer of their own.
 */
export interface Taken {
  kind: number;
  bytes: Uint8Array;
  length: number;
}

/** Whether words are stored little end first, as the small-record copies assume. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The shared memory of a ring: send it to another thread and call {@linkcode Ring.from}. */
export interface RingMemory {
  /** The control words ({@linkcode HEADER_BYTES} bytes). */
  cells: SharedArrayBuffer;
  /** The record area (growable). */
  data: SharedArrayBuffer;
}

/** A multi-producer, multi-consumer byte-record ring in shared memory. */
export class Ring {
  /** The shared memory: send it to another thread and call {@linkcode Ring.from}. */
  readonly memory: RingMemory;
  /** Item limit; 0 means unbounded. */
  readonly maxsize: number;
  #cells: Int32Array;
  // Fixed-length views of the record area for the current CAP: element
  // access through them is several times faster than through views that
  // track a growable buffer's length.
  #dataCap = 0;
  #data: Uint8Array = new Uint8Array(0);
  #dataWords: Int32Array = new Int32Array(0);
  /** Whether this thread's last wait for records ended with a producer's wake-up. */
  #woken = false;
  /** `TAIL` after this thread's last put (set by `#putLocked`). */
  #putEnd = 0;
  /** Bytes of the last record this thread took (at first, the smallest record). */
  #lastRec = RECORD_HEADER + 8;
  /** This thread's pause (ms) before taking records that streamed in (see `#gather`). */
  #gatherMs = 0;
  /** Waits since the last probe for a pause. */
  #gatherWaits = 0;

  private constructor(memory: RingMemory) {
    this.memory = memory;
    this.#cells = new Int32Array(memory.cells);
    this.maxsize = this.#cells[MAXSIZE];
  }

  /** Views of the record area when it is `cap` bytes long. */
  #area(cap: number): Uint8Array {
    if (cap !== this.#dataCap) {
      this.#data = new Uint8Array(this.memory.data, 0, cap);
      this.#dataWords = new Int32Array(this.memory.data, 0, cap >> 2);
      this.#dataCap = cap;
    }
    return this.#data;
  }

  /** A new, empty ring. `maxsize <= 0` means unbounded. */
  static create(maxsize: number): Ring {
    const memory: RingMemory = {
      cells: new SharedArrayBuffer(HEADER_BYTES),
      data: new SharedArrayBuffer(INITIAL_CAP, { maxByteLength: MAX_CAP }),
    };
    const cells = new Int32Array(memory.cells);
    cells[CAP] = INITIAL_CAP;
    cells[MAXSIZE] = maxsize > 0 ? maxsize : 0;
    return new Ring(memory);
  }

  /** The ring over `memory` (made by {@linkcode Ring.create} in any thread). */
  static from(memory: RingMemory): Ring {
    return new Ring(memory);
  }

  /**
   * Records ever put (modulo 2^32, as an int32), counted with the put's
   * publication (a dead producer's count is finished by the next one): for
   * callers that count work done against work put, such as `JoinableQueue`.
   */
  puts(): number {
    return Atomics.load(this.#cells, PUTS);
  }

  /** Records in the ring now (a snapshot). */
  size(): number {
    const n = (Atomics.load(this.#cells, PUTS) - Atomics.load(this.#cells, GETS)) | 0;
    return n < 0 ? 0 : n;
  }

  /**
   * Whether a record is waiting (a snapshot). Unlike {@linkcode Ring.size},
   * which counts with `PUTS`/`GETS` (stored just after `TAIL`/`HEAD`), it
   * sees a put as soon as {@linkcode Ring.itemsSeq} does.
   */
  hasRecords(): boolean {
    return Atomics.load(this.#cells, HEAD) !== Atomics.load(this.#cells, TAIL);
  }

  /**
   * Passes wake-ups on, for an async waiter that gives up (its signal
   * aborted) when it may have just been woken: a put or take wakes one
   * waiter, and if that one leaves without taking the record (or using the
   * room), the others would sleep through it until their re-check.
   */
  #passWake(): void {
    const c = this.#cells;
    if (this.hasRecords() && Atomics.load(c, ITEM_WAITERS) > 0) bump(c, ITEMS_BELL);
    if (!this.isFull()) this.#wakeSpaceWaiter();
  }

  /** Whether the ring holds `maxsize` records (a snapshot). */
  isFull(): boolean {
    return this.maxsize > 0 && this.size() >= this.maxsize;
  }

  /** Whether the ring was closed. */
  get closed(): boolean {
    return Atomics.load(this.#cells, CLOSED) === 1;
  }

  // ---- locks ---------------------------------------------------------------

  /** Tries to take a lock, spinning briefly. */
  #tryLock(lock: number, spin: number): boolean {
    const c = this.#cells;
    // Try at once: an uncontended compareExchange costs no more than a load.
    if (Atomics.compareExchange(c, lock, 0, selfIdent()) === 0) return true;
    for (let i = 0; i < spin; i++) {
      if (Atomics.load(c, lock) === 0 && Atomics.compareExchange(c, lock, 0, selfIdent()) === 0) return true;
    }
    return false;
  }

  /**
   * Takes `lock` over if its holder `owner` is dead (it has stopped: see the
   * module doc), finishing what the holder left half done.
   */
  #takeOver(lock: number, owner: number): boolean {
    if (isIdentAlive(owner)) return false;
    if (Atomics.compareExchange(this.#cells, lock, owner, selfIdent()) !== owner) return false;
    this.#repair(lock);
    return true;
  }

  /** Finishes the counter update of a holder that died (see the module doc). */
  #repair(lock: number): void {
    const c = this.#cells;
    // The side's position word (TAIL / HEAD) reached the intended end: the count goes with it.
    const at = Atomics.load(c, lock === PLOCK ? TAIL : HEAD);
    if (at === Atomics.load(c, lock + INTENT_END_AT)) {
      Atomics.store(c, lock + COUNT_AT, Atomics.load(c, lock + INTENT_COUNT_AT));
    }
    if (lock === PLOCK) Atomics.store(c, P_TAIL, at); // TAIL is the truth: the dead holder may not have copied it
    else if (c[C_MOVES] > 0) {
      // A take of an item with moved handles: published and not claimed, they are closed; else the item is still in.
      const n = c[C_MOVES];
      c[C_MOVES] = 0;
      if (at === Atomics.load(c, C_END)) closeMoved(Array.from(c.subarray(C_MOVED, C_MOVED + n)));
    }
  }

  /** Takes a lock, waiting (blocking) as long as needed. */
  #lockSync(lock: number): void {
    if (this.#tryLock(lock, LOCK_SPIN)) return;
    const c = this.#cells;
    Atomics.add(c, lock + WAITERS_AT, 1);
    try {
      for (;;) {
        const owner = Atomics.load(c, lock);
        if (owner === 0) {
          if (Atomics.compareExchange(c, lock, 0, selfIdent()) === 0) return;
          continue;
        }
        if (this.#takeOver(lock, owner)) return;
        if (canBlock) waitSync(c, lock, owner, SLICE);
        else {
          // A browser main thread may not block: poll for a slice.
          const end = performance.now() + SLICE;
          while (Atomics.load(c, lock) === owner && performance.now() < end);
        }
      }
    } finally {
      Atomics.sub(c, lock + WAITERS_AT, 1);
    }
  }

  /** Takes a lock without blocking the event loop. */
  async #lockAsync(lock: number): Promise<void> {
    if (this.#tryLock(lock, LOCK_SPIN)) return;
    const c = this.#cells;
    Atomics.add(c, lock + WAITERS_AT, 1);
    try {
      for (;;) {
        const owner = Atomics.load(c, lock);
        if (owner === 0) {
          if (Atomics.compareExchange(c, lock, 0, selfIdent()) === 0) return;
          continue;
        }
        if (this.#takeOver(lock, owner)) return;
        await waitAsync(c, lock, owner, SLICE);
      }
    } finally {
      Atomics.sub(c, lock + WAITERS_AT, 1);
    }
  }

  #unlock(lock: number): void {
    const c = this.#cells;
    Atomics.store(c, lock, 0);
    if (Atomics.load(c, lock + WAITERS_AT) > 0) notify(c, lock, 1);
  }

  /** Waits, without blocking, until `lock` is free. */
  async #lockFree(lock: number): Promise<void> {
    await this.#lockAsync(lock);
    this.#unlock(lock);
  }

  // ---- put / take ----------------------------------------------------------

  /**
   * One attempt to append a record: its payload is `bytes[start..end)`.
   *
   * @param wait Whether to wait for a lock held by another thread (briefly:
   *   locks are held only while a record is copied). When `false` and a lock
   *   is taken, returns `BUSY`.
   * @returns `OK`, `FULL` (maxsize reached, or no room even at the largest
   *   size), `CLOSED` or `BUSY`.
   */
  put(bytes: Uint8Array, kind: number, wait: boolean, start = 0, end: number = bytes.length): PutStatus {
    if (wait) this.#lockSync(PLOCK);
    else if (!this.#tryLock(PLOCK, LOCK_SPIN)) return S_BUSY;
    let status: PutStatus;
    try {
      status = this.#putLocked(bytes, start, end, kind, wait);
    } finally {
      this.#unlock(PLOCK);
    }
    // TAIL is what spinning consumers watch; the bell rings only for those
    // counted as parked (see "Wake-ups" in the module doc).
    if (status === S_OK && Atomics.load(this.#cells, ITEM_WAITERS) > 0) {
      this.#wakeItemWaiter(this.#cells, this.#putEnd);
    }
    return status;
  }

  /**
   * Wakes one thread counted in ITEM_WAITERS, moving its count to
   * ITEM_CREDITS first (see "Wake-ups" in the module doc): the puts made
   * while it wakes up (tens of µs) then see no waiter and skip `notify`.
   * Every move adds before it takes, so the sum of the two never drops below
   * the number of counted waiters.
   */
  #wakeItemWaiter(c: Int32Array, end: number): void {
    Atomics.add(c, ITEM_CREDITS, 1);
    if (!takeOne(c, ITEM_WAITERS)) {
      dropItemWaiter(c); // everyone left meanwhile: take the credit back
      return;
    }
    if (bump(c, ITEMS_BELL) === 0) {
      if (stopHook !== undefined) stopHook("wake:unheard");
      // Nobody parked (the waiter has not parked yet, or is leaving on its
      // own): move the count back, unless a leaving waiter took the credit.
      Atomics.add(c, ITEM_WAITERS, 1);
      dropItemWaiter(c);
      // Meanwhile the waiter may have parked after all (it read the bell
      // after the ring above), uncounted, and a put may have seen no one to
      // wake. Such a put stored TAIL before this thread gave the count back:
      // if TAIL moved past this put's record, ring once more.
      if (Atomics.load(c, TAIL) !== end && Atomics.load(c, ITEM_WAITERS) > 0) bump(c, ITEMS_BELL);
    }
  }

  #putLocked(bytes: Uint8Array, start: number, stop: number, kind: number, wait: boolean): PutStatus {
    const c = this.#cells;
    if (stopHook !== undefined) stopHook("put:locked");
    // Plain reads of what only PLOCK holders write: taking the lock (an
    // Atomics.compareExchange) orders them after the last holder's writes.
    if (c[CLOSED] === 1) return S_CLOSED;
    const puts = c[PUTS];
    if (this.maxsize > 0 && ((puts - Atomics.load(c, GETS)) | 0) >= this.maxsize) return S_FULL;
    const len = stop - start;
    const rec = recordBytes(len);
    // The producers' copy of TAIL: the published line is polled by waiting
    // consumers, and reading it here before storing it costs a second
    // cache-line transfer per put when they are on another core.
    const tail = c[P_TAIL];
    let cap = c[CAP];
    // P_HEAD is a lower bound of HEAD: read HEAD itself only when it says "no room".
    if (cap - ((tail - c[P_HEAD]) >>> 0) < rec && cap - ((tail - (c[P_HEAD] = Atomics.load(c, HEAD))) >>> 0) < rec) {
      if (rec > MAX_CAP) return S_FULL;
      const grown = this.#grow(tail, rec, wait);
      if (grown === S_BUSY) return S_BUSY;
      if (grown === S_FULL) return S_FULL;
      cap = grown;
    }
    const mask = cap - 1; // cap is a power of two
    const at = tail & mask;
    const data = this.#area(cap);
    const w = this.#dataWords;
    w[(at >> 2) + KIND_WORD] = kind;
    w[(at >> 2) + LENGTH_WORD] = len;
    // The header never straddles the end (8-aligned records, 8-aligned cap).
    const p = (at + RECORD_HEADER) & mask;
    if (len <= cap - p) {
      if (len <= SMALL_COPY && LITTLE_ENDIAN) {
        // Whole words (p is 4-aligned; the record's padding takes the last
        // word's spare bytes): a quarter of the accesses to shared memory.
        const q = p >> 2;
        let k = 0;
        for (; k + 4 <= len; k += 4) {
          const i = start + k;
          w[q + (k >> 2)] = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
        }
        for (; k < len; k++) data[p + k] = bytes[start + k];
      } else {
        data.set(start === 0 && stop === bytes.length ? bytes : bytes.subarray(start, stop), p);
      }
    } else {
      const first = cap - p;
      data.set(bytes.subarray(start, start + first), p);
      data.set(bytes.subarray(start + first, stop), 0);
    }
    if (stopHook !== undefined) stopHook("put:copied");
    // A thread marked dead must not publish (a guard: see the module doc).
    if (!isSelfAliveHint()) throw terminated();
    const end = (tail + rec) | 0;
    // The intent (plain writes, published with TAIL), then TAIL, then PUTS
    // (a plain write: the unlock publishes it).
    c[P_END] = end;
    if (stopHook !== undefined) stopHook("put:end");
    c[P_CNT] = (puts + 1) | 0;
    if (stopHook !== undefined) stopHook("put:intent");
    Atomics.store(c, TAIL, end);
    if (stopHook !== undefined) stopHook("put:published");
    c[PUTS] = (puts + 1) | 0;
    if (stopHook !== undefined) stopHook("put:counted");
    c[P_TAIL] = end;
    this.#putEnd = end;
    return S_OK;
  }

  /** Makes room for `rec` more bytes; returns the new capacity, FULL or BUSY. */
  #grow(tail: number, rec: number, wait: boolean): number {
    const c = this.#cells;
    if (wait) this.#lockSync(CLOCK);
    else if (!this.#tryLock(CLOCK, LOCK_SPIN)) return S_BUSY;
    try {
      if (stopHook !== undefined) stopHook("grow:locked");
      const cap = Atomics.load(c, CAP);
      const head = Atomics.load(c, HEAD);
      const used = (tail - head) >>> 0;
      if (cap - used >= rec) return cap; // a consumer made room meanwhile
      let next = cap;
      while (next - used < rec) next *= 2;
      if (next > MAX_CAP) return S_FULL;
      const data = this.memory.data;
      if (data.byteLength < next) data.grow(next);
      if (stopHook !== undefined) stopHook("grow:grown");
      // Move the bytes whose place changes (see the module doc).
      const u8 = new Uint8Array(data);
      let pos = head >>> 0;
      let left = used;
      while (left > 0) {
        const from = pos % cap;
        const n = Math.min(left, cap - from);
        const to = pos % next;
        if (to !== from) u8.copyWithin(to, from, from + n);
        pos = (pos + n) >>> 0;
        left -= n;
      }
      if (stopHook !== undefined) stopHook("grow:moved");
      Atomics.store(c, CAP, next);
      if (stopHook !== undefined) stopHook("grow:stored");
      return next;
    } finally {
      this.#unlock(CLOCK);
    }
  }

  /**
   * Removes the oldest record.
   *
   * @param wait Whether to wait for the consumer lock (see {@linkcode Ring.put}).
   * @returns The record, or `EMPTY`, `CLOSED` (closed and drained) or `BUSY`.
   */
  take(wait: boolean): Taken | TakeStatus {
    const c = this.#cells;
    // Unlocked peek (plain reads of HEAD and C_TAIL may be stale; the lock
    // holder checks again): nothing to take, so skip the lock.
    const head = c[HEAD];
    if (head === c[C_TAIL] && head === Atomics.load(c, TAIL)) {
      // A consumer that died holding the lock is repaired here too (its moved handles closed), even while
      // nothing is left to take.
      const owner = c[CLOCK];
      if (owner !== 0 && !isIdentAlive(owner) && this.#takeOver(CLOCK, owner)) this.#unlock(CLOCK);
      return this.#emptyOrClosed();
    }
    if (wait) this.#lockSync(CLOCK);
    else if (!this.#tryLock(CLOCK, LOCK_SPIN)) return S_BUSY;
    let got: Taken | undefined;
    try {
      got = this.#takeLocked();
    } finally {
      this.#unlock(CLOCK);
    }
    if (!got) return this.#emptyOrClosed();
    this.#wakeSpaceWaiter();
    return got;
  }

  /** Wakes one producer waiting for room, if one has counted itself (see "Wake-ups" in the module doc). */
  #wakeSpaceWaiter(): void {
    if (Atomics.load(this.#cells, SPACE_WAITERS) > 0) bump(this.#cells, SPACE_SEQ);
  }

  #emptyOrClosed(): TakeStatus {
    const c = this.#cells;
    if (Atomics.load(c, CLOSED) !== 1) return S_EMPTY;
    // close() sets CLOSED while holding PLOCK, so no record appears after it
    // is seen: re-check for one published just before.
    return Atomics.load(c, HEAD) === Atomics.load(c, TAIL) ? S_CLOSED : S_EMPTY;
  }

  #takeLocked(): Taken | undefined {
    const c = this.#cells;
    if (stopHook !== undefined) stopHook("take:locked");
    // Plain reads of what only CLOCK holders write (CAP too: a grower holds both locks).
    const head = c[HEAD];
    // C_TAIL is a lower bound of TAIL: read TAIL itself only when it says "empty".
    if (head === c[C_TAIL] && head === (c[C_TAIL] = Atomics.load(c, TAIL))) return undefined;
    const cap = c[CAP];
    const at = (head >>> 0) % cap;
    const data = this.#area(cap);
    const kind = this.#dataWords[(at >> 2) + KIND_WORD];
    const len = this.#dataWords[(at >> 2) + LENGTH_WORD];
    // Codec records are copied to the codec's scratch buffer (decoded at once), others to a buffer of their own.
    const toScratch = kind <= K_PLAIN ? scratch(len) : undefined; // not MOVES records (kind >= 0x80)
    const out = toScratch ?? bytesToOverwrite(len);
    const p = (at + RECORD_HEADER) % cap;
    const first = Math.min(len, cap - p);
    if (first === len && len <= SMALL_COPY && toScratch !== undefined) {
      // Whole words (see #putLocked); the scratch buffer has room for the last word's padding.
      const ow = scratchWords();
      const w = this.#dataWords;
      const q = p >> 2;
      for (let k = 0, n = (len + 3) >> 2; k < n; k++) ow[k] = w[q + k];
    } else {
      out.set(data.subarray(p, p + first));
      if (first < len) out.set(data.subarray(0, len - first), first);
    }
    if (stopHook !== undefined) stopHook("take:copied");
    if (!isSelfAliveHint()) throw terminated();
    const gets = c[GETS];
    const end = (head + recordBytes(len)) | 0;
    this.#lastRec = end - head;
    c[C_END] = end;
    if (stopHook !== undefined) stopHook("take:end");
    c[C_CNT] = (gets + 1) | 0;
    // The moved handles to claim, after the intent (see "Moved handles").
    const moved = (kind & K_MOVES) !== 0 ? movedIds(out, len) : undefined;
    if (moved !== undefined) {
      const n = Math.min(moved.length, MAX_MOVED);
      for (let k = 0; k < n; k++) c[C_MOVED + k] = moved[k];
      c[C_MOVES] = n;
    }
    if (stopHook !== undefined) stopHook("take:intent");
    Atomics.store(c, HEAD, end);
    if (stopHook !== undefined) stopHook("take:published");
    c[GETS] = (gets + 1) | 0;
    if (stopHook !== undefined) stopHook("take:counted");
    if (moved !== undefined) {
      try {
        claimMoved(moved);
      } finally {
        c[C_MOVES] = 0; // cleared even if the claim threw, so that no later repair closes these ids
      }
      if (stopHook !== undefined) stopHook("take:claimed");
    }
    return { kind, bytes: out, length: len };
  }

  // ---- blocking put / take --------------------------------------------------

  /**
   * Appends a record, blocking the thread while the ring is full, for at
   * most `timeout` ms (0: one attempt). The thread parks on `SPACE_SEQ`,
   * counted in `SPACE_WAITERS` from before it reads that word (see
   * "Wake-ups").
   *
   * @returns `OK`, `CLOSED`, or `FULL` when no room came in time.
   */
  putSync(bytes: Uint8Array, kind: number, timeout: number, start = 0, end: number = bytes.length): PutStatus {
    const first = this.put(bytes, kind, true, start, end);
    if (first !== S_FULL || !(timeout > 0)) return first;
    const until = deadline(timeout);
    const c = this.#cells;
    Atomics.add(c, SPACE_WAITERS, 1);
    try {
      for (;;) {
        const seq = Atomics.load(c, SPACE_SEQ);
        const status = this.put(bytes, kind, true, start, end);
        if (status !== S_FULL) return status;
        const left = remaining(until);
        if (left <= 0) return S_FULL;
        waitSync(c, SPACE_SEQ, seq, Math.min(left, RECHECK));
      }
    } finally {
      Atomics.sub(c, SPACE_WAITERS, 1);
    }
  }

  /**
   * The Promise twin of {@linkcode Ring.putSync}: waits without blocking,
   * for a lock held by another thread as well as for room. `bytes` must
   * not change until the Promise settles.
   *
   * @returns `OK`, `CLOSED`, or `FULL` when no room came in time.
   * @throws the signal's reason (rejects) when `signal` aborts; nothing is put.
   */
  async putAsync(
    bytes: Uint8Array,
    kind: number,
    timeout: number,
    signal?: AbortSignal,
    start = 0,
    end: number = bytes.length,
  ): Promise<PutStatus> {
    const c = this.#cells;
    const until = deadline(timeout);
    let counted = false;
    try {
      for (;;) {
        if (signal?.aborted) throw signal.reason;
        const seq = Atomics.load(c, SPACE_SEQ);
        const status = this.put(bytes, kind, false, start, end);
        if (status === S_BUSY) {
          // A lock is held by another thread, briefly (a grow holds both): wait for them without blocking.
          await this.#lockFree(PLOCK);
          await this.#lockFree(CLOCK);
          continue;
        }
        if (status !== S_FULL) return status;
        const left = remaining(until);
        if (left <= 0) return S_FULL;
        if (!counted) {
          // Counted first, then a fresh read of the word and a re-check (the loop), so no take is missed.
          Atomics.add(c, SPACE_WAITERS, 1);
          counted = true;
          continue;
        }
        await waitAsync(c, SPACE_SEQ, seq, Math.min(left, RECHECK), signal);
      }
    } catch (error) {
      // A take may have spent its wake-up on this call: pass it on.
      if (signal?.aborted) this.#passWake();
      throw error;
    } finally {
      if (counted) Atomics.sub(c, SPACE_WAITERS, 1);
    }
  }

  /**
   * Removes the oldest record, blocking the thread while the ring is empty,
   * for at most `timeout` ms (0: one attempt).
   *
   * @param what How to name the caller if this thread may not block.
   * @returns The record (decode it at once, see {@linkcode Taken}), `CLOSED`
   *   (closed and drained), or `EMPTY` when none came in time.
   */
  takeSync(timeout: number, what = "a blocking take"): Taken | TakeStatus {
    const first = this.take(true);
    if (first !== S_EMPTY || !(timeout > 0)) return first;
    assertCanBlock(what);
    const until = deadline(timeout);
    for (;;) {
      // Read the word, then re-check: a put in between changes the word.
      const seq = this.itemsSeq();
      const got = this.take(true);
      if (got !== S_EMPTY) return got;
      const left = remaining(until);
      if (left <= 0) return S_EMPTY;
      this.waitItemsSync(seq, Math.min(left, RECHECK));
    }
  }

  /**
   * The Promise twin of {@linkcode Ring.takeSync}. The record is handed to
   * `read` in the same turn as it is taken (a codec record's bytes are this
   * thread's scratch buffer, which another take may reuse after an `await`).
   *
   * @returns `OK` (after `read` ran), `CLOSED` (closed and drained), or
   *   `EMPTY` when no record came in time.
   * @throws the signal's reason (rejects) when `signal` aborts; nothing is taken.
   */
  async takeAsync(
    read: (taken: Taken) => void,
    timeout: number,
    signal?: AbortSignal,
  ): Promise<typeof RingStatus.OK | typeof RingStatus.EMPTY | typeof RingStatus.CLOSED> {
    const until = deadline(timeout);
    let got = this.take(false);
    let seq: number | undefined;
    try {
      for (;;) {
        if (typeof got === "object") {
          read(got);
          return S_OK;
        }
        if (got === S_CLOSED) return got;
        if (got === S_BUSY) {
          // The consumer lock is held by another thread, briefly: wait without blocking.
          await this.#lockFree(CLOCK);
        } else if (seq !== undefined) {
          const left = remaining(until);
          if (left <= 0) return S_EMPTY;
          await this.waitItems(seq, Math.min(left, RECHECK), signal);
        }
        if (signal?.aborted) throw signal.reason;
        // Read the word, then re-check: a put in between changes the word.
        seq = this.itemsSeq();
        got = this.take(false);
      }
    } catch (error) {
      // A put may have spent its wake-up on this call: pass it on.
      if (signal?.aborted) this.#passWake();
      throw error;
    }
  }

  // ---- waiting for records / room ------------------------------------------

  /**
   * The current value of the "records added" word, to pass to
   * {@linkcode Ring.waitItemsSync} / {@linkcode Ring.waitItems}: `TAIL`,
   * which every put moves.
   */
  itemsSeq(): number {
    return Atomics.load(this.#cells, TAIL);
  }

  /**
   * Blocks while the "records added" word equals `seq` and the ring is open:
   * spins first, then counts itself as a waiter and parks on the bell (see
   * "Wake-ups" in the module doc).
   */
  waitItemsSync(seq: number, timeout: number): void {
    const c = this.#cells;
    if (this.#woken) {
      // A producer woke this thread a moment ago, so it is putting now: watch
      // for its next record for longer than the adaptive spin would, rather
      // than park again and have it pay for a wake-up on every record.
      this.#woken = false;
      for (let i = 0; i < WOKEN_SPIN; i++) if (Atomics.load(c, TAIL) !== seq) return this.#gather(c, seq);
    } else if (spin(c, TAIL, seq)) return this.#gather(c, seq);
    Atomics.add(c, ITEM_WAITERS, 1);
    if (stopHook !== undefined) stopHook("wait:counted");
    try {
      const bell = Atomics.load(c, ITEMS_BELL);
      if (this.#itemsChanged(seq)) return;
      this.#woken = parkSync(c, ITEMS_BELL, bell, timeout) === "ok";
    } finally {
      dropItemWaiter(c);
    }
  }

  /**
   * Called when a record arrived while this thread spun for one: pauses
   * before taking it when producers stream records faster than this thread
   * takes them. A consumer that keeps up takes each record the moment it is
   * published, so every put and every take moves the published line and the
   * record's line between the two cores (each poll of `TAIL` pulls the line
   * back, and the producer's next store must take it again); pausing lets
   * several records gather in lines the consumer is not reading, and then
   * they are taken with one read of `TAIL`. Measured on the project's
   * 2-core VM, rounds with and without it alternating in one process:
   * 1→1 small items +12–68% on Deno and Bun (no change on Node), 4 × 4
   * threads +3–21%.
   *
   * The pause adapts: while pausing, it doubles (up to
   * {@linkcode GATHER_MAX_MS}) when at least {@linkcode GATHER_RECORDS}
   * records came in it and halves otherwise, until it is dropped; while not
   * pausing, every {@linkcode GATHER_PROBE_EVERY}th wait tries one. So a
   * consumer answered one record at a time (request and reply) pays a few
   * µs per 1,024 waits, not a pause per record. (A probe every 64 waits
   * cost such a pair 0.7 µs per round trip: a paused reply can make the
   * other side give up spinning and park, and waking it costs ~50 µs.) A
   * pause never holds a lock and ends within {@linkcode GATHER_MAX_MS}, so
   * it cannot delay `close`, a timeout or another consumer.
   */
  #gather(c: Int32Array, seq: number): void {
    let pause = this.#gatherMs;
    if (pause === 0) {
      if (++this.#gatherWaits < GATHER_PROBE_EVERY) return;
      this.#gatherWaits = 0;
      pause = GATHER_PROBE_MS;
    }
    const until = performance.now() + pause;
    while (performance.now() < until) { /* let records gather */ }
    const gathered = (Atomics.load(c, TAIL) - seq) >>> 0;
    if (gathered >= GATHER_RECORDS * this.#lastRec) this.#gatherMs = Math.min(GATHER_MAX_MS, pause * 2);
    else this.#gatherMs = pause / 2 < GATHER_MIN_MS ? 0 : pause / 2;
  }

  /**
   * The last check of a consumer counted in `ITEM_WAITERS`, after reading
   * the bell and before parking on it: a put or `close` since `seq` was read.
   */
  #itemsChanged(seq: number): boolean {
    return Atomics.load(this.#cells, TAIL) !== seq || Atomics.load(this.#cells, CLOSED) === 1;
  }

  /** The Promise twin of {@linkcode Ring.waitItemsSync}. */
  async waitItems(seq: number, timeout: number, signal?: AbortSignal): Promise<unknown> {
    const c = this.#cells;
    if (spin(c, TAIL, seq, true)) return "not-equal";
    Atomics.add(c, ITEM_WAITERS, 1);
    try {
      const bell = Atomics.load(c, ITEMS_BELL);
      if (this.#itemsChanged(seq)) return "not-equal";
      return await parkAsync(c, ITEMS_BELL, bell, timeout, signal);
    } finally {
      dropItemWaiter(c);
    }
  }

  /**
   * Closes the ring for every thread and wakes all waiters. Records already
   * in stay takeable. Idempotent.
   */
  close(): void {
    const c = this.#cells;
    if (Atomics.load(c, CLOSED) === 1) return;
    // Under PLOCK, so no put is half-way: a put either finished before or sees CLOSED.
    this.#lockSync(PLOCK);
    Atomics.store(c, CLOSED, 1);
    this.#unlock(PLOCK);
    Atomics.add(c, ITEMS_BELL, 1);
    Atomics.add(c, SPACE_SEQ, 1);
    notify(c, ITEMS_BELL);
    notify(c, SPACE_SEQ);
  }
}
