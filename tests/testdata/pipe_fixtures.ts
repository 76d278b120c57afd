// Copyright the @mpjs/multiprocessing authors. MIT license.
// Targets for tests/pipe_test.ts. Workers import this module by URL, so it
// must stay free of side effects at its top level.

import { ClosedError, type Connection, Event, Thread } from "../../mod.ts";

export const url: string = import.meta.url;

/** Sends back every value received, until the other end closes. */
export function echo(conn: Connection): void {
  for (;;) {
    let value: unknown;
    try {
      value = conn.recvSync();
    } catch (error) {
      if (error instanceof ClosedError) return;
      throw error;
    }
    conn.send(value);
  }
}

/** Like {@linkcode echo}, with `for await`. */
export async function echoAsync(conn: Connection): Promise<void> {
  for await (const value of conn) conn.send(value);
}

/** Sends each of `values`, then returns (the thread ends, so its end closes). */
export function sendAll(conn: Connection, values: unknown[]): void {
  for (const v of values) conn.send(v);
}

/**
 * Sends each of `values`, sets `flag[0]`, then blocks until terminated (in a
 * wait of this library, where every runtime can stop it).
 */
export function sendThenHang(conn: Connection, values: unknown[], flag: Int32Array): void {
  for (const v of values) conn.send(v);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  new Event().waitSync();
}

/** Sends `value`, then throws: a thread that dies of an error. */
export function sendThenThrow(conn: Connection, value: unknown): never {
  conn.send(value);
  throw new Error("fixture failure");
}

/**
 * Receives with `recvSync` until the end of the stream; writes into `out`
 * how many values came (`out[0]`), their sum (`out[1]`), and 1 in `out[2]`
 * when it ended with `ClosedError`.
 */
export function drainSync(conn: Connection<number>, out: Int32Array): void {
  Atomics.store(out, 3, 1);
  for (;;) {
    let v: number;
    try {
      v = conn.recvSync();
    } catch (error) {
      Atomics.store(out, 2, error instanceof ClosedError ? 1 : 2);
      Atomics.notify(out, 2);
      return;
    }
    Atomics.add(out, 0, 1);
    Atomics.add(out, 1, v);
  }
}

/** Sets `ready[0]` and waits in `recvSync` for one message. */
export function idleRecv(conn: Connection, ready: Int32Array): unknown {
  Atomics.store(ready, 0, 1);
  return conn.recvSync();
}

/** Passes `conn` on to a thread of its own, which sends `values` on it. */
export async function passOn(conn: Connection, values: unknown[]): Promise<void> {
  const t = new Thread({ target: sendAll, args: [conn, values], module: url });
  t.start();
  let moved = false;
  try {
    conn.send("not here");
  } catch (error) {
    moved = /moved to another thread/.test(String(error));
  }
  await t.join();
  if (!moved) throw new Error("the end passed on was still usable");
}

/** Sends `count` byte messages of `size` bytes, each filled with its index (mod 256). */
export function sendBlocks(conn: Connection, count: number, size: number): void {
  const block = new Uint8Array(size);
  for (let i = 0; i < count; i++) {
    block.fill(i & 255);
    block[0] = 0xaa;
    block[size - 1] = 0x55;
    conn.sendBytes(block);
  }
}

/** Sends the numbers 0 … count-1, then closes its end. */
export function count(conn: Connection, n: number): void {
  for (let i = 0; i < n; i++) conn.send(i);
  conn.close();
}

/** A seeded PRNG (xorshift32), the same in the test and in the thread. */
export function prng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** The `i`-th message of {@linkcode sendMixed}'s sequence: bytes or an object, of random size. */
export function mixedMessage(rnd: () => number, i: number): Uint8Array | { i: number; pad: string } {
  const size = Math.floor(rnd() ** 6 * 300_000);
  if (rnd() < 0.5) {
    const bytes = new Uint8Array(size + 4);
    new DataView(bytes.buffer).setUint32(0, i);
    bytes.fill(i & 255, 4);
    return bytes;
  }
  return { i, pad: "p".repeat(size % 2000) };
}

/** Sends `count` messages of the seeded mixed sequence, pausing now and then, then returns. */
export async function sendMixed(conn: Connection, seed: number, count: number): Promise<void> {
  const rnd = prng(seed);
  for (let i = 0; i < count; i++) {
    const m = mixedMessage(rnd, i);
    if (m instanceof Uint8Array) conn.sendBytes(m);
    else conn.send(m);
    if (rnd() < 0.002) await new Promise((r) => setTimeout(r, 1));
  }
}
