// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Program-wide state shared by every thread: thread idents and which of them
 * are alive. The main thread creates it; each worker adopts its parent's copy
 * before any user code runs, so all threads see one table.
 *
 * Layout of the `Int32Array` over the buffer:
 *
 * | index            | who writes                | meaning                                   |
 * |------------------|---------------------------|-------------------------------------------|
 * | `NEXT_IDENT`     | any thread, `Atomics.add` | the next ident to hand out                |
 * | `DEATHS`         | whoever marks a death     | bumped (and notified) on each death       |
 * | `SLOTS + i`      | the thread's starter      | `ident` while alive (`i = ident % N`), 0 after |
 * | `HANDLE_IDS`     | any thread, `Atomics.add` | the last handle id handed out (`_post.ts`) |
 * | `OFFICE`         | a worker (`compareExchange` 0→1), the main thread (`store` 2) | post office: 0 down, 1 wanted, 2 up (`_mailbox.ts`) |
 * | `NAMES`          | any thread, `Atomics.add` | the last number given to a default thread name |
 *
 * A thread is alive while its slot holds its own ident. The slot is written
 * before the thread runs and cleared when it ends, by the thread itself on a
 * normal end and by its parent when it is terminated or crashes, so a lock
 * owned by a thread that died can be recognised and recovered.
 *
 * @module
 */

/** Index of the ident counter. */
const NEXT_IDENT = 0;
/** Index of the death counter (a futex sequence word). */
export const DEATHS = 1;
/** First alive slot. */
const SLOTS = 2;
/** Number of alive slots; idents wrap around it. */
const N_SLOTS = 65536;

/** Index of the handle id counter (after the slots). */
const HANDLE_IDS = SLOTS + N_SLOTS;
/** Index of the post office's state word. */
const OFFICE = HANDLE_IDS + 1;
/** Index of the counter of default thread names (`Thread-N`). */
const NAMES = OFFICE + 1;
/** `OFFICE` value: a worker wants the post office started. */
export const OFFICE_WANTED = 1;
/** `OFFICE` value: the post office runs. */
export const OFFICE_UP = 2;

/** The ident of the program's main thread. */
export const MAIN_IDENT = 1;

let table: Int32Array | undefined;
let self = MAIN_IDENT;

/** The calling thread's `{ name, ident }`, as `currentThread()` returns it. */
export const current: { name: string; readonly ident: number } = {
  name: "MainThread",
  get ident(): number {
    return self;
  },
};

/**
 * Marks the options with which a worker rebuilds the `Thread` it runs
 * (a subclass instance): that object then stands for the running thread.
 */
export const kAdopt: unique symbol = Symbol("mpjs.adopt");

function cells(): Int32Array {
  if (!table) {
    table = new Int32Array(new SharedArrayBuffer((NAMES + 1) * 4));
    table[NEXT_IDENT] = MAIN_IDENT + 1;
    table[SLOTS + MAIN_IDENT] = MAIN_IDENT;
  }
  return table;
}

/** The shared buffer, to hand to a worker at start. */
export function registryBuffer(): SharedArrayBuffer {
  return cells().buffer as SharedArrayBuffer;
}

/** Called first in a worker: adopt the parent's table and this thread's ident. */
export function adoptRegistry(buffer: SharedArrayBuffer, ident: number, name: string): void {
  table = new Int32Array(buffer);
  self = ident;
  current.name = name;
}

/** The ident of the calling thread. */
export function selfIdent(): number {
  return self;
}

/** The shared cells, for waiting on `DEATHS`. */
export function registryCells(): Int32Array {
  return cells();
}

/**
 * Hands out a new ident, unique among live threads, and marks it alive. An
 * ident whose slot a live thread still holds (one started 65,536 idents
 * earlier, or more) is skipped: taking the slot would make that thread read
 * as dead.
 *
 * @throws {Error} when every slot is held (65,536 live threads).
 */
