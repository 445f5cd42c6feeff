"""The fault runs' replicated Redis says why it could not start, at once, rather than after its wait."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bench.redis_ha import ReplicatedRedis


def test_a_server_that_cannot_take_its_port_fails_the_start_with_its_own_words(tmp_path: Path) -> None:
    redis = ReplicatedRedis(tmp_path, sentinels=False)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", redis.ports[1]))
        squatter.listen()
        started = time.monotonic()
        try:
            with pytest.raises(RuntimeError, match=r"redis-\d+ exited with 1:(.|\n)*(in use|bind)"):
                redis.start()
        finally:
            redis.stop()
    assert time.monotonic() - started < 10
