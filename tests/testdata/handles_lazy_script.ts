// Copyright the @mpjs/multiprocessing authors. MIT license.
// Run by tests/handles_test.ts, in a fresh process each time: the post office
// starts only once a handle is sent inside an item, including when only
// workers exchange handles while the main thread is parked ("parked"),
// awaiting ("async"), or when grandchildren do it under a parked worker
// ("nested"), or after the creator of the handles ended ("orphan"). Prints the post office state before and the result.
import { isMainThread, type Lock, Queue, Thread } from "../../mod.ts";
import { officeState } from "../../_registry.ts";
import {
  exchangeBetweenGrandchildren,
  handOverAndExit,
  offerFreshHandles,
  takeFreshHandles,
  url,
} from "./handles_fixtures.ts";

if (isMainThread) {
  const mode = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv[2];
  // A thread with plain arguments does not start the post office.
  const plain = new Thread({ target: () => {} });
  plain.start();
  await plain.join();
  const before = officeState();
  const out = new Queue<string>();
  let result: string;
  if (mode === "orphan") {
    // The creator deposits and ends while the main thread is busy (neither
    // parked nor in its event loop), so the post office starts only after.
    const q = new Queue<{ lock: Lock; inner: Queue<string> }>();
    const a = new Thread({ target: handOverAndExit, module: url, args: [q, 1] });
    a.start();
    while (a.isAlive()) { /* busy */ }
    const { lock, inner } = q.getSync({ timeout: 20_000 });
    inner.putSync("used");
    result = lock.acquireSync() ? inner.getSync() : "lock";
  } else if (mode === "nested") {
    const w = new Thread({ target: exchangeBetweenGrandchildren, module: url, args: [out] });
    w.start();
    await w.join();
    result = out.getNowait();
  } else {
    const q = new Queue<{ lock: Lock; back: Queue<string> }>();
    const taker = new Thread({ target: takeFreshHandles, module: url, args: [q, out] });
    const offerer = new Thread({ target: offerFreshHandles, module: url, args: [q] });
    taker.start();
    offerer.start();
    if (mode === "parked") {
      taker.joinSync();
      offerer.joinSync();
    } else {
      await taker.join();
      await offerer.join();
    }
    result = out.getNowait();
  }
  console.log(JSON.stringify({ before, result, after: officeState() }));
}
