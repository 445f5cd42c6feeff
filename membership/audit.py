"""The audit log: every change written in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from membership.models import AuditEntry
from membership.rules import Actor

# An offboarding's one entry: its `after` names the Trello boards it took the person off ("boards") and
# those Trello refused ("refused": [board, reason] pairs); `membership.history` tells them by name.
MEMBER_OFFBOARDED = "member_offboarded"


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    cause: str,
    action: str,
    entity: str,
    entity_id: int | None,
    organization_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    user_id: int | None = None,
    trello_member_id: str | None = None,
    board_id: int | None = None,
) -> AuditEntry:
    """Add the entry to `session`. `user_id`, `trello_member_id` and `board_id` name whom and what the
    change is about (as many as are known), whatever its entity: they are what a person's or a board's
    history is read by."""
    entry = AuditEntry(
        actor=actor.name,
        cause=cause,
        action=action,
        entity=entity,
        entity_id=entity_id,
        organization_id=organization_id,
        before=before,
        after=after,
        user_id=user_id,
        trello_member_id=trello_member_id,
        board_id=board_id,
    )
    session.add(entry)
    return entry
