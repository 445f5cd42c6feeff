"""The membership vocabulary, once: roles, access levels, their order, and how the store's words map to
Trello's (DESIGN.md, "Mapping between the two models").

Plain words and pure functions, no I/O: the store, the API, the plans and the workflows all speak it.
Trello's words here are only the values its API uses (`memberType`), not anything of its API.
"""

from __future__ import annotations

from typing import Literal, get_args

StoreRole = Literal["owner", "admin", "member"]
Access = Literal["write", "read", "none"]
Authority = Literal["trello", "local"]
# Trello's `memberType` of a workspace and of a board membership.
WorkspaceRole = Literal["admin", "normal"]
BoardRole = Literal["admin", "normal", "observer"]

ROLES: tuple[StoreRole, ...] = get_args(StoreRole)
ROLE_RANK: dict[str, int] = {"member": 0, "admin": 1, "owner": 2}
ACCESS_RANK: dict[str, int] = {"none": 0, "read": 1, "write": 2}


def higher_role(a: str, b: str) -> str:
    return a if ROLE_RANK[a] >= ROLE_RANK[b] else b


def workspace_role(role: str) -> WorkspaceRole:
    """The Trello workspace role of a store role: Trello has no owner, so owners are its admins."""
    return "normal" if role == "member" else "admin"


def store_role(member_type: object) -> StoreRole:
    """The store role a Trello workspace `memberType` gives (an owner is never made from Trello)."""
    return "admin" if member_type == "admin" else "member"


def trello_workspace_role(member_type: object) -> WorkspaceRole:
    """A workspace membership's `memberType` read defensively: anything but `admin` is `normal`."""
    return "admin" if member_type == "admin" else "normal"


def board_access(role: object) -> Access:
    """The access a Trello board role gives: admin and normal write, observer reads, no role nothing."""
    if role is None:
        return "none"
    return "read" if role == "observer" else "write"


def grant_access(*, can_read: bool, can_write: bool) -> Access:
    """The access level of a stored grant (read and write flags)."""
    return "write" if can_write else "read" if can_read else "none"


def grant_flags(access: Access) -> tuple[bool, bool]:
    """`(can_read, can_write)` of an access level."""
    return access != "none", access == "write"
