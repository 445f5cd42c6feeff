"""Bounded inputs: whatever a caller puts in a path, a query or a body, the answer is never a 5xx, and
nothing it sends can make a record too long for its column."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from membership import audit
from membership.models import AuditEntry
from membership.rules import Actor
from tests.fixtures.store import World

ROUTES = [
    ("GET", "/organizations/me/members/{}"),
    ("PATCH", "/organizations/me/members/{}"),
    ("DELETE", "/organizations/me/members/{}"),
    ("PUT", "/organizations/me/members/{}/access"),
    ("DELETE", "/organizations/me/invites/{}"),
    ("GET", "/organizations/me/boards/{}"),
    ("GET", "/organizations/me/members?limit={}"),
    ("GET", "/organizations/me/invites?offset={}"),
    ("GET", "/organizations/me/boards?limit={}&offset={}"),
    ("POST", "/organizations/invites/accept"),
    ("POST", "/organizations/me/invites"),
]
ODD = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"0{0,300}[0-9]{1,40}", fullmatch=True),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["9" * 5000, "0" * 300 + "1", "..%2F..%2F", "%00", "1e9", "-1", "\uff11\uff12\uff13"]),
)


async def test_a_five_thousand_digit_id_is_not_found_not_a_server_error(
    api: httpx.AsyncClient, world: World
) -> None:
    answer = await api.get("/organizations/me/members/" + "9" * 5000, headers=world.olive.headers)
    assert answer.status_code == 404


async def test_a_cause_longer_than_its_column_is_cut_and_still_recorded(world: World) -> None:
    async with world.database.transaction() as session:
        audit.record(session, actor=Actor.system("t" * 300), cause="api:GET /" + "0" * 300, action="probe",
                     entity="test", entity_id=None, organization_id=None)  # fmt: skip
    async with world.database.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "probe"))
    assert entry is not None
    assert (len(entry.cause), entry.cause[-1]) == (200, "…")
    assert len(entry.actor) == 100


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    values=st.tuples(ODD, ODD),
    body=st.one_of(st.none(), st.text(max_size=200)),
)
async def test_odd_and_long_strings_anywhere_never_get_a_5xx(
    api: httpx.AsyncClient, world: World, route: tuple[str, str], values: tuple[str, str], body: str | None
) -> None:
    method, template = route
    url = template.format(*(quote(value, safe="") for value in values[: template.count("{}")]))
    answer = await api.request(method, url, content=body, headers=world.adam.headers)
    assert answer.status_code < 500, (method, url, answer.text[:200])
