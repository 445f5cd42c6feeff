"""`trellis doctor`: all well is exit 0; what needs a person is said in one line each, with exit 1 or 2."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from jobs.deadletters import DeadLetter, DeadLetters
from tests.stack import KEY, TOKEN, cli_env, emulator_state, services, store_like_trello, trellis

__all__ = ["services"]  # a fixture, used by name


async def test_all_well_exits_zero_and_never_shows_a_secret(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    await store_like_trello(sqlite_url, await emulator_state(services))
    env = cli_env(services, sqlite_url, redis_url)
    assert trellis("webhooks", "ensure", env=env).returncode == 0

    doctor = trellis("doctor", env=env)

    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    assert all(line.startswith("ok") for line in lines), doctor.stdout
    assert any("key and token reach Trello as trellis_admin" in line for line in lines)
    assert sum("webhook board" in line for line in lines) == 5
    assert KEY not in doctor.stdout + doctor.stderr
    assert TOKEN not in doctor.stdout + doctor.stderr


async def test_a_missing_webhook_fails_and_a_dead_letter_needs_a_person(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    env = cli_env(services, sqlite_url, redis_url)
    assert trellis("webhooks", "ensure", env=env).returncode == 0
    listed = trellis("webhooks", "list", env=env)
    roadmap = next(line for line in listed.stdout.splitlines() if "Roadmap" in line)
    trellis("webhooks", "delete", roadmap.rsplit("id=", 1)[1], env=env)
    redis = Redis.from_url(redis_url)
    await DeadLetters(redis).add(DeadLetter("job-1", "reconcile_board", ["b"], {}, 8, "boom"))
    await redis.aclose()

    doctor = trellis("doctor", env=env)

    assert doctor.returncode == 2, doctor.stdout
    assert any(
        line.startswith("XX") and "Roadmap" in line and "missing" in line
        for line in doctor.stdout.splitlines()
    )
    assert any(
        line.startswith("!!") and "1 job(s) failed for good" in line for line in doctor.stdout.splitlines()
    )


async def test_an_unreachable_redis_is_a_failure_not_a_crash(
    services: dict[str, Any], sqlite_url: str
) -> None:
    await store_like_trello(sqlite_url, await emulator_state(services))
    env = cli_env(services, sqlite_url, "redis://127.0.0.1:1/0")

    doctor = trellis("doctor", env=env)

    assert doctor.returncode == 2
    assert doctor.stdout.splitlines()[0].startswith("XX  redis")
    assert "Traceback" not in doctor.stderr


async def test_a_store_behind_the_code_asks_for_a_migration(
    services: dict[str, Any], tmp_path: Any, redis_url: str
) -> None:
    store = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    doctor = trellis("doctor", env=cli_env(services, store, redis_url))

    assert any("run `trellis migrate`" in line for line in doctor.stdout.splitlines()), doctor.stdout


async def test_a_redis_without_the_replicas_acknowledgements_wait_for_fails(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    env = cli_env(services, sqlite_url, redis_url, TRELLIS_REDIS_MIN_REPLICAS="1")

    doctor = trellis("doctor", env=env)

    redis_line = next(line for line in doctor.stdout.splitlines() if " redis " in f" {line} ")
    assert redis_line.startswith("XX"), doctor.stdout
    assert "0 replica(s) connected" in redis_line
    assert "TRELLIS_REDIS_MIN_REPLICAS=1" in redis_line
