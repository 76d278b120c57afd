// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A producer and a consumer process connected by a `Pipe` (seed 003):
 * `Pipe()` returns the two connected ends; each process gets one end in its
 * `args`, and whatever one end sends, the other receives.
 *
 *     deno run -A examples/pipe_producer_consumer.ts
 *
 * The seed sleeps 2 s in each process; here 200 ms. The producer has ended
 * (and its end is closed) by the time the consumer reads: what was sent
 * before is still delivered. The second part sends several messages; the
 * consumer reads until the producer's end closes.
 */

import { type Connection, isMainThread, Pipe, Process } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends "a" into the pipe, then takes its time. */
export async function producer(pipe: Connection<string>): Promise<void> {
  pipe.send("a");
  await sleep(200);
}

/** Takes its time, then prints what came through the pipe. */
export async function consumer(pipe: Connection<string>): Promise<void> {
  await sleep(200);
  console.log(await pipe.recv());
}

/** Sends a few items and returns: its end of the pipe closes with it. */
export function produceItems(pipe: Connection<string>): void {
  for (const item of ["apple", "banana", "cherry"]) pipe.send(item);
}

/** Prints every item until the producer's end is closed. */
export async function consumeItems(pipe: Connection<string>): Promise<void> {
  for await (const item of pipe) console.log(`got ${item}`);
  console.log("the producer's end is closed");
}

async function run(
  produce: (pipe: Connection<string>) => unknown,
  consume: (pipe: Connection<string>) => unknown,
): Promise<void> {
  const [receivePipe, sendPipe] = Pipe<string>();
  const myProducer = new Process({ target: produce, args: [sendPipe], module: import.meta.url });
  const myConsumer = new Process({ target: consume, args: [receivePipe], module: import.meta.url });
  myProducer.start();
  myConsumer.start();
  await myProducer.join();
  await myConsumer.join();
}

if (isMainThread) {
  await run(producer, consumer); // prints "a"
  await run(produceItems, consumeItems);
}
