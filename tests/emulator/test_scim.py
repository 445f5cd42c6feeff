"""The emulator's SCIM 2.0 directory: filters, paging, create, replace, deactivate, groups, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulator.app import EmulatorConfig

BASE = f"/scim/directory/{EmulatorConfig.scim_directory}"
AUTH = {"authorization": f"Bearer {EmulatorConfig.scim_token}"}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def find(trello: httpx.AsyncClient, user_name: str) -> dict[str, Any]:
    return (
        await trello.get(f"{BASE}/Users", params={"filter": f'userName eq "{user_name}"'}, headers=AUTH)
    ).json()


async def test_filter_finds_one_user_by_user_name_whatever_the_case(trello: httpx.AsyncClient) -> None:
    found = await find(trello, "Ken.Thompson@acme.example")
    assert found["totalResults"] == 1
    assert found["Resources"][0]["userName"] == "ken.thompson@acme.example"
    assert found["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]


async def test_paging_is_one_based(trello: httpx.AsyncClient) -> None:
    first = (await trello.get(f"{BASE}/Users", params={"startIndex": 1, "count": 5}, headers=AUTH)).json()
    third = (await trello.get(f"{BASE}/Users", params={"startIndex": 11, "count": 5}, headers=AUTH)).json()
    assert (first["totalResults"], first["itemsPerPage"], third["itemsPerPage"]) == (12, 5, 2)
    assert first["Resources"][0]["id"] != third["Resources"][0]["id"]


async def test_creating_an_existing_user_is_409(trello: httpx.AsyncClient) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ken.thompson@acme.example",
    }
    response = await trello.post(f"{BASE}/Users", json=body, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["schemas"] == [ERROR]
    assert response.json()["status"] == "409"


async def test_created_user_can_be_fetched(trello: httpx.AsyncClient) -> None:
    body = {
        "userName": "new@acme.example",
        "name": {"givenName": "New", "familyName": "Person"},
        "active": True,
    }
    created = await trello.post(f"{BASE}/Users", json=body, headers=AUTH)
    assert created.status_code == 201
    fetched = (await trello.get(f"{BASE}/Users/{created.json()['id']}", headers=AUTH)).json()
    assert fetched["name"]["givenName"] == "New"


async def test_patch_op_deactivates(trello: httpx.AsyncClient) -> None:
    user = (await find(trello, "ken.thompson@acme.example"))["Resources"][0]
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    response = await trello.patch(f"{BASE}/Users/{user['id']}", json=patch, headers=AUTH)
    assert (response.status_code, response.json()["active"]) == (200, False)


async def test_patch_without_the_patch_op_schema_is_400(trello: httpx.AsyncClient) -> None:
    user = (await find(trello, "ken.thompson@acme.example"))["Resources"][0]
    response = await trello.patch(f"{BASE}/Users/{user['id']}", json={"active": False}, headers=AUTH)
    assert response.status_code == 400


async def test_put_replaces_the_whole_user_clearing_what_it_omits(trello: httpx.AsyncClient) -> None:
    user = (await find(trello, "ken.thompson@acme.example"))["Resources"][0]
    replaced = (
        await trello.put(f"{BASE}/Users/{user['id']}", json={"userName": user["userName"]}, headers=AUTH)
    ).json()
    assert replaced["displayName"] is None
    assert replaced["id"] == user["id"]


async def test_unknown_user_is_404_in_the_scim_error_schema(trello: httpx.AsyncClient) -> None:
    response = await trello.get(f"{BASE}/Users/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["schemas"] == [ERROR]


@pytest.mark.parametrize("expression", ['name eq "x"', "userName co x", 'userName eq "a" and active eq true'])
async def test_unsupported_filter_is_400_invalid_filter(trello: httpx.AsyncClient, expression: str) -> None:
    response = await trello.get(f"{BASE}/Users", params={"filter": expression}, headers=AUTH)
    assert (response.status_code, response.json()["scimType"]) == (400, "invalidFilter")


async def test_missing_or_wrong_bearer_token_is_401(trello: httpx.AsyncClient) -> None:
    assert (await trello.get(f"{BASE}/Users")).status_code == 401
    assert (await trello.get(f"{BASE}/Users", headers={"authorization": "Bearer no"})).status_code == 401


async def test_groups_take_and_lose_members(trello: httpx.AsyncClient) -> None:
    user = (await find(trello, "ken.thompson@acme.example"))["Resources"][0]
    group = (await trello.post(f"{BASE}/Groups", json={"displayName": "trello-users"}, headers=AUTH)).json()
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
    }
    added = (await trello.patch(f"{BASE}/Groups/{group['id']}", json=add, headers=AUTH)).json()
    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "remove", "path": "members", "value": [{"value": user["id"]}]}],
    }
    removed = (await trello.patch(f"{BASE}/Groups/{group['id']}", json=remove, headers=AUTH)).json()
    assert [m["value"] for m in added["members"]] == [user["id"]]
    assert removed["members"] == []
    by_name = (
        await trello.get(f"{BASE}/Groups", params={"filter": 'displayName eq "trello-users"'}, headers=AUTH)
    ).json()
    assert by_name["totalResults"] == 1
