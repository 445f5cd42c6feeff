"""What offboarding does to the person's Atlassian account: the SCIM policy, `never`, `approve` or `auto`.

Deactivating through SCIM disables the person in every Atlassian product, not only Trello, so the
default is `never`, and `approve` (an operator says yes with `trellis approvals approve`) is what an
enabled policy should usually be. Whatever the policy, an account is deactivated only when:

- the person belongs to no linked workspace any more: the store is asked (a membership of another
  organization) and so is Trello (each linked workspace's members), at offboarding and again when an
  operator approves;
- the account is matched for certain: by the email the store knows, or, for someone adopted from Trello
  (the store has no email: Trello shows no one's), by the Atlassian account id Trello exposes for the
  member (`aaId`, shown to an enterprise admin's token) against the directory's `atlassianAccountId`.
  Never by name; a person who cannot be matched is reported (the outcome and the audit log), never
  guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import structlog
from sqlalchemy import select

from membership import approvals, audit
from membership.database import Database
from membership.errors import Conflict
from membership.models import Membership, Organization, PendingApproval
from membership.rules import Actor
from membership.workspaces import linked_organizations
from workers.outside.scim import ScimClient
from workers.outside.trello import TrelloClient

log = structlog.get_logger("workers.accounts")

ScimPolicy = Literal["never", "approve", "auto"]

DEACTIVATOR = Actor.system("scim")


@dataclass(frozen=True)
class Person:
    """Someone who left a workspace, as far as Trellis knows them."""

    email: str | None = None
    member_id: str | None = None  # Trello's
    user_id: int | None = None  # the store's

    @property
    def label(self) -> str:
        return self.email or f"Trello member {self.member_id}"


async def after_offboarding(
    scim: ScimClient | None,
    trello: TrelloClient,
    database: Database,
    policy: ScimPolicy,
    person: Person,
    *,
    organization_id: int | None,
    cause: str,
) -> str:
    """Apply the policy to someone who has just left a workspace; returns what was done, in words."""
    if policy == "never" or scim is None:
        return "account kept (scim_deactivate=never)"
    if still := await still_belongs(trello, database, person):
        return f"account kept: {person.label} still belongs to {still}"
    account = await find_account(scim, trello, person)
    if isinstance(account, str):
        await _report_unmatched(database, person, account, organization_id=organization_id, cause=cause)
        return f"account not deactivated: {account}"
    if policy == "approve":
        async with database.transaction() as session:
            approval = await approvals.request(
                session, kind="scim_deactivate", organization_id=organization_id,
                scope=f"account:{person.label}",
                summary=f"deactivate the Atlassian account of {person.label} (every Atlassian product)",
                payload={"email": person.email, "member_id": person.member_id, "user_id": person.user_id,
                         "scim_id": account["id"]},
                actor=DEACTIVATOR, cause=cause,
            )  # fmt: skip
        log.warning("account deactivation waits for an operator", approval=approval.id)
        return f"account deactivation held for approval {approval.id}"
    return await deactivate_account(
        scim, database, account, person, organization_id=organization_id, cause=cause
    )


async def deactivate_approved(
    scim: ScimClient | None, trello: TrelloClient, database: Database, approval_id: int
) -> str:
    """Deactivate the account an operator approved deactivating, if the person has not come back."""
    async with database.transaction() as session:
        approval = await session.get(PendingApproval, approval_id)
    if approval is None or approval.kind != "scim_deactivate":
        return f"no account deactivation {approval_id}"
    if approval.decision != "approved":
        raise Conflict(f"approval {approval_id} is {approval.decision or 'not decided'}, not approved")
    if scim is None:
        raise Conflict("no SCIM directory is configured (TRELLIS_SCIM_DIRECTORY_ID, TRELLIS_SCIM_TOKEN)")
    payload = approval.payload
    person = Person(payload.get("email"), payload.get("member_id"), payload.get("user_id"))
    if still := await still_belongs(trello, database, person):
        return f"account kept: {person.label} belongs to {still} again"
    account: dict[str, Any] | str
    if payload.get("scim_id"):
        account = await scim.get_user(payload["scim_id"])
    else:  # an approval recorded before approvals named the account
        account = await find_account(scim, trello, person)
    if isinstance(account, str):
        return f"account not deactivated: {account}"
    cause = f"approval {approval_id}"
    return await deactivate_account(
        scim, database, account, person, organization_id=approval.organization_id, cause=cause
    )


async def still_belongs(trello: TrelloClient, database: Database, person: Person) -> str | None:
    """Where the person still belongs among the linked workspaces (the store's and Trello's say), or None."""
    async with database.transaction() as session:
        if person.user_id is not None:
            other = await session.scalar(
                select(Organization.name)
                .join(Membership, Membership.organization_id == Organization.id)
                .where(Membership.user_id == person.user_id)
                .limit(1)
            )
            if other is not None:
                return f"organization {other} (in the store)"
        workspaces = await linked_organizations(session)
    if person.member_id is None:
        return None
    for workspace in workspaces:
        members = await trello.organization_memberships(workspace.trello_org_id or "")
        if any(row.get("idMember") == person.member_id for row in members):
            return f"workspace {workspace.name} (in Trello)"
    return None


async def find_account(scim: ScimClient, trello: TrelloClient, person: Person) -> dict[str, Any] | str:
    """The person's Atlassian account, or why it cannot be told for certain."""
    if person.email:
        user = await scim.find_user_by_email(person.email)
        return user if user is not None else f"no Atlassian account for {person.email}"
    if person.member_id is None:
        return "neither an email nor a Trello member is known for this person"
    account_id = await trello.member_account_id(person.member_id)
    if account_id is None:
        return (
            f"the store has no email for Trello member {person.member_id}, and Trello does not show this "
            "token their Atlassian account id (an enterprise admin's token would see it)"
        )
    user = await scim.find_user_by_account_id(account_id)
    if user is None:
        return f"no account with Atlassian account id {account_id} in the directory"
    return user


async def deactivate_account(
    scim: ScimClient,
    database: Database,
    account: dict[str, Any],
    person: Person,
    *,
    organization_id: int | None,
    cause: str,
) -> str:
    if account.get("active") is False:
        return f"the Atlassian account of {person.label} is deactivated already"
    await scim.deactivate_user(account["id"])
    async with database.transaction() as session:
        audit.record(
            session, actor=DEACTIVATOR, cause=cause, action="account_deactivated", entity="scim_user",
            entity_id=None, organization_id=organization_id,
            after={"email": person.email, "member_id": person.member_id, "scim_id": account["id"],
                   "user_name": account.get("userName")},
            user_id=person.user_id, trello_member_id=person.member_id,
        )  # fmt: skip
    log.info("account deactivated", scim_id=account["id"])
    return f"the Atlassian account of {person.label} is deactivated"


async def _report_unmatched(
    database: Database, person: Person, reason: str, *, organization_id: int | None, cause: str
) -> None:
    log.warning("account not matched: nothing deactivated", person=person.label, reason=reason)
    async with database.transaction() as session:
        audit.record(
            session, actor=DEACTIVATOR, cause=cause, action="account_not_matched", entity="scim_user",
            entity_id=None, organization_id=organization_id,
            after={"email": person.email, "member_id": person.member_id, "reason": reason},
            user_id=person.user_id, trello_member_id=person.member_id,
        )  # fmt: skip
