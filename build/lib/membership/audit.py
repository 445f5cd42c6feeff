"""The audit log: every change written in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from membership.models import AuditEntry
from membership.rules import Actor


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
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor.name,
        cause=cause,
        action=action,
        entity=entity,
        entity_id=entity_id,
        organization_id=organization_id,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry
