"""The jobs anyone may ask the workers for, one typed builder each: names, arguments and job ids.

A job id is what dedupes a job (arq queues nothing under an id whose job or result exists), so the
receiver, the CLI and the workers must agree on each one; they do by building jobs only here. Each
builder's arguments are those of the worker function of the same name (`workers.runtime.functions`):
a test binds every builder's job to that function's signature.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from jobs.queue import Job, RawJSON

ScopeKind = Literal["board", "workspace"]

# Names a queue written by an older version may still hold, and the job each now is. Kept until such
# queues have drained: a job already queued must still run after an upgrade.
LEGACY_NAMES = {"reconcile_org": "reconcile_workspace"}
# The same for the scope kinds approvals recorded before ("org:<id>").
LEGACY_SCOPE_KINDS: dict[str, ScopeKind] = {"org": "workspace"}


def apply_event(body: RawJSON, action_id: str) -> Job:
    """Record a verified delivery and follow it up. The action id is the job id, so a delivery Trello
    retries queues nothing while the first one's job or result is kept."""
    return Job("apply_event", (body,), job_id=action_id)


def push_member_change(change_id: int) -> Job:
    """Make Trello follow one change made through the membership API (an outbox row)."""
    return Job("push_member_change", (change_id,), job_id=f"member-change:{change_id}")


def offboard_member(workspace_id: str, member_id: str, reason: str, *, defer: float = 0.0) -> Job:
    """Take a member who left a workspace off its boards. One at a time a member: the id dedupes
    repeated deliveries, and the workspace reconcile finding the same departure, while it waits.
    `defer`: the wave guard's settling time."""
    return Job(
        "offboard_member",
        (workspace_id, member_id),
        {"reason": reason},
        job_id=f"offboard:{workspace_id}:{member_id}",
        defer_seconds=defer,
    )


def reconcile(
    kind: ScopeKind,
    scope_id: str,
    reason: str,
    *,
    defer: float = 0.0,
    bulk: bool = False,
    approval_id: int | None = None,
) -> Job:
    """A reconcile of one scope. A new id each time: the scope's own state in Redis coalesces them, and
    arq would refuse an id whose job is still running. `approval_id`: a plan an operator approved goes
    ahead."""
    kwargs: dict[str, object] = {"reason": reason}
    if bulk:
        kwargs["bulk"] = True
    if approval_id is not None:
        kwargs["approval_id"] = approval_id
    return Job(
        f"reconcile_{kind}",
        (scope_id,),
        kwargs,
        job_id=f"reconcile:{kind}:{scope_id}:{uuid.uuid4().hex}",
        defer_seconds=defer,
    )


def reconcile_approved(kind: ScopeKind, scope_id: str, approval_id: int) -> Job:
    """Reconcile a scope again after an operator approved its held plan."""
    return reconcile(kind, scope_id, f"approval {approval_id}", approval_id=approval_id)


def scope_kind(name: str) -> ScopeKind:
    """The kind of an approval's scope ("board:<id>", "workspace:<id>", or an older "org:<id>")."""
    kind = LEGACY_SCOPE_KINDS.get(name, name)
    if kind not in ("board", "workspace"):
        raise ValueError(f"not a reconcile scope: {name!r}")
    return kind  # type: ignore[return-value]


def after_decision(
    kind: str, scope: str, approval_id: int, payload: dict[str, Any], *, approved: bool
) -> list[Job]:
    """What an operator's decision on a pending approval sets going, wherever it was made (the CLI, the
    console). Approved: a held plan's scope is reconciled again (the plan goes ahead if it takes access from
    no one beyond those it named), an account deactivation is carried out. A wave's offboardings run
    either way: each follows the decision. A rejected plan or deactivation sets nothing going."""
    if kind == "wave":
        workspace, reason = payload["workspace"], f"approval {approval_id}"
        return [offboard_member(workspace, member, reason) for member in payload["members"]]
    if not approved:
        return []
    if kind == "scim_deactivate":
        return [deactivate_account(approval_id)]
    name, _, subject = scope.partition(":")
    return [reconcile_approved(scope_kind(name), subject, approval_id)]


def deactivate_account(approval_id: int) -> Job:
    """Deactivate the Atlassian account an approved `scim_deactivate` approval names."""
    return Job("deactivate_account", (approval_id,), job_id=f"deactivate-account:{approval_id}")


def full_resync(reason: str) -> Job:
    """Reconcile every linked workspace and board, sweep the outbox, check the webhooks (what the
    scheduled resync does, asked for now)."""
    return Job("full_resync", (), {"reason": reason})


def sweep_outbox(reason: str) -> Job:
    """Queue the push of every change still pending in the outbox (what each worker does as it starts
    and every minute, asked for now)."""
    return Job("sweep_outbox", (), {"reason": reason})


def prune_history(reason: str) -> Job:
    """Delete event log and audit log rows older than they are kept (the daily job, asked for now)."""
    return Job("prune_history", (), {"reason": reason})


def ensure_webhooks(reason: str) -> Job:
    """Check that every linked workspace and open board has an active webhook (idempotent: a check that
    finds them all costs one call)."""
    return Job("ensure_webhooks", (), {"reason": reason})
