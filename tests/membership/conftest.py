"""Every store test runs twice: on SQLite and on the real PostgreSQL of this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from membership.database import Database, migrate
from membership.directory import add_board, create_token, create_user, link_organization
from membership.members import AccessChange, BoardGrant, set_access
from membership.models import Membership, User
from membership.rules import Actor
from tests.conftest import SettingsFactory, empty_postgres
from trellis.wiring import receiver_app

SYSTEM = Actor.system("test")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    if request.param == "sqlite":
        await migrate(sqlite_url)
        yield sqlite_url
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    await empty_postgres(url)


@pytest.fixture
async def database(store_url: str) -> AsyncIterator[Database]:
    db = Database(store_url)
    yield db
    await db.dispose()


@dataclass
class Person:
    user: User
    token: str
    membership: Membership | None = None

    @property
    def member_id(self) -> int:
        assert self.membership is not None
        return self.membership.id

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """An organization with an owner, an admin and a member, three boards, and a second organization."""

    database: Database
    organization_id: int = 0
    other_organization_id: int = 0
    boards: list[int] = field(default_factory=list)
    other_board: int = 0
    people: dict[str, Person] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Person:
        try:
            return self.__dict__["people"][name]
        except KeyError:
            raise AttributeError(name) from None

    async def person(
        self, session: Any, name: str, role: str | None, organization_id: int | None = None
    ) -> Person:
        from membership.members import membership_of

        user = await create_user(session, f"{name}@example.com", name.title(), actor=SYSTEM)
        membership = None
        if role is not None:
            membership = Membership(
                organization_id=organization_id or self.organization_id,
                user_id=user.id,
                role=role,
                board_access=[],
            )
            session.add(membership)
            user.active_organization_id = organization_id or self.organization_id
            await session.flush()
            membership = await membership_of(session, membership.organization_id, user.id)
        _, token = await create_token(session, user.email or "")
        person = Person(user, token, membership)
        self.people[name] = person
        return person

    async def build(self) -> World:
        async with self.database.transaction() as session:
            organization = await link_organization(
                session, "5f0000000000000000000001", name="Acme", owner_email="olive@example.com",
                authority="trello", actor=SYSTEM,
            )  # fmt: skip
            self.organization_id = organization.id
            other = await link_organization(
                session, "5f0000000000000000000002", name="Other", owner_email="xavier@example.com",
                authority="trello", actor=SYSTEM,
            )  # fmt: skip
            self.other_organization_id = other.id
            for name in ("Roadmap", "Hiring", "Ops"):
                self.boards.append((await add_board(session, organization.id, name=name)).id)
            self.other_board = (await add_board(session, other.id, name="Secret")).id
            from membership.directory import user_by_email
            from membership.members import membership_of

            for name, org in (("olive", organization.id), ("xavier", other.id)):
                user = await user_by_email(session, f"{name}@example.com")
                assert user is not None
                _, token = await create_token(session, user.email or "")
                self.people[name] = Person(user, token, await membership_of(session, org, user.id))
            await self.person(session, "adam", "admin")
            member = await self.person(session, "mia", "member")
            await set_access(
                session, SYSTEM, organization.id, member.member_id,
                AccessChange(board_access=[BoardGrant(self.boards[0], can_read=True)]), cause="test",
            )  # fmt: skip
            await self.person(session, "nora", None)  # a user with no membership
        return self


@pytest.fixture
async def world(database: Database) -> World:
    return await World(database).build()


@pytest.fixture
async def api(
    store_url: str, make_settings: SettingsFactory, world: World
) -> AsyncIterator[httpx.AsyncClient]:
    application: Starlette = receiver_app(make_settings(database_url=store_url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://trellis.test") as client:
            yield client
