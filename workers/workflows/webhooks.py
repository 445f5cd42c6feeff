"""Webhook registrations: every linked workspace and each of its open boards has an active webhook that
calls us back.

Trello deactivates a webhook whose deliveries keep failing, and deletes it with its model or its token,
so this runs with every full resync and whenever a workspace reconcile links a new board. A deactivated
webhook is switched on again (that also clears its failure count); a missing one is created.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog

from membership.database import Database
from membership.workspaces import linked_organizations, open_linked_boards
from workers.outside import errors
from workers.outside.limiter import Priority
from workers.outside.trello import TrelloClient

log = structlog.get_logger("workers.webhooks")

DESCRIPTION = "trellis"


@dataclass(frozen=True)
class WatchedModel:
    """A workspace or board that must have a webhook."""

    id: str
    kind: str  # "workspace" or "board"
    name: str


@dataclass(frozen=True)
class WebhookStatus:
    model: WatchedModel
    webhook: dict[str, Any] | None  # Trello's webhook object, None when there is none to our callback

    @property
    def healthy(self) -> bool:
        return self.webhook is not None and bool(self.webhook.get("active"))


@dataclass
class EnsureReport:
    ok: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (model, why)
    gone: list[str] = field(default_factory=list)  # boards Trello no longer has: to reconcile, not retry


async def watched_models(database: Database) -> list[WatchedModel]:
    """Every linked workspace, and each of its boards that is open."""
    async with database.transaction() as session:
        organizations = await linked_organizations(session)
        boards = await open_linked_boards(session)
    return [WatchedModel(o.trello_org_id or "", "workspace", o.name) for o in organizations] + [
        WatchedModel(b.trello_board_id or "", "board", b.name) for b in boards
    ]


async def webhook_status(
    trello: TrelloClient, database: Database, callback_url: str, *, priority: Priority = Priority.BULK
) -> list[WebhookStatus]:
    """Each watched model with its webhook to `callback_url`, if it has one. One call to Trello."""
    ours = {
        hook["idModel"]: hook
        for hook in await trello.webhooks(priority=priority)
        if hook.get("callbackURL") == callback_url
    }
    return [WebhookStatus(model, ours.get(model.id)) for model in await watched_models(database)]


async def forget_webhooks(trello: TrelloClient, callback_url: str, model_ids: list[str]) -> list[str]:
    """Delete our webhooks on models we let go of (a board moved to a workspace we do not link); returns
    the ones deleted. One that is gone already is what was wanted."""
    if not model_ids:
        return []
    wanted, deleted = set(model_ids), []
    for hook in await trello.webhooks():
        if hook.get("callbackURL") == callback_url and hook.get("idModel") in wanted:
            with contextlib.suppress(*errors.ABSENT):
                await trello.delete_webhook(hook["id"])
            deleted.append(hook["idModel"])
    log.info("webhooks of boards let go of deleted", boards=deleted)
    return deleted


async def ensure_webhooks(
    trello: TrelloClient, database: Database, callback_url: str, *, priority: Priority = Priority.BULK
) -> EnsureReport:
    report = EnsureReport()
    for status in await webhook_status(trello, database, callback_url, priority=priority):
        model = status.model.id
        try:
            if status.webhook is None:
                await trello.create_webhook(callback_url, model, DESCRIPTION)
                report.created.append(model)
            elif not status.webhook.get("active"):
                await trello.update_webhook(status.webhook["id"], active="true")
                report.reactivated.append(model)
            else:
                report.ok.append(model)
        except errors.REFUSALS as exc:
            # "Already exists" means another worker created it a moment ago: that is what we wanted.
            if "already exists" in str(exc):
                report.ok.append(model)
                continue
            if status.model.kind == "board" and isinstance(exc, errors.ABSENT):
                report.gone.append(model)  # deleted since it was linked: its reconcile lets it go
                continue
            report.failed.append((model, str(exc)))
            log.warning("webhook not registered", model=model, error=type(exc).__name__, detail=str(exc))
    log.info(
        "webhooks checked", ok=len(report.ok), created=len(report.created),
        reactivated=len(report.reactivated), failed=len(report.failed), gone=len(report.gone),
    )  # fmt: skip
    return report
