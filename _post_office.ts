// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The post office: the entry of the one small worker that keeps the handles
 * (`Queue`, `Lock`, `Connection`, …) which threads put inside queue items and
 * pipe messages, and hands them to the threads that read those items (see
 * `_post.ts` for the threads' side, `_runtime.ts` for how it is started).
 *
 * Every thread's mailbox is a `MessagePort`; the post office holds the other
 * end of each. Messages from a thread:
 *
 * | message                        | meaning                                                    |
 * |--------------------------------|------------------------------------------------------------|
 * | `{ t: "adopt", port, bell }`   | a child's mailbox (sent by its spawner): serve it too      |
 * | `{ t: "put", id, tag, data, once }` | keep handle `id` (its serialized `data`)              |
 * | `{ t: "get", id }`             | send handle `id` to this thread (now, or once it is put)   |
 *
 * The main thread starts the post office when a handle is first sent inside
 * an item (see `_runtime.ts`), and sends it each thread's end with the
 * messages already sent through it (`{ type: "mpjs-office", port, bell,
 * backlog }`); afterwards spawners announce new ends with `adopt`.
 *
 * A reply `{ id, tag, data, once }` goes to the asking thread's port, then
 * its `bell` word is bumped and notified: the thread waits on that word with
 * `Atomics.wait` and takes the reply with `receiveMessageOnPort`.
 *
 * What is kept: a handle that moves (a `Connection` end, or anything with
 * ports to transfer) and plain shared memory (a `SharedArrayBuffer`, put
 * anew with each item) are dropped once fetched; every other handle is kept for
 * the program's life (its data: a few `SharedArrayBuffer`s), since any
 * number of items may name it and there is no telling when the last is read.
 *
 * The worker is unref'd, so it never keeps the program alive; between
 * messages it sleeps in its event loop.
 *
 * @module
 */

import { parentPort } from "./_runtime.ts";

/** A thread served by the post office. */
interface Client {
  /** Missing for a thread that ended before the post office started. */
  port: MessagePort | undefined;
  bell: Int32Array;
}

/** A deposited handle. */
interface Entry {
  tag: string;
  data: unknown;
  /** Handed out once, then dropped (a moved handle, or one with ports to transfer). */
  once: boolean;
  transfer: Transferable[];
}

type Request =
  | { t: "adopt"; port: MessagePort; bell: SharedArrayBuffer }
  | { t: "put"; id: number; tag: string; data: unknown; once: boolean; transfer?: Transferable[] }
  | { t: "get"; id: number }
  | { t: "drop"; id: number };

const kept = new Map<number, Entry>();
/** Requests for handles not deposited yet (their deposit is on its way from another thread). */
const waiting = new Map<number, Client[]>();

function serve(client: Client): void {
  const port = client.port! as MessagePort & { on?: (e: string, f: (m: unknown) => void) => void };
  const onRequest = (m: unknown) => handle(client, m as Request);
  if (typeof port.on === "function") port.on("message", onRequest);
  else {
    port.onmessage = (e: MessageEvent) => onRequest(e.data);
    port.start?.();
  }
}

function handle(client: Client, m: Request): void {
  switch (m.t) {
    case "adopt":
      serve({ port: m.port, bell: new Int32Array(m.bell) });
      return;
    case "put": {
      const entry: Entry = { tag: m.tag, data: m.data, once: m.once, transfer: m.transfer ?? [] };
      const who = waiting.get(m.id);
      if (who) {
        waiting.delete(m.id);
        for (const c of who) {
          if (!send(c, m.id, entry)) return;
        }
      }
      kept.set(m.id, entry);
      return;
    }
    case "drop":
      // A moved handle whose item never went in (a put that failed).
      kept.delete(m.id);
      return;
    case "get": {
      if (!client.port) return; // its thread ended
      const entry = kept.get(m.id);
      if (!entry) {
        const who = waiting.get(m.id);
        if (who) who.push(client);
        else waiting.set(m.id, [client]);
        return;
      }
      send(client, m.id, entry);
      if (entry.once) kept.delete(m.id);
      return;
    }
  }
}

/** Sends `entry` to `client`; `false` when it was handed out for good (a once-only entry). */
function send(client: Client, id: number, entry: Entry): boolean {
  if (!client.port) return true; // its thread ended
  client.port.postMessage({ id, tag: entry.tag, data: entry.data, once: entry.once }, entry.transfer);
  Atomics.add(client.bell, 0, 1);
  Atomics.notify(client.bell, 0);
  return !entry.once;
}

// The main thread sends each thread's end with what was already sent
// through it (the end is missing when its thread has ended).
parentPort().onMessage((m) => {
  if (m.type !== "mpjs-office") return;
  const client: Client = { port: m.port as MessagePort | undefined, bell: new Int32Array(m.bell as SharedArrayBuffer) };
  for (const r of m.backlog as Request[]) handle(client, r);
  if (client.port) serve(client);
});
