"""What a board reconcile would change: `plan_board(desired, actual, policy) -> Plan`, a pure function.

Reads nothing, writes nothing, so that `trellis plan`, the workers and the tests share it. The rules
(DESIGN.md, "Who is right" and "Mapping between the two models"):

- Effective access in the store is `write`, `read` or `none`; on the board that is Trello's `normal`,
  `observer`, or not a member. A Trello board `admin` counts as write and is never demoted or removed.
- On a plan without observers, read becomes `normal` or is skipped and reported, as the policy says.
- Authority `local` (enforce): Trello follows the store. Authority `trello` (mirror): the store takes
  Trello's state, except for members with changes made through the membership API still to push,
  which Trello follows in both modes.
- A plan that would remove or demote more than the guard allows is held for an operator, not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Access = Literal["write", "read", "none"]
BoardRole = Literal["admin", "normal", "observer"]
Authority = Literal["trello", "local"]

_RANK: dict[Access, int] = {"none": 0, "read": 1, "write": 2}


@dataclass(frozen=True)
class Policy:
    authority: Authority = "trello"
    observers_allowed: bool = True
    observer_fallback: Literal["normal", "skip"] = "normal"
    guard_members: int = 10  # held when more than this many people would lose access ...
    guard_share: float = 0.2  # ... or more than this share of the board; never for one person alone


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class DesiredBoard:
    """The store's side: every member the store knows (by Trello member id) and their effective access."""

    board_id: str
    access: Mapping[str, Access]
    pending: frozenset[str] = frozenset()  # members with membership API changes still to push


@dataclass(frozen=True)
class ActualBoard:
    """Trello's side: the board's members and their roles, as read just now."""

    board_id: str
    roles: Mapping[str, BoardRole]


@dataclass(frozen=True)
class SetTrelloRole:
    """Add the member to the Trello board with `role`, or change their role to it."""

    member_id: str
    role: BoardRole
    reason: str


@dataclass(frozen=True)
class RemoveFromTrello:
    member_id: str
    reason: str


@dataclass(frozen=True)
class SetStoreAccess:
    """Record in the store the access Trello gives the member on this board."""

    member_id: str
    access: Access
    reason: str


@dataclass(frozen=True)
class Skip:
    """Nothing can be done for this member; said in the report, never retried."""

    member_id: str
    reason: str


Operation = SetTrelloRole | RemoveFromTrello | SetStoreAccess | Skip


@dataclass(frozen=True)
class Plan:
    board_id: str
    operations: list[Operation] = field(default_factory=list)
    held: str | None = None  # why an operator must approve it first, if so
    losing: frozenset[str] = frozenset()  # members the plan takes access from

    @property
    def changes(self) -> list[Operation]:
        return [op for op in self.operations if not isinstance(op, Skip)]


def access_of(role: BoardRole | None) -> Access:
    return "none" if role is None else "read" if role == "observer" else "write"


def plan_board(desired: DesiredBoard, actual: ActualBoard, policy: Policy) -> Plan:
    operations: list[Operation] = []
    for member in sorted(set(desired.access) | set(actual.roles)):
        role = actual.roles.get(member)
        if member not in desired.access:
            operations.append(Skip(member, "not a member in the store: the workspace reconcile adopts them"))
            continue
        local = desired.access[member]
        if member in desired.pending:
            operations.extend(_push(member, local, role, policy, "a membership API change"))
        elif policy.authority == "local":
            operations.extend(_push(member, local, role, policy, "the store is authoritative"))
        elif access_of(role) != local:
            reason = f"Trello has them as {role or 'not a member'}; the store follows Trello"
            operations.append(SetStoreAccess(member, access_of(role), reason))
    losing = frozenset(op.member_id for op in operations if _takes_access(op, desired, actual))
    return Plan(desired.board_id, operations, _guard(losing, desired, actual, policy), losing)


def _push(member: str, local: Access, role: BoardRole | None, policy: Policy, pushed: str) -> list[Operation]:
    """The Trello operation that makes the board give `member` the `local` access, if any."""
    if role == "admin":
        return []  # a board admin has write, and is never demoted or removed by a reconcile
    if local == "none":
        return [RemoveFromTrello(member, f"no access in the store ({pushed})")] if role is not None else []
    target: BoardRole = "normal" if local == "write" else "observer"
    if target == "observer" and not policy.observers_allowed:
        if policy.observer_fallback == "skip":
            return [Skip(member, "read access, but this workspace's plan has no observers")]
        target = "normal"
    if role == target:
        return []
    verb = "add" if role is None else f"change from {role}"
    return [SetTrelloRole(member, target, f"{local} access in the store: {verb} to {target} ({pushed})")]


def _guard(losing: frozenset[str], desired: DesiredBoard, actual: ActualBoard, policy: Policy) -> str | None:
    size = max(len(actual.roles), len([a for a in desired.access.values() if a != "none"]))
    return guard(losing, size, policy, f"board {desired.board_id}")


def guard(losing: frozenset[str], size: int, policy: Policy, where: str) -> str | None:
    """Why a plan must wait for an operator, when it takes access from too many of `size` people."""
    size = max(size, 1)
    # One person losing access (an offboarding) is never held, whatever the thresholds.
    if len(losing) > 1 and (len(losing) > policy.guard_members or len(losing) / size > policy.guard_share):
        return f"{len(losing)} of {size} members would lose access to {where}"
    return None


def _takes_access(op: Operation, desired: DesiredBoard, actual: ActualBoard) -> bool:
    if isinstance(op, RemoveFromTrello):
        return True
    if isinstance(op, SetTrelloRole):
        return _RANK[access_of(op.role)] < _RANK[access_of(actual.roles.get(op.member_id))]
    if isinstance(op, SetStoreAccess):
        return _RANK[op.access] < _RANK[desired.access[op.member_id]]
    return False
