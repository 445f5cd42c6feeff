"""What a workspace reconcile would change: `plan_workspace(desired, actual, policy) -> WorkspacePlan`.

Pure, like `board_plan` for boards, and under the same rules (DESIGN.md, "Mapping between the two
models"): store roles `owner` and `admin` are Trello's workspace `admin`, `member` is `normal`.

- Mirror (authority `trello`): a Trello member the store does not know is adopted (a user record with
  their Trello id and username, and a membership with their role); a role changed in Trello is taken,
  except that an owner stays an owner (Trello has no owners); a member gone from the workspace is
  offboarded, which also takes them off its boards.
- Enforce (authority `local`): Trello follows the store. Someone added to the workspace by hand is
  removed from it and its boards; a member missing from Trello is added back; roles are set.
- Either way, members with membership API changes still to push follow the store.
- An open invitation (an unconfirmed member the store does not know) is left alone in both modes: it
  may be the one an onboarding is sending at this moment, its member id not yet linked.
- A Trello workspace admin is never demoted or removed by a reconcile, as on boards: the token Trellis
  runs with belongs to one, and an admin who is not in the store should be looked at by a person.
- The mass-change guard holds a plan that takes access from too many people at once.
- Facts, never held: boards Trello lists that the store has not linked are linked (or, filed under
  another linked workspace, moved here), names and closed flags kept current (`board_facts`), boards
  the store has that Trello no longer lists here are let go of or moved, and whether the workspace's
  plan has observers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from membership.vocabulary import ROLE_RANK, StoreRole, WorkspaceRole, store_role, workspace_role
from workers.reconcile.board_plan import MoveBoard, UnlinkBoard
from workers.reconcile.plan import Plan, Policy, Skip, guard


@dataclass(frozen=True)
class TrelloMember:
    role: WorkspaceRole
    username: str | None = None
    full_name: str | None = None
    unconfirmed: bool = False  # invited by email, not yet joined


@dataclass(frozen=True)
class DesiredWorkspace:
    """The store's side: members linked to Trello, by Trello member id, and their roles."""

    workspace_id: str
    roles: Mapping[str, StoreRole]
    pending: frozenset[str] = frozenset()  # members with membership API changes still to push


@dataclass(frozen=True)
class ActualWorkspace:
    """Trello's side: the workspace's members as read just now."""

    workspace_id: str
    members: Mapping[str, TrelloMember]


@dataclass(frozen=True)
class AdoptMember:
    """Record a Trello member the store does not know, with a membership of `role`."""

    member_id: str
    role: StoreRole
    username: str | None
    full_name: str | None
    reason: str


@dataclass(frozen=True)
class SetStoreRole:
    member_id: str
    role: StoreRole
    reason: str


@dataclass(frozen=True)
class Offboard:
    """The member left the workspace in Trello: out of the store and off every board of it."""

    member_id: str
    reason: str


@dataclass(frozen=True)
class SetWorkspaceRole:
    """Add the member to the Trello workspace with `role`, or change their role to it."""

    member_id: str
    role: WorkspaceRole
    reason: str


@dataclass(frozen=True)
class RemoveFromWorkspace:
    """Take the member out of the Trello workspace and all its boards."""

    member_id: str
    username: str | None
    reason: str


@dataclass(frozen=True)
class TrelloBoard:
    """A board of the workspace as Trello lists it."""

    id: str
    name: str
    closed: bool = False


@dataclass(frozen=True)
class LinkBoard:
    """A board of the workspace the store does not have yet: linked (it then needs a webhook)."""

    board_id: str
    name: str
    closed: bool


@dataclass(frozen=True)
class UpdateBoard:
    """A linked board renamed, closed or reopened in Trello."""

    board_id: str
    name: str
    closed: bool


@dataclass(frozen=True)
class RecordWorkspaceObservers:
    """Whether the workspace's plan has board observers, as Trello says now."""

    allowed: bool


WorkspaceOperation = AdoptMember | SetStoreRole | Offboard | SetWorkspaceRole | RemoveFromWorkspace
WorkspaceFact = LinkBoard | UpdateBoard | RecordWorkspaceObservers | UnlinkBoard | MoveBoard
WorkspacePlan = Plan[WorkspaceOperation, WorkspaceFact]


