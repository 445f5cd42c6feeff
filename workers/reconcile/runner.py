"""One reconcile, whatever its scope: observe, plan, record the facts, guard, apply, audit, count, log.

A scope (a board, a workspace) supplies a `Subject`: a read-only `observe` that returns the plan, and
the writers of its facts and operations. Everything else is here, once:

- `apply=False` (`trellis plan`) observes and plans, and changes nothing.
- Facts are recorded before the guard: they take no one's access.
- A plan the mass-change guard holds becomes a pending approval, unless an operator approved taking
  access from every member it takes it from. A plan the operator rejected is not held again, nor
  applied, until the state it was computed from changes (its operations differ).
- What Trello refuses (the last admin, a member gone, observers on a plan without them) is recorded in
  the audit log and reported, never retried: the same request would be refused again.

Knows nothing of arq: the job functions call it, and so does `trellis plan`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from membership import approvals, audit
from membership.database import Database
from membership.rules import Actor
from workers import metrics
from workers.outside import errors
from workers.reconcile.plan import Plan, Skip, describe

log = structlog.get_logger("workers.reconcile")

RECONCILER = Actor.system("reconcile")

Op = TypeVar("Op")
Fact = TypeVar("Fact")


@dataclass(frozen=True)
class Observation(Generic[Op, Fact]):
    """What a subject saw, planned, and where the store files it."""

    plan: Plan[Op, Fact]
    organization_id: int  # the store's organization: approvals and audit records name it
    entity: str  # what refusals are recorded against ("trello_board", "trello_workspace")
    entity_id: int


class Subject(Protocol[Op, Fact]):
    """One scope's side of a reconcile."""

    @property
    def kind(self) -> str:
        """The scope's kind in metrics and logs: "board" or "workspace"."""

    async def observe(self) -> Observation[Op, Fact] | None:
        """Read Trello, then the store, and plan; changes nothing. None: the scope is not linked."""

    async def record(self, facts: list[Fact], cause: str) -> None:
        """Write the plan's facts into the store."""

    async def apply(self, operation: Op, cause: str) -> bool:
        """Carry out one operation, audited; False when there was nothing left to do (said in the log).
        Raises one of `errors.REFUSALS` when Trello refuses it."""

    async def refused(self, operation: Op, refusal: errors.TrelloError) -> None:
        """What Trello's refusal teaches the store, if anything."""


@dataclass
class Report(Generic[Op, Fact]):
    plan: Plan[Op, Fact]
    applied: list[Op] = field(default_factory=list)
    refused: list[tuple[Op, str]] = field(default_factory=list)  # Trello said no: reported, not retried
    approval_id: int | None = None
    rejected: bool = False  # the held plan is one an operator rejected: left as it is


async def reconcile(
    subject: Subject[Op, Fact],
    database: Database,
    *,
    cause: str,
    apply: bool = True,
    approved_losing: frozenset[str] | None = None,
) -> Report[Op, Fact] | None:
    """Make one scope and the store agree; None when the scope is not linked in the store.

    `approved_losing`: the members an operator approved taking access from; a held plan that takes it
    from no one else goes ahead.
    """
    observation = await subject.observe()
    if observation is None:
        log.info("not linked in the store: skipped", scope=subject.kind)
        return None
    plan = observation.plan
    report: Report[Op, Fact] = Report(plan)
    if not apply:
        return report
    if plan.facts:
        await subject.record(plan.facts, cause)
    if not plan.changes:
        return report
    if plan.held is not None and not (approved_losing is not None and plan.losing <= approved_losing):
        report.approval_id, report.rejected = await hold_for_approval(database, observation, cause)
        return report
    for operation in plan.operations:
        if isinstance(operation, Skip):
            log.info("skipped", member=operation.member_id, reason=operation.reason)
            continue
        try:
            if await subject.apply(operation, cause):
                report.applied.append(operation)
        except errors.REFUSALS as refusal:
            report.refused.append((operation, str(refusal)))
            await subject.refused(operation, refusal)
            await record_refusal(database, observation, operation, refusal, cause)
    for operation in report.applied:
        metrics.PLAN_OPERATIONS.labels(subject.kind, type(operation).__name__).inc()
    log.info(
        "reconciled", scope=plan.scope, applied=len(report.applied), refused=len(report.refused),
        facts=len(plan.facts),
    )  # fmt: skip
    return report


async def hold_for_approval(
    database: Database, observation: Observation[Op, Fact], cause: str
) -> tuple[int, bool]:
    """Record a plan the mass-change guard held as a pending approval (one open per scope); or, when
    the operator rejected this very plan last, leave it be. Returns the approval and whether it is
    that rejection."""
    plan = observation.plan
    assert plan.held is not None
    operations = [describe(op) for op in plan.operations]
    fingerprint = hashlib.sha256(orjson.dumps(operations, option=orjson.OPT_SORT_KEYS)).hexdigest()
    async with database.transaction() as session:
        rejected = await approvals.rejected_plan(session, plan.scope, fingerprint)
        if rejected is not None:
            log.info("plan rejected by an operator before: left as it is", scope=plan.scope,
                     approval=rejected.id)  # fmt: skip
            return rejected.id, True
        approval = await approvals.request(
            session, kind="plan", organization_id=observation.organization_id, scope=plan.scope,
            summary=plan.held, payload={"operations": operations, "losing": sorted(plan.losing),
                                        "fingerprint": fingerprint},
            actor=RECONCILER, cause=cause,
        )  # fmt: skip
    metrics.HELD.labels("plan").inc()
    log.warning("plan held for an operator", scope=plan.scope, reason=plan.held, approval=approval.id)
    return approval.id, False


async def record_refusal(
    database: Database, observation: Observation[Op, Fact], operation: Op, refusal: Exception, cause: str
) -> None:
    log.warning("trello refused", operation=describe(operation), error=type(refusal).__name__)
    async with database.transaction() as session:
        after = {**describe(operation), "refused": str(refusal)}
        audit_change(session, observation, operation, cause, action="refused", after=after)


def audit_change(
    session: AsyncSession,
    observation: Observation[Op, Fact],
    operation: object,
    cause: str,
    *,
    action: str | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Audit a change made in Trello (or refused by it), filed under the scope's entity and naming the
    member it is about (every operation on people has a `member_id`) and the board, if a board's."""
    audit.record(
        session, actor=RECONCILER, cause=cause, action=action or type(operation).__name__,
        entity=observation.entity, entity_id=observation.entity_id,
        organization_id=observation.organization_id, after=after or describe(operation),
        trello_member_id=getattr(operation, "member_id", None),
        board_id=observation.entity_id if observation.entity == "trello_board" else None,
    )  # fmt: skip
