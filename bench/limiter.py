"""The shared rate limiter against the emulator's exact limits.

Starts a redis-server of its own, the emulator (`trellis emulator`) and 2 worker processes x 8 tasks making
token-scoped calls for 60 s under Trello's limits (100 per 10 s per token). `--quick` scales the window
down to 2 s for a 10 s run. Prints calls served, the emulator's count of 429s, utilisation (served /
allowed in the run's windows) and Redis round trips per permit; then a second run with half the tasks
at bulk priority prints event and bulk waits (p50, p99).

Ends with: result: limiter utilisation=U rejected=N roundtrips=R ...
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.processes import ROOT, free_port, python_module, redis_server, running

KEY, TOKEN = "bench-key", "bench-token"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def run_workers(
    redis_url: str,
    emulator: str,
    *,
    processes: int,
    tasks: int,
    seconds: float,
    window: float,
    bulk_share: float,
) -> tuple[list[dict[str, Any]], float]:
    start_at = time.time() + 1.5  # every process starts in the same instant, imports done
    argv = [
        "--redis", redis_url, "--emulator", emulator, "--key", KEY, "--token", TOKEN, "--tasks", str(tasks),
        "--seconds", str(seconds), "--window", str(window), "--bulk-share", str(bulk_share),
        "--start-at", str(start_at),
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "limiter_worker.py"), *argv],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [json.loads(worker.communicate(timeout=seconds + 120)[0]) for worker in workers]
    return outputs, time.time() - start_at


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s windows, 10 s runs")
    args = parser.parse_args()
    window, seconds = (2.0, 10.0) if args.quick else (10.0, 60.0)
    token_max, key_max = 100, 300

    with redis_server() as redis_url:
        port = free_port()
        emulator = f"http://127.0.0.1:{port}"
        argv = python_module("trellis", "emulator", "--port", str(port), "--key", KEY, "--token", TOKEN)
        with running(argv, port):
            limits = {
                "token_max": token_max,
                "token_window": window,
                "key_max": key_max,
                "key_window": window,
            }
            httpx.put(f"{emulator}/_emulator/limits", json=limits).raise_for_status()

            outputs, elapsed = run_workers(
                redis_url, emulator, processes=2, tasks=8, seconds=seconds, window=window, bulk_share=0
            )
            counters = httpx.get(f"{emulator}/_emulator/counters").json()
            served = sum(sum(o["served"].values()) for o in outputs)
            rejected = counters["rejected"].get(f"token:{TOKEN}", 0)
            allowed = round(token_max * seconds / window)  # whole windows: the run is a multiple of one
            utilisation = served / allowed
            round_trips = sum(o["round_trips"] for o in outputs) / max(1, sum(o["permits"] for o in outputs))

            httpx.post(f"{emulator}/_emulator/counters/reset").raise_for_status()
            mixed, _ = run_workers(
                redis_url, emulator, processes=2, tasks=8, seconds=seconds, window=window, bulk_share=0.5
            )
            mixed_rejected = (
                httpx.get(f"{emulator}/_emulator/counters").json()["rejected"].get(f"token:{TOKEN}", 0)
            )

    waits = {p: [w for o in mixed for w in o["waits"][p]] for p in ("EVENT", "BULK")}
    served_by = {p: sum(o["served"][p] for o in mixed) for p in ("EVENT", "BULK")}
    print(f"2 processes x 8 tasks, {seconds:.0f} s, {token_max} per {window:.0f} s a token ({elapsed:.1f} s)")
    print(f"served {served} of {allowed} allowed: utilisation {utilisation:.3f}; emulator 429s: {rejected}")
    print(f"Redis round trips per permit: {round_trips:.2f} (acquire and completion, plus one per wait)")
    print("half the tasks at bulk priority:")
    for p in ("EVENT", "BULK"):
        p50, p99 = percentile(waits[p], 50), percentile(waits[p], 99)
        print(f"  {p.lower():5} served {served_by[p]:5}  wait p50 {p50:.3f} s  p99 {p99:.3f} s")
    print(f"  the emulator's 429s: {mixed_rejected}")
    print(
        f"result: limiter utilisation={utilisation:.3f} rejected={rejected + mixed_rejected} "
        f"roundtrips={round_trips:.2f} served={served} allowed={allowed} "
        f"event_wait_p99={percentile(waits['EVENT'], 99):.3f} "
        f"bulk_wait_p99={percentile(waits['BULK'], 99):.3f}"
    )


if __name__ == "__main__":
    main()