def board_facts(
    workspace_id: str,
    known: Mapping[str, TrelloBoard],
    boards: Iterable[TrelloBoard],
    elsewhere: Iterable[str] = (),
) -> list[WorkspaceFact]:
    """The boards to link, and the linked ones whose name or closed flag changed in Trello. `known`: the
    store's boards of the workspace, as the same shape; `elsewhere`: boards Trello lists here that the
    store files under another workspace (they moved here)."""
    facts: list[WorkspaceFact] = []
    moved_here = set(elsewhere)
    for board in boards:
        stored = known.get(board.id)
        if board.id in moved_here:
            facts.append(MoveBoard(board.id, workspace_id))
        elif stored is None:
            facts.append(LinkBoard(board.id, board.name, board.closed))
        elif stored != board:
            facts.append(UpdateBoard(board.id, board.name, board.closed))
    return facts


def plan_workspace(desired: DesiredWorkspace, actual: ActualWorkspace, policy: Policy) -> WorkspacePlan:
    operations: list[WorkspaceOperation | Skip] = []
    for member in sorted(set(desired.roles) | set(actual.members)):
        local, trello = desired.roles.get(member), actual.members.get(member)
        if local is None and trello is not None and trello.unconfirmed and member not in desired.pending:
            # Perhaps the invitation an onboarding is sending right now, its member not linked yet.
            operations.append(
                Skip(member, "invited in Trello, not joined yet: looked at again when they join")
            )
        elif member in desired.pending or policy.authority == "local":
            pushed = "a membership API change" if member in desired.pending else "the store is authoritative"
            operations.extend(_push(member, local, trello, pushed))
        else:
            operations.extend(_take(member, local, trello))
    losing = frozenset(op.member_id for op in operations if _takes_access(op, desired))
    size = max(len(actual.members), len(desired.roles))
    held = guard(losing, size, policy, f"workspace {desired.workspace_id}")
    return WorkspacePlan(f"workspace:{desired.workspace_id}", operations, held, losing)


def _push(
    member: str, local: StoreRole | None, trello: TrelloMember | None, pushed: str
) -> list[WorkspaceOperation | Skip]:
    """The Trello operation that makes the workspace follow the store for `member`, if any."""
    if trello is not None and trello.role == "admin" and (local is None or local == "member"):
        return [Skip(member, f"a Trello workspace admin is never demoted or removed ({pushed})")]
    if local is None:
        assert trello is not None
        return [RemoveFromWorkspace(member, trello.username, f"not a member in the store ({pushed})")]
    target = workspace_role(local)
    if trello is not None and trello.role == target:
        return []
    verb = "add" if trello is None else f"change from {trello.role}"
    return [SetWorkspaceRole(member, target, f"{local} in the store: {verb} to {target} ({pushed})")]


def _take(
    member: str, local: StoreRole | None, trello: TrelloMember | None
) -> list[WorkspaceOperation | Skip]:
    """The store operation that makes the store follow Trello for `member`, if any."""
    if trello is None:
        return [Offboard(member, "no longer a member of the workspace in Trello")]
    role = store_role(trello.role)
    if local is None:
        return [AdoptMember(member, role, trello.username, trello.full_name, f"{trello.role} in Trello")]
    if workspace_role(local) == trello.role:
        return []
    if local == "owner":
        return [Skip(member, "an owner stays an owner in the store: Trello has no owners")]
    return [SetStoreRole(member, role, f"Trello has them as {trello.role}; the store follows Trello")]


def _takes_access(op: WorkspaceOperation | Skip, desired: DesiredWorkspace) -> bool:
    # An offboarding follows a departure Trello already made, and is a job of its own: the guard on
    # waves of departures (`workers.runtime.waves`) holds those, not this plan's guard.
    if isinstance(op, RemoveFromWorkspace):
        return True
    # Setting a Trello role never takes access: a demotion in Trello is never planned (admins are kept).
    return isinstance(op, SetStoreRole) and ROLE_RANK[op.role] < ROLE_RANK[desired.roles[op.member_id]]
