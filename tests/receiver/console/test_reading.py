"""The pages that only read: the overview, the audit timeline and its filters, a person's page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from jobs import status
from jobs.status import StatusBoard
from membership import audit
from membership.members import find_member
from membership.models import Board, EventLogEntry
from membership.rules import Actor
from tests.fixtures.store import World
from tests.receiver.console.conftest import signed_in_csrf


async def test_the_overview_shows_what_the_workers_last_reported(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    board = StatusBoard(redis_client)
    await board.publish(status.LIMITER, limits=[{"name": "trello:token:ab12", "used": 37, "maximum": 100,
                                                 "window": 10.0}])  # fmt: skip
    await board.publish(status.RESYNC, reason="scheduled", scopes=12, changes=0)
    await board.publish(status.WEBHOOKS, ok=4, created=0, reactivated=0, failed=1, gone=0)
    await signed_in_csrf(console, world.olive)

    page = await console.get("/console/")

    assert "37 of 100 in 10 s" in page.text
    assert "Trello, the token" in page.text
    assert "12 workspaces and boards queued to be reconciled again" in page.text
    assert "4 ok" in page.text
    assert "1 failed" in page.text
    assert "Trello (mirror)" in page.text


async def test_the_overview_says_so_when_redis_cannot_be_read(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    await signed_in_csrf(console, world.olive)
    await redis_client.set(status.STATUS_KEY, "not a hash")  # every read of the board now fails

    page = await console.get("/console/")

    assert page.status_code == 200
    assert "Redis did not answer" in page.text


async def test_the_audit_timeline_names_people_and_boards_and_links_to_a_persons_page(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.olive)
    hiring = world.boards[1]
    await console.post(f"/console/members/{world.mia.member_id}/access",
                       data={"csrf": csrf, f"board-{hiring}": "write"})  # fmt: skip

    page = await console.get("/console/audit")

    assert page.status_code == 200
    assert "access changed" in page.text
    assert "/console/people?who=mia%40example.com" in page.text
    assert "console:POST /console/members/" in page.text


async def test_the_audit_filter_by_person_shows_only_their_entries(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.olive)
    await console.post("/console/members/invite", data={"csrf": csrf, "email": "grace@example.com"})
    await console.post(f"/console/members/{world.mia.member_id}/role", data={"csrf": csrf, "role": "admin"})

    page = await console.get("/console/audit", params={"person": "mia@example.com"})

    assert "role changed" in page.text
    assert "invite created" not in page.text


async def test_an_unknown_person_in_the_filter_is_told_next_to_the_field(
    console: httpx.AsyncClient, world: World
) -> None:
    await signed_in_csrf(console, world.olive)

    page = await console.get("/console/audit", params={"person": "nobody@example.com", "since": "yesterday"})

    assert page.status_code == 422
    assert 'id="person-problem"' in page.text
    assert 'id="since-problem"' in page.text


async def test_a_persons_page_shows_their_access_and_their_story_oldest_first(
    console: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in_csrf(console, world.olive)
    await console.post(f"/console/members/{world.mia.member_id}/role", data={"csrf": csrf, "role": "admin"})
    await console.post(f"/console/members/{world.mia.member_id}/access",
                       data={"csrf": csrf, f"board-{world.boards[1]}": "write"})  # fmt: skip

    page = await console.get("/console/people", params={"who": "mia@example.com"})

    assert page.status_code == 200
    assert "<strong>admin</strong>" in page.text
    assert "Hiring: write" in page.text
    assert page.text.index("role changed") < page.text.rindex("access changed")  # the grant came after


async def test_the_overview_lists_the_organizations_boards_with_trellos_last_delivery_about_each(
    console: httpx.AsyncClient, world: World
) -> None:
    async with world.database.transaction() as session:
        roadmap = await session.get(Board, world.boards[0])
        assert roadmap is not None
        roadmap.trello_board_id = "5b0000000000000000000001"
        delivered = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
        session.add(EventLogEntry(action_id="a1", type="addMemberToBoard", model_id=roadmap.trello_board_id,
                                  received_at=delivered, payload={}))  # fmt: skip
    await signed_in_csrf(console, world.olive)

    page = await console.get("/console/")

    row = re.search(r"<tr><td>Roadmap</td>.*?</tr>", page.text, re.S)
    assert row is not None
    assert "2026-11-30 09:15:00 UTC" in row.group(0)
    assert "<td>Hiring</td>" in page.text
    assert "Secret" not in page.text  # the other organization's board


async def test_a_persons_page_names_the_boards_an_offboarding_took_them_off(
    console: httpx.AsyncClient, world: World
) -> None:
    await signed_in_csrf(console, world.olive)
    trello_member, trello_board = "5f00000000000000000000dd", "5f00000000000000000000c2"
    async with world.database.transaction() as session:
        hiring = await session.get(Board, world.boards[1])
        assert hiring is not None
        hiring.trello_board_id = trello_board
        (
            await find_member(session, world.organization_id, world.mia.member_id)
        ).user.trello_member_id = trello_member
        audit.record(
            session, actor=Actor.system("offboard"), cause="offboard", action="member_offboarded",
            entity="trello_member", entity_id=None, organization_id=world.organization_id,
            after={"boards": [trello_board], "refused": []}, trello_member_id=trello_member,
        )  # fmt: skip

    page = await console.get("/console/people", params={"who": "mia@example.com"})

    assert "member offboarded" in page.text
    assert "off Hiring in Trello" in page.text
