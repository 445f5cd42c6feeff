"""The jobs other parts ask the workers for, spelled in one place: names, arguments and job ids.

A job id is what dedupes a job (arq queues nothing under an id whose job or result exists), so the
receiver, the CLI and the workers must agree on each one; they do by building jobs only here.
"""

from __future__ import annotations

import uuid

from workers.queue import Job


def push_change(change_id: int) -> Job:
    """Make Trello follow one change made through the membership API (an outbox row)."""
    return Job("push_member_change", (change_id,), job_id=f"member-change:{change_id}")


def offboard(trello_org_id: str, member_id: str, reason: str) -> Job:
    """Take a member who left a workspace off its boards. One at a time a member: the id dedupes
    repeated deliveries, and the workspace reconcile finding the same departure, while it waits."""
    return Job(
        "offboard_member",
        (trello_org_id, member_id),
        {"reason": reason},
        job_id=f"offboard:{trello_org_id}:{member_id}",
    )


def reconcile(kind: str, scope_id: str, reason: str, *, defer: float = 0.0, bulk: bool = False) -> Job:
    """A reconcile of one scope ("board" or "org"). A new id each time: the scope's own state in Redis
    coalesces them, and arq would refuse an id whose job is still running."""
    kwargs: dict[str, object] = {"reason": reason}
    if bulk:
        kwargs["bulk"] = True
    return Job(
        f"reconcile_{kind}",
        (scope_id,),
        kwargs,
        job_id=f"reconcile:{kind}:{scope_id}:{uuid.uuid4().hex}",
        defer_seconds=defer,
    )


def reconcile_approved(kind: str, scope_id: str, approval_id: int) -> Job:
    """Reconcile a scope again after an operator approved its held plan."""
    return Job(
        f"reconcile_{kind}", (scope_id,), {"reason": f"approval {approval_id}", "approval_id": approval_id}
    )


def deactivate_account(approval_id: int) -> Job:
    """Deactivate the Atlassian account an approved `scim_deactivate` approval names."""
    return Job("deactivate_account", (approval_id,), job_id=f"deactivate-account:{approval_id}")


def ensure_webhooks(reason: str) -> Job:
    """Check that every linked workspace and open board has an active webhook (idempotent: a check that
    finds them all costs one call)."""
    return Job("ensure_webhooks", (), {"reason": reason})
