"""Signing in and out of the console: who may, what the cookie is, and when the session ends."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from membership.directory import revoke_token
from membership.models import ApiToken
from tests.conftest import SettingsFactory
from tests.fixtures.store import World
from tests.receiver.console.conftest import console_client, csrf_of, sign_in, signed_in_csrf


async def test_a_page_without_a_session_sends_to_the_sign_in(console: httpx.AsyncClient) -> None:
    answer = await console.get("/console/members")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


async def test_an_owner_signs_in_with_a_token_and_sees_the_overview(
    console: httpx.AsyncClient, world: World
) -> None:
    answer = await sign_in(console, world.olive)
    overview = await console.get("/console/")

    assert answer.status_code == 303
    assert overview.status_code == 200
    assert "Acme" in overview.text
    assert "olive@example.com" in overview.text


async def test_the_session_cookie_is_http_only_same_site_strict_secure_and_bounded_in_time(
    console: httpx.AsyncClient, world: World
) -> None:
    answer = await sign_in(console, world.adam)

    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "; secure" in cookie
    assert "max-age=28800" in cookie  # 8 hours
    assert "path=/console" in cookie


async def test_behind_an_https_public_url_the_cookie_is_secure_even_over_plain_http(
    store_url: str, make_settings: SettingsFactory, world: World
) -> None:
    settings = make_settings(database_url=store_url)  # the tests' callback URL is https://
    async with console_client(settings, "http://trellis.test") as console:
        page = await console.get("/console/sign-in")

    assert "; secure" in page.headers["set-cookie"].lower()


async def test_without_https_anywhere_the_cookie_is_not_secure(
    store_url: str, make_settings: SettingsFactory, world: World
) -> None:
    settings = make_settings(database_url=store_url, callback_url="http://127.0.0.1:8080/webhooks/trello")
    async with console_client(settings, "http://127.0.0.1:8080") as console:
        answer = await sign_in(console, world.adam)

    assert answer.status_code == 303
    assert "secure" not in answer.headers["set-cookie"].lower()


async def test_behind_a_trusted_proxy_that_terminates_https_the_cookie_is_secure(
    store_url: str, make_settings: SettingsFactory, world: World
) -> None:
    settings = make_settings(database_url=store_url, callback_url="http://127.0.0.1:8080/webhooks/trello")
    async with console_client(settings, "http://127.0.0.1:8080") as console:  # the proxy: 127.0.0.1
        page = await console.get("/console/sign-in", headers={"x-forwarded-proto": "https"})

    assert "; secure" in page.headers["set-cookie"].lower()


async def test_the_forwarded_scheme_of_a_peer_not_trusted_as_a_proxy_is_not_believed(
    store_url: str, make_settings: SettingsFactory, world: World
) -> None:
    settings = make_settings(
        database_url=store_url,
        callback_url="http://127.0.0.1:8080/webhooks/trello",
        forwarded_allow_ips="10.1.2.3",
    )
    async with console_client(settings, "http://127.0.0.1:8080") as console:
        page = await console.get("/console/sign-in", headers={"x-forwarded-proto": "https"})

    assert "secure" not in page.headers["set-cookie"].lower()


async def test_a_session_ends_when_its_lifetime_is_over(
    store_url: str, make_settings: SettingsFactory, world: World
) -> None:
    settings = make_settings(database_url=store_url, console_session_hours=1 / 3600)  # one second
    async with console_client(settings, "https://trellis.test") as console:
        await sign_in(console, world.adam)
        assert (await console.get("/console/")).status_code == 200
        await asyncio.sleep(2.1)  # the signature's time is in whole seconds

        assert (await console.get("/console/")).status_code == 303


async def test_the_cookie_holds_neither_the_token_nor_anything_readable_as_it(
    console: httpx.AsyncClient, world: World
) -> None:
    answer = await sign_in(console, world.olive)

    assert world.olive.token not in answer.headers["set-cookie"]


async def test_a_member_who_is_not_an_admin_is_refused(console: httpx.AsyncClient, world: World) -> None:
    answer = await sign_in(console, world.mia)

    assert answer.status_code == 403
    assert "owners and admins" in answer.text
    assert (await console.get("/console/")).status_code == 303  # no session was made


async def test_an_unknown_token_is_refused_next_to_the_token_field(
    console: httpx.AsyncClient, world: World
) -> None:
    form = await console.get("/console/sign-in")
    answer = await console.post("/console/sign-in", data={"csrf": csrf_of(form), "token": "not-a-token"})

    assert answer.status_code == 401
    assert 'id="token-problem"' in answer.text


async def test_a_sign_in_posted_without_the_forms_csrf_token_is_refused(
    console: httpx.AsyncClient, world: World
) -> None:
    await console.get("/console/sign-in")
    answer = await console.post("/console/sign-in", data={"token": world.olive.token})

    assert answer.status_code == 403
    assert (await console.get("/console/")).status_code == 303


async def test_revoking_the_token_ends_the_session(console: httpx.AsyncClient, world: World) -> None:
    await signed_in_csrf(console, world.adam)
    async with world.database.transaction() as session:
        token = await session.scalar(select(ApiToken.id).where(ApiToken.user_id == world.adam.user.id))
        assert token is not None
        await revoke_token(session, token)

    answer = await console.get("/console/members")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


async def test_a_tampered_cookie_is_no_session(console: httpx.AsyncClient, world: World) -> None:
    await signed_in_csrf(console, world.adam)
    value = console.cookies["trellis_console"]
    console.cookies.clear()
    console.cookies.set("trellis_console", value[:-3] + "AAA", domain="trellis.test", path="/console")

    assert (await console.get("/console/")).status_code == 303


async def test_signing_out_ends_the_session(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.olive)

    answer = await console.post("/console/sign-out", data={"csrf": csrf})

    assert answer.status_code == 303
    assert (await console.get("/console/")).status_code == 303


async def test_a_sign_out_without_the_csrf_token_is_refused(console: httpx.AsyncClient, world: World) -> None:
    await signed_in_csrf(console, world.olive)

    answer = await console.post("/console/sign-out", data={})

    assert answer.status_code == 403
    assert (await console.get("/console/")).status_code == 200


async def test_console_pages_may_not_be_framed_nor_load_anything_from_elsewhere(
    console: httpx.AsyncClient, world: World
) -> None:
    page = await console.get("/console/sign-in")

    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "http://" not in page.text
    assert "https://" not in page.text
