# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/cluster.ts: a queue shared between two programs the
# Python way, a multiprocessing remote manager (BaseManager serving a
# queue.Queue over TCP on loopback, with an authkey). The producer is this
# process, the consumer another process connected to the manager; every put
# and get is one round trip to the manager, so the same figure stands for
# each 1->1 case of bench/cluster.ts. Also the ping-pong round trip, and
# multiprocessing.Pool with 2 processes as the peer of the cluster pool's
# apply, unbatched and small-item map cases (not of the CPU-bound one: the
# same prime count in Python measures the language, not the pool).
import os
import sys

# bench/ holds a queue.py: keep this directory off the import path, or it
# would stand in for the standard library's `queue`.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import queue  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import BaseManager  # noqa: E402

N = int(os.environ.get("BENCH_CLUSTER_PY_N", "20000"))
PING_N = int(os.environ.get("BENCH_CLUSTER_PING_N", "1000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
AUTHKEY = b"bench"

_queues = {}


def _get_queue(name):
    return _queues.setdefault(name, queue.Queue())


class QueueManager(BaseManager):
    pass


QueueManager.register("get_queue", callable=_get_queue)


def report(case, value, unit, better, impl="python remote manager queue"):
    line = {"case": case, "impl": impl, "median": round(value), "unit": unit,
            "better": better}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def consumer(address, name, n, ping, ready):
    m = QueueManager(address=address, authkey=AUTHKEY)
    m.connect()
    q = m.get_queue(name)
    pong = m.get_queue(name + "_pong")
    ready.set()
    total = 0
    for _ in range(n):
        x = q.get()
        if ping:
            pong.put(x["i"])
        total += x["i"]
    pong.put(total)


def run(address, name, n, ping):
    ready = mp.Event()
    p = mp.Process(target=consumer, args=(address, name, n, ping, ready))
    p.start()
    m = QueueManager(address=address, authkey=AUTHKEY)
    m.connect()
    q = m.get_queue(name)
    pong = m.get_queue(name + "_pong")
    ready.wait()
    t0 = time.perf_counter()
    for i in range(n):
        q.put({"i": i, "s": "hello"})
        if ping:
            pong.get()
    pong.get()  # the consumer's total: it has got every item
    secs = time.perf_counter() - t0
    p.join()
    return secs


def main():
    server = QueueManager(address=("127.0.0.1", 0), authkey=AUTHKEY)
    server.start()
    address = server.address
    rates = [N / run(address, f"items{r}", N, False) for r in range(REPS)]
    rate = statistics.median(rates)
    for case in ("1→1, each put awaited", "1→1, puts in flight, one item per fetch",
                 "1→1, puts in flight, batched fetch", "1→1, puts in flight, batched fetch, memory storage"):
        report(case, rate, "items/s", "higher")
    rtts = [run(address, f"ping{r}", PING_N, True) * 1e6 / PING_N for r in range(REPS)]
    report("ping-pong round trip", statistics.median(rtts), "µs", "lower")
    server.shutdown()
    pool_cases()


def inc(x):
    return x + 1


def pool_cases():
    impl = "python multiprocessing.Pool, 2 processes (one machine, no broker)"
    with mp.Pool(2) as pool:
        pool.map(inc, range(1000))
        trips = []
        for _ in range(REPS):
            t0 = time.perf_counter()
            for i in range(300):
                pool.apply(inc, (i,))
            trips.append((time.perf_counter() - t0) * 1e6 / 300)
        report("pool: apply round trip", statistics.median(trips), "µs", "lower", impl)
        rates = []
        for _ in range(REPS):
            t0 = time.perf_counter()
            results = [pool.apply_async(inc, (i,)) for i in range(3000)]
            for r in results:
                r.get()
            rates.append(3000 / (time.perf_counter() - t0))
        report("pool: unbatched tasks (3,000 applies in flight)", statistics.median(rates), "tasks/s", "higher", impl)
        rates = []
        for _ in range(REPS):
            t0 = time.perf_counter()
            out = pool.map(inc, range(1_000_000), 50_000)
            assert len(out) == 1_000_000
            rates.append(1_000_000 / (time.perf_counter() - t0))
        report("pool: map of 1,000,000 small items, 2 worker processes", statistics.median(rates), "items/s", "higher",
               impl)


if __name__ == "__main__":
    main()
