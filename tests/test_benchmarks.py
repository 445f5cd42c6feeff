"""The benchmarks run (quick mode) and their audits hold. Figures are printed, never asserted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.benchmark


def result_line(script: str) -> dict[str, str]:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=170,
        check=True,
        cwd=ROOT,
    )
    last = completed.stdout.strip().splitlines()[-1]
    assert last.startswith("result: "), completed.stdout
    print(completed.stdout)
    return dict(field.split("=", 1) for field in last.split()[2:])


@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_receiver_benchmark_loses_no_acknowledged_delivery() -> None:
    figures = result_line("receiver.py")
    assert figures["lost"] == "0"
    assert figures["non2xx"] == "0"
    assert float(figures["ratio"]) > 0


@pytest.mark.timeout(180)
def test_limiter_benchmark_gets_no_429_from_the_emulator() -> None:
    figures = result_line("limiter.py")
    assert figures["rejected"] == "0"
    assert float(figures["utilisation"]) > 0


@pytest.mark.timeout(180)
def test_reconcile_benchmark_coalesces_a_burst_and_pays_one_call_a_board() -> None:
    figures = result_line("reconcile.py")
    assert int(figures["coalesced_runs"]) <= 2
    assert float(figures["resync_calls_per_board"]) < 1.1  # boards + a few
    assert figures["rejected"] == "0"
    assert float(figures["offboard_ratio"]) > 0


@pytest.mark.timeout(180)
def test_large_benchmark_pays_one_call_a_board_and_statements_that_do_not_grow_with_the_workspace() -> None:
    figures = result_line("large.py")
    assert float(figures["calls_per_board"]) < 1.1
    # Statement counts are not times: a board reconcile's must be the same whatever the workspace's size.
    assert float(figures["statements_spread"]) <= 1.05
    assert figures["rejected"] == "0"
    assert float(figures["resync_ratio"]) > 0


@pytest.mark.timeout(180)
def test_scale_benchmark_loses_nothing_and_gets_no_429() -> None:
    figures = result_line("scale.py")
    assert figures["lost"] == "0"
    assert figures["rejected"] == "0"
    assert float(figures["speedup"]) > 0


@pytest.mark.timeout(180)
def test_soak_benchmark_loses_no_acknowledged_delivery() -> None:
    figures = result_line("soak.py")
    assert figures["lost"] == "0"
    assert figures["acked"] == figures["delivered"]
    assert figures["rejected"] == "0"


@pytest.mark.timeout(180)
def test_safety_benchmark_holds_the_wave_and_never_overlaps_a_scope() -> None:
    figures = result_line("safety.py")
    assert figures["held_before_approval"] == "1"
    assert figures["removed_before_approval"] == "0"
    assert figures["deactivated_before_approval"] == "0"
    assert figures["max_concurrent_per_scope"] == "1"
    assert figures["scope_keys_left"] == "0"
    linked, newcomers = figures["onboard_linked"].split("/")
    assert linked == newcomers
    assert float(figures["outbox_drain_s"]) > 0


@pytest.mark.timeout(180)
def test_retention_benchmark_prunes_the_old_rows_in_short_batches() -> None:
    figures = result_line("retention.py")
    assert int(figures["deleted"]) == int(figures["rows"]) * 4 // 5
    assert float(figures["longest_lock_s"]) > 0


@pytest.mark.timeout(180)
def test_failover_benchmark_loses_no_acknowledged_delivery() -> None:
    figures = result_line("failover.py")
    assert figures["lost"] == "0"
    assert figures["alive"] == "1"  # the receiver and the workers followed the new primary
    assert int(figures["refused"]) > 0  # the primary did die under load
