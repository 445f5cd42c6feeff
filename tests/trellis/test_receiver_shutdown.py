"""The receiver stops gracefully on SIGTERM: it stops accepting, finishes, and closes its connections."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.stack import wait_for
from tests.support import free_port


def test_sigterm_stops_the_receiver_through_its_shutdown(
    redis_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": sqlite_url,
           "TRELLIS_PORT": str(port), "TRELLIS_LOG_FORMAT": "json"}  # fmt: skip
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        receiver = subprocess.Popen([sys.executable, "-m", "trellis", "serve"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", receiver)
        receiver.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then raises the signal again so that the exit status says it was stopped.
        assert receiver.wait(15) in (0, -signal.SIGTERM)
    finally:
        if receiver.poll() is None:
            receiver.kill()
    told = log.read_text()
    # uvicorn's order: stop accepting, wait for requests in flight, then the app's lifespan closes Redis
    # and the store.
    assert told.index("Shutting down") < told.index("Waiting for application shutdown")
    assert "Application shutdown complete" in told
    assert "Finished server process" in told
