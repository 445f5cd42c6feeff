"""The doctor's token check: the expiry date, and a warning two weeks ahead.

Dates are relative to the clock: the emulator, like Trello, refuses a token once it has expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emulator.fixture import sample
from tests.emulator.conftest import TOKEN
from tests.workers.conftest import ClientFactory
from trellis.doctor import token_check

NOW = datetime.now(UTC).replace(microsecond=0)


def expiring(on: datetime) -> dict[str, object]:
    fixture = sample()
    when = on.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fixture["tokens"] = [{"token": TOKEN, "member": "trellis_admin", "dateExpires": when}]
    return fixture


async def test_a_token_expiring_within_two_weeks_needs_a_person(open_trello: ClientFactory) -> None:
    expiry = NOW + timedelta(days=9, hours=1)
    async with open_trello(fixture=expiring(expiry)) as (trello, _):
        status, detail = await token_check(trello, NOW)
    assert status == "attention"
    assert f"expires on {expiry.strftime('%Y-%m-%dT%H:%M:%S.000Z')} (in 9 days)" in detail


async def test_a_token_expiring_later_is_fine(open_trello: ClientFactory) -> None:
    async with open_trello(fixture=expiring(NOW + timedelta(days=200))) as (trello, _):
        status, _ = await token_check(trello, NOW)
    assert status == "ok"


async def test_an_expired_token_fails(open_trello: ClientFactory) -> None:
    async with open_trello(fixture=expiring(NOW - timedelta(days=20))) as (trello, _):
        status, detail = await token_check(trello, NOW)
    assert status == "failed"
    assert "expired" in detail
