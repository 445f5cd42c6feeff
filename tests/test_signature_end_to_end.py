"""Deliveries naming people and boards in any script reach the store, however Trello signed them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import SettingsFactory
from tests.stack import KEY, TOKEN, events_recorded_once_caught_up, run_worker, services, settings_for

__all__ = ["services"]  # a fixture, used by name


@pytest.mark.parametrize("encoding", ["utf-8", "binary"])
async def test_a_delivery_naming_someone_with_an_accent_is_accepted_in_either_encoding(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, encoding: str
) -> None:
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        state = (await trello.get("/_emulator/state")).json()
        board = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
        zoe = next(m for m in state["members"] if m["username"] == "zoe.celik")
        assert not zoe["fullName"].isascii()  # the delivery's body carries her name
        hook = await trello.post("/1/webhooks", params={"key": KEY, "token": TOKEN},
                                 json={"callbackURL": services["callback"], "idModel": board})  # fmt: skip
        assert hook.status_code == 200, hook.text
        assert (await trello.put("/_emulator/signing", json={"encoding": encoding})).status_code == 200
        await trello.put(f"/_emulator/boards/{board}/members/{zoe['id']}", json={"type": "normal"})
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
        attempts = (await trello.get("/_emulator/deliveries")).json()

    async with httpx.AsyncClient(base_url=services["receiver"]) as receiver:
        metrics = (await receiver.get("/metrics")).text
    assert [a["status"] for a in attempts] == [200]
    assert f'trellis_webhook_signatures_total{{encoding="{encoding}"}} 1.0' in metrics
    await run_worker(settings_for(make_settings, services))
    assert await events_recorded_once_caught_up(sqlite_url, 1) == 1
