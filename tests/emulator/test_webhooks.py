"""Webhooks like Trello's: a HEAD check, signed deliveries, retries, deactivation, and delivery faults."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.emulator.conftest import AUTH, SECRET, TOKEN, CallbackRecorder, board_id, member_id, state
from tests.support import trello_signature


async def watch(trello: httpx.AsyncClient, receiver: CallbackRecorder, model_id: str) -> httpx.Response:
    return await trello.post(
        "/1/webhooks", params=AUTH, json={"callbackURL": receiver.url, "idModel": model_id}
    )


async def workspace_and_board(trello: httpx.AsyncClient) -> tuple[dict[str, Any], str, str]:
    snapshot = await state(trello)
    return snapshot, snapshot["workspaces"][0]["id"], board_id(snapshot, "Roadmap")


async def test_webhook_is_created_only_when_the_callback_answers_head_with_200(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    _, workspace, _ = await workspace_and_board(trello)
    receiver.head_status = 404
    refused = await watch(trello, receiver, workspace)
    receiver.head_status = 200
    created = await watch(trello, receiver, workspace)
    assert refused.status_code == 400
    assert "did not return 200" in refused.text
    assert created.status_code == 200
    listed = (await trello.get(f"/1/tokens/{TOKEN}/webhooks", params=AUTH)).json()
    assert [w["id"] for w in listed] == [created.json()["id"]]
    assert listed[0]["active"] is True


async def test_delivery_is_signed_over_body_and_callback_url(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    ken = member_id(snapshot, "ken.thompson")
    await trello.put(f"/_emulator/boards/{board}/members/{ken}", json={"type": "normal"})

    [delivery] = await receiver.wait_for(1)

    assert delivery.headers["x-trello-webhook"] == trello_signature(delivery.body, SECRET, receiver.url)
    body = json.loads(delivery.body)
    assert body["action"]["type"] == "addMemberToBoard"
    assert body["action"]["data"]["idMemberAdded"] == ken
    assert body["action"]["data"]["board"]["id"] == board
    assert body["model"]["id"] == board
    assert body["webhook"]["idModel"] == board


async def test_delivery_body_carries_names_as_utf8(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    zoe = member_id(snapshot, "zoe.celik")
    await trello.put(f"/_emulator/boards/{board}/members/{zoe}", json={"type": "normal"})
    [delivery] = await receiver.wait_for(1)
    assert "Zoë Çelik".encode() in delivery.body
    assert delivery.headers["x-trello-webhook"] == trello_signature(delivery.body, SECRET, receiver.url)


async def test_failed_delivery_is_retried_and_counted_until_it_succeeds(
    emulator_app: Any, receiver: CallbackRecorder
) -> None:
    trello, app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    hook = (await watch(trello, receiver, board)).json()
    receiver.statuses = [500, 503]
    await trello.put(f"/_emulator/boards/{board}/members/{member_id(snapshot, 'ken.thompson')}", json={})

    deliveries = await receiver.wait_for(3)
    await app.state.dispatcher.settle()

    assert len({json.loads(d.body)["action"]["id"] for d in deliveries}) == 1
    attempts = (await trello.get("/_emulator/deliveries")).json()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    after = (await trello.get(f"/1/webhooks/{hook['id']}", params=AUTH)).json()
    assert after["consecutiveFailures"] == 0


async def test_webhook_that_keeps_failing_is_deactivated(
    emulator_app: Any, receiver: CallbackRecorder
) -> None:
    trello, app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    hook = (await watch(trello, receiver, board)).json()
    receiver.statuses = [500] * 50
    for name in ("ken.thompson", "margaret.hamilton"):
        await trello.put(f"/_emulator/boards/{board}/members/{member_id(snapshot, name)}", json={})
    await app.state.dispatcher.settle()

    after = (await trello.get(f"/1/webhooks/{hook['id']}", params=AUTH)).json()
    assert after["active"] is False
    # At least the policy's threshold (5 in these tests): an attempt already on its way when the
    # threshold is crossed still counts.
    assert after["consecutiveFailures"] >= 5
    assert after["firstConsecutiveFailDate"] is not None


async def test_answer_410_deletes_the_webhook(emulator_app: Any, receiver: CallbackRecorder) -> None:
    trello, app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    hook = (await watch(trello, receiver, board)).json()
    receiver.statuses = [410]
    await trello.put(f"/_emulator/boards/{board}/members/{member_id(snapshot, 'ken.thompson')}", json={})
    await app.state.dispatcher.settle()
    assert (await trello.get(f"/1/webhooks/{hook['id']}", params=AUTH)).status_code == 404


async def test_dropped_deliveries_never_arrive(emulator_app: Any, receiver: CallbackRecorder) -> None:
    trello, app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    await trello.put("/_emulator/faults", json={"drop_rate": 1})
    await trello.put(f"/_emulator/boards/{board}/members/{member_id(snapshot, 'ken.thompson')}", json={})
    await app.state.dispatcher.settle()
    assert receiver.deliveries == []


async def test_duplicated_deliveries_arrive_twice_with_one_action_id(
    emulator_app: Any, receiver: CallbackRecorder
) -> None:
    trello, _app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    await trello.put("/_emulator/faults", json={"duplicate_rate": 1})
    await trello.put(f"/_emulator/boards/{board}/members/{member_id(snapshot, 'ken.thompson')}", json={})
    deliveries = await receiver.wait_for(2)
    assert len({json.loads(d.body)["action"]["id"] for d in deliveries}) == 1


async def test_reordered_deliveries_can_overtake_each_other(
    emulator_app: Any, receiver: CallbackRecorder
) -> None:
    trello, _app = emulator_app
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    await trello.put("/_emulator/faults", json={"reorder_rate": 1, "reorder_max_ms": 300})
    names = [
        "ken.thompson",
        "margaret.hamilton",
        "barbara.liskov",
        "edsger.dijkstra",
        "hedy.lamarr",
        "zoe.celik",
    ]
    for name in names:
        await trello.put(
            f"/_emulator/boards/{board}/members/{member_id(snapshot, name)}", json={"type": "observer"}
        )
    deliveries = await receiver.wait_for(len(names))
    arrived = [json.loads(d.body)["action"]["id"] for d in deliveries]
    assert sorted(arrived) == sorted(set(arrived))
    assert arrived != sorted(arrived)  # six random holds of up to 300 ms: all in order is 1 in 720


async def test_scripted_story_join_promote_remove_is_delivered_step_by_step(
    emulator_app: Any, receiver: CallbackRecorder
) -> None:
    trello, _app = emulator_app
    snapshot, workspace, _ = await workspace_and_board(trello)
    await watch(trello, receiver, workspace)
    newcomer = (
        await trello.post("/_emulator/members", json={"username": "new.person", "fullName": "New Person"})
    ).json()["id"]

    await trello.put(f"/_emulator/organizations/{workspace}/members/{newcomer}", json={"type": "normal"})
    await receiver.wait_for(1)
    await trello.put(f"/_emulator/organizations/{workspace}/members/{newcomer}", json={"type": "admin"})
    await receiver.wait_for(2)
    await trello.delete(f"/_emulator/organizations/{workspace}/members/{newcomer}")
    deliveries = await receiver.wait_for(3)

    actions = [json.loads(d.body)["action"] for d in deliveries]
    assert [a["type"] for a in actions] == [
        "addMemberToOrganization",
        "makeAdminOfOrganization",
        "removeMemberFromOrganization",
    ]
    ada = member_id(snapshot, "ada.lovelace")
    for action in actions:
        assert action["data"]["organization"]["id"] == workspace
        assert action["data"]["idMember"] == newcomer
        assert action["member"]["id"] == newcomer
        assert action["idMemberCreator"] == ada  # a person, not the token's owner, clicked
    dates = [a["date"] for a in actions]
    assert dates == sorted(dates)
    for delivery in deliveries:
        assert delivery.headers["x-trello-webhook"] == trello_signature(delivery.body, SECRET, receiver.url)


async def test_changes_through_the_api_fire_webhooks_too(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    snapshot, _workspace, board = await workspace_and_board(trello)
    await watch(trello, receiver, board)
    await trello.delete(f"/1/boards/{board}/members/{member_id(snapshot, 'grace.hopper')}", params=AUTH)
    [delivery] = await receiver.wait_for(1)
    action = json.loads(delivery.body)["action"]
    assert action["type"] == "removeMemberFromBoard"
    assert action["idMemberCreator"] == member_id(snapshot, "trellis_admin")


async def test_new_board_is_announced_to_the_workspace_webhook(
    trello: httpx.AsyncClient, receiver: CallbackRecorder
) -> None:
    _, workspace, _ = await workspace_and_board(trello)
    await watch(trello, receiver, workspace)
    created = (
        await trello.post(f"/_emulator/organizations/{workspace}/boards", json={"name": "Launch"})
    ).json()
    [delivery] = await receiver.wait_for(1)
    action = json.loads(delivery.body)["action"]
    assert (action["type"], action["data"]["board"]["id"]) == ("createBoard", created["id"])
