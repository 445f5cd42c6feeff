"""What offboarding does to the person's Atlassian account: the SCIM policy, `never`, `approve` or `auto`.

Deactivating through SCIM disables the person in every Atlassian product, not only Trello, so the
default is `never`, and `approve` (an operator says yes with `trellis approvals approve`) is what an
enabled policy should usually be. The account is found by email: Trello shows no one's, so only people
the store knows by email (invited through the membership API, or created with `trellis users add`)
can be deactivated; for anyone else the outcome says so.
"""

from __future__ import annotations

from typing import Literal

import structlog

from membership import approvals, audit
from membership.database import Database
from membership.errors import Conflict
from membership.models import PendingApproval
from membership.rules import Actor
from workers.outside.scim import ScimClient

log = structlog.get_logger("workers.accounts")

ScimPolicy = Literal["never", "approve", "auto"]

DEACTIVATOR = Actor.system("scim")


async def after_offboarding(
    scim: ScimClient | None,
    database: Database,
    policy: ScimPolicy,
    *,
    email: str | None,
    organization_id: int | None,
    member_id: str | None,
    cause: str,
) -> str:
    """Apply the policy to someone who has just left a workspace; returns what was done, in words."""
    if policy == "never" or scim is None:
        return "account kept (scim_deactivate=never)"
    if not email:
        return "account not deactivated: the store has no email for this person"
    if policy == "approve":
        async with database.transaction() as session:
            approval = await approvals.request(
                session, kind="scim_deactivate", organization_id=organization_id, scope=f"account:{email}",
                summary=f"deactivate the Atlassian account of {email} (every Atlassian product)",
                payload={"email": email, "member_id": member_id}, actor=DEACTIVATOR, cause=cause,
            )  # fmt: skip
        log.warning("account deactivation waits for an operator", approval=approval.id)
        return f"account deactivation held for approval {approval.id}"
    return await deactivate_account(scim, database, email, organization_id=organization_id, cause=cause)


async def deactivate_approved(scim: ScimClient | None, database: Database, approval_id: int) -> str:
    """Deactivate the account an operator approved deactivating."""
    async with database.transaction() as session:
        approval = await session.get(PendingApproval, approval_id)
    if approval is None or approval.kind != "scim_deactivate":
        return f"no account deactivation {approval_id}"
    if approval.decision != "approved":
        raise Conflict(f"approval {approval_id} is {approval.decision or 'not decided'}, not approved")
    if scim is None:
        raise Conflict("no SCIM directory is configured (TRELLIS_SCIM_DIRECTORY_ID, TRELLIS_SCIM_TOKEN)")
    return await deactivate_account(
        scim, database, approval.payload["email"], organization_id=approval.organization_id,
        cause=f"approval {approval_id}",
    )  # fmt: skip


async def deactivate_account(
    scim: ScimClient, database: Database, email: str, *, organization_id: int | None, cause: str
) -> str:
    user = await scim.find_user_by_email(email)
    if user is None:
        return f"no Atlassian account for {email}"
    if user.get("active") is False:
        return f"the Atlassian account of {email} is deactivated already"
    await scim.deactivate_user(user["id"])
    async with database.transaction() as session:
        audit.record(
            session, actor=DEACTIVATOR, cause=cause, action="account_deactivated", entity="scim_user",
            entity_id=None, organization_id=organization_id, after={"email": email, "scim_id": user["id"]},
        )  # fmt: skip
    log.info("account deactivated", scim_id=user["id"])
    return f"the Atlassian account of {email} is deactivated"
