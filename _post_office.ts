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
 * | message                                   | meaning                                          |
 * |-------------------------------------------|--------------------------------------------------|
 * | `{ t: "adopt", port, bell }`              | a child's mailbox (sent by its spawner): serve it too |
 * | `{ t: "put", id, tag, data, once, owner?, reader? }` | keep handle `id` (its serialized `data`) |
 * | `{ t: "get", id, ident }`                 | send handle `id` to this thread, whose ident is `ident` (now, or once it is put) |
 * | `{ t: "drop", id }`                       | forget handle `id` (its item never went in)      |
 * | `{ t: "sweep" }`                          | a reader was closed: look at the followed handles |
 * | `{ t: "close", ids }`                     | the taker of the item naming these moved handles died before it claimed them: close them |
 * | `{ t: "release", id, sent, read }`        | an object for shared handle `id` was collected (see below) |
 * | `{ t: "count" }`                          | for tests: reply `{ id: 0, count }`, the number of handles kept |
 * | `{ t: "keep" }`                           | for tests: ignore releases from now on (every shared handle is kept) |
 *
 * The main thread starts the post office when a handle is first sent inside
 * an item (see `_runtime.ts`), and sends it each thread's end with the
 * messages already sent through it and the registry (`{ type:
 * "mpjs-office", port, bell, backlog, registry }`); afterwards spawners
 * announce new ends with `adopt`.
 *
 * A reply `{ id, tag, data, once }` goes to the asking thread's port, then
 * its `bell` word is bumped and notified: the thread waits on that word with
 * `Atomics.wait` and takes the reply with `receiveMessageOnPort`.
 *
 * What is kept: a handle that moves (a `Connection` end, or anything with
 * ports to transfer) and plain shared memory (a `SharedArrayBuffer`, put
 * anew with each item) are dropped once fetched. Every other (shared)
 * handle is kept, with counts, until no thread holds it and no item in
 * flight names it, as Python's managers count proxies:
 *
 * - `holds`: objects for it alive in threads. A deposit makes one (the
 *   sender's), each reply to a `get` one more; a thread sends `{ t:
 *   "release", id, sent, read }` when one of its objects is collected
 *   (`FinalizationRegistry`, see `_post.ts`).
 * - `sent` / `read`: items naming it that went in / were read, told with
 *   the releases. A thread counts only while it has an object for the
 *   handle (sending one needs it; reading one makes it), so once `holds` is
 *   0 every count has been told, and `sent === read` means no item naming
 *   it is left unread: it is freed.
 *
 * Left kept for good: handles named by items nobody reads, and those held
 * by threads that ended or never return to their event loop (their
 * objects are never finalized, and their counts never told).
 *
 * Who owns a moved handle in transit. A moved handle with an `owner` word
 * (a `Connection` end's owner cell, see `pipe.ts`) is open while the thread
 * named there is alive. From the moment its item is in the queue, or its
 * message sent, the word names this worker (an ident alive for the
 * program's life), and only this worker changes it until it lets the handle
 * go, in one of two ways:
 *
 * - To the thread that asks for it (which has read the item): its ident is
 *   written before the reply goes out, so from the ask on the handle lives
 *   or dies with that thread, even one that dies before the reply reaches
 *   it, or that had ended already when the post office started.
 * - To nobody, when it follows a `reader` (an end inside a pipe message:
 *   only the pipe's receiving end can ever read that message) and the
 *   reader is gone, its owner's thread dead or the end closed: the word is
 *   set to 0 (closed) and the deposit dropped. The followed handles are
 *   looked at when deposited, after each death (the registry's `DEATHS`
 *   word, waited on while there are any) and when a receiving end is
 *   closed (`sweep`). A reader itself in transit counts as alive.
 *
 * So an end is closed once the thread that took it dies, whatever
 * instruction it stopped at after its ask. A queue's taker asks while it
 * still holds the queue's consumer lock, right after it took the item
 * (`_ring.ts`); should it die between the take and the ask, the consumer
 * that takes the lock over sends `close` for the ends the item listed, and
 * they are closed here (at once, or when their deposit arrives, as it may
 * come later through another thread's port). One case stays open: an end
 * in a queue item that nobody takes (the item may still be taken, as in
 * Python), including one whose taker died at that moment while no other
 * thread ever takes from that queue again.
 * A sender stopped between putting the item and detaching its copy leaves
 * the word naming its own dead thread, so the end reads as closed until
 * someone takes it.
 *
 * The worker is unref'd, so it never keeps the program alive; between
 * messages it sleeps in its event loop.
 *
 * @module
 */

import type { OwnerWord } from "./_handles.ts";
import type { Reader } from "./_post.ts";
import { adoptRegistry, DEATHS, isIdentAlive, registryCells } from "./_registry.ts";
import { parentPort } from "./_runtime.ts";
import { parkAsync } from "./_wait.ts";

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
  /** A moved handle's owner word: set to the ident of the thread it is handed to. */
  owner?: OwnerWord;
  /** The one holder that can read the item naming it (a pipe's receiving end). */
  reader?: Reader;
  /** A shared handle's counts (see the module docs). */
  counts?: Counts;
}

/** What the post office knows of a shared handle's holders and the items naming it. */
interface Counts {
  /** Objects for it alive in threads: one per deposit and per fetch, less the releases. */
  holds: number;
  /** Items naming it that went in, as far as released objects' threads told. */
  sent: number;
  /** Items naming it that were read, likewise. */
  read: number;
}

/** A thread that asked for a handle, and its ident. */
interface Asker {
  client: Client;
  ident: number;
}

type Request =
  | { t: "adopt"; port: MessagePort; bell: SharedArrayBuffer }
  | {
    t: "put";
    id: number;
    tag: string;
    data: unknown;
    once: boolean;
    transfer?: Transferable[];
    owner?: OwnerWord;
    reader?: Reader;
  }
  | { t: "get"; id: number; ident: number }
  | { t: "drop"; id: number }
  | { t: "sweep" }
  | { t: "close"; ids: number[] }
  | { t: "release"; id: number; sent: number; read: number }
  | { t: "count" }
  | { t: "keep" };

const kept = new Map<number, Entry>();
/** Requests for handles not deposited yet (their deposit is on its way from another thread). */
const waiting = new Map<number, Asker[]>();
/** Kept moved handles with a known reader, whose death or close is watched (see the module docs). */
const following = new Set<number>();
/**
 * Moved handles to close as soon as they are deposited: a `close` that came
 * before the deposit (they travel through different threads' ports).
 */
const closing = new Set<number>();
/** Whether the registry (thread idents and deaths) was adopted from the main thread. */
let registry = false;
/** For tests: releases are ignored (`keep`). */
let keepAll = false;
/** Whether a wait for the next death is pending. */
let watching = false;

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
      const entry: Entry = {
        tag: m.tag,
        data: m.data,
        once: m.once,
        transfer: m.transfer ?? [],
        owner: m.owner,
        reader: m.reader,
        counts: m.once ? undefined : { holds: 1, sent: 0, read: 0 },
      };
      if (closing.delete(m.id)) {
        closeEntry(entry);
        return;
      }
      const who = waiting.get(m.id);
      if (who) {
        waiting.delete(m.id);
        for (const a of who) {
          handOver(a, m.id, entry);
          if (entry.once) return;
        }
      }
      kept.set(m.id, entry);
      if (entry.reader && entry.owner) {
        following.add(m.id);
        sweep();
        watchDeaths();
      }
      return;
    }
    case "drop":
      // A moved handle whose item never went in (a put that failed).
      kept.delete(m.id);
      following.delete(m.id);
      return;
    case "get": {
      const asker = { client, ident: m.ident };
      const entry = kept.get(m.id);
      if (!entry) {
        const who = waiting.get(m.id);
        if (who) who.push(asker);
        else waiting.set(m.id, [asker]);
        return;
      }
      handOver(asker, m.id, entry);
      if (entry.once) {
        kept.delete(m.id);
        following.delete(m.id);
      }
      return;
    }
    case "sweep":
      sweep();
      return;
    case "close":
      for (const id of m.ids) {
        const entry = kept.get(id);
        if (entry === undefined) {
          // Not deposited yet (or handed over already, to the dead taker: then it reads as closed anyway).
          if (!waiting.has(id)) closing.add(id);
          continue;
        }
        closeEntry(entry);
        kept.delete(id);
        following.delete(id);
      }
      return;
    case "release": {
      const counts = kept.get(m.id)?.counts;
      if (!counts || keepAll) return;
      counts.holds--;
      counts.sent += m.sent;
      counts.read += m.read;
      if (counts.holds === 0 && counts.sent === counts.read) kept.delete(m.id);
      return;
    }
    case "count":
      // For tests: how many handles are kept.
      reply(client, { id: 0, count: kept.size });
      return;
    case "keep":
      keepAll = true;
      return;
  }
}

function reply(client: Client, message: unknown, transfer: Transferable[] = []): void {
  if (!client.port) return; // its thread ended
  client.port.postMessage(message, transfer);
  Atomics.add(client.bell, 0, 1);
  Atomics.notify(client.bell, 0);
}

/**
 * Hands `entry` to the thread that asked: a moved handle becomes that
 * thread's first (it lives or dies with it from now on, whether or not the
 * reply ever reaches it), then the reply goes out.
 */
function handOver(asker: Asker, id: number, entry: Entry): void {
  if (entry.owner) Atomics.store(new Int32Array(entry.owner[0]), entry.owner[1], asker.ident);
  const { client } = asker;
  if (!client.port) return; // its thread ended
  if (entry.counts) entry.counts.holds++;
  reply(client, { id, tag: entry.tag, data: entry.data, once: entry.once }, entry.transfer);
}

/** Closes a moved handle nobody will take: its owner word becomes 0. */
function closeEntry(entry: Entry): void {
  if (entry.owner) Atomics.store(new Int32Array(entry.owner[0]), entry.owner[1], 0);
}

function alive(owner: number): boolean {
  return owner !== 0 && isIdentAlive(owner < 0 ? -owner : owner);
}

/**
 * Closes the followed handles whose reader is gone (its thread dead, or its
 * end closed): nobody can read the item that names them any more. Closing
 * one may make another's reader gone (an end in transit inside a message
 * to it), hence the loop.
 */
function sweep(): void {
  if (!registry) return;
  for (let changed = true; changed;) {
    changed = false;
    for (const id of following) {
      const { owner, reader } = kept.get(id)!;
      const cells = new Int32Array(reader!.buffer);
      if (Atomics.load(cells, reader!.closed) === 0 && alive(Atomics.load(cells, reader!.owner))) continue;
      Atomics.store(new Int32Array(owner![0]), owner![1], 0);
      kept.delete(id);
      following.delete(id);
      changed = true;
    }
  }
}

/** While handles are followed, sweeps after each death (the registry's `DEATHS` word). */
function watchDeaths(): void {
  if (watching || following.size === 0 || !registry) return;
  watching = true;
  const cells = registryCells();
  const seen = Atomics.load(cells, DEATHS);
  sweep();
  void parkAsync(cells, DEATHS, seen).then(() => {
    watching = false;
    sweep();
    watchDeaths();
  });
}

// The main thread sends each thread's end with what was already sent
// through it (the end is missing when its thread has ended), and the
// registry.
parentPort().onMessage((m) => {
  if (m.type !== "mpjs-office") return;
  if (!registry && m.registry instanceof SharedArrayBuffer) {
    adoptRegistry(m.registry, 0, "mpjs-post-office");
    registry = true;
  }
  const client: Client = { port: m.port as MessagePort | undefined, bell: new Int32Array(m.bell as SharedArrayBuffer) };
  for (const r of m.backlog as Request[]) handle(client, r);
  if (client.port) serve(client);
  watchDeaths();
});