export function newIdent(): number {
  const t = cells();
  for (let tries = 0; tries < N_SLOTS; tries++) {
    let ident = Atomics.add(t, NEXT_IDENT, 1);
    // Skip 0 (means "nobody") and wrap before the Int32 range ends.
    if (ident <= 0 || ident >= 0x7fff_fff0) {
      Atomics.compareExchange(t, NEXT_IDENT, ident + 1, MAIN_IDENT + 1);
      ident = Atomics.add(t, NEXT_IDENT, 1);
    }
    if (Atomics.compareExchange(t, SLOTS + (ident % N_SLOTS), 0, ident) === 0) return ident;
  }
  throw new Error(`Cannot start another thread: ${N_SLOTS} threads are alive`);
}

/** The next number for a default thread name, counted over the whole program, as Python does. */
export function nextNameNumber(): number {
  return Atomics.add(cells(), NAMES, 1) + 1;
}

/** A new id for a handle deposited at the post office, unique in the program (`_post.ts`). */
export function newHandleId(): number {
  return Atomics.add(cells(), HANDLE_IDS, 1) + 1;
}

/** The post office's state: 0 (down), {@linkcode OFFICE_WANTED} or {@linkcode OFFICE_UP}. */
export function officeState(): number {
  return Atomics.load(cells(), OFFICE);
}

/** A worker wants the post office (the main thread starts it when it sees this). */
export function wantOffice(): void {
  Atomics.compareExchange(cells(), OFFICE, 0, OFFICE_WANTED);
}

/** The main thread started the post office. */
export function markOfficeUp(): void {
  Atomics.store(cells(), OFFICE, OFFICE_UP);
}

/** Whether the thread with `ident` is alive. */
export function isIdentAlive(ident: number): boolean {
  if (ident <= 0) return false;
  return Atomics.load(cells(), SLOTS + (ident % N_SLOTS)) === ident;
}

/**
 * Whether the calling thread is still marked alive, read without an
 * `Atomics` operation (a plain read of shared memory may lag a moment
 * behind a `markDead` in another thread). For hot paths that check on every
 * operation and can afford to notice a moment late.
 */
export function isSelfAliveHint(): boolean {
  if (stopWord !== undefined && stopWord[stopIndex] !== 0) onStopAsked!();
  return self > 0 && cells()[SLOTS + (self % N_SLOTS)] === self;
}

let stopWord: Int32Array | undefined;
let stopIndex = 0;
let onStopAsked: (() => void) | undefined;

/**
 * In a thread that its parent may ask to stop (`_status.ts`): `hook` runs
 * when {@linkcode isSelfAliveHint} finds `word[index]` set, so that hot
 * paths which check on every operation are also points where the thread
 * stops itself.
 */
export function watchStop(word: Int32Array, index: number, hook: () => void): void {
  stopWord = word;
  stopIndex = index;
  onStopAsked = hook;
}

/** Marks `ident` dead and wakes whoever waits for deaths. Idempotent. */
export function markDead(ident: number): void {
  const t = cells();
  if (Atomics.compareExchange(t, SLOTS + (ident % N_SLOTS), ident, 0) === ident) {
    Atomics.add(t, DEATHS, 1);
    Atomics.notify(t, DEATHS);
  }
}

let importing = 0;

/**
 * Imports `module` as a worker's target module: while it runs, this thread
 * is still starting up, and starting threads or pools is refused
 * ({@linkcode assertStarted}).
 */
export async function importAsTarget(module: string): Promise<Record<string, unknown>> {
  importing++;
  try {
    return await import(module) as Record<string, unknown>;
  } finally {
    importing--;
  }
}

/**
 * Throws while this thread is still importing its target's module: a module
 * that starts a thread or a pool at top level, unguarded, would otherwise do
 * it again in every thread that imports it, without end (Python raises
 * RuntimeError in the same case).
 *
 * @throws {Error} naming the fix.
 */
export function assertStarted(what: string): void {
  if (importing === 0) return;
  throw new Error(
    `Cannot ${what} while this thread is still importing its target's module: the module's top-level code runs again in every thread that imports it. Guard the code that starts threads or pools with 'if (isMainThread) { … }'`,
  );
}

/** What the registry needs to know of a started thread. */
export interface ChildThread {
  readonly daemon: boolean;
  isAlive(): boolean;
  join(): Promise<void>;
  terminate(): Promise<void>;
}

/** The threads started from this thread that have not been seen to end. */
export const children: Set<ChildThread> = new Set();
