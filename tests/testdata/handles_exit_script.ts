// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/handles_test.ts: sends handles through a queue to a thread and
// back, then ends without closing anything. It must exit by itself (the post
// office must not keep it alive).
import { isMainThread, Lock, Queue, Thread } from "../../mod.ts";
import { doubleIntoReplyQueue, url } from "./handles_fixtures.ts";

if (isMainThread) {
  const jobs = new Queue<{ n: number; reply: Queue<number> } | null>();
  const t = new Thread({ target: doubleIntoReplyQueue, module: url, args: [jobs] });
  t.start();
  const reply = new Queue<number>();
  const lock = new Lock();
  jobs.putSync({ n: 1, reply });
  jobs.putSync({ n: 2, reply });
  jobs.putSync({ n: 3, reply });
  let sum = 0;
  for (let i = 0; i < 3; i++) sum += reply.getSync({ timeout: 20_000 });
  jobs.putSync(null);
  await t.join();
  // A handle left in a queue nobody reads does not keep the program alive either.
  new Queue().putSync({ lock });
  console.log(`took 3 replies, sum ${sum}`);
}
