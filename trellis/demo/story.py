"""The demo's story: what a person does in Trello and through the membership API, and what Trellis does
about it, told step by step on the console, ending with the story as the audit log tells it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from jobs.connection import connect
from membership import outbox
from membership.boards import board_by_trello_id, board_view
from membership.database import Database
from membership.directory import create_token, create_user, user_by_email
from membership.history import AuditFilter, entry_line, find_person, history, names_of
from membership.rules import Actor
from trellis.logging import configure_logging
from trellis.settings import Settings
from trellis.wiring import clients_config
from workers.outside.clients import build_clients
from workers.outside.trello import TrelloClient
from workers.reconcile.board import reconcile_board
from workers.workflows.adopt import adopt_workspace
from workers.workflows.webhooks import ensure_webhooks

OWNER = "you@acme.example"
PERSON_NAME, PERSON_EMAIL = "Annie Easley", "annie.easley@acme.example"


class DemoFailed(Exception):
    pass


@dataclass
class Scene:
    """What every step of the story acts through: the emulator's control API (a person in Trello), the
    receiver's membership API, Trellis's Trello client and store, and the console it tells the story on."""

    admin: httpx.AsyncClient
    api: httpx.AsyncClient
    trello: TrelloClient
    database: Database
    console: Console
    workspace: dict[str, Any]
    boards: dict[str, str]  # name -> Trello id


async def tell(settings: Settings, emulator: str, receiver: str, store: str, console: Console) -> str:
    """Tell the story; the owner's token for the web console, where it can be watched as it happens."""
    # The story speaks for itself; the services' logs are in their files.
    configure_logging(level="warning", fmt=settings.log_format, secrets=settings.secret_values())
    redis = connect(settings.redis_target(), timeout=5)
    clients = build_clients(clients_config(settings), redis)
    database = Database(store)
    trello = clients.trello
    assert trello is not None
    try:
        async with (
            httpx.AsyncClient(base_url=emulator) as admin,
            httpx.AsyncClient(base_url=receiver) as api,
        ):
            state = (await admin.get("/_emulator/state")).json()
            boards = {b["name"]: b["id"] for b in state["boards"]}
            scene = Scene(admin, api, trello, database, console, state["workspaces"][0], boards)
            await _adopt(scene, receiver, len(state["boards"]))
            token = await _console_token(database)
            console.print(
                f"Watch it in the web console: [bold]{receiver}/console/[/bold], signed in with the owner's "
                f"token [bold]{token}[/bold]",
                soft_wrap=True,
            )
            owner, member_id, membership_id = await _invite(scene)
            await _promote(scene, owner, member_id, membership_id)
            await _added_by_hand(scene, member_id)
            await _removed(scene, member_id)
            await _guest(scene, owner)
            console.rule("The end")
            await _final(admin, receiver, member_id, console)
            await _audited(database, console)
            return token
    finally:
        await clients.aclose()
        await database.dispose()
        await redis.aclose()


async def _adopt(scene: Scene, receiver: str, board_count: int) -> None:
    """Steps 1 and 2: the workspace adopted into the store, and watched."""
    scene.console.rule("1. Trellis adopts the workspace")
    workspace = scene.workspace
    await adopt_workspace(scene.trello, scene.database, workspace["id"], owner_email=OWNER)
    counts = f"{len(workspace['memberships'])} members, {board_count} boards"
    scene.console.print(
        f"{workspace['displayName']}: {counts}, linked with authority [bold]trello[/bold]: the store"
        " mirrors Trello, and changes made through the membership API are pushed to Trello"
    )
    scene.console.rule("2. Webhooks on the workspace and each board")
    hooks = await ensure_webhooks(scene.trello, scene.database, receiver + "/webhooks/trello")
    scene.console.print(f"{len(hooks.created)} webhooks created, each checked by Trello with a HEAD first")


