"""A public Trello client from PyPI (`trello`, sarumont's), unchanged but for its base URL, against the
emulator: every call it makes for membership answers in the shape such a client reads.

The client builds `https://trello.com/1/...` URLs itself and sends key and token in the query string and
its parameters form-encoded, as most Trello clients do; the only change is that those URLs reach the
emulator's port instead.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from trello import TrelloApi

from tests.emulator.conftest import KEY, TOKEN, Served

TRELLO = "https://trello.com"


@pytest.fixture
def api(served_emulator: Served, monkeypatch: pytest.MonkeyPatch) -> TrelloApi:
    send = requests.sessions.Session.request

    def to_the_emulator(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TRELLO + "/1/"):
            url = served_emulator.base + url.removeprefix(TRELLO)
        return send(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.sessions.Session, "request", to_the_emulator)
    return TrelloApi(KEY, TOKEN)


@pytest.fixture
def acme(api: TrelloApi) -> dict[str, Any]:
    [workspace] = api.members.get_organization("me")
    boards = {b["name"]: b for b in api.organizations.get_board(workspace["id"])}
    members = {
        row["member"]["username"]: row["idMember"]
        for row in api.organizations.get_membership(workspace["id"], member="true")
    }
    return {"workspace": workspace, "boards": boards, "members": members}


# Reads


def test_me_has_the_member_fields_clients_read(api: TrelloApi) -> None:
    me = api.members.get("me")
    assert {"id", "username", "fullName", "url", "initials", "idBoards", "idOrganizations"} <= me.keys()
    assert me["username"] == "trellis_admin"
    assert me["email"]  # only one's own email is shown


def test_a_workspace_has_trellos_default_fields(api: TrelloApi, acme: dict[str, Any]) -> None:
    workspace = api.organizations.get(acme["workspace"]["id"])
    expected = {"id", "name", "displayName", "desc", "descData", "url", "website", "logoHash", "products"}
    assert expected <= workspace.keys()
    assert workspace["url"] == "https://trello.com/w/acme"
    assert api.organizations.get_field("displayName", workspace["id"]) == {"_value": "Acme"}


def test_a_board_has_trellos_default_fields_and_fields_chooses(api: TrelloApi, acme: dict[str, Any]) -> None:
    roadmap = acme["boards"]["Roadmap"]["id"]
    board = api.boards.get(roadmap)
    expected = {"id", "name", "desc", "descData", "closed", "idOrganization", "pinned", "url", "shortUrl",
                "prefs", "labelNames"}  # fmt: skip
    assert expected <= board.keys()
    assert board["url"].startswith("https://trello.com/b/")
    assert set(api.boards.get(roadmap, fields="name,closed")) == {"id", "name", "closed"}
    assert api.boards.get_field("name", roadmap) == {"_value": "Roadmap"}


def test_a_board_nests_its_members_and_memberships_on_request(api: TrelloApi, acme: dict[str, Any]) -> None:
    roadmap = acme["boards"]["Roadmap"]["id"]
    admins = api.boards.get(roadmap, memberships="admin")["memberships"]
    assert {m["memberType"] for m in admins} == {"admin"}  # the nested list takes Trello's filters
    board = api.boards.get(roadmap, members="all", memberships="all")
    assert {"id", "fullName", "username"} <= board["members"][0].keys()
    assert {"id", "idMember", "memberType", "unconfirmed", "deactivated"} <= board["memberships"][0].keys()


def test_memberships_carry_the_member_when_asked(api: TrelloApi, acme: dict[str, Any]) -> None:
    rows = api.boards.get_membership(acme["boards"]["Roadmap"]["id"], member="true")
    assert all({"idMember", "memberType", "member"} <= row.keys() for row in rows)
    assert {row["member"]["username"] for row in rows} >= {"trellis_admin", "ada.lovelace"}
    admins = api.organizations.get_membership(acme["workspace"]["id"], filter="admins")
    assert {row["memberType"] for row in admins} == {"admin"}


def test_a_members_boards_and_workspaces_are_listed(api: TrelloApi, acme: dict[str, Any]) -> None:
    ada = api.members.get_board("ada.lovelace")
    assert "Roadmap" in {b["name"] for b in ada}
    assert [w["displayName"] for w in api.members.get_organization("ada.lovelace")] == ["Acme"]


def test_the_token_names_its_member_and_expiry(api: TrelloApi) -> None:
    token = api.tokens.get(TOKEN)
    assert {"id", "idMember", "dateCreated", "dateExpires", "permissions"} <= token.keys()
    assert api.tokens.get_member(TOKEN)["username"] == "trellis_admin"


# Board and workspace member writes, role changes


def test_board_roles_change_and_members_leave(api: TrelloApi, acme: dict[str, Any]) -> None:
    roadmap, ken = acme["boards"]["Roadmap"]["id"], acme["members"]["ken.thompson"]
    answer = api.boards.update_member_idMember(ken, roadmap, "observer")
    assert ken in {m["id"] for m in answer["members"]}
    assert {r["idMember"]: r["memberType"] for r in api.boards.get_membership(roadmap)}[ken] == "observer"
    api.boards.delete_member_idMember(ken, roadmap)
    assert ken not in {r["idMember"] for r in api.boards.get_membership(roadmap)}


def test_workspace_roles_change_and_members_leave(api: TrelloApi, acme: dict[str, Any]) -> None:
    workspace, grace = acme["workspace"]["id"], acme["members"]["grace.hopper"]
    api.organizations.update_member_idMember(grace, workspace, "admin")
    rows = {r["idMember"]: r for r in api.organizations.get_membership(workspace)}
    assert rows[grace]["memberType"] == "admin"
    api.organizations.update_member_deactivated_idMember(grace, workspace, "true")
    assert {r["idMember"]: r for r in api.organizations.get_membership(workspace)}[grace]["deactivated"]
    api.organizations.delete_member_all_idMember(grace, workspace)
    assert grace not in {r["idMember"] for r in api.organizations.get_membership(workspace)}


# Invitations


def test_a_board_invitation_by_email_adds_an_unconfirmed_ghost(api: TrelloApi, acme: dict[str, Any]) -> None:
    roadmap = acme["boards"]["Roadmap"]["id"]
    answer = api.boards.update_member(roadmap, "newcomer@example.com", "New Comer", "normal")
    assert {"id", "members", "memberships"} <= answer.keys()
    [row] = [r for r in answer["memberships"] if r["unconfirmed"]]
    ghost = api.members.get(row["idMember"])
    assert (ghost["memberType"], ghost["confirmed"]) == ("ghost", False)


def test_a_workspace_invitation_by_email_is_unconfirmed(api: TrelloApi, acme: dict[str, Any]) -> None:
    workspace = acme["workspace"]["id"]
    api.organizations.update_member(workspace, "later@example.com", "Later Person", "normal")
    assert any(r["unconfirmed"] for r in api.organizations.get_membership(workspace))


# Webhooks


def test_webhooks_are_created_read_updated_and_deleted(
    api: TrelloApi, acme: dict[str, Any], served_emulator: Served
) -> None:
    callback = served_emulator.base + "/_emulator/state"  # answers the HEAD check with 200
    roadmap = acme["boards"]["Roadmap"]["id"]
    hook = api.webhooks.new(callback, roadmap, "watch roadmap")
    expected = {"id", "description", "idModel", "callbackURL", "active", "consecutiveFailures",
                "firstConsecutiveFailDate"}  # fmt: skip
    assert expected <= hook.keys()
    assert api.webhooks.get(hook["id"])["idModel"] == roadmap  # the client asks with a trailing slash
    assert api.webhooks.update_description(hook["id"], "renamed")["description"] == "renamed"
    assert api.webhooks.update_active(hook["id"], "false")["active"] is False
    assert api.webhooks.get_field("active", hook["id"]) == {"_value": False}
    assert api.webhooks.update(hook["id"], active="true")["active"] is True
    assert [h["id"] for h in api.tokens.get_webhook(TOKEN)] == [hook["id"]]
    api.webhooks.delete(hook["id"])
    assert api.tokens.get_webhook(TOKEN) == []


def test_a_webhook_made_under_the_token_path_is_the_tokens(
    api: TrelloApi, acme: dict[str, Any], served_emulator: Served
) -> None:
    callback = served_emulator.base + "/_emulator/state"
    hook = api.tokens.new_webhook(TOKEN, callback, acme["workspace"]["id"], "workspace")
    assert api.tokens.get_webhook(TOKEN)[0]["id"] == hook["id"]
    with pytest.raises(requests.HTTPError) as refused:
        api.tokens.new_webhook(TOKEN, callback, acme["workspace"]["id"])
    assert refused.value.response.status_code == 400
    assert "already exists" in refused.value.response.text


# Errors, as Trello answers them


def test_a_malformed_id_is_400_invalid_id_in_plain_text(api: TrelloApi) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        api.boards.get("not-an-id")
    assert (refused.value.response.status_code, refused.value.response.text) == (400, "invalid id")
    assert refused.value.response.headers["content-type"].startswith("text/plain")


def test_an_unknown_id_is_404_not_found(api: TrelloApi) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        api.boards.get("5f0000000000000000000000")
    assert refused.value.response.status_code == 404
    assert refused.value.response.text == "The requested resource was not found."


def test_a_wrong_key_is_401_invalid_key(served_emulator: Served) -> None:
    answer = requests.get(
        served_emulator.base + "/1/members/me", params={"key": "nope", "token": TOKEN}, timeout=5
    )
    assert (answer.status_code, answer.text) == (401, "invalid key")
