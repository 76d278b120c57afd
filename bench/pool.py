# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/pool.ts: multiprocessing.Pool with 2 worker
# processes. Same cases and sizes: apply round trip (us), 100,000 concurrent
# apply_async of a no-op (tasks/s), map of a no-op over 1,000,000 items with
# the default chunksize (items/s), and a CPU-bound map (prime counting for 8
# limits) against the same work on one thread (x).
import os
import sys

# bench/ holds queue.py: keep the directory off the import path, or it would
# stand in for the standard library's `queue` that multiprocessing uses.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

ROUND_TRIPS = int(os.environ.get("BENCH_ROUND_TRIPS", "5000"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "100000"))
MAP_N = int(os.environ.get("BENCH_MAP_N", "1000000"))
PRIMES_LIMIT = int(os.environ.get("BENCH_PRIMES_LIMIT", "150000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))


def noop(x):
    return x


def count_primes(n):
    count = 0
    for i in range(2, n):
        prime = True
        d = 2
        while d * d <= i:
            if i % d == 0:
                prime = False
                break
            d += 1
        if prime:
            count += 1
    return count


def report(case, samples, unit, better):
    m = statistics.median(samples)
    line = {"case": case, "impl": "python", "median": round(m, 2) if unit in ("us", "x") else round(m),
            "unit": "µs" if unit == "us" else unit, "better": better}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def main():
    limits = [PRIMES_LIMIT] * 8
    with mp.Pool(2) as pool:
        for i in range(2000):
            pool.apply(noop, (i,))
        rt = []
        for i in range(ROUND_TRIPS * REPS):
            t0 = time.perf_counter()
            pool.apply(noop, (i,))
            rt.append((time.perf_counter() - t0) * 1e6)
        report("apply round trip", rt, "us", "lower")

        tput = []
        for _ in range(2):
            t0 = time.perf_counter()
            results = [pool.apply_async(noop, (i,)) for i in range(CONCURRENT)]
            for r in results:
                r.get()
            tput.append(CONCURRENT / (time.perf_counter() - t0))
        report("100k concurrent applyAsync", tput, "tasks/s", "higher")

        items = list(range(MAP_N))
        mps = []
        for _ in range(REPS):
            t0 = time.perf_counter()
            out = pool.map(noop, items)
            mps.append(MAP_N / (time.perf_counter() - t0))
            assert len(out) == MAP_N
        report("map no-op 1M", mps, "items/s", "higher")

        # Each pool run is paired with the same work on this process timed
        # just before it (as in pool.ts).
        sp = []
        for _ in range(3):
            single = timed(lambda: [count_primes(n) for n in limits])
            t0 = time.perf_counter()
            pool.map(count_primes, limits, 1)
            sp.append(single / (time.perf_counter() - t0))
        report("CPU-bound map speed-up", sp, "x", "higher")


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
