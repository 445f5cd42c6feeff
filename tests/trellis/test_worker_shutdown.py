"""`trellis worker` stops on SIGTERM even while Redis is away: it would otherwise wait for Redis to come
back before it could be stopped, and a deploy or a node drain would have to kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_without_redis_stops_on_a_signal(
    sqlite_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    env = {**os.environ, "TRELLIS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "TRELLIS_DATABASE_URL": sqlite_url, "TRELLIS_WORKER_METRICS_PORT": "0",
           "TRELLIS_LOG_FORMAT": "json"}  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "trellis", "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("lost Redis") < 2:  # past its first attempt: between two workers
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        worker.send_signal(signum)
        assert worker.wait(5) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "stopped while Redis was away" in log.read_text()
