// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * A producer and a consumer process sharing a `Queue` (seed 003). A plain
 * variable passed to two processes is copied, so a change in one is not
 * seen in the other; a `Queue` carries data from one to the other.
 *
 *     deno run -A examples/queue_producer_consumer.ts
 *
 * The seed sleeps 2 s in each process; here 200 ms.
 */

import { isMainThread, Process, Queue } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Each process gets its own copy of `a`: the consumer never sees this change. */
export async function produceNumber(a: number): Promise<void> {
  a += 1;
  await sleep(200);
}

/** Prints its own copy of `a`: still 1. */
export async function consumeNumber(a: number): Promise<void> {
  await sleep(200);
  console.log(a);
}

/** Puts "a" in the queue. */
export async function producer(queue: Queue<string>): Promise<void> {
  await queue.put("a");
  await sleep(200);
}

/** Gets from the queue what the producer put there. */
export async function consumer(queue: Queue<string>): Promise<void> {
  await sleep(200);
  console.log(await queue.get());
}

async function runPair(
  first: (x: never) => Promise<void>,
  second: (x: never) => Promise<void>,
  arg: unknown,
): Promise<void> {
  const myProducer = new Process({ target: first, args: [arg as never], module: import.meta.url });
  const myConsumer = new Process({ target: second, args: [arg as never], module: import.meta.url });
  myProducer.start();
  myConsumer.start();
  await myProducer.join();
  await myConsumer.join();
}

if (isMainThread) {
  // Without a queue: prints 1, the consumer's own copy.
  await runPair(produceNumber, consumeNumber, 1);
  // With a queue: prints "a", sent by the producer.
  const queue = new Queue<string>(10);
  await runPair(producer, consumer, queue);
}
