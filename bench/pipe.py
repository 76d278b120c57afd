# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/pipe.ts: multiprocessing.Pipe between the main
# process and a child process. Ping-pong round trip (median and p99, one
# timestamp per round trip), one-way throughput of small dicts and of 1 MiB
# bytes messages. Same cases, sizes and rounds as the TypeScript side.
import json
import multiprocessing as mp
import os
import statistics
import time

PING_N = min(int(os.environ.get("BENCH_PING_N", "50000")), 20000)
SMALL_N = int(os.environ.get("BENCH_SMALL_N", "100000"))
BIG_N = int(os.environ.get("BENCH_BIG_N", "32"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
BIG_BYTES = 1 << 20


def report(case, value, unit, better):
    digits = 3 if unit in ("µs", "GB/s") else 0
    line = {"case": case, "impl": "python", "median": round(value, digits), "unit": unit, "better": better}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


def peer(conn):
    """Echoes ints; counts anything else and answers None with the count; returns on "stop".
    Python's recv() cannot take a send_bytes message, so ("bytes", n) announces n of them."""
    seen = 0
    total = 0
    while True:
        m = conn.recv()
        if m == "stop":
            return
        if isinstance(m, int):
            conn.send(m)
        elif isinstance(m, tuple):  # ("bytes", n): n messages sent with send_bytes follow
            for _ in range(m[1]):
                total += conn.recv_bytes()[0]
            conn.send({"seen": m[1], "sum": total})
        elif m is None:
            conn.send({"seen": seen, "sum": total})
            seen = 0
        else:
            seen += 1
            total += m[0] if isinstance(m, bytes) else m["i"]


def percentile(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p))]


def main():
    conn, there = mp.Pipe()
    p = mp.Process(target=peer, args=(there,))
    p.start()
    there.close()
    for i in range(2000):
        conn.send(i)
        conn.recv()
    samples = []
    prev = time.perf_counter()
    for i in range(PING_N):
        conn.send(i)
        conn.recv()
        now = time.perf_counter()
        samples.append(now - prev)
        prev = now
    report("ping-pong round trip (median)", percentile(samples, 0.5) * 1e6, "µs", "lower")
    report("ping-pong round trip (p99)", percentile(samples, 0.99) * 1e6, "µs", "lower")

    def rounds(n, reps, send, announce=False):
        secs = []
        for r in range(reps + 1):
            t0 = time.perf_counter()
            if announce:
                conn.send(("bytes", n))
            for i in range(n):
                send(i)
            if not announce:
                conn.send(None)
            got = conn.recv()
            if got["seen"] != n:
                raise RuntimeError(f"peer saw {got['seen']} of {n}")
            if r > 0:
                secs.append(time.perf_counter() - t0)
        return secs

    small = rounds(SMALL_N, REPS, lambda i: conn.send({"i": i, "s": "hello"}))
    report("one-way small {i,s}", statistics.median(SMALL_N / s for s in small), "items/s", "higher")
    block = bytearray(b"\x07" * BIG_BYTES)

    def send_block(i):
        block[0] = i & 255
        conn.send_bytes(block)

    big = rounds(BIG_N, 3, send_block, announce=True)
    report("one-way 1 MiB bytes", statistics.median(BIG_N * BIG_BYTES / s / 1e9 for s in big), "GB/s", "higher")
    # With the fork start method the child holds a copy of this end too, so
    # closing it would not give the child EOF: tell it to stop.
    conn.send("stop")
    conn.close()
    p.join()


if __name__ == "__main__":
    main()
