# Copyright the @mpjs/multiprocessing authors. MIT license.
# The Python peer of bench/thread.ts: start + join of a no-op
# multiprocessing.Process with the "spawn" start method (what our threads
# resemble: a fresh interpreter that imports the target's module).
# Prints one BENCH line (median µs per round, lower is better).
import json
import multiprocessing as mp
import os
import statistics
import time


def noop():
    pass


def main():
    ctx = mp.get_context("spawn")
    rounds = int(os.environ.get("BENCH_ROUNDS", "40"))
    warmup = 3
    samples = []
    for i in range(warmup + rounds):
        t0 = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        dt = (time.perf_counter() - t0) * 1e6
        if i >= warmup:
            samples.append(dt)
    line = {"case": "start+join no-op", "impl": "python", "median": round(statistics.median(samples)),
            "unit": "µs", "better": "lower"}
    print("BENCH " + json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
