"""The OpenAPI document of the membership API, built from the same pydantic models the handlers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from receiver.api.schemas import (
    MAX_ID,
    AccessUpdate,
    AuditEntryOut,
    BoardOut,
    BoardViewOut,
    Error,
    InviteAccept,
    InviteCreate,
    InviteOut,
    MemberOut,
    PageOut,
    Removed,
    RoleChange,
)

REF = "#/components/schemas/{model}"
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
AUDIT_FILTERS = (
    {"name": "member_id", "description": "Changes about this member (their membership id)",
     "schema": ID_SCHEMA},
    {"name": "trello_member_id", "description": "Changes about this Trello member (without member_id)",
     "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
    {"name": "board_id", "description": "Changes to this board", "schema": ID_SCHEMA},
    {"name": "since", "description": "Changes from this time on (ISO 8601)",
     "schema": {"type": "string", "format": "date-time"}},
)  # fmt: skip
REQUESTS: list[type[BaseModel]] = [AccessUpdate, InviteAccept, InviteCreate, RoleChange]
RESPONSES: list[type[BaseModel]] = [
    Error,
    InviteOut,
    MemberOut,
    PageOut[MemberOut],
    PageOut[InviteOut],
    PageOut[BoardOut],
    PageOut[AuditEntryOut],
    BoardViewOut,
    Removed,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__.replace("[", "_").replace("]", "_"))}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "The body is not JSON",
        401: "No valid bearer token",
        403: "Not allowed for this caller",
        404: "No such record in the caller's organization",
        409: "Conflicts with existing data",
        413: "Body too large",
        422: "Invalid input, or a rule of the organization would break",
    }
    content = {"application/json": {"schema": _ref(Error)}}
    return {str(s): {"description": reasons[s], "content": content} for s in statuses}


def _operation(
    summary: str,
    ok: type[BaseModel],
    *,
    status: int = 200,
    body: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    path_id: str | None = None,
    paged: bool = False,
    query: tuple[dict[str, Any], ...] = (),
    auth: bool = True,
) -> dict[str, Any]:
    responses = {str(status): {"description": "OK", "content": {"application/json": {"schema": _ref(ok)}}}}
    responses.update(_errors(*(401, *errors) if auth else errors))
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    parameters = []
    if path_id:
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        parameters.append({"name": path_id, "in": "path", "required": True, "schema": schema})
    if paged:
        parameters += [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {
                "name": "offset",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0},
            },
        ]
    parameters += [{"in": "query", **parameter} for parameter in query]
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in REQUESTS] + [(m, "serialization") for m in RESPONSES], ref_template=REF
    )
    member = "/organizations/me/members/{member_id}"
    body_errors = (400, 413, 422)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Trellis membership API", "version": "1"},
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/organizations/me/members": {
                "get": _operation(
                    "List organization members", PageOut[MemberOut], errors=(403, 422), paged=True
                ),
            },
            member: {
                "get": _operation(
                    "Get an organization member", MemberOut, errors=(403, 404), path_id="member_id"
                ),
                "patch": _operation(
                    "Change a member's role",
                    MemberOut,
                    body=RoleChange,
                    errors=(403, 404, *body_errors),
                    path_id="member_id",
                ),
                "delete": _operation("Remove a member", Removed, errors=(403, 404, 422), path_id="member_id"),
            },
            member + "/access": {
                "put": _operation(
                    "Update a member's board access",
                    MemberOut,
                    body=AccessUpdate,
                    errors=(403, 404, *body_errors),
                    path_id="member_id",
                ),
            },
            "/organizations/me/invites": {
                "get": _operation("List pending invites", PageOut[InviteOut], errors=(403, 422), paged=True),
                "post": _operation(
                    "Create an invite",
                    InviteOut,
                    status=201,
                    body=InviteCreate,
                    errors=(403, 409, *body_errors),
                ),
            },
            "/organizations/me/invites/{invite_id}": {
                "delete": _operation(
                    "Revoke a pending invite", InviteOut, errors=(403, 404), path_id="invite_id"
                ),
            },
            "/organizations/me/boards": {
                "get": _operation(
                    "List the workspace's boards", PageOut[BoardOut], errors=(403, 422), paged=True
                ),
            },
            "/organizations/me/boards/{board_id}": {
                "get": _operation(
                    "Who can see a board: members with access, and guests",
                    BoardViewOut,
                    errors=(403, 404),
                    path_id="board_id",
                ),
            },
            "/organizations/me/audit": {
                "get": _operation(
                    "The organization's audit trail, newest first (owners and admins)",
                    PageOut[AuditEntryOut],
                    errors=(403, 404, 422),
                    paged=True,
                    query=AUDIT_FILTERS,
                ),
            },
            "/organizations/invites/accept": {
                "post": _operation(
                    "Accept an invite", MemberOut, body=InviteAccept, errors=(403, 404, *body_errors)
                ),
            },
        },
    }
