# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/sync.ts, with multiprocessing's Lock and Event
# between two processes (Python's threads would share one GIL):
#   - uncontended Lock.acquire() + release(): ns per pair
#   - contended hand-off: a ping-pong over two locks used as binary
#     semaphores, median µs per one-way hand-off
#   - Event set -> wake: a ping-pong over two events, median µs one way
# Prints one BENCH line per case (lower is better).
import json
import multiprocessing as mp
import statistics
import time

BATCH = 200
BATCHES = 150
WARM = 20


def report(case, value, unit):
    line = {"case": case, "impl": "python", "median": round(value, 3 if value < 10 else 2 if value < 100 else 1),
            "unit": unit, "better": "lower"}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def lock_pong(ping, pong, n):
    for _ in range(n):
        ping.acquire()
        pong.release()


def event_pong(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


def uncontended(ctx):
    n = 1_000_000
    lock = ctx.Lock()
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        samples.append((time.perf_counter() - t0) * 1e9 / n)
    report("uncontended acquire+release", statistics.median(samples[1:]), "ns")


def ping_pong(ctx, target, args, ping):
    rounds = (BATCHES + WARM) * BATCH
    p = ctx.Process(target=target, args=(*args, rounds))
    p.start()
    samples = []
    for b in range(BATCHES + WARM):
        t0 = time.perf_counter()
        for _ in range(BATCH):
            ping()
        if b >= WARM:
            samples.append((time.perf_counter() - t0) * 1e6 / (2 * BATCH))
    p.join()
    return statistics.median(samples)


def hand_off(ctx):
    ping, pong = ctx.Lock(), ctx.Lock()
    ping.acquire()
    pong.acquire()

    def one():
        ping.release()
        pong.acquire()

    report("contended hand-off", ping_pong(ctx, lock_pong, (ping, pong), one), "µs")


def event_wake(ctx):
    ping, pong = ctx.Event(), ctx.Event()

    def one():
        ping.set()
        pong.wait()
        pong.clear()

    report("Event set→wake", ping_pong(ctx, event_pong, (ping, pong), one), "µs")


def main():
    ctx = mp.get_context("spawn")
    uncontended(ctx)
    hand_off(ctx)
    event_wake(ctx)


if __name__ == "__main__":
    main()
