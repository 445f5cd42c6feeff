"""The `trellis` command: settings errors are one line, and `trellis events` reads the event log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from membership.database import Database, migrate
from membership.events import record_event
from tests.support import trello_id


def trellis(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "trellis", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_setting_stops_the_command_with_one_clear_line() -> None:
    result = trellis("events", env={"TRELLIS_MAX_BODY_BYTES": "many"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "trellis: invalid configuration: TRELLIS_MAX_BODY_BYTES: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_help_works_whatever_the_environment() -> None:
    result = trellis("--help", env={"TRELLIS_MAX_BODY_BYTES": "many"})
    assert result.returncode == 0
    assert "serve" in result.stdout


@pytest.fixture
async def store_with_events(sqlite_url: str) -> str:
    await migrate(sqlite_url)
    database = Database(sqlite_url)
    async with database.transaction() as session:
        for day in (1, 3, 2):
            from datetime import UTC, datetime

            await record_event(
                session,
                action_id=trello_id(),
                type=f"addMemberToBoard{day}",
                model_id=trello_id(),
                action_date=datetime(2026, 11, day, tzinfo=UTC),
                payload={},
            )
    await database.dispose()
    return sqlite_url


def test_events_lists_the_newest_first_as_json(store_with_events: str) -> None:
    result = trellis("events", "--json", "--limit", "2", env={"TRELLIS_DATABASE_URL": store_with_events})
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["type"] for row in rows] == ["addMemberToBoard3", "addMemberToBoard2"]


def test_migrate_creates_the_schema(sqlite_url: str) -> None:
    result = trellis("migrate", env={"TRELLIS_DATABASE_URL": sqlite_url})
    assert result.returncode == 0, result.stderr
    listed = trellis("events", env={"TRELLIS_DATABASE_URL": sqlite_url})
    assert listed.stdout.strip() == "no events recorded"
