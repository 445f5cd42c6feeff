"""Membership lists, a board's or a workspace's, as Trello filters and shapes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from emulator import shapes
from emulator.calls import Call
from emulator.models import BoardMembership, TrelloError, WorkspaceMembership

if TYPE_CHECKING:
    from emulator.trello import TrelloApi

Membership = BoardMembership | WorkspaceMembership


def keep(membership: Membership, wanted: str, me: str) -> bool:
    """Trello's membership filters: all, me, active, admin(s), normal, observer, deactivated."""
    if wanted == "all":
        return True
    if wanted == "me":
        return membership.member_id == me
    if wanted == "active":
        return not membership.deactivated and not membership.unconfirmed
    if wanted == "deactivated":
        return membership.deactivated
    if wanted in ("admin", "admins"):
        return membership.member_type == "admin"
    if wanted in ("normal", "observer"):
        return membership.member_type == wanted
    raise TrelloError(400, "invalid value for filter")


def listing(
    api: TrelloApi, call: Call, memberships: Iterable[Membership], wanted: str, *, with_member: bool
) -> list[dict[str, Any]]:
    """The memberships `wanted` keeps; `with_member` nests each member with `member_fields`."""
    fields = call.params.get("member_fields")
    return [
        shapes.membership(m, api.world.members[m.member_id], with_member=with_member, member_fields=fields)
        for m in memberships
        if keep(m, wanted, call.member.id)
    ]


def members_answer(api: TrelloApi, model_id: str, memberships: Mapping[str, Membership]) -> dict[str, Any]:
    """What Trello answers a change of a board's or workspace's members with: the model, its members and
    their memberships."""
    members = api.world.members
    return {
        "id": model_id,
        "members": [shapes.member(members[m], nested=True) for m in memberships],
        "memberships": [shapes.membership(m, members[m.member_id]) for m in memberships.values()],
    }
