"""`trellis emulator` serves the emulator as its own process, with the credentials it is given."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from emulator.fixture import sample
from tests.support import free_port


def test_emulator_command_serves_a_fixture_with_the_given_credentials(tmp_path: Path) -> None:
    fixture = sample()
    fixture["workspaces"][0]["displayName"] = "From The Fixture"
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    port = free_port()
    command = [sys.executable, "-m", "trellis", "emulator", "--port", str(port), "--fixture", str(path),
               "--key", "cli-key", "--token", "cli-token", "--secret", "cli-secret"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                workspaces = httpx.get(
                    f"{base}/1/members/me/organizations", params={"key": "cli-key", "token": "cli-token"}
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        refused = httpx.get(f"{base}/1/members/me", params={"key": "emulator-key", "token": "cli-token"})
    finally:
        process.terminate()
        process.wait(20)
    assert [w["displayName"] for w in workspaces.json()] == ["From The Fixture"]
    assert refused.status_code == 401
