"""The membership rules, in one place, so that the API and the workers apply the same ones.

Each check is a plain function of the facts it needs and raises a RuleViolation when the rule is broken.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from membership.errors import Forbidden, Unprocessable
from membership.vocabulary import ROLES


@dataclass(frozen=True)
class Actor:
    """Who is acting: a member of the organization (API calls), or Trellis itself (`system`).

    The system acts on behalf of Trello or an operator: it passes the permission checks, never the
    organization's invariants (an organization always keeps an owner).
    """

    name: str
    user_id: int | None = None
    membership_id: int | None = None
    role: str | None = None

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    @property
    def is_admin(self) -> bool:
        return self.is_system or self.role in ("owner", "admin")

    @property
    def is_owner(self) -> bool:
        return self.is_system or self.role == "owner"

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(name=f"system:{name}")


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("this needs an organization admin or owner")


def check_can_view(actor: Actor, membership_id: int) -> None:
    if not actor.is_admin and actor.membership_id != membership_id:
        raise Forbidden("members can only view their own membership")


def check_role_change(actor: Actor, current: str, new: str, owners: int) -> None:
    require_admin(actor)
    if new not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}")
    if (current == "owner" or new == "owner") and not actor.is_owner:
        raise Forbidden("only owners can grant or take away the owner role")
    if current == "owner" and new != "owner" and owners <= 1:
        raise Unprocessable("an organization must keep at least one owner")


def check_removal(actor: Actor, target_user_id: int, target_role: str, owners: int) -> None:
    require_admin(actor)
    if actor.user_id == target_user_id:
        raise Forbidden("members cannot remove themselves")
    if target_role == "owner" and not actor.is_owner:
        raise Forbidden("only owners can remove owners")
    if target_role == "owner" and owners <= 1:
        raise Unprocessable("an organization must keep at least one owner")


def check_invite_role(actor: Actor, role: str) -> None:
    require_admin(actor)
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}")
    if role == "owner" and not actor.is_owner:
        raise Forbidden("only owners can invite owners")


def check_boards_belong(requested: Iterable[int], organization_boards: set[int]) -> None:
    requested = list(requested)
    if len(requested) != len(set(requested)):
        raise Unprocessable("a board may appear only once in board_access")
    foreign = sorted(set(requested) - organization_boards)
    if foreign:
        raise Unprocessable(f"boards {foreign} do not belong to the organization")


def check_invite_acceptor(invite_email: str, user_email: str | None) -> None:
    if user_email is None or normalise_email(invite_email) != normalise_email(user_email):
        raise Forbidden("the invite was made for another email address")


def normalise_email(email: str) -> str:
    """The one notion of "the same email", at every entry point and in the store: Unicode NFKC (a
    full-width letter is its plain twin), then casefold (`Straße` is `strasse`)."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()
