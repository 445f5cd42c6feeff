"""The members page and its forms: the same rules as the membership API, refusals shown next to the field
that caused them, nothing changed by a refused or forged form."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from membership.models import AuditEntry, Invite, Membership
from tests.fixtures.store import World
from tests.receiver.console.conftest import signed_in_csrf


def cell(page: httpx.Response, member_id: int, board_id: int) -> str:
    """The option selected in a member's cell of a board."""
    pattern = rf'name="board-{board_id}" form="member-{member_id}-access".*?</select>'
    select_ = re.search(pattern, page.text, re.S)
    assert select_ is not None
    chosen = re.search(r'<option value="(\w+)" selected', select_.group(0))
    return chosen.group(1) if chosen else "default"


async def test_the_grid_shows_each_members_access_to_each_board(
    console: httpx.AsyncClient, world: World
) -> None:
    await signed_in_csrf(console, world.olive)

    page = await console.get("/console/members")

    assert page.status_code == 200
    for board in ("Roadmap", "Hiring", "Ops"):
        assert board in page.text
    assert cell(page, world.mia.member_id, world.boards[0]) == "read"
    assert cell(page, world.mia.member_id, world.boards[1]) == "default"
    assert "Secret" not in page.text  # the other organization's board


async def test_an_invite_made_in_the_console_is_audited_with_the_console_as_its_cause(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.adam)

    answer = await console.post(
        "/console/members/invite", data={"csrf": csrf, "email": "Grace@Example.com", "role": "member"}
    )
    page = await console.get("/console/members")

    assert answer.status_code == 303
    assert "grace@example.com" in page.text
    assert "Invited grace@example.com as member." in page.text
    async with world.database.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "invite_created"))
    assert entry is not None
    assert entry.cause.startswith("console:POST /console/members/invite")
    assert entry.actor == f"user:{world.adam.user.id}"


async def test_an_invite_with_a_malformed_email_is_refused_next_to_the_email_field(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.adam)

    answer = await console.post("/console/members/invite", data={"csrf": csrf, "email": "not an email"})

    assert answer.status_code == 422
    assert 'id="invite-email-problem"' in answer.text
    assert 'value="not an email"' in answer.text  # the form keeps what was typed


async def test_a_second_invite_for_the_same_email_is_a_conflict_and_creates_nothing(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.adam)
    await console.post("/console/members/invite", data={"csrf": csrf, "email": "grace@example.com"})

    answer = await console.post("/console/members/invite", data={"csrf": csrf, "email": "grace@example.com"})

    assert answer.status_code == 409
    assert 'id="invite-problem"' in answer.text
    async with world.database.transaction() as session:
        invites = (await session.scalars(select(Invite).where(Invite.email == "grace@example.com"))).all()
    assert len(invites) == 1


async def test_an_admin_cannot_make_an_owner_and_is_told_next_to_the_role(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.adam)

    form = {"csrf": csrf, "role": "owner"}
    answer = await console.post(f"/console/members/{world.mia.member_id}/role", data=form)

    assert answer.status_code == 403
    assert f'id="member-{world.mia.member_id}-role-problem"' in answer.text
    assert "only owners" in answer.text


async def test_an_owner_changes_a_role(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.olive)

    form = {"csrf": csrf, "role": "admin"}
    answer = await console.post(f"/console/members/{world.mia.member_id}/role", data=form)

    assert answer.status_code == 303
    async with world.database.transaction() as session:
        membership = await session.get(Membership, world.mia.member_id)
    assert membership is not None
    assert membership.role == "admin"


async def test_nobody_removes_themselves(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.adam)

    answer = await console.post(f"/console/members/{world.adam.member_id}/remove", data={"csrf": csrf})

    assert answer.status_code == 403
    assert f'id="member-{world.adam.member_id}-remove-problem"' in answer.text


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    console: httpx.AsyncClient, world: World
) -> None:
    await signed_in_csrf(console, world.olive)

    answer = await console.post(f"/console/members/{world.mia.member_id}/remove", data={})
    forged = await console.post(f"/console/members/{world.mia.member_id}/remove", data={"csrf": "guess"})

    assert answer.status_code == forged.status_code == 403
    async with world.database.transaction() as session:
        assert await session.get(Membership, world.mia.member_id) is not None


async def test_saving_a_row_grants_and_takes_board_access_keeping_other_boards_overrides(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.olive)
    roadmap, hiring, ops = world.boards
    # Only Hiring and Ops are on the form: Roadmap's read override is on another page of boards.
    form = {"csrf": csrf, f"board-{hiring}": "write", f"board-{ops}": "none"}

    answer = await console.post(f"/console/members/{world.mia.member_id}/access", data=form)
    page = await console.get("/console/members")

    assert answer.status_code == 303
    assert cell(page, world.mia.member_id, roadmap) == "read"
    assert cell(page, world.mia.member_id, hiring) == "write"
    assert cell(page, world.mia.member_id, ops) == "none"


async def test_removing_a_member_takes_them_off_the_grid(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.olive)

    answer = await console.post(f"/console/members/{world.mia.member_id}/remove", data={"csrf": csrf})
    page = await console.get("/console/members")

    assert answer.status_code == 303
    assert f'id="member-{world.mia.member_id}"' not in page.text


async def test_revoking_an_invite_from_the_list(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.adam)
    await console.post("/console/members/invite", data={"csrf": csrf, "email": "grace@example.com"})
    async with world.database.transaction() as session:
        invite = await session.scalar(select(Invite.id).where(Invite.email == "grace@example.com"))

    answer = await console.post(f"/console/invites/{invite}/revoke", data={"csrf": csrf})
    page = await console.get("/console/members")

    assert answer.status_code == 303
    assert "Revoked the invite of grace@example.com." in page.text
    assert f"/console/invites/{invite}/revoke" not in page.text
