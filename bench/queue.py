# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/queue.ts: multiprocessing.Queue throughput, one
# producer (the main process) -> one consumer process with small dicts and
# with 16 MiB float64 arrays (array.array), and 4 producer x 4 consumer
# processes. Same cases, sizes and rounds as the TypeScript side.
import os
import sys

# This file is named queue.py: keep its directory off the import path, or it
# would stand in for the standard library's `queue` that multiprocessing uses.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import array  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

SMALL_N = int(os.environ.get("BENCH_SMALL_N", "200000"))
BIG_N = int(os.environ.get("BENCH_BIG_N", "12"))
MPMC_N = int(os.environ.get("BENCH_MPMC_N", "200000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
BIG_BYTES = 16 * 1024 * 1024


def report(case, samples, unit):
    m = statistics.median(samples)
    line = {"case": case, "impl": "python", "median": round(m, 3) if unit == "GB/s" else round(m),
            "unit": unit, "better": "higher"}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def consume_rounds(q, n, reps, done):
    total = 0
    for _ in range(reps):
        for _ in range(n):
            x = q.get()
            total += x[0] if isinstance(x, array.array) else x["i"]
        done.put(True)


def one_to_one(ctx, n, reps, make, maxsize):
    q = ctx.Queue(maxsize)
    done = ctx.Queue()
    p = ctx.Process(target=consume_rounds, args=(q, n, reps + 1, done), daemon=True)
    p.start()
    secs = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        for i in range(n):
            q.put(make(i))
        done.get()
        if r > 0:
            secs.append(time.perf_counter() - t0)
    p.join()
    return secs


def produce(q, n):
    for i in range(n):
        q.put({"i": i, "s": "hello"})


def consume_until_none(q):
    total = 0
    while True:
        x = q.get()
        if x is None:
            return
        total += x["i"]


def many_to_many(ctx, p, c, total, reps):
    # Each round forks fresh processes (a few ms, included in the time):
    # Python offers no cheap way to restart a round in running processes.
    per = total // p
    secs = []
    for r in range(reps + 1):
        q = ctx.Queue()
        consumers = [ctx.Process(target=consume_until_none, args=(q,), daemon=True) for _ in range(c)]
        producers = [ctx.Process(target=produce, args=(q, per), daemon=True) for _ in range(p)]
        t0 = time.perf_counter()
        for pr in consumers + producers:
            pr.start()
        for pr in producers:
            pr.join()
        for _ in range(c):
            q.put(None)
        for pr in consumers:
            pr.join()
        if r > 0:
            secs.append(time.perf_counter() - t0)
    return secs


def main():
    ctx = mp.get_context("fork")
    small = lambda i: {"i": i, "s": "hello"}
    big_array = array.array("d", bytes(BIG_BYTES))

    def big(i):
        big_array[0] = i
        return big_array

    secs = one_to_one(ctx, SMALL_N, REPS, small, 0)
    report("1→1 small {i,s}", [SMALL_N / s for s in secs], "items/s")
    secs = one_to_one(ctx, BIG_N, 3, big, 2)
    report("1→1 16 MiB Float64Array", [BIG_N * BIG_BYTES / s / 1e9 for s in secs], "GB/s")
    secs = many_to_many(ctx, 4, 4, MPMC_N, 3)
    report("4×4 small {i,s}", [MPMC_N / s for s in secs], "items/s")


if __name__ == "__main__":
    main()
