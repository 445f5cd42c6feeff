"""`trellis doctor`: everything an operator should look at, each check ok, needing a person, or failing.

Read only: it migrates nothing, queues nothing, and never prints a secret (the token's own endpoint is
named by its pattern, `/tokens/{token}`, like every client log line).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from redis.asyncio import Redis

from jobs.connection import RedisTarget, connect
from jobs.deadletters import DeadLetters
from membership import approvals, retention
from membership.database import Database, head_revision
from trellis.settings import Settings
from trellis.wiring import clients_config
from workers.outside import errors
from workers.outside.clients import build_clients
from workers.outside.errors import redacted
from workers.outside.trello import TrelloClient
from workers.workflows.webhooks import webhook_status

Status = Literal["ok", "attention", "failed"]
TOKEN_WARNING = timedelta(days=14)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


async def examine(settings: Settings, *, now: datetime | None = None) -> list[Check]:
    """Every check, in the order an operator would fix them: Redis, the store, Trello, the webhooks,
    then the work waiting for a person."""
    now = now or datetime.now(UTC)
    checks: list[Check] = []
    redis = connect(settings.redis_target(), timeout=settings.enqueue_timeout_seconds)
    database = Database(settings.database_url)
    clients = build_clients(clients_config(settings), redis)
    try:
        checks.append(await _check("redis", lambda: _redis(redis, settings.redis_target())))
        checks.append(await _check("store", lambda: _store(database)))
        if clients.trello is None:
            missing = "no credentials (TRELLIS_TRELLO_API_KEY, TRELLIS_TRELLO_TOKEN)"
            checks.append(Check("trello", "attention", missing))
        else:
            trello = clients.trello
            checks.append(await _check("trello token", lambda: token_check(trello, now)))
            checks += await _webhooks(trello, database, settings)
        checks.append(await _check("queue", lambda: _queue(redis, settings.queue_name)))
        checks.append(await _check("dead letters", lambda: _dead_letters(redis)))
        checks.append(await _check("approvals", lambda: _approvals(database)))
        checks.append(await _check("history", lambda: _history(database, settings)))
    finally:
        await clients.aclose()
        await database.dispose()
        await redis.aclose()
    # What a person reads may quote an upstream's error text: no secret survives into it.
    secrets = settings.secret_values()
    return [replace(check, detail=redacted(check.detail, secrets)) for check in checks]


async def _check(name: str, run: Callable[[], Awaitable[tuple[Status, str]]]) -> Check:
    """One check; whatever it raises is its failure, said in one line."""
    try:
        status, detail = await run()
    except Exception as exc:
        return Check(name, "failed", f"{type(exc).__name__}: {exc}")
    return Check(name, status, detail)


async def _redis(redis: Redis, target: RedisTarget) -> tuple[Status, str]:
    """Whether Redis answers, where, and whether it has the replicas an acknowledgement waits for."""
    info = await redis.info("server")
    replication = await redis.info("replication")
    replicas = int(replication.get("connected_slaves", 0))
    where = f"redis {info.get('redis_version', '?')}, {target.describe()}, {replicas} replica(s) connected"
    if replicas < target.min_replicas:
        return "failed", (
            f"{where}, but TRELLIS_REDIS_MIN_REPLICAS={target.min_replicas}: every delivery is refused (503)"
        )
    return "ok", f"answers ({where})"


async def _store(database: Database) -> tuple[Status, str]:
    await database.ping()
    current, head = await database.revision(), head_revision()
    if current != head:
        return "attention", f"schema at {current or 'nothing'}, code expects {head}: run `trellis migrate`"
    return "ok", f"answers, schema current ({head})"


async def _history(database: Database, settings: Settings) -> tuple[Status, str]:
    rows = await retention.sizes(database)
    return "ok", (
        f"event log {rows['event_log']:,} rows (kept {settings.event_retention_days} d), "
        f"audit log {rows['audit_log']:,} rows (kept {settings.audit_retention_days} d)"
    )


async def token_check(trello: TrelloClient, now: datetime) -> tuple[Status, str]:
    try:
        me = await trello.me()
        info = await trello.token_info()
    except errors.TrelloTokenExpired:
        return "failed", "Trello says the token has expired: make a new one"
    except errors.TrelloUnauthorized as exc:
        return "failed", f"Trello refuses the key or token: {exc}"
    who = f"key and token reach Trello as {me.get('username', '?')}"
    expires = info.get("dateExpires")
    if not expires:
        return "ok", f"{who}; the token never expires"
    left = datetime.fromisoformat(str(expires).replace("Z", "+00:00")) - now
    if left <= timedelta(0):
        return "failed", f"{who}; the token expired on {expires}"
    status: Status = "attention" if left < TOKEN_WARNING else "ok"
    return status, f"{who}; the token expires on {expires} (in {left.days} days)"


async def _webhooks(trello: TrelloClient, database: Database, settings: Settings) -> list[Check]:
    if not settings.callback_url:
        return [Check("webhooks", "attention", "no TRELLIS_CALLBACK_URL: no webhook can call us")]
    try:
        statuses = await webhook_status(trello, database, settings.callback_url)
    except Exception as exc:
        return [Check("webhooks", "failed", f"{type(exc).__name__}: {exc}")]
    checks = []
    for status in statuses:
        model, hook = status.model, status.webhook
        name = f"webhook {model.kind} {model.name}"
        if hook is None:
            checks.append(Check(name, "failed", f"missing on {model.id} (`trellis webhooks ensure`)"))
        elif not hook.get("active"):
            checks.append(Check(name, "failed", f"inactive on {model.id} (`trellis webhooks ensure`)"))
        else:
            failures = int(hook.get("consecutiveFailures") or 0)
            state: Status = "attention" if failures else "ok"
            checks.append(Check(name, state, f"active on {model.id}, consecutiveFailures={failures}"))
    return checks or [Check("webhooks", "ok", "no linked workspace yet")]


async def _queue(redis: Redis, queue_name: str) -> tuple[Status, str]:
    depth = await redis.zcard(queue_name)
    return "ok", f"{depth} job(s) waiting"


async def _dead_letters(redis: Redis) -> tuple[Status, str]:
    letters = await DeadLetters(redis).list()
    if letters:
        return "attention", f"{len(letters)} job(s) failed for good (`trellis dead-letters list`)"
    return "ok", "none"


async def _approvals(database: Database) -> tuple[Status, str]:
    async with database.transaction() as session:
        waiting = await approvals.open_approvals(session)
    if waiting:
        return "attention", f"{len(waiting)} waiting for an operator (`trellis approvals list`)"
    return "ok", "none waiting"
