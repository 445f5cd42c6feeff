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


def test_bootstrap_from_the_command_line_gives_a_token_that_works(
    sqlite_url: str, make_settings: object
) -> None:
    env = {"TRELLIS_DATABASE_URL": sqlite_url}
    linked = trellis(
        "orgs", "link", "5f0000000000000000000001", "--name", "Acme", "--owner", "Olive@Example.com", env=env
    )
    assert linked.returncode == 0, linked.stderr
    assert "owner olive@example.com" in linked.stdout.lower()
    created = trellis("tokens", "create", "olive@example.com", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()

    import asyncio

    import httpx

    from trellis.wiring import receiver_app

    async def list_members() -> httpx.Response:
        app = receiver_app(make_settings(database_url=sqlite_url))  # type: ignore[operator]
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get(
                    "/organizations/me/members", headers={"authorization": f"Bearer {token}"}
                )

    response = asyncio.run(list_members())
    assert response.status_code == 200
    assert [m["role"] for m in response.json()["data"]] == ["owner"]


def test_linking_the_same_workspace_twice_is_refused_in_one_line(sqlite_url: str) -> None:
    env = {"TRELLIS_DATABASE_URL": sqlite_url}
    args = ("orgs", "link", "5f0000000000000000000001", "--name", "Acme", "--owner", "o@example.com")
    trellis(*args, env=env)
    again = trellis(*args, env=env)
    assert again.returncode == 1
    assert (
        again.stderr.strip().splitlines()[-1]
        == "trellis: Trello workspace 5f0000000000000000000001 is linked already"
    )


def test_users_create_and_list(sqlite_url: str) -> None:
    env = {"TRELLIS_DATABASE_URL": sqlite_url}
    assert trellis("users", "create", "Invitee@Example.com", "--name", "Ivy", env=env).returncode == 0
    listed = trellis("users", "list", env=env)
    assert "invitee@example.com" in listed.stdout
    assert "Ivy" in listed.stdout


def test_invalid_email_is_refused(sqlite_url: str) -> None:
    result = trellis("users", "create", "not-an-email", env={"TRELLIS_DATABASE_URL": sqlite_url})
    assert (result.returncode, result.stderr.strip()) == (1, "trellis: email is empty or invalid")


def test_revoked_token_is_reported(sqlite_url: str) -> None:
    env = {"TRELLIS_DATABASE_URL": sqlite_url}
    trellis("users", "create", "u@example.com", env=env)
    trellis("tokens", "create", "u@example.com", env=env)
    assert trellis("tokens", "revoke", "1", env=env).stdout.strip() == "token 1 revoked"
    assert trellis("tokens", "revoke", "1", env=env).returncode == 1


def test_dead_letters_are_listed_replayed_and_dropped(redis_url: str) -> None:
    import redis as sync_redis

    from jobs.deadletters import DEAD_LETTERS_KEY, DeadLetter

    client = sync_redis.Redis.from_url(redis_url)
    for job_id in ("job-a", "job-b"):
        letter = DeadLetter(job_id, "apply_event", [{"action": {}}], {}, 8, "InvalidDelivery: no action")
        client.hset(DEAD_LETTERS_KEY, job_id, letter.to_json())
    env = {"TRELLIS_REDIS_URL": redis_url, "TRELLIS_QUEUE_NAME": "trellis:test:queue"}

    listed = trellis("dead-letters", "list", env=env)
    replayed = trellis("dead-letters", "replay", "job-a", env=env)
    dropped = trellis("dead-letters", "drop", "job-b", "job-x", env=env)

    assert listed.stdout.splitlines()[0].startswith("job-a  apply_event  tries=8  InvalidDelivery")
    assert replayed.stdout.strip() == "job-a: queued again"
    assert client.zcard("trellis:test:queue") == 1
    assert dropped.returncode == 1
    assert dropped.stdout.splitlines() == ["job-b: dropped", "job-x: no such dead letter"]
    assert trellis("dead-letters", "list", env=env).stdout.strip() == "no dead letters"
    client.close()


def test_a_misspelt_setting_stops_start_up_naming_the_nearest() -> None:
    result = trellis("events", env={"TRELLIS_REDIS_ULR": "redis://elsewhere:6379/0"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "trellis: TRELLIS_REDIS_ULR: not a known setting (did you mean TRELLIS_REDIS_URL?)"
    ]


def test_the_service_does_not_start_without_the_webhook_secret_and_callback(sqlite_url: str) -> None:
    env = {"TRELLIS_DATABASE_URL": sqlite_url, "TRELLIS_TRELLO_API_KEY": "abcdef12" * 4,
           "TRELLIS_TRELLO_TOKEN": "abcdef12" * 8, "TRELLIS_TRELLO_SECRET": ""}  # fmt: skip
    result = trellis(
        "serve", env={**env, "TRELLIS_CALLBACK_URL": "https://trellis.example.com/webhooks/trello"}
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("trellis: TRELLIS_TRELLO_SECRET and TRELLIS_CALLBACK_URL are both needed")


def test_credentials_of_a_shape_trello_never_issues_are_refused_in_one_line() -> None:
    result = trellis("events", env={"TRELLIS_TRELLO_API_KEY": "k", "TRELLIS_TRELLO_TOKEN": "t"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert (
        line == "trellis: invalid configuration: TRELLIS_TRELLO_API_KEY: not a Trello API key (32 hex digits)"
    )


def never_migrated(postgres_url: str) -> str:
    """A PostgreSQL database of its own, empty: no schema at all."""
    import asyncio

    from membership.database import recreate_postgres_database

    empty = f"{postgres_url}_unmigrated"
    asyncio.run(recreate_postgres_database(empty))
    return empty


def test_a_command_against_a_store_never_migrated_says_to_migrate(postgres_url: str) -> None:
    from membership.database import head_revision

    result = trellis("users", "list", env={"TRELLIS_DATABASE_URL": never_migrated(postgres_url)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"trellis: the store's schema is at nothing, this version needs {head_revision()}: "
        "run `trellis migrate`"
    ]


def test_a_command_that_also_asks_trello_says_to_migrate_too(postgres_url: str) -> None:
    env = {"TRELLIS_DATABASE_URL": never_migrated(postgres_url), "TRELLIS_TRELLO_BASE_URL": "http://127.0.0.1:9/1",
           "TRELLIS_TRELLO_API_KEY": "k", "TRELLIS_TRELLO_TOKEN": "t"}  # fmt: skip
    result = trellis("plan", "--board", "5f0b0a4d0b0a4d0b0a4d0b0a", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("run `trellis migrate`")
