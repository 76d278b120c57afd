// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A server that answers several client processes, each over its own pipe,
 * with one `connection.wait` over all the pipes (Python's
 * `multiprocessing.connection.wait`): it serves whichever clients have sent
 * something, and stops watching a pipe once its client has hung up.
 *
 *     deno run -A examples/connection_wait_server.ts
 *
 * Each client sends three numbers at its own pace and prints the squares it
 * gets back; the server prints how many requests it answered.
 */

import { type Connection, connection, isMainThread, Pipe, Process } from "../mod.ts";

/** A client: sends `start`, `start + 1`, `start + 2`, prints each answer, then ends (its end closes). */
export async function client(conn: Connection<number>, start: number, pauseMs: number): Promise<void> {
  for (let n = start; n < start + 3; n++) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    conn.send(n);
    console.log(`client ${start}: ${n}² = ${await conn.recv()}`);
  }
}

if (isMainThread) {
  const ends: Connection<number>[] = [];
  const clients = [10, 20, 30].map((start, i) => {
    const [server, mine] = Pipe<number>();
    ends.push(server);
    const p = new Process({ target: client, args: [mine, start, 20 + 15 * i], module: import.meta.url });
    p.start();
    return p;
  });
  let answered = 0;
  let open = [...ends];
  while (open.length > 0) {
    for (const conn of await connection.wait(open) as Connection<number>[]) {
      try {
        const n = await conn.recv();
        conn.send(n * n);
        answered++;
      } catch {
        // The client ended and its end closed: stop watching this pipe.
        conn.close();
        open = open.filter((c) => c !== conn);
      }
    }
  }
  for (const p of clients) await p.join();
  console.log(`server answered ${answered} requests from ${clients.length} clients`);
}
