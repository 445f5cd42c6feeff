"""The doctor's token check: the expiry date, and a warning two weeks ahead."""

from __future__ import annotations

from datetime import UTC, datetime

from emulator.fixture import sample
from tests.emulator.conftest import TOKEN
from tests.workers.conftest import ClientFactory
from trellis.doctor import token_check


def expiring(on: str) -> dict[str, object]:
    fixture = sample()
    fixture["tokens"] = [{"token": TOKEN, "member": "trellis_admin", "dateExpires": on}]
    return fixture


async def test_a_token_expiring_within_two_weeks_needs_a_person(open_trello: ClientFactory) -> None:
    async with open_trello(fixture=expiring("2026-12-01T00:00:00.000Z")) as (trello, _):
        status, detail = await token_check(trello, datetime(2026, 11, 22, tzinfo=UTC))
    assert status == "attention"
    assert "expires on 2026-12-01T00:00:00.000Z (in 9 days)" in detail


async def test_a_token_expiring_later_is_fine(open_trello: ClientFactory) -> None:
    async with open_trello(fixture=expiring("2027-06-01T00:00:00.000Z")) as (trello, _):
        status, _ = await token_check(trello, datetime(2026, 11, 22, tzinfo=UTC))
    assert status == "ok"


async def test_an_expired_token_fails(open_trello: ClientFactory) -> None:
    async with open_trello(fixture=expiring("2026-11-01T00:00:00.000Z")) as (trello, _):
        status, detail = await token_check(trello, datetime(2026, 11, 22, tzinfo=UTC))
    assert status == "failed"
    assert "expired" in detail