async def _invite(scene: Scene) -> tuple[dict[str, str], str, int]:
    """Step 3: invited through the membership API, accepted; returns the owner's token header, her
    Trello member id and her membership's id."""
    scene.console.rule(f"3. {PERSON_NAME} is invited through the membership API, and accepts")
    database, admin = scene.database, scene.admin
    owner, person = await _tokens(database)
    roadmap = await _local_board(database, scene.boards["Roadmap"])
    grant = {"board_id": roadmap, "can_read": True, "can_write": True}
    invite = await scene.api.post(
        "/organizations/me/invites", headers=owner, json={"email": PERSON_EMAIL, "board_access": [grant]}
    )
    _expect(invite, "the invite")
    accepted = await scene.api.post(
        "/organizations/invites/accept", headers=person, json={"token": invite.json()["token"]}
    )
    _expect(accepted, "accepting the invite")
    member_id = await _until(lambda: _trello_id(database), "her Trello member to be linked", truthy=True)
    await _until(lambda: _boards_of(admin, member_id), {"Roadmap"}, "her board access to be pushed")
    scene.console.print(
        "accept → outbox → push_member_change: Trello invited her by email, Trellis linked her Trello"
        " member and gave her the Roadmap board the invite granted"
    )
    return owner, member_id, int(accepted.json()["id"])


async def _promote(scene: Scene, owner: dict[str, str], member_id: str, membership_id: int) -> None:
    """Step 4: promoted through the API, pushed to Trello."""
    scene.console.rule("4. She is promoted to admin through the API")
    promoted = await scene.api.patch(
        f"/organizations/me/members/{membership_id}", headers=owner, json={"role": "admin"}
    )
    _expect(promoted, "the promotion")
    await _until(lambda: _workspace_role(scene.admin, member_id), "admin", "the promotion to reach Trello")
    # Until the push is done the store wins for her (its change is pending), even in mirror mode.
    await _until(lambda: _pending_changes(scene.database), 0, "the push to finish")
    scene.console.print("PATCH role → outbox → push_member_change: she is a workspace admin in Trello")


async def _added_by_hand(scene: Scene, member_id: str) -> None:
    """Step 5: added to two boards by hand in Trello; the store follows."""
    scene.console.rule("5. Someone adds her to Support and Hiring by hand in Trello")
    for name in ("Support", "Hiring"):
        board = scene.boards[name]
        await scene.admin.put(f"/_emulator/boards/{board}/members/{member_id}", json={"type": "normal"})
        await _until(
            lambda board=board: _store_access(scene.database, board, member_id), "write",
            f"the store to follow on {name}",
        )  # fmt: skip
    scene.console.print(
        "webhook → receiver → apply_event → reconcile_board: the store gives her write on both"
    )
    on = await _boards_of(scene.admin, member_id)
    scene.console.print(f"{PERSON_NAME} is on {len(on)} boards: {', '.join(sorted(on))}")


async def _removed(scene: Scene, member_id: str) -> None:
    """Step 6: removed from the workspace in Trello, still on boards; Trellis finishes the offboarding."""
    scene.console.rule(f"6. {PERSON_NAME} is removed from the workspace in Trello")
    await scene.admin.delete(f"/_emulator/organizations/{scene.workspace['id']}/members/{member_id}")
    left = await _boards_of(scene.admin, member_id)
    scene.console.print(f"Trello removed her from the workspace only: still on {', '.join(sorted(left))}")
    await _until(lambda: _boards_of(scene.admin, member_id), set(), "the offboarding to finish")
    scene.console.print(
        "webhook → apply_event → offboard_member: Trellis asked Trello she was out, then took her"
        " off every board"
    )


async def _guest(scene: Scene, owner: dict[str, str]) -> None:
    """Step 7: someone outside the workspace is put on a board by hand: a guest. Mirroring keeps them,
    records them as the board's guest and says so; enforcing would take them off (unless
    TRELLIS_ALLOW_GUESTS)."""
    scene.console.rule("7. A guest from outside the workspace is added to Marketing by hand")
    person = {"username": "gus.guest", "fullName": "Gus Guest"}
    guest = (await scene.admin.post("/_emulator/members", json=person)).json()
    board = scene.boards["Marketing"]
    await scene.admin.put(f"/_emulator/boards/{board}/members/{guest['id']}", json={"type": "normal"})
    report = await reconcile_board(scene.trello, scene.database, board, cause="demo: plan", apply=False)
    assert report is not None
    for op in report.plan.operations:
        if op.member_id == guest["id"]:
            scene.console.print(f"trellis plan --board Marketing: {type(op).__name__} Gus Guest: {op.reason}")

    async def guests() -> list[str]:
        view = await scene.api.get(f"/organizations/me/boards/{marketing}", headers=owner)
        return [g["trello_member_id"] for g in view.json()["guests"]]

    marketing = await _local_board(scene.database, board)
    await _until(guests, [guest["id"]], "the webhook's reconcile to record the guest")
    scene.console.print(
        f"GET /organizations/me/boards/{marketing}: Gus Guest listed under guests (workspace_member:"
        " false). Mirroring keeps a guest; in enforce mode (authority local) Trellis would remove them"
    )


