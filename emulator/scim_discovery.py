"""SCIM discovery (RFC 7644 §4): what the directory supports, its resource types, and their schemas.

As Atlassian's user provisioning documents them: PATCH and filtering (an exact `eq`, at most 100 results
a page) are supported; bulk, sorting, ETags and password changes are not; authentication is an OAuth
bearer token. Users carry the enterprise extension and Atlassian's own (`atlassianAccountId`). The schema
documents are RFC 7643's, kept in `scim_schemas.json`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ATLASSIAN = "urn:scim:schemas:extension:atlassian-external:1.0"


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [CONFIG_SCHEMA],
        "documentationUri": "https://support.atlassian.com/provisioning-users/docs/understand-user-provisioning/",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 100},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The API key of the directory, from the Atlassian admin console",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    def resource_type(name: str, endpoint: str, schema: str, extensions: list[str]) -> dict[str, Any]:
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": f"{name} of the directory",
            "schema": schema,
            "schemaExtensions": [{"schema": s, "required": False} for s in extensions],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"},
        }

    return [
        resource_type("User", "/Users", USER, [ENTERPRISE, ATLASSIAN]),
        resource_type("Group", "/Groups", GROUP, []),
    ]


def schemas(base: str) -> list[dict[str, Any]]:
    return [
        {**schema, "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{schema['id']}"}}
        for schema in _schema_documents()
    ]


@cache
def _schema_documents() -> tuple[dict[str, Any], ...]:
    text = resources.files("emulator").joinpath("scim_schemas.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))
