"""The console's flows in a real browser, against the receiver and the emulator as real processes: an
owner signs in, invites someone, changes a role, approves a plan the guard held, finds the removal it
caused in the audit log, and signs out; a member without the admin role, and a form without its CSRF
token, are refused. The README's screenshots are taken here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from jobs.queue import Job, JobQueue
from membership.boards import board_by_trello_id
from membership.database import Database
from membership.directory import create_token
from membership.workspaces import linked_memberships
from tests.browser.conftest import needs_chromium
from tests.conftest import SettingsFactory
from tests.stack import (
    QUEUE,
    emulator_state,
    members_of,
    owner_token,
    run_worker,
    services,
    settings_for,
    store_like_trello,
)

__all__ = ["services"]  # a fixture, used by name

# One Chromium for them all: under pytest-xdist these tests go to one worker together.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_chromium, pytest.mark.xdist_group("browser")]

# Where the screenshots go: the README's are taken with TRELLIS_TEST_SCREENSHOTS=docs (a plain run keeps
# its own in a temporary folder, so that it leaves the checkout as it found it).
SCREENSHOTS = os.environ.get("TRELLIS_TEST_SCREENSHOTS")


def screenshot_path(tmp_path: Path, name: str) -> Path:
    return (Path(SCREENSHOTS) if SCREENSHOTS else tmp_path) / name


async def sign_in(page: Page, console: str, token: str) -> None:
    await page.goto(f"{console}/sign-in")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def token_for(sqlite_url: str, email: str) -> str:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        _, token = await create_token(session, email)
    await database.dispose()
    return token


async def hold_a_plan_on_roadmap(
    services: dict[str, Any], settings: Any, sqlite_url: str, redis_url: str
) -> tuple[str, list[str]]:
    """The store takes three people off Roadmap at once (an import gone wrong, say); the reconcile that
    follows is held by the mass-change guard. Roadmap's Trello id, and the three."""
    state = await emulator_state(services)
    roadmap = next(b for b in state["boards"] if b["name"] == "Roadmap")
    leaving = sorted({m["idMember"] for m in roadmap["memberships"] if m["memberType"] == "normal"})[:3]
    database = Database(sqlite_url)
    async with database.transaction() as session:
        board = await board_by_trello_id(session, roadmap["id"])
        assert board is not None
        memberships = await linked_memberships(session, board.organization_id)
        for member in leaving:
            kept = [a for a in memberships[member].board_access if a.board_id != board.id]
            memberships[member].board_access = kept
    await database.dispose()
    redis = Redis.from_url(redis_url)
    await JobQueue(redis, QUEUE).enqueue(Job("reconcile_board", (roadmap["id"],), {"reason": "test"}))
    await redis.aclose()
    await run_worker(settings)
    return roadmap["id"], leaving


async def test_an_owner_invites_promotes_approves_a_held_plan_and_finds_the_removal_it_caused(
    page: Page,
    services: dict[str, Any],
    make_settings: SettingsFactory,
    sqlite_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="local")
    console = services["receiver"] + "/console"
    settings = settings_for(make_settings, services)

    await sign_in(page, console, await owner_token(sqlite_url))
    await expect(page.get_by_role("heading", name="Acme")).to_be_visible()

    await page.get_by_role("link", name="Members").click()
    await page.get_by_label("Email").fill("new.hire@acme.example")
    await page.get_by_role("button", name="Invite").click()
    await expect(page.get_by_role("status")).to_have_text("Invited new.hire@acme.example as member.")

    await page.get_by_label("Role of Margaret Hamilton", exact=True).select_option("admin")
    await page.get_by_role("button", name="Change the role of Margaret Hamilton").click()
    await expect(page.get_by_role("status")).to_have_text("Margaret Hamilton is now admin.")
    await expect(page.get_by_label("Role of Margaret Hamilton", exact=True)).to_have_value("admin")
    await page.screenshot(path=screenshot_path(tmp_path, "console-members.png"), full_page=True)

    roadmap, leaving = await hold_a_plan_on_roadmap(services, settings, sqlite_url, redis_url)
    assert set(leaving) <= await members_of(services, roadmap)  # held: nobody removed yet
    await page.get_by_role("link", name="Approvals").click()
    held = page.locator("article.approval")
    await expect(held).to_have_count(1)
    await expect(held.get_by_role("heading")).to_contain_text("board Roadmap")
    await expect(held.locator("tr.loses")).to_have_count(3)
    await held.screenshot(path=screenshot_path(tmp_path, "console-approval.png"))
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve #1: 3 change(s) on board Roadmap?"
    await held.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Approved approval 1")
    await run_worker(settings)
    assert not set(leaving) & await members_of(services, roadmap)

    removed = next(m for m in state["members"] if m["id"] == leaving[0])
    await page.get_by_role("link", name="Audit").click()
    await page.get_by_label("Person").fill(removed["email"])
    await page.get_by_role("button", name="Filter").click()
    removal = page.locator("table.timeline tbody tr", has_text="approval 1").first
    await expect(removal).to_contain_text("Roadmap")
    await expect(removal).to_contain_text(removed["fullName"])

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("Signed out.")
    await page.goto(console + "/")
    await expect(page).to_have_url(f"{console}/sign-in")


async def test_a_member_without_the_admin_role_is_refused(
    page: Page, services: dict[str, Any], sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    member = next(m for m in state["members"] if m["username"] == "ken.thompson")  # a normal member

    await sign_in(page, services["receiver"] + "/console", await token_for(sqlite_url, member["email"]))

    await expect(page.get_by_role("alert")).to_contain_text("owners and admins")
    await page.goto(services["receiver"] + "/console/members")
    await expect(page).to_have_url(services["receiver"] + "/console/sign-in")


async def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, services: dict[str, Any], sqlite_url: str
) -> None:
    await store_like_trello(sqlite_url, await emulator_state(services))
    await sign_in(page, services["receiver"] + "/console", await owner_token(sqlite_url))
    await page.goto(services["receiver"] + "/console/members")

    await page.get_by_label("Email").fill("mallory@acme.example")
    await page.locator("#invite input[name=csrf]").evaluate("input => input.remove()")
    async with page.expect_response(lambda r: r.url.endswith("/members/invite")) as posted:
        await page.get_by_role("button", name="Invite").click()

    assert (await posted.value).status == 403
    await expect(page.get_by_role("alert")).to_contain_text("did not carry the console's token")
    await page.goto(services["receiver"] + "/console/members")
    await expect(page.get_by_text("mallory@acme.example")).to_have_count(0)


async def test_the_console_fits_a_phone_screen(page: Page, services: dict[str, Any], sqlite_url: str) -> None:
    await store_like_trello(sqlite_url, await emulator_state(services))
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, services["receiver"] + "/console", await owner_token(sqlite_url))

    for path in ("/", "/members", "/approvals", "/audit", "/dead-letters"):
        await page.goto(services["receiver"] + "/console" + path)
        # Wide tables scroll inside their frame; the page itself never scrolls sideways.
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
        await expect(page.get_by_role("link", name="Members")).to_be_visible()
