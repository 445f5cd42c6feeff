"""The first page: the organization's link to Trello, its boards and people, the work waiting in Redis
and for an operator, the rate limiter's use of its window, the last resync and webhook check."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from starlette.responses import Response

from jobs import status
from jobs.deadletters import DeadLetters
from jobs.status import Status, StatusBoard
from membership.overview import organization_overview
from receiver.console.calls import Call, Problems

log = structlog.get_logger("receiver.console")


@dataclass(frozen=True)
class Shared:
    """What the overview reads from Redis: None when Redis did not answer."""

    queue_depth: int
    dead_letters: int
    board: dict[str, Status]


async def show(call: Call, problems: Problems) -> Response:
    overview = await organization_overview(call.session, call.actor, call.organization_id)
    shared = await shared_state(call)
    board = {} if shared is None else shared.board
    return call.render(
        "overview.html", overview=overview, shared=shared, webhook_check=board.get(status.WEBHOOKS),
        limiter=board.get(status.LIMITER), resync=board.get(status.RESYNC),
    )  # fmt: skip


# The limiter's buckets by what they stand for (each name ends with a digest of its key or token).
LIMIT_LABELS = {
    "trello:key": "Trello, the API key",
    "trello:token": "Trello, the token",
    "trello:members": "Trello, /1/members calls",
    "scim": "Atlassian SCIM",
}


def limit_label(name: str) -> str:
    kind = name.rsplit(":", 1)[0]
    return LIMIT_LABELS.get(kind, name)


async def shared_state(call: Call) -> Shared | None:
    redis, queue = call.services.redis, call.services.queue
    try:
        depth = await redis.zcard(queue.queue_name)
        dead = await DeadLetters(redis).count()
        board = await StatusBoard(redis).read()
    except Exception as exc:  # the page still shows what the store knows
        log.warning("console: redis not read", error=type(exc).__name__)
        return None
    return Shared(int(depth), int(dead), board)
