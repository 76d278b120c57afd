// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The pool's bulk area (see "Bulk area" in `_pool_protocol.ts`): a growable
 * `SharedArrayBuffer` of float64 elements where a `map` of many numbers is
 * written once, each chunk then read and overwritten in place by the worker
 * that takes it. Only the owner allocates and grows it; parts are handed
 * out upwards and the area restarts from element 0 only when the caller
 * says no worker can still touch a part.
 *
 * @module
 */

/** Largest size of the bulk area (a growable buffer reserves address space, not memory). */
export const BULK_MAX = 1 << 30;

/** The owner's side of the bulk area. */
export class BulkArea {
  /** The shared buffer the workers get. */
  readonly buffer: SharedArrayBuffer;
  /** Float64 elements in use, from 0. */
  #top = 0;
  #max: number;

  /** @param max Largest size in bytes. */
  constructor(max: number = BULK_MAX) {
    this.#max = max;
    this.buffer = new SharedArrayBuffer(0, { maxByteLength: max });
  }

  /**
   * Copies `items` into a fresh part of the area.
   *
   * @param inUse Whether a worker may still touch a part handed out before
   *   (when not, the area restarts from element 0).
   * @returns The part (its first element is `byteOffset / 8`), or
   *   `undefined` (nothing handed out) when an item is not a number or the
   *   area would pass its largest size.
   */
  write(items: ArrayLike<unknown>, inUse: boolean): Float64Array | undefined {
    const n = items.length;
    if (!inUse) this.#top = 0;
    const start = this.#top;
    const bytes = (start + n) * 8;
    if (bytes > this.#max) return undefined;
    const buffer = this.buffer;
    if (bytes > buffer.byteLength) buffer.grow(Math.min(this.#max, Math.max(bytes, buffer.byteLength * 2)));
    const area = new Float64Array(buffer, start * 8, n);
    for (let i = 0; i < n; i++) {
      const v = items[i];
      if (typeof v !== "number") return undefined;
      area[i] = v;
    }
    this.#top = start + n;
    return area;
  }
}
