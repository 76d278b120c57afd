// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * Tells a thread's garbage collector about the growable `SharedArrayBuffer`s
 * it holds, which it does not count on its own.
 *
 * Each queue ring and each pipe channel has a growable `SharedArrayBuffer`,
 * which reserves its largest size as address space and takes two of the
 * process's memory mappings (at most `vm.max_map_count`, 65,530 by default
 * on Linux) until every thread that saw it has collected its object for it.
 * A collector weighs such a buffer by its few hundred bytes of objects, so a
 * program that makes and drops them fast (a server answering each request
 * on a fresh reply queue, whose buffers reach the server and the post office
 * too) may hold tens of thousands of dead ones, and the process runs out of
 * mappings.
 *
 * {@linkcode noteGrowable} is called for each such buffer a thread makes or
 * receives (`_ring.ts`, `_spsc.ts`, the post office). Every
 * {@linkcode NUDGE_EVERY}th call allocates an `ArrayBuffer` of
 * {@linkcode NUDGE_BYTES} and drops it at once: V8 (Deno, Node) counts an
 * `ArrayBuffer`'s length as external memory, and past its limit collects,
 * which frees the dead shared buffers too. An allocation that large gets
 * fresh zeroed pages from the system (glibc's allocator maps them directly
 * above 32 MiB): the nudge takes address space for a moment, and neither
 * memory nor writes. So a thread holds at most about `NUDGE_EVERY` dead
 * buffers more than its collector would free unprompted. Bun
 * (JavaScriptCore) frees such buffers without help, and zeroes a large
 * `ArrayBuffer` by writing it: there it does nothing. Measurements are in
 * `docs/reliability.md`.
 *
 * @module
 */

import { runtime } from "./_runtime.ts";

/** How many growable buffers a thread meets between two nudges. */
export const NUDGE_EVERY = 256;
/** Bytes of the `ArrayBuffer` a nudge allocates: enough external memory for V8 to collect. */
export const NUDGE_BYTES = 128 * 2 ** 20;

/** Whether nudges are wanted here: V8 runtimes only (see the module doc). */
let enabled = runtime !== "bun";
/** Growable buffers met since the last nudge. */
let met = 0;
/** Nudges made by this thread (for tests). */
let made = 0;

/**
 * Counts one growable `SharedArrayBuffer` made or received by this thread,
 * and nudges the collector every {@linkcode NUDGE_EVERY} of them.
 */
export function noteGrowable(): void {
  if (!enabled || ++met < NUDGE_EVERY) return;
  met = 0;
  made++;
  try {
    void new ArrayBuffer(NUDGE_BYTES);
  } catch {
    // No room for it right now: the next nudge tries again.
  }
}

/** Counts the growable `SharedArrayBuffer`s in a deposited handle's serialized data (two levels deep). */
export function noteGrowableIn(data: unknown, depth = 2): void {
  if (!enabled || typeof data !== "object" || data === null) return;
  if (data instanceof SharedArrayBuffer) {
    if (data.growable) noteGrowable();
    return;
  }
  if (depth === 0 || ArrayBuffer.isView(data)) return;
  for (const v of Object.values(data)) noteGrowableIn(v, depth - 1);
}

/**
 * For tests: how many nudges this thread made; `enable` turns nudging on or
 * off in this thread (to show what happens without it).
 */
export function nudges(enable?: boolean): number {
  if (enable !== undefined) enabled = enable;
  return made;
}
