"""The Trello client: every call against the emulator, paging to the end, and every error type."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest

from emulator.fixture import sample
from emulator.limits import Limits
from tests.emulator.conftest import KEY, TOKEN
from tests.workers.conftest import ClientFactory
from trellis.logging import configure_logging
from workers.outside import errors
from workers.outside.limiter import Limiter
from workers.outside.remote import RetryPolicy
from workers.outside.trello import TrelloClient, TrelloLimits


async def acme(client: TrelloClient) -> tuple[str, dict[str, str], dict[str, str]]:
    [workspace] = await client.my_organizations()
    members = {
        r["member"]["username"]: r["idMember"] for r in await client.organization_memberships(workspace["id"])
    }
    boards = {b["name"]: b["id"] for b in await client.organization_boards(workspace["id"])}
    return workspace["id"], members, boards


async def test_reads_who_it_is_and_what_it_sees(trello_client: TrelloClient) -> None:
    me = await trello_client.me()
    token = await trello_client.token_info()
    assert token["idMember"] == me["id"]
    assert me["username"] == "trellis_admin"
    assert [w["displayName"] for w in await trello_client.my_organizations()] == ["Acme"]


async def test_reads_workspace_and_board_memberships(trello_client: TrelloClient) -> None:
    _, members, boards = await acme(trello_client)
    assert len(members) == 12
    roadmap = await trello_client.board_memberships(boards["Roadmap"])
    assert {r["member"]["username"] for r in roadmap} >= {"trellis_admin", "ada.lovelace"}


async def test_changes_board_and_workspace_memberships(trello_client: TrelloClient) -> None:
    workspace, members, boards = await acme(trello_client)
    ken = members["ken.thompson"]
    await trello_client.set_board_member(boards["Roadmap"], ken, "observer")
    assert {r["idMember"]: r["memberType"] for r in await trello_client.board_memberships(boards["Roadmap"])}[
        ken
    ] == "observer"
    await trello_client.remove_board_member(boards["Roadmap"], ken)
    assert ken not in {r["idMember"] for r in await trello_client.board_memberships(boards["Roadmap"])}
    await trello_client.set_organization_member(workspace, ken, "admin")
    row = {r["idMember"]: r for r in await trello_client.organization_memberships(workspace)}[ken]
    assert row["memberType"] == "admin"


async def test_invites_by_email(trello_client: TrelloClient) -> None:
    workspace, _, _ = await acme(trello_client)
    invited = await trello_client.invite_to_organization(workspace, "newcomer@acme.example", "New Comer")
    rows = {r["idMember"]: r for r in await trello_client.organization_memberships(workspace)}
    assert rows[invited["idMember"]]["unconfirmed"] is True


async def test_removal_from_the_workspace_everywhere_takes_them_off_every_board(
    trello_client: TrelloClient,
) -> None:
    workspace, members, boards = await acme(trello_client)
    await trello_client.remove_organization_member_everywhere(workspace, members["alan.turing"])
    for board in boards.values():
        assert members["alan.turing"] not in {
            r["idMember"] for r in await trello_client.board_memberships(board)
        }


async def test_webhooks_are_created_listed_updated_and_deleted(open_trello: ClientFactory) -> None:
    async with open_trello() as (client, app):
        app.state.dispatcher.check_callback = _answer_200
        workspace, _, _ = await acme(client)
        created = await client.create_webhook("https://trellis.example/webhooks/trello", workspace, "acme")
        assert [w["id"] for w in await client.webhooks()] == [created["id"]]
        updated = await client.update_webhook(created["id"], active="false")
        assert updated["active"] is False
        await client.delete_webhook(created["id"])
        assert await client.webhooks() == []


async def _answer_200(url: str) -> int:
    return 200


# Errors


async def test_unknown_id_is_not_found(trello_client: TrelloClient) -> None:
    with pytest.raises(errors.TrelloNotFound, match="not found"):
        await trello_client.board_memberships("5f0000000000000000000000")


async def test_a_malformed_id_is_refused_before_anything_is_sent(trello_client: TrelloClient) -> None:
    with pytest.raises(errors.InvalidId, match="not a Trello id"):
        await trello_client.board_memberships("not-an-id")


async def test_bad_token_is_unauthorized(open_trello: ClientFactory) -> None:
    async with open_trello(token="not-the-token") as (client, _):
        with pytest.raises(errors.TrelloUnauthorized):
            await client.me()


async def test_expired_token_is_its_own_error(open_trello: ClientFactory) -> None:
    fixture = sample()
    fixture["tokens"] = [
        {"token": TOKEN, "member": "trellis_admin", "dateExpires": "2020-01-01T00:00:00+00:00"}
    ]
    async with open_trello(fixture=fixture) as (client, _):
        with pytest.raises(errors.TrelloTokenExpired):
            await client.me()


async def test_observer_on_a_plan_without_observers(open_trello: ClientFactory) -> None:
    fixture = sample()
    fixture["workspaces"][0]["plan"] = "standard"
    async with open_trello(fixture=fixture) as (client, _):
        _, members, boards = await acme(client)
        with pytest.raises(errors.ObserversNotAllowed):
            await client.set_board_member(boards["Roadmap"], members["ken.thompson"], "observer")


async def test_last_admin(trello_client: TrelloClient) -> None:
    _, members, boards = await acme(trello_client)
    with pytest.raises(errors.LastAdmin):
        await trello_client.remove_board_member(boards["Roadmap"], members["trellis_admin"])


async def test_permission_the_token_lacks_is_unauthorized(open_trello: ClientFactory) -> None:
    fixture = sample()
    fixture["tokens"] = [{"token": TOKEN, "member": "ken.thompson"}]
    async with open_trello(fixture=fixture) as (client, _):
        workspace, members, _ = await acme(client)
        with pytest.raises(errors.TrelloUnauthorized, match="unauthorized permission"):
            await client.remove_organization_member_everywhere(workspace, members["alan.turing"])


async def test_server_errors_are_retried_then_raised(open_trello: ClientFactory) -> None:
    async with open_trello(retry=RetryPolicy(attempts=3, base=0.001, cap=0.01)) as (client, app):
        app.state.faults.update({"error_rate": 1})
        with pytest.raises(errors.TrelloServerError):
            await client.me()
        assert app.state.limiter.counters.requests[f"token:{TOKEN}"] == 3


async def test_flaky_server_is_retried_until_it_answers(open_trello: ClientFactory) -> None:
    async with open_trello(retry=RetryPolicy(attempts=40, base=0.001, cap=0.01)) as (client, app):
        app.state.faults.update({"error_rate": 0.5})
        results = [await client.me() for _ in range(10)]
    assert all(r["username"] == "trellis_admin" for r in results)


async def test_not_found_is_not_retried(open_trello: ClientFactory) -> None:
    async with open_trello() as (client, app):
        with pytest.raises(errors.TrelloNotFound):
            await client.board_memberships("5f0000000000000000000000")
        assert app.state.limiter.counters.requests[f"token:{TOKEN}"] == 1


async def test_no_answer_is_unavailable_after_bounded_retries(redis_client: Any) -> None:
    async with httpx.AsyncClient(timeout=0.5) as http:
        client = TrelloClient(
            http,
            base_url="http://127.0.0.1:1/1",
            key=KEY,
            token=TOKEN,
            limiter=Limiter(redis_client, "trellis:test"),
            retry=RetryPolicy(attempts=2, base=0.001, cap=0.01),
        )
        with pytest.raises(errors.TrelloUnavailable):
            await client.me()


async def test_429_pauses_and_the_call_goes_through_after_the_window(open_trello: ClientFactory) -> None:
    # The client believes in a larger limit than the emulator enforces (another client shares the key).
    async with open_trello(
        emulator_limits=Limits(token_max=3, token_window=0.3),
        client_limits=TrelloLimits(token_max=100, window=0.3),
    ) as (client, app):
        results = [await client.me() for _ in range(6)]
        rejected = app.state.limiter.counters.rejected.get(f"token:{TOKEN}", 0)
    assert len(results) == 6
    # Each 429 doubles the shared pause (at least half of 0.05 s * 2^k), so the 0.3 s until the window
    # frees costs at most five refusals: no storm.
    assert 1 <= rejected <= 5


async def test_secrets_appear_in_no_error_and_no_log_line(open_trello: ClientFactory) -> None:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream)  # no scrubber: nothing may need it
    try:
        async with open_trello(retry=RetryPolicy(attempts=2, base=0.001, cap=0.01)) as (client, app):
            app.state.faults.update({"error_rate": 1})
            with pytest.raises(errors.TrelloServerError) as raised:
                await client.token_info()
    finally:
        logging.getLogger().handlers.clear()
    shown = str(raised.value) + repr(raised.value) + stream.getvalue()
    assert "/tokens/{token}" in str(raised.value)
    for secret in (KEY, TOKEN):
        assert secret not in shown
    assert stream.getvalue()  # something was logged, and it was clean
    json.loads(stream.getvalue().splitlines()[0])
