"""`trellis demo`: the whole loop against the emulator, no credentials needed.

Starts the emulator, a receiver and a worker as child processes on free ports, adopts the emulator's
sample workspace into a fresh store, registers webhooks, and plays a short story, showing what happens:
someone is invited through the membership API and accepts (Trello invites them, Trellis links them), is
promoted, is added to two more boards by hand in Trello (the store follows), then is removed from the
workspace while still on three boards (Trellis takes them off every one). Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from jobs.connection import connect
from membership import outbox
from membership.boards import board_by_trello_id, board_view
from membership.database import Database, migrate
from membership.directory import create_token, create_user, user_by_email
from membership.rules import Actor
from trellis.logging import configure_logging
from trellis.settings import Settings
from trellis.supervisor import free_port, start_local_redis, stop_process
from trellis.wiring import clients_config
from workers.outside.clients import build_clients
from workers.outside.trello import TrelloClient
from workers.reconcile.board import reconcile_board
from workers.workflows.adopt import adopt_workspace
from workers.workflows.webhooks import ensure_webhooks

KEY, TOKEN, SECRET = "demo-key", "demo-token", "demo-secret"
OWNER = "you@acme.example"
PERSON_NAME, PERSON_EMAIL = "Annie Easley", "annie.easley@acme.example"


class DemoFailed(Exception):
    pass


@contextmanager
def child(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_process(process)


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"the {what} stopped at start (exit {process.returncode})")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise DemoFailed(f"the {what} did not answer at {url}")


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, exit_after: bool, console: Console | None = None) -> int:
    console = console or Console()
    # SIGTERM (systemd, docker stop, kill) must stop the children like Ctrl-C does: Python's default
    # would end this process at once and leave them running. SIGINT gets the same handler, set here
    # because a process started in the background of a shell inherits SIGINT ignored, and would miss
    # the Ctrl-C its children obey.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    local_redis = start_local_redis(settings.redis_url)
    try:
        with tempfile.TemporaryDirectory(prefix="trellis-demo-") as tmp:
            return _run(settings, Path(tmp), exit_after, console)
    except DemoFailed as failure:
        console.print(f"[red]demo failed:[/red] {failure}")
        return 1
    except KeyboardInterrupt:
        console.print("\nstopped")
        return 0
    finally:
        if local_redis is not None:
            local_redis.terminate()
            local_redis.wait(10)


def _run(settings: Settings, tmp: Path, exit_after: bool, console: Console) -> int:
    emulator_port, receiver_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    receiver = f"http://127.0.0.1:{receiver_port}"
    store = f"sqlite+aiosqlite:///{tmp / 'demo.db'}"
    env = {
        **os.environ,
        "TRELLIS_REDIS_URL": settings.redis_url,
        "TRELLIS_DATABASE_URL": store,
        # A queue of the run's own: two demos on one Redis must not take each other's jobs.
        "TRELLIS_QUEUE_NAME": f"trellis:demo:{uuid.uuid4().hex[:12]}",
        "TRELLIS_TRELLO_BASE_URL": emulator + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY,
        "TRELLIS_TRELLO_TOKEN": TOKEN,
        "TRELLIS_TRELLO_SECRET": SECRET,
        "TRELLIS_CALLBACK_URL": receiver + "/webhooks/trello",
        "TRELLIS_PORT": str(receiver_port),
        "TRELLIS_RECONCILE_DEBOUNCE_SECONDS": "0.3",
        "TRELLIS_GUARD_WAVE_SETTLE_SECONDS": "1",  # one person leaves in the story: no wave to wait for
        "TRELLIS_LOG_FORMAT": "json",
    }
    trellis = [sys.executable, "-m", "trellis"]
    emulator_argv = [*trellis, "emulator", "--port", str(emulator_port), "--key", KEY, "--token", TOKEN,
                     "--secret", SECRET, "--retry-delay", "0.5"]  # fmt: skip
    console.rule("[bold]Trellis demo[/bold]: the whole loop against the emulator")
    asyncio.run(migrate(store))
    with (
        child(emulator_argv, env, tmp / "emulator.log") as emulator_process,
        child([*trellis, "serve"], env, tmp / "receiver.log") as receiver_process,
        child([*trellis, "worker"], env, tmp / "worker.log") as worker_process,
    ):
        wait_for(emulator + "/_emulator/state", emulator_process, "emulator")
        wait_for(receiver + "/healthz", receiver_process, "receiver")
        console.print(
            f"emulator {emulator}, receiver {receiver}, worker pid {worker_process.pid}, store {store}"
        )
        asyncio.run(_story(settings.model_copy(update=_overrides(env)), emulator, receiver, store, console))
        if exit_after:
            return 0
        console.print("\nThe services keep running for you to look around; Ctrl-C stops them all.")
        while all(p.poll() is None for p in (emulator_process, receiver_process, worker_process)):
            time.sleep(0.5)
        raise DemoFailed("a service stopped; its log was in " + str(tmp))


def _overrides(env: dict[str, str]) -> dict[str, Any]:
    from pydantic import SecretStr

    return {
        "trello_base_url": env["TRELLIS_TRELLO_BASE_URL"],
        "trello_api_key": SecretStr(KEY),
        "trello_token": SecretStr(TOKEN),
        "database_url": env["TRELLIS_DATABASE_URL"],
    }


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


async def _story(settings: Settings, emulator: str, receiver: str, store: str, console: Console) -> None:
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
            owner, member_id, membership_id = await _invite(scene)
            await _promote(scene, owner, member_id, membership_id)
            await _added_by_hand(scene, member_id)
            await _removed(scene, member_id)
            await _guest(scene, owner)
            console.rule("The end")
            await _final(admin, receiver, member_id, console)
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
