"""A public SCIM client from PyPI (`scim2-client`), unchanged but for its base URL, against the emulated
Atlassian directory: discovery, list and filter, create, read, PATCH `active`, PUT, 409 on a duplicate,
delete; each answer parsed and checked by the client's own models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from scim2_client.engines.asgi import ASGISCIMClient
from scim2_models import (
    ListResponse,
    PatchOp,
    PatchOperation,
    ResourceType,
    Schema,
    SCIMException,
    SearchRequest,
    ServiceProviderConfig,
)

from emulator.app import EmulatorConfig
from tests.emulator.conftest import EmulatorFactory

DIRECTORY, TOKEN = EmulatorConfig.scim_directory, EmulatorConfig.scim_token


@pytest.fixture
async def scim(open_emulator: EmulatorFactory) -> AsyncIterator[ASGISCIMClient]:
    async with open_emulator() as (_, app):
        client = ASGISCIMClient(
            app,
            base_url=f"http://scim.test/scim/directory/{DIRECTORY}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        await client.discover()
        yield client


async def test_discovery_describes_users_groups_and_what_the_directory_supports(scim: ASGISCIMClient) -> None:
    config = await scim.query(ServiceProviderConfig)
    assert isinstance(config, ServiceProviderConfig)
    assert config.patch is not None
    assert config.patch.supported
    assert config.bulk is not None
    assert not config.bulk.supported
    types = await scim.query(ResourceType)
    assert isinstance(types, ListResponse)
    assert {t.name for t in types.resources or []} == {"User", "Group"}
    schemas = await scim.query(Schema)
    assert isinstance(schemas, ListResponse)
    assert "urn:scim:schemas:extension:atlassian-external:1.0" in {s.id for s in schemas.resources or []}


async def test_users_are_listed_and_found_by_an_exact_username(scim: ASGISCIMClient) -> None:
    User = scim.get_resource_model("User")
    everyone = await scim.query(User)
    assert isinstance(everyone, ListResponse)
    assert everyone.total_results == 12
    # Atlassian filters through GET (its API has no `POST /.search`).
    wanted = SearchRequest(filter='userName eq "ken.thompson@acme.example"')
    found = await scim.query(User, query_parameters=wanted)
    assert isinstance(found, ListResponse)
    assert [u.user_name for u in found.resources or []] == ["ken.thompson@acme.example"]


async def test_a_user_is_created_read_deactivated_replaced_and_deleted(scim: ASGISCIMClient) -> None:
    User = scim.get_resource_model("User")
    created = await scim.create(User(user_name="new.person@acme.example", display_name="New Person"))
    assert created.id
    assert created.active is not False
    read = await scim.query(User, created.id)
    assert read.user_name == "new.person@acme.example"
    patch: Any = PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=False)])
    await scim.modify(User, created.id, patch)
    assert (await scim.query(User, created.id)).active is False
    read.display_name = "Renamed Person"
    read.active = True
    replaced = await scim.replace(read)
    assert replaced.display_name == "Renamed Person"
    await scim.delete(User, created.id)
    with pytest.raises(SCIMException):
        await scim.query(User, created.id)


async def test_creating_a_user_that_exists_is_a_409(scim: ASGISCIMClient) -> None:
    User = scim.get_resource_model("User")
    with pytest.raises(SCIMException) as refused:
        await scim.create(User(user_name="ken.thompson@acme.example"))
    assert refused.value.status == 409
