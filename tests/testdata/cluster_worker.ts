// Copyright the @mpjs/multiprocessing authors. MIT license.
// A separate OS process using a cluster queue or dict, for tests/cluster_test.ts.
//   produce <url> <q|jq> <name> <start> <count>   puts start..start+count-1
//   consume <url> <q|jq> <name> <idleMs>          prints "item N" per item until idle (jq: taskDone after)
//   hold <url> <name>                             gets one jq item, prints "held N", never marks it done
//   race <url> <dict> <id> <n>                    setdefault and pop on shared keys, printing who won
import process from "node:process";
import { connect } from "../../cluster.ts";
import { ClosedError, EmptyError } from "../../errors.ts";

const [mode, url, a, b, c, d] = process.argv.slice(2);
const out = (line: string) => process.stdout.write(line + "\n");
/** Connects, trying again for 20 s: the test may be restarting the server as this process starts. */
async function connectSoon(): Promise<Awaited<ReturnType<typeof connect>>> {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      return await connect({ servers: url, timeout: 10_000 });
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
const cluster = await connectSoon();

if (mode === "produce") {
  const start = Number(c), count = Number(d);
  const q = a === "jq" ? cluster.JoinableQueue<number>(b, { ackWait: 1_000 }) : cluster.Queue<number>(b);
  await q.putMany(Array.from({ length: count }, (_, i) => start + i));
  out("done");
} else if (mode === "consume") {
  const idle = Number(c);
  const q = a === "jq" ? cluster.JoinableQueue<number>(b, { ackWait: 1_000 }) : cluster.Queue<number>(b);
  for (;;) {
    let x: number;
    try {
      x = await q.get({ timeout: idle });
    } catch (e) {
      if (e instanceof EmptyError || e instanceof ClosedError) break;
      throw e;
    }
    out(`item ${x}`);
    if (a === "jq") await (q as ReturnType<typeof cluster.JoinableQueue<number>>).taskDone();
  }
  out("end");
} else if (mode === "hold") {
  const q = cluster.JoinableQueue<number>(a, { ackWait: 1_000 });
  out(`held ${await q.get()}`);
  await new Promise(() => {}); // killed here, between get and taskDone
} else if (mode === "race") {
  const dict = cluster.dict<string, string>(a);
  const n = Number(c);
  const sd = await Promise.all(Array.from({ length: n }, (_, i) => dict.setdefault(`k${i}`, b)));
  sd.forEach((w, i) => out(`sd ${i} ${w}`));
  const popped = await Promise.all(Array.from({ length: n }, (_, i) => dict.pop(`p${i}`, null)));
  popped.forEach((v, i) => v !== null && out(`pop ${i} ${v}`));
}
await cluster.close();
