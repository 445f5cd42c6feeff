"""The shared rate limiter against the emulator's exact limits, with Trello answering in 100-300 ms.

Starts a redis-server of its own, the emulator (`trellis emulator`, latency 100 ms + up to 200 ms) and,
for each of three runs, 2 worker processes making token-scoped calls for 60 s under Trello's limits (100
per 10 s per token); `--quick` scales the window down to 2 s for 7 s runs.

- events: 8 tasks a process calling back to back at event priority. Prints utilisation measured over
  sliding windows (requests let go in each window / the limit, averaged over every window position in
  the run), the emulator's count of 429s, and Redis round trips a permit.
- resync alone: the same tasks at bulk priority: what bulk work gets of the limit with no event about.
- resync and events: the bulk tasks, and 1 task a process making an event call every 0.5 s (webhooks
  trickling in): the event callers' waits.

The baseline is the limit itself, the same in every run.

Ends with: result: limiter utilisation=U rejected=N round_trips_per_permit=R event_p95_s=E ...
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import statistics
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
    seconds: float,
    window: float,
    bulk_share: float,
    event_callers: int = 0,
) -> list[dict[str, Any]]:
    start_at = time.time() + 1.5  # every process starts in the same instant, imports done
    argv = [
        "--redis", redis_url, "--emulator", emulator, "--key", KEY, "--token", TOKEN, "--tasks", "8",
        "--seconds", str(seconds), "--window", str(window), "--bulk-share", str(bulk_share),
        "--event-callers", str(event_callers), "--start-at", str(start_at),
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "limiter_worker.py"), *argv],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    return [json.loads(worker.communicate(timeout=seconds + 120)[0]) for worker in workers]


def sliding_utilisation(granted: list[float], maximum: int, window: float) -> float:
    """Requests let go in a window / the limit, averaged over every position of the window that fits in
    the run (in steps of a twentieth of it)."""
    times = sorted(granted)
    first, last = times[0], times[-1]
    step, shares = window / 20, []
    position = first
    while position + window <= last:
        inside = bisect.bisect_left(times, position + window) - bisect.bisect_left(times, position)
        shares.append(inside / maximum)
        position += step
    return statistics.fmean(shares) if shares else 0.0


def rejected(emulator: str) -> int:
    counters = httpx.get(f"{emulator}/_emulator/counters").json()
    httpx.post(f"{emulator}/_emulator/counters/reset").raise_for_status()
    return int(counters["rejected"].get(f"token:{TOKEN}", 0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s windows, 7 s runs")
    args = parser.parse_args()
    window, seconds = (2.0, 7.0) if args.quick else (10.0, 60.0)
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
            latency = {"latency_ms": 100, "latency_spread_ms": 200}
            httpx.put(f"{emulator}/_emulator/faults", json=latency).raise_for_status()
            runs, refused = {}, {}
            for name, bulk_share, event_callers in (
                ("events", 0.0, 0),
                ("resync", 1.0, 0),
                ("mixed", 1.0, 1),
            ):
                runs[name] = run_workers(
                    redis_url, emulator, seconds=seconds, window=window, bulk_share=bulk_share,
                    event_callers=event_callers,
                )  # fmt: skip
                refused[name] = rejected(emulator)

    def granted(name: str) -> list[float]:
        return [t for output in runs[name] for t in output["granted"]]

    utilisation = {name: sliding_utilisation(granted(name), token_max, window) for name in runs}
    events = runs["events"]
    round_trips = sum(o["round_trips"] for o in events) / max(1, sum(o["permits"] for o in events))
    event_waits = [w for o in runs["mixed"] for w in o["waits"]["EVENT"]]
    bulk_waits = [w for o in runs["mixed"] for w in o["waits"]["BULK"]]
    served_mixed = {p: sum(o["served"][p] for o in runs["mixed"]) for p in ("EVENT", "BULK")}
    print(f"2 processes x 8 tasks, {seconds:.0f} s a run, {token_max} per {window:.0f} s a token, "
          f"Trello answering in 100-300 ms")  # fmt: skip
    print(f"{'run':22} {'utilisation':>11} {'429s':>5}")
    for name, label in (("events", "events"), ("resync", "resync alone"), ("mixed", "resync and events")):
        print(f"{label:22} {utilisation[name]:11.3f} {refused[name]:5d}")
    print(f"Redis round trips a permit (events run): {round_trips:.2f}")
    print(
        f"resync and events: {served_mixed['EVENT']} event calls, "
        f"wait p50 {percentile(event_waits, 50):.3f} s, p95 {percentile(event_waits, 95):.3f} s, "
        f"p99 {percentile(event_waits, 99):.3f} s; "
        f"{served_mixed['BULK']} bulk calls, wait p95 {percentile(bulk_waits, 95):.3f} s"
    )
    print(
        f"result: limiter utilisation={utilisation['events']:.3f} rejected={sum(refused.values())} "
        f"round_trips_per_permit={round_trips:.2f} event_p95_s={percentile(event_waits, 95):.3f} "
        f"resync_utilisation={utilisation['resync']:.3f} mixed_utilisation={utilisation['mixed']:.3f}"
    )


if __name__ == "__main__":
    main()
