"""The approvals page: each plan, wave or account deactivation held for an operator, as a readable list
of changes, with approve and reject; a decision sets going what the CLI's would
(`jobs.builders.after_decision`)."""

from __future__ import annotations

from starlette.responses import Response

from jobs import builders
from membership import approvals
from membership.approval_views import open_approvals_of
from membership.errors import NotFound
from receiver.console.calls import Call, Done, Problems


async def show(call: Call, problems: Problems) -> Response:
    pending = await open_approvals_of(call.session, call.actor, call.organization_id)
    # A refusal about an approval no longer on the page (decided meanwhile, or another's) goes on top.
    shown = {f"approval-{approval.id}" for approval in pending}
    elsewhere = [text for key, text in problems.by_field.items() if key not in shown]
    return call.render("approvals.html", status=problems.status, problems=problems, approvals=pending,
                       elsewhere=elsewhere)  # fmt: skip


async def decide(call: Call) -> Done:
    decision = call.request.path_params["decision"]
    if decision not in ("approve", "reject"):
        raise NotFound("no such decision: approve or reject")
    approve = decision == "approve"
    approval = await approvals.decide(
        call.session, call.path_id("approval_id"), approve=approve, by=call.actor.name,
        cause=call.cause, organization_id=call.organization_id,
    )  # fmt: skip
    jobs = builders.after_decision(
        approval.kind, approval.scope, approval.id, approval.payload, approved=approve
    )
    verb = "Approved" if approve else "Rejected"
    follow = " Trellis carries it out now." if approve else ""
    return Done(f"{verb} approval {approval.id} ({approval.scope}).{follow}", "/console/approvals", jobs)
