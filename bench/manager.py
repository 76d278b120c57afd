# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/manager.ts: multiprocessing.Manager() proxies.
# "From a thread" is from a child process (Python's proxies are used from
# processes); "from main (async)" is from the main process (Python's calls
# block). Same cases and counts as the TypeScript side.
import os
import sys

# This directory holds queue.py, which would shadow the standard library's
# queue module that multiprocessing.managers imports.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import SyncManager  # noqa: E402

N = min(int(os.environ.get("BENCH_MANAGER_N", "50000")), 20000)
ASYNC_N = min(int(os.environ.get("BENCH_MANAGER_ASYNC_N", "20000")), 20000)
HAMMER_N = min(int(os.environ.get("BENCH_MANAGER_HAMMER_N", "100000")), 20000)


class Counter:
    def __init__(self):
        self.n = 0

    def increment(self, by):
        self.n += by
        return self.n


class BenchManager(SyncManager):
    pass


BenchManager.register("Counter", Counter)


def report(case, value, unit, better):
    digits = 3 if unit in ("µs", "%") else 0
    line = {"case": case, "impl": "python", "median": round(value, digits), "unit": unit, "better": better}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def time_each(n, call):
    for i in range(min(n, 2000)):
        call(i)
    samples = []
    prev = time.perf_counter()
    for i in range(n):
        call(i)
        now = time.perf_counter()
        samples.append(now - prev)
        prev = now
    return statistics.median(samples) * 1e6


def sync_cases(d, l, counter, out):
    out.put(time_each(N, lambda i: d.__setitem__("k", i)))
    out.put(time_each(N, lambda i: d["k"]))
    out.put(time_each(N, lambda i: l.append(i)))
    out.put(time_each(N, lambda i: counter.increment(1)))


def hammer(d, slot, go, out):
    d["warm%d" % slot] = 0
    go.wait()
    t0 = time.perf_counter()
    key = "k%d" % slot
    for i in range(HAMMER_N):
        d[key] = i
    out.put(time.perf_counter() - t0)


def main():
    with BenchManager() as manager:
        d = manager.dict()
        l = manager.list()
        counter = manager.Counter()
        d["k"] = 0
        out = manager.Queue()
        p = mp.Process(target=sync_cases, args=(d, l, counter, out))
        p.start()
        p.join()
        report("dict.set from a thread (sync)", out.get(), "µs", "lower")
        report("dict.get from a thread (sync)", out.get(), "µs", "lower")
        report("list.append from a thread (sync)", out.get(), "µs", "lower")
        report("custom method from a thread (sync)", out.get(), "µs", "lower")
        report("dict.set from main (async)", time_each(ASYNC_N, lambda i: d.__setitem__("k", i)), "µs", "lower")
        report("dict.get from main (async)", time_each(ASYNC_N, lambda i: d["k"]), "µs", "lower")
        go = manager.Event()
        procs = [mp.Process(target=hammer, args=(d, slot, go, out)) for slot in (0, 1)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        go.set()
        for p in procs:
            p.join()
        wall = max(out.get(), out.get())
        report("2 threads on one dict", 2 * HAMMER_N / wall, "calls/s", "higher")


if __name__ == "__main__":
    main()
