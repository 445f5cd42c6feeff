"""Ids become parts of Trello and SCIM URLs only in the shape those APIs issue them."""

from __future__ import annotations

import pytest

from tests.workers.conftest import ClientFactory
from workers.outside.errors import InvalidId
from workers.outside.ids import scim_path, trello_path

TRAVERSAL = "../../../organizations/5f0c0c0c0c0c0c0c0c0c0c0c/members/5f0b0a4d0b0a4d0b0a4d0b0a/all"


def test_a_trello_id_fills_its_place_in_the_path() -> None:
    assert trello_path("/boards/{}/members/{}", "5f0b0a4d0b0a4d0b0a4d0b0a", "6B0E0EA5294F00000080BE3A") == (
        "/boards/5f0b0a4d0b0a4d0b0a4d0b0a/members/6B0E0EA5294F00000080BE3A"
    )


@pytest.mark.parametrize(
    "planted", [TRAVERSAL, "5f0b0a4d0b0a4d0b0a4d0b0a/all", "me", "", "5f0b%2F", "x" * 5000]
)
def test_anything_else_is_refused_before_a_path_is_made(planted: str) -> None:
    with pytest.raises(InvalidId):
        trello_path("/boards/{}/members/{}", "5f0b0a4d0b0a4d0b0a4d0b0a", planted)


def test_a_scim_id_is_checked_too() -> None:
    assert (
        scim_path("/Users/{}", "3f1c3a9e-8f5b-4b51-9a52-1c3f0d4c2b10")
        == "/Users/3f1c3a9e-8f5b-4b51-9a52-1c3f0d4c2b10"
    )
    with pytest.raises(InvalidId):
        scim_path("/Users/{}", "../Groups/x")


async def test_a_planted_member_id_sends_nothing_to_trello(open_trello: ClientFactory) -> None:
    async with open_trello() as (trello, app):
        with pytest.raises(InvalidId):
            await trello.remove_board_member("5f0b0a4d0b0a4d0b0a4d0b0a", TRAVERSAL)
        counted = app.state.limiter.counters.as_json()["requests"]
    assert counted == {}
