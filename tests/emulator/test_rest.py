"""The emulator's REST API: Trello's calls, ids, auth, filters, paging and errors."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.emulator.conftest import AUTH, KEY, TOKEN, EmulatorFactory, board_id, member_id, state


async def workspace_id(trello: httpx.AsyncClient) -> str:
    return str((await state(trello))["workspaces"][0]["id"])


async def test_ids_are_24_hex_digits_prefixed_by_their_creation_time(trello: httpx.AsyncClient) -> None:
    import time

    me = (await trello.get("/1/members/me", params=AUTH)).json()
    assert re.fullmatch(r"[0-9a-f]{24}", me["id"])
    assert abs(int(me["id"][:8], 16) - time.time()) < 60


async def test_oauth_header_authenticates_like_query_parameters(trello: httpx.AsyncClient) -> None:
    header = {"authorization": f'OAuth oauth_consumer_key="{KEY}", oauth_token="{TOKEN}"'}
    by_header = await trello.get("/1/members/me", headers=header)
    by_query = await trello.get("/1/members/me", params=AUTH)
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json() == by_query.json()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"key": "wrong", "token": TOKEN}, "invalid key"),
        ({"key": KEY, "token": "wrong"}, "invalid token"),
        ({}, "invalid key"),
    ],
)
async def test_bad_key_or_token_is_401_in_plain_text(
    trello: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await trello.get("/1/members/me", params=params)
    assert (response.status_code, response.text) == (401, message)


async def test_expired_token_is_401(open_emulator: EmulatorFactory) -> None:
    from emulator.fixture import sample

    fixture = sample()
    fixture["tokens"] = [
        {"token": TOKEN, "member": "trellis_admin", "dateExpires": "2020-01-01T00:00:00+00:00"}
    ]
    async with open_emulator(fixture=fixture) as (client, _):
        response = await client.get("/1/members/me", params=AUTH)
    assert (response.status_code, response.text) == (401, "expired token")


async def test_token_reports_its_member_and_expiry(trello: httpx.AsyncClient) -> None:
    token = (await trello.get(f"/1/tokens/{TOKEN}", params=AUTH)).json()
    me = (await trello.get("/1/members/me", params=AUTH)).json()
    assert token["idMember"] == me["id"]
    assert "dateExpires" in token


async def test_workspace_memberships_embed_members_without_emails(trello: httpx.AsyncClient) -> None:
    rows = (
        await trello.get(
            f"/1/organizations/{await workspace_id(trello)}/memberships", params={**AUTH, "member": "true"}
        )
    ).json()
    assert len(rows) == 12
    assert {r["memberType"] for r in rows} == {"admin", "normal"}
    assert all("email" not in r["member"] for r in rows)
    assert {"unconfirmed", "deactivated", "idMember"} <= set(rows[0])


async def test_workspace_boards_follow_filter_and_fields(trello: httpx.AsyncClient) -> None:
    boards = (
        await trello.get(
            f"/1/organizations/{await workspace_id(trello)}/boards",
            params={**AUTH, "filter": "open", "fields": "id,name,closed"},
        )
    ).json()
    assert len(boards) == 5
    assert set(boards[0]) == {"id", "name", "closed"}


async def test_an_unknown_id_is_404_and_a_malformed_one_400_invalid_id(trello: httpx.AsyncClient) -> None:
    unknown = await trello.get("/1/boards/5f0000000000000000000000/memberships", params=AUTH)
    malformed = await trello.get("/1/boards/not-an-id/memberships", params=AUTH)
    assert (unknown.status_code, unknown.text) == (404, "The requested resource was not found.")
    assert (malformed.status_code, malformed.text) == (400, "invalid id")
    assert malformed.headers["content-type"].startswith("text/plain")


async def test_observer_is_refused_below_premium(open_emulator: EmulatorFactory) -> None:
    from emulator.fixture import sample

    fixture = sample()
    fixture["workspaces"][0]["plan"] = "standard"
    async with open_emulator(fixture=fixture) as (client, _):
        snapshot = await state(client)
        url = f"/1/boards/{board_id(snapshot, 'Roadmap')}/members/{member_id(snapshot, 'ken.thompson')}"
        response = await client.put(url, params={**AUTH, "type": "observer"})
    assert response.status_code == 403
    assert "Premium" in response.text


async def test_observer_is_allowed_on_premium(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    url = f"/1/boards/{board_id(snapshot, 'Roadmap')}/members/{member_id(snapshot, 'ken.thompson')}"
    assert (await trello.put(url, params={**AUTH, "type": "observer"})).status_code == 200


async def test_last_board_admin_cannot_be_removed(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    url = f"/1/boards/{board_id(snapshot, 'Roadmap')}/members/{member_id(snapshot, 'trellis_admin')}"
    response = await trello.delete(url, params=AUTH)
    assert (response.status_code, response.text) == (403, "Not enough admins")


async def test_removing_from_the_workspace_leaves_direct_board_memberships(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    workspace, grace = snapshot["workspaces"][0]["id"], member_id(snapshot, "grace.hopper")
    assert (
        await trello.delete(f"/1/organizations/{workspace}/members/{grace}", params=AUTH)
    ).status_code == 200
    after = await state(trello)
    boards = [b["name"] for b in after["boards"] if any(m["idMember"] == grace for m in b["memberships"])]
    assert boards == ["Roadmap", "Hiring"]


async def test_removing_with_all_takes_the_member_off_every_board_too(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    workspace, grace = snapshot["workspaces"][0]["id"], member_id(snapshot, "grace.hopper")
    assert (
        await trello.delete(f"/1/organizations/{workspace}/members/{grace}/all", params=AUTH)
    ).status_code == 200
    after = await state(trello)
    assert not any(m["idMember"] == grace for b in after["boards"] for m in b["memberships"])


async def test_invite_by_email_adds_an_unconfirmed_member(trello: httpx.AsyncClient) -> None:
    workspace = await workspace_id(trello)
    response = await trello.put(
        f"/1/organizations/{workspace}/members",
        params=AUTH,
        json={"email": "new@acme.example", "fullName": "New", "type": "normal"},
    )
    assert response.status_code == 200
    rows = (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    assert [r["unconfirmed"] for r in rows if r["idMember"] == response.json()["idMember"]] == [True]


async def test_deactivating_in_the_workspace_is_reported_in_memberships(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    workspace, ken = snapshot["workspaces"][0]["id"], member_id(snapshot, "ken.thompson")
    await trello.put(
        f"/1/organizations/{workspace}/members/{ken}/deactivated", params={**AUTH, "value": "true"}
    )
    rows = (await trello.get(f"/1/organizations/{workspace}/memberships", params=AUTH)).json()
    assert [r["deactivated"] for r in rows if r["idMember"] == ken] == [True]


async def test_non_admin_token_cannot_change_the_workspace(open_emulator: EmulatorFactory) -> None:
    from emulator.fixture import sample

    fixture = sample()
    fixture["tokens"] = [{"token": TOKEN, "member": "ken.thompson"}]
    async with open_emulator(fixture=fixture) as (client, _):
        snapshot = await state(client)
        url = (
            f"/1/organizations/{snapshot['workspaces'][0]['id']}/members/{member_id(snapshot, 'alan.turing')}"
        )
        response = await client.delete(url, params=AUTH)
    assert (response.status_code, response.text) == (401, "unauthorized permission requested")


async def test_board_actions_page_with_limit_before_and_since(trello: httpx.AsyncClient) -> None:
    snapshot = await state(trello)
    board = board_id(snapshot, "Engineering")
    for name in ("ken.thompson", "zoe.celik", "hedy.lamarr"):
        await trello.put(
            f"/1/boards/{board}/members/{member_id(snapshot, name)}", params={**AUTH, "type": "admin"}
        )
    newest_two = (await trello.get(f"/1/boards/{board}/actions", params={**AUTH, "limit": 2})).json()
    older = (
        await trello.get(f"/1/boards/{board}/actions", params={**AUTH, "before": newest_two[-1]["id"]})
    ).json()
    since = (await trello.get(f"/1/boards/{board}/actions", params={**AUTH, "since": older[0]["id"]})).json()
    assert len(newest_two) == 2
    assert len(older) == 1
    assert [a["id"] for a in since] == [a["id"] for a in newest_two]
    assert [a["type"] for a in older] == ["addMemberToBoard"]  # ken was not on the board yet
    assert [a["type"] for a in since] == ["makeAdminOfBoard", "makeAdminOfBoard"]
    assert (await trello.get(f"/1/boards/{board}/actions", params={**AUTH, "limit": 1001})).status_code == 400


async def test_injected_server_errors_and_latency(trello: httpx.AsyncClient) -> None:
    import time

    await trello.put("/_emulator/faults", json={"error_rate": 1})
    assert (await trello.get("/1/members/me", params=AUTH)).status_code == 500
    await trello.put("/_emulator/faults", json={"error_rate": 0, "latency_ms": 150})
    started = time.perf_counter()
    assert (await trello.get("/1/members/me", params=AUTH)).status_code == 200
    assert time.perf_counter() - started >= 0.15
