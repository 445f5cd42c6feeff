"""A workspace's whole life through the REST API, as Trello fires it: boards created, copied, closed,
reopened, moved and deleted; invitations confirmed; guests; members deactivated in the enterprise.

Each test checks the webhook that fires (its action, and the `action`/`model`/`webhook` envelope) and
what the REST API answers afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.emulator.conftest import AUTH, CallbackRecorder, EmulatorFactory, board_id, member_id, state

ACTION_FIELDS = {"id", "idMemberCreator", "type", "date", "data", "display", "memberCreator"}


async def watch(trello: httpx.AsyncClient, receiver: CallbackRecorder, model_id: str) -> None:
    answer = await trello.post(
        "/1/webhooks", params=AUTH, data={"callbackURL": receiver.url, "idModel": model_id}
    )
    assert answer.status_code == 200, answer.text


async def deliveries(receiver: CallbackRecorder, count: int) -> list[dict[str, Any]]:
    bodies = [json.loads(d.body) for d in await receiver.wait_for(count)]
    for body in bodies:
        assert {"action", "model", "webhook"} <= body.keys()
        assert {"id", "idMemberCreator", "type", "date", "data", "display", "memberCreator"} <= body[
            "action"
        ].keys()
    return bodies


async def member_ids(trello: httpx.AsyncClient, path: str, **params: str) -> set[str]:
    """The members of a membership list (`/1/boards/{id}/memberships`, ...)."""
    return {row["idMember"] for row in (await trello.get(path, params={**AUTH, **params})).json()}


def acme(snapshot: dict[str, Any]) -> str:
    return next(w["id"] for w in snapshot["workspaces"] if w["name"] == "acme")


async def test_a_board_created_through_the_api_fires_create_board_on_the_workspace(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    workspace = acme(await state(trello))
    await watch(trello, receiver, workspace)
    created = await trello.post(
        "/1/boards/", params=AUTH, data={"name": "Launch", "idOrganization": workspace}
    )
    [body] = await deliveries(receiver, 1)
    assert created.status_code == 200
    assert {"id", "name", "url", "shortUrl", "closed", "idOrganization"} <= created.json().keys()
    assert body["action"]["type"] == "createBoard"
    assert body["action"]["data"]["board"]["id"] == created.json()["id"]
    assert body["action"]["data"]["organization"]["id"] == workspace
    assert body["model"]["id"] == workspace
    listed = (await trello.get(f"/1/organizations/{workspace}/boards", params=AUTH)).json()
    assert created.json()["id"] in {b["id"] for b in listed}


async def test_closing_and_reopening_a_board_fires_update_board_with_the_old_closed_flag(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    roadmap = board_id(await state(trello), "Roadmap")
    await watch(trello, receiver, roadmap)
    await trello.put(f"/1/boards/{roadmap}", params=AUTH, data={"closed": "true"})
    await trello.put(f"/1/boards/{roadmap}/closed", params=AUTH, data={"value": "false"})
    closed, reopened = await deliveries(receiver, 2)
    assert (closed["action"]["type"], closed["action"]["data"]["old"]) == ("updateBoard", {"closed": False})
    assert closed["action"]["data"]["board"]["closed"] is True
    assert reopened["action"]["data"]["old"] == {"closed": True}
    assert reopened["model"]["closed"] is False
    assert (await trello.get(f"/1/boards/{roadmap}/closed", params=AUTH)).json() == {"_value": False}


async def test_a_deleted_board_is_gone_with_its_webhooks_and_nothing_is_sent(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    roadmap = board_id(await state(trello), "Roadmap")
    await watch(trello, receiver, roadmap)
    deleted = await trello.delete(f"/1/boards/{roadmap}", params=AUTH)
    assert deleted.json() == {"_value": None}
    gone = await trello.get(f"/1/boards/{roadmap}", params=AUTH)
    assert (gone.status_code, gone.text) == (404, "The requested resource was not found.")
    assert (await trello.get("/1/tokens/t-test/webhooks", params=AUTH)).json() == []
    assert receiver.deliveries == []


async def test_a_copied_board_fires_copy_board_with_its_source_and_keeps_its_members(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot = await state(trello)
    workspace, roadmap = acme(snapshot), board_id(snapshot, "Roadmap")
    await watch(trello, receiver, workspace)
    copy = await trello.post(
        "/1/boards",
        params=AUTH,
        data={"name": "Roadmap 2", "idBoardSource": roadmap, "idOrganization": workspace},
    )
    [body] = await deliveries(receiver, 1)
    assert body["action"]["type"] == "copyBoard"
    assert body["action"]["data"]["boardSource"]["id"] == roadmap
    source = {
        r["idMember"] for r in (await trello.get(f"/1/boards/{roadmap}/memberships", params=AUTH)).json()
    }
    copied = (await trello.get(f"/1/boards/{copy.json()['id']}/memberships", params=AUTH)).json()
    assert {r["idMember"] for r in copied} == source


async def test_a_board_moved_between_workspaces_fires_on_both(
    open_emulator: EmulatorFactory, receiver: CallbackRecorder
) -> None:
    async with open_emulator() as (trello, app):
        world = app.state.world
        snapshot = await state(trello)
        admin = snapshot["members"][0]["id"]
        other = world.add_workspace("globex", "Globex", "premium")
        world.set_workspace_member(other.id, admin, "admin", by=admin)
        workspace, roadmap = acme(snapshot), board_id(snapshot, "Roadmap")
        await watch(trello, receiver, workspace)
        await watch(trello, receiver, other.id)
        moved = await trello.put(f"/1/boards/{roadmap}/idOrganization", params=AUTH, data={"value": other.id})
        bodies = await deliveries(receiver, 2)
        assert moved.json()["idOrganization"] == other.id
        by_type = {b["action"]["type"]: b for b in bodies}
        assert by_type["removeFromOrganizationBoard"]["action"]["data"]["organization"]["id"] == workspace
        assert by_type["addToOrganizationBoard"]["action"]["data"]["organization"]["id"] == other.id
        old = (await trello.get(f"/1/organizations/{workspace}/boards", params=AUTH)).json()
        assert roadmap not in {b["id"] for b in old}


async def test_a_board_moved_out_of_any_workspace_fires_only_the_removal(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot = await state(trello)
    workspace, roadmap = acme(snapshot), board_id(snapshot, "Roadmap")
    await watch(trello, receiver, workspace)
    await trello.put(f"/_emulator/boards/{roadmap}", json={"idOrganization": None})
    [body] = await deliveries(receiver, 1)
    assert body["action"]["type"] == "removeFromOrganizationBoard"
    assert (await trello.get(f"/1/boards/{roadmap}", params=AUTH)).json()["idOrganization"] is None


async def test_an_invitee_who_joins_fires_member_joined_trello_and_is_confirmed(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    workspace = acme(await state(trello))
    await watch(trello, receiver, workspace)
    invitation = {"email": "joiner@example.com", "fullName": "Jo Iner", "type": "normal"}
    await trello.put(f"/1/organizations/{workspace}/members", params=AUTH, data=invitation)
    rows = (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    [invited] = [r for r in rows if r["unconfirmed"]]
    assert (await trello.post(f"/_emulator/members/{invited['idMember']}/confirm")).status_code == 200
    invited_action, joined = await deliveries(receiver, 2)
    assert invited_action["action"]["type"] == "unconfirmedOrganizationInvitation"
    assert joined["action"]["type"] == "memberJoinedTrello"
    assert joined["action"]["data"]["member"]["id"] == invited["idMember"]
    rows = (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    assert not next(r for r in rows if r["idMember"] == invited["idMember"])["unconfirmed"]


async def test_a_guest_is_on_a_board_but_not_in_its_workspace(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot = await state(trello)
    workspace, roadmap = acme(snapshot), board_id(snapshot, "Roadmap")
    guest = (
        await trello.post("/_emulator/members", json={"username": "gus.guest", "fullName": "Gus Guest"})
    ).json()
    await watch(trello, receiver, roadmap)
    await trello.put(f"/1/boards/{roadmap}/members/{guest['id']}", params=AUTH, data={"type": "normal"})
    [body] = await deliveries(receiver, 1)
    assert body["action"]["type"] == "addMemberToBoard"
    on_board = {
        r["idMember"] for r in (await trello.get(f"/1/boards/{roadmap}/memberships", params=AUTH)).json()
    }
    in_workspace = {
        r["idMember"]
        for r in (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    }
    assert guest["id"] in on_board - in_workspace


async def test_a_member_deactivated_in_the_enterprise_is_marked_on_every_membership(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot = await state(trello)
    await watch(trello, receiver, acme(snapshot))
    workspace, roadmap, ada = (
        acme(snapshot),
        board_id(snapshot, "Roadmap"),
        member_id(snapshot, "ada.lovelace"),
    )
    await trello.put(f"/_emulator/members/{ada}/deactivated", json={"value": True})
    workspace_rows = (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    board_rows = (await trello.get(f"/1/boards/{roadmap}/memberships", params=AUTH)).json()
    assert next(r for r in workspace_rows if r["idMember"] == ada)["deactivated"] is True
    assert next(r for r in board_rows if r["idMember"] == ada)["deactivated"] is True
    active = await trello.get(
        f"/1/organizations/{workspace}/memberships", params={**AUTH, "filter": "active"}
    )
    assert ada not in {r["idMember"] for r in active.json()}
    [body] = await deliveries(receiver, 1)
    assert (body["action"]["type"], body["action"]["data"]["idMember"]) == (
        "deactivatedMemberInEnterprise",
        ada,
    )


async def test_a_workspace_admin_deactivating_a_member_fires_on_the_workspace(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot = await state(trello)
    workspace, grace = acme(snapshot), member_id(snapshot, "grace.hopper")
    await watch(trello, receiver, workspace)
    path = f"/1/organizations/{workspace}/members/{grace}/deactivated"
    await trello.put(path, params=AUTH, data={"value": "true"})
    await trello.put(path, params=AUTH, data={"value": "false"})
    deactivated, reactivated = await deliveries(receiver, 2)
    assert deactivated["action"]["type"] == "deactivatedMemberInOrganization"
    assert reactivated["action"]["type"] == "reactivatedMemberInOrganization"


async def test_key_and_token_are_taken_from_a_form_a_json_body_or_the_oauth_header(
    trello: httpx.AsyncClient,
) -> None:
    roadmap = board_id(await state(trello), "Roadmap")
    form = await trello.put(f"/1/boards/{roadmap}/name", data={**AUTH, "value": "Road map"})
    body = await trello.put(f"/1/boards/{roadmap}", json={**AUTH, "name": "Roadmap"})
    header = 'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'.format(**AUTH)
    oauth = await trello.get(f"/1/boards/{roadmap}", headers={"authorization": header})
    assert [form.status_code, body.status_code, oauth.status_code] == [200, 200, 200]
    assert oauth.json()["name"] == "Roadmap"