async def _console_token(database: Database) -> str:
    """A membership-API token of the workspace's owner, to sign in to the console with."""
    async with database.transaction() as session:
        _, token = await create_token(session, OWNER)
    return token


async def _tokens(database: Database) -> tuple[dict[str, str], dict[str, str]]:
    """API tokens for the workspace's owner and for the person who will accept the invite."""
    async with database.transaction() as session:
        await create_user(session, PERSON_EMAIL, PERSON_NAME, actor=Actor.system("demo"))
        _, owner = await create_token(session, OWNER)
        _, person = await create_token(session, PERSON_EMAIL)
    return {"authorization": f"Bearer {owner}"}, {"authorization": f"Bearer {person}"}


def _expect(response: httpx.Response, what: str) -> None:
    if response.is_error:
        raise DemoFailed(f"{what} was refused: {response.status_code} {response.text[:200]}")


async def _local_board(database: Database, trello_board_id: str) -> int:
    async with database.transaction() as session:
        board = await board_by_trello_id(session, trello_board_id)
        assert board is not None
        return board.id


async def _trello_id(database: Database) -> str | None:
    async with database.transaction() as session:
        user = await user_by_email(session, PERSON_EMAIL)
        return None if user is None else user.trello_member_id


async def _pending_changes(database: Database) -> int:
    async with database.transaction() as session:
        return len(await outbox.pending(session))


async def _workspace_role(admin: httpx.AsyncClient, member_id: str) -> str | None:
    state = (await admin.get("/_emulator/state")).json()
    rows = state["workspaces"][0]["memberships"]
    return next((m["memberType"] for m in rows if m["idMember"] == member_id), None)


async def _until(
    read: Any, expected: Any = None, what: str = "", within: float = 30.0, *, truthy: bool = False
) -> Any:
    """Poll `read` until it returns `expected` (or, with `truthy`, anything true); returns that."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await read()
        if (truthy and value) or (not truthy and value == expected):
            return value
        await asyncio.sleep(0.2)
    raise DemoFailed(f"waited {within:.0f} s for {what}")


async def _boards_of(admin: httpx.AsyncClient, member_id: str) -> set[str]:
    state = (await admin.get("/_emulator/state")).json()
    return {b["name"] for b in state["boards"] if any(m["idMember"] == member_id for m in b["memberships"])}


async def _store_access(database: Database, trello_board_id: str, member_id: str) -> str | None:
    async with database.transaction() as session:
        board = await board_by_trello_id(session, trello_board_id)
        if board is None:
            return None
        return (await board_view(session, board, on_board=(member_id,))).access.get(member_id)


async def _final(admin: httpx.AsyncClient, receiver: str, member_id: str, console: Console) -> None:
    state = (await admin.get("/_emulator/state")).json()
    names = {m["id"]: m["fullName"] for m in state["members"]}
    table = Table("board", "members in Trello now")
    for board in state["boards"]:
        table.add_row(board["name"], ", ".join(sorted(names[m["idMember"]] for m in board["memberships"])))
    console.print(table)
    counters = (await admin.get("/_emulator/counters")).json()
    calls = sum(v for k, v in counters["requests"].items() if k.startswith("token:"))
    rejected = sum(v for k, v in counters["rejected"].items() if k.startswith("token:"))
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(receiver + "/metrics")).text
    delivered = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("trellis_webhooks_total{")
    )
    console.print(
        f"webhooks received: {delivered:.0f}; Trello API calls: {calls} ({rejected} refused with 429); "
        f"{PERSON_NAME} is on {len(await _boards_of(admin, member_id))} boards"
    )


async def _audited(database: Database, console: Console) -> None:
    """The same story as the audit log tells it: what `trellis why` prints after its summary."""
    async with database.transaction() as session:
        person = await find_person(session, PERSON_EMAIL)
        entries = await history(session, AuditFilter(person=person))
        names = await names_of(session, entries)
    console.rule(f"{PERSON_NAME}'s story in the audit log (trellis why {PERSON_EMAIL})")
    for entry in entries:
        console.print(entry_line(entry, names), markup=False, highlight=False, soft_wrap=True)
