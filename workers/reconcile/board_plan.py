"""What a board reconcile would change: `plan_board(desired, actual, policy) -> BoardPlan`, a pure function.

Reads nothing, writes nothing, so that `trellis plan`, the workers and the tests share it. The rules
(DESIGN.md, "Who is right" and "Mapping between the two models"):

- Effective access in the store is `write`, `read` or `none`; on the board that is Trello's `normal`,
  `observer`, or not a member. A Trello board `admin` counts as write and is never demoted or removed.
- On a plan without observers, read becomes `normal` or is skipped and reported, as the policy says.
- Authority `local` (enforce): Trello follows the store. Authority `trello` (mirror): the store takes
  Trello's state, except for members with changes made through the membership API still to push,
  which Trello follows in both modes.
- Someone on the board the store does not know (a guest: not a workspace member) is kept when guests are
  allowed (the default when mirroring) and removed otherwise (the default when enforcing); a board admin
  never is. Either way the store records who the board's guests are, as Trello has them.
- A plan that would remove or demote more than the guard allows is held for an operator, not applied.
- Whether the workspace's plan has observers, when the store does not know yet, is a fact to remember.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from membership.vocabulary import ACCESS_RANK, Access, BoardRole, board_access
from workers.reconcile.plan import Plan, Policy, Skip, guard


@dataclass(frozen=True)
class DesiredBoard:
    """The store's side: every member the store knows (by Trello member id) and their effective access."""

    board_id: str
    access: Mapping[str, Access]
    pending: frozenset[str] = frozenset()  # members with membership API changes still to push
    guests: Mapping[str, str] = field(default_factory=dict)  # the guests as the store recorded them
    observers_known: bool = True  # False: the store has not yet recorded whether the plan has observers


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
class RecordObservers:
    """Remember whether the workspace's plan has board observers (a fact: Trello is asked once)."""

    allowed: bool


@dataclass(frozen=True)
class RecordGuests:
    """Record the board's guests (people on it the store does not know) as Trello has them now."""

    board_id: str
    guests: Mapping[str, BoardRole]


@dataclass(frozen=True)
class UnlinkBoard:
    """Let go of a board: Trello no longer has it (`exists` False), or it left for a workspace the store
    does not link (its webhook to us must go too)."""

    board_id: str
    reason: str
    exists: bool


@dataclass(frozen=True)
class MoveBoard:
    """The board moved in Trello to another linked workspace: it is that workspace's from now on."""

    board_id: str
    workspace_id: str


BoardOperation = SetTrelloRole | RemoveFromTrello | SetStoreAccess
BoardFact = RecordObservers | RecordGuests | UnlinkBoard | MoveBoard
BoardPlan = Plan[BoardOperation, BoardFact]


def plan_departure(
    board_id: str, home: str, now: str | None, linked: bool, *, exists: bool = True
) -> UnlinkBoard | MoveBoard:
    """What to record of a board that is no longer where the store has it: `home` is the workspace the
    store files it under, `now` where Trello has it (None: no workspace, or no board at all when not
    `exists`), `linked` whether the store links `now`."""
    if not exists:
        return UnlinkBoard(board_id, "Trello no longer has this board (deleted)", exists=False)
    if now is not None and linked:
        return MoveBoard(board_id, now)
    where = f"workspace {now}, which Trellis does not link" if now else "no workspace"
    return UnlinkBoard(board_id, f"moved from workspace {home} to {where}", exists=True)


def still_in_trello(facts: Iterable[object]) -> list[str]:
    """The boards a plan (a board's or a workspace's) lets go of that Trello still has: our webhooks on
    them must go."""
    return [fact.board_id for fact in facts if isinstance(fact, UnlinkBoard) and fact.exists]


def plan_board(desired: DesiredBoard, actual: ActualBoard, policy: Policy) -> BoardPlan:
    operations: list[BoardOperation | Skip] = []
    for member in sorted(set(desired.access) | set(actual.roles)):
        role = actual.roles.get(member)
        if member not in desired.access:
            operations.append(_guest(member, role, policy))
            continue
        local = desired.access[member]
        if member in desired.pending:
            operations.extend(_push(member, local, role, policy, "a membership API change"))
        elif policy.authority == "local":
            operations.extend(_push(member, local, role, policy, "the store is authoritative"))
        elif board_access(role) != local:
            reason = f"Trello has them as {role or 'not a member'}; the store follows Trello"
            operations.append(SetStoreAccess(member, board_access(role), reason))
    losing = frozenset(op.member_id for op in operations if _takes_access(op, desired, actual))
    facts: list[BoardFact] = [] if desired.observers_known else [RecordObservers(policy.observers_allowed)]
    guests = {member: role for member, role in actual.roles.items() if member not in desired.access}
    if guests != dict(desired.guests):
        facts.append(RecordGuests(desired.board_id, guests))
    held = _guard(losing, desired, actual, policy)
    return BoardPlan(f"board:{desired.board_id}", operations, held, losing, facts)


def _guest(member: str, role: BoardRole | None, policy: Policy) -> BoardOperation | Skip:
    """Someone on the board the store does not know: a guest (on the board, not in the workspace), or a
    workspace member the workspace reconcile has yet to adopt."""
    if policy.guests_allowed or role == "admin":
        why = "guests are allowed" if policy.guests_allowed else "a board admin is never removed"
        return Skip(member, f"not a member in the store (a guest, or not adopted yet): kept, {why}")
    return RemoveFromTrello(member, "a guest the store does not grant (guests are not allowed)")


def _push(
    member: str, local: Access, role: BoardRole | None, policy: Policy, pushed: str
) -> list[BoardOperation | Skip]:
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


def _takes_access(op: BoardOperation | Skip, desired: DesiredBoard, actual: ActualBoard) -> bool:
    if isinstance(op, RemoveFromTrello):
        return True
    if isinstance(op, SetTrelloRole):
        return ACCESS_RANK[board_access(op.role)] < ACCESS_RANK[board_access(actual.roles.get(op.member_id))]
    if isinstance(op, SetStoreAccess):
        return ACCESS_RANK[op.access] < ACCESS_RANK[desired.access[op.member_id]]
    return False
