"""The webhook endpoint: Trello's protocol, signature, bounds, classification and durable enqueue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.testing
from arq.jobs import deserialize_job
from redis.asyncio import Redis

from jobs.queue import deserialize
from tests.support import TEST_CALLBACK_URL, delivery, encode, signed_headers

QUEUE = "trellis:test:queue"
URL = "/webhooks/trello"


async def queued_jobs(redis: Redis) -> dict[str, Any]:
    """The jobs waiting in the test queue, decoded the way arq's worker decodes them."""
    jobs = {}
    for job_id in await redis.zrange(QUEUE, 0, -1):
        raw = await redis.get(b"arq:job:" + job_id)
        jobs[job_id.decode()] = deserialize_job(raw, deserializer=deserialize)
    return jobs


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(URL, content=body, headers=headers)


async def test_head_answers_200_with_no_body(client: httpx.AsyncClient) -> None:
    response = await client.head(URL)
    assert response.status_code == 200
    assert response.content == b""


async def test_signed_membership_action_is_queued_for_apply_event(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    payload = delivery("addMemberToBoard")
    body = encode(payload)

    response = await post(client, body, signed_headers(body))

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    jobs = await queued_jobs(redis_client)
    action_id = payload["action"]["id"]
    assert list(jobs) == [action_id]
    assert jobs[action_id].function == "apply_event"
    assert jobs[action_id].args == [payload]


@pytest.mark.parametrize(
    "name", ["zulip_adding_member_to_board.json", "zulip_removing_member_from_board.json"]
)
async def test_a_real_delivery_from_trello_is_queued_as_it_came(
    client: httpx.AsyncClient, redis_client: Redis, name: str
) -> None:
    body = (Path(__file__).parents[1] / "fixtures" / "payloads" / name).read_bytes()

    response = await post(client, body, signed_headers(body))

    assert (response.status_code, response.json()["status"]) == (200, "queued")
    assert list(await queued_jobs(redis_client)) == [response.json()["action_id"]]


async def test_body_with_non_ascii_names_is_verified_over_its_utf8_bytes(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    payload = delivery(member={"id": "5e9f8f8f8f8f8f8f8f8f8f8f", "fullName": "Žofie Ångström 山田"})
    body = encode(payload)
    assert body != body.decode().encode("ascii", "replace")  # really carries non-ASCII bytes

    response = await post(client, body, signed_headers(body))

    assert response.status_code == 200
    assert len(await queued_jobs(redis_client)) == 1


@pytest.mark.parametrize(
    ("name", "sign_kwargs"),
    [
        ("wrong secret", {"secret": "not-the-secret"}),
        ("wrong callback url", {"callback_url": "https://elsewhere.example.com/webhooks/trello"}),
        ("callback url with trailing slash", {"callback_url": TEST_CALLBACK_URL + "/"}),
        ("callback url over http", {"callback_url": TEST_CALLBACK_URL.replace("https", "http")}),
    ],
)
async def test_signature_made_otherwise_is_refused_and_nothing_queued(
    client: httpx.AsyncClient, redis_client: Redis, name: str, sign_kwargs: dict[str, str]
) -> None:
    body = encode(delivery())
    response = await post(client, body, signed_headers(body, **sign_kwargs))
    assert response.status_code == 401, name
    assert await queued_jobs(redis_client) == {}


async def test_tampered_body_is_refused(client: httpx.AsyncClient, redis_client: Redis) -> None:
    body = encode(delivery("addMemberToBoard"))
    headers = signed_headers(body)
    tampered = body.replace(b"addMemberToBoard", b"removeMemberFromBoard")

    response = await post(client, tampered, headers)

    assert response.status_code == 401
    assert await queued_jobs(redis_client) == {}


async def test_missing_signature_is_refused(client: httpx.AsyncClient, redis_client: Redis) -> None:
    response = await post(client, encode(delivery()), {"content-type": "application/json"})
    assert response.status_code == 401
    assert response.json()["detail"] == "missing signature"


async def test_a_forged_delivery_is_logged_with_its_peer_and_what_a_proxy_said_of_it(
    client: httpx.AsyncClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        headers = {"x-trello-webhook": "forged", "x-forwarded-for": "203.0.113.9"}
        await post(client, encode(delivery()), headers)

    [rejected] = [entry for entry in logs if entry["event"] == "webhook rejected"]
    assert rejected["reason"] == "signature mismatch"
    assert rejected["client"] == "127.0.0.1"  # the peer: the test client, as a proxy would be
    assert rejected["forwarded_for"] == "203.0.113.9"


async def test_empty_signature_is_refused(client: httpx.AsyncClient) -> None:
    response = await post(client, encode(delivery()), {"x-trello-webhook": ""})
    assert response.status_code == 401


async def test_two_signature_headers_are_refused_even_if_one_is_right(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    body = encode(delivery())
    good = signed_headers(body)["x-trello-webhook"]
    headers = [("x-trello-webhook", "forged"), ("x-trello-webhook", good)]
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert await queued_jobs(redis_client) == {}


async def test_body_over_the_bound_is_refused_with_413(
    make_settings: Any, redis_client: Redis, client_for: Any
) -> None:
    async with client_for(make_settings(max_body_bytes=512)) as small:
        body = encode(delivery(padding="x" * 600))
        response = await post(small, body, signed_headers(body))
    assert response.status_code == 413
    assert await queued_jobs(redis_client) == {}


async def test_streamed_body_without_length_is_cut_off_at_the_bound(
    make_settings: Any, client_for: Any
) -> None:
    sent = 0

    async def endless() -> Any:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b"x" * 1024

    async with client_for(make_settings(max_body_bytes=4096)) as small:
        response = await small.post(URL, content=endless(), headers={"x-trello-webhook": "sig"})
    assert response.status_code == 413


async def test_body_that_is_not_json_is_refused_with_400(client: httpx.AsyncClient) -> None:
    body = b"{not json"
    response = await post(client, body, signed_headers(body))
    assert response.status_code == 400


async def test_body_that_is_not_utf8_is_refused_with_400(client: httpx.AsyncClient) -> None:
    body = b'{"action": "\xff\xfe"}'
    response = await post(client, body, signed_headers(body))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"model": {}},
        {"action": "addMemberToBoard"},
        {"action": {"type": "addMemberToBoard"}},
        {"action": {"id": "5e9f8f8f8f8f8f8f8f8f8f8f"}},
        {"action": {"id": "not-a-trello-id", "type": "addMemberToBoard"}},
        {"action": {"id": 12345, "type": "addMemberToBoard"}},
        {"action": {"id": "5e9f8f8f8f8f8f8f8f8f8f8f", "type": ""}},
    ],
)
async def test_delivery_without_action_id_and_type_is_refused_with_400(
    client: httpx.AsyncClient, redis_client: Redis, payload: Any
) -> None:
    body = encode(payload)
    response = await post(client, body, signed_headers(body))
    assert response.status_code == 400
    assert await queued_jobs(redis_client) == {}


@pytest.mark.parametrize("action_type", ["updateCard", "commentCard", "createList", "addAttachmentToCard"])
async def test_actions_that_do_not_touch_membership_get_200_and_queue_nothing(
    client: httpx.AsyncClient, redis_client: Redis, action_type: str
) -> None:
    body = encode(delivery(action_type))
    response = await post(client, body, signed_headers(body))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await queued_jobs(redis_client) == {}


@pytest.mark.parametrize(
    "action_type",
    [
        "addMemberToBoard",
        "removeMemberFromBoard",
        "makeAdminOfBoard",
        "makeNormalMemberOfBoard",
        "makeObserverOfBoard",
        "removeAdminFromBoard",
        "deactivatedMemberInBoard",
        "reactivatedMemberInBoard",
        "addMemberToOrganization",
        "removeMemberFromOrganization",
        "makeAdminOfOrganization",
        "makeNormalMemberOfOrganization",
        "removeAdminFromOrganization",
        "updateMember",
        "createBoard",
        "copyBoard",
        "addToOrganizationBoard",
        "removeFromOrganizationBoard",
        "updateBoard",
        "unconfirmedBoardInvitation",
        "unconfirmedOrganizationInvitation",
        "memberJoinedTrello",
        "deactivatedMemberInOrganization",
        "reactivatedMemberInOrganization",
        "deactivatedMemberInEnterprise",
        "reactivatedMemberInEnterprise",
    ],
)
async def test_every_membership_action_type_is_queued(
    client: httpx.AsyncClient, redis_client: Redis, action_type: str
) -> None:
    body = encode(delivery(action_type))
    response = await post(client, body, signed_headers(body))
    assert response.json()["status"] == "queued"
    assert len(await queued_jobs(redis_client)) == 1


async def test_second_delivery_of_an_action_queues_nothing_and_still_answers_200(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    body = encode(delivery())
    first = await post(client, body, signed_headers(body))
    second = await post(client, body, signed_headers(body))

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert len(await queued_jobs(redis_client)) == 1


async def test_concurrent_deliveries_each_get_their_own_job(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    bodies = [encode(delivery()) for _ in range(200)]
    responses = await asyncio.gather(*(post(client, body, signed_headers(body)) for body in bodies))
    assert {r.status_code for r in responses} == {200}
    assert len(await queued_jobs(redis_client)) == 200


async def test_outcomes_are_counted_in_metrics(client: httpx.AsyncClient) -> None:
    body = encode(delivery("commentCard"))
    await post(client, body, signed_headers(body))
    await post(client, body, {"x-trello-webhook": "forged"})

    metrics = (await client.get("/metrics")).text

    assert 'trellis_webhooks_total{outcome="ignored",type="commentCard"} 1.0' in metrics
    assert 'trellis_webhooks_total{outcome="bad_signature",type="unknown"} 1.0' in metrics


async def test_get_on_the_webhook_route_is_405_naming_the_methods_allowed(client: httpx.AsyncClient) -> None:
    response = await client.get(URL)
    assert response.status_code == 405
    assert response.headers["allow"] == "HEAD, POST"


async def test_answer_states_its_length_rather_than_being_chunked(client: httpx.AsyncClient) -> None:
    body = encode(delivery())
    response = await post(client, body, signed_headers(body))
    assert response.headers["content-length"] == str(len(response.content))


async def test_answer_names_the_action_it_acknowledged(client: httpx.AsyncClient) -> None:
    payload = delivery()
    body = encode(payload)
    response = await post(client, body, signed_headers(body))
    assert response.json()["action_id"] == payload["action"]["id"]
