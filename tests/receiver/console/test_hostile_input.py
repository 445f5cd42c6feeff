"""Whatever a signed-in operator's browser sends — odd strings in every field, path and query, or no
form at all — the console answers without a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.store import World
from tests.receiver.console.conftest import signed_in_csrf

PAGES = ["/console/?x={}", "/console/members?page={}&boards={}", "/console/audit?person={}&board={}",
         "/console/audit?since={}&page={}", "/console/people?who={}", "/console/approvals?{}={}"]  # fmt: skip
FORMS = [
    "/console/members/invite", "/console/invites/{}/revoke", "/console/members/{}/role",
    "/console/members/{}/access", "/console/members/{}/remove", "/console/approvals/{}/{}",
    "/console/dead-letters/{}",
]  # fmt: skip
FIELDS = ["email", "role", "can_read_all_boards", "board-1", "board-x", "job_id", "page", "boards", "token"]
ODD = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    st.sampled_from(["9" * 5000, "..%2F..%2F", "%00", "-1", "\uff11", "owner", "approve", "replay", "write"]),
)


async def test_an_id_past_the_stores_64_bits_is_not_found(console: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in_csrf(console, world.olive)

    answer = await console.post(
        "/console/members/9999999999999999999/role", data={"csrf": csrf, "role": "admin"}
    )

    assert answer.status_code == 404


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(PAGES), values=st.tuples(ODD, ODD))
async def test_odd_queries_on_every_page_never_get_a_5xx(
    console: httpx.AsyncClient, world: World, page: str, values: tuple[str, str]
) -> None:
    await signed_in_csrf(console, world.olive)
    url = page.format(*(quote(value, safe="") for value in values))

    answer = await console.get(url)

    assert answer.status_code < 500, (url, answer.text[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.sampled_from(FORMS),
    values=st.tuples(ODD, ODD),
    fields=st.dictionaries(st.sampled_from(FIELDS), ODD, max_size=5),
)
async def test_odd_forms_on_every_action_never_get_a_5xx(
    console: httpx.AsyncClient, world: World, form: str, values: tuple[str, str], fields: dict[str, str]
) -> None:
    csrf = await signed_in_csrf(console, world.adam)
    url = form.format(*(quote(value, safe="") for value in values))

    answer = await console.post(url, data={"csrf": csrf, **fields})

    assert answer.status_code < 500, (url, fields, answer.text[:300])
