"""The emulated Trello: workspaces, boards, members, memberships, webhooks, and the actions they make.

Every change goes through a method here, whether it came through the REST API or through an admin
endpoint playing a person clicking in Trello; each records an action shaped like Trello's and hands it
to the listeners (the webhook deliveries).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PLANS = ("free", "standard", "premium", "enterprise")
PLANS_WITH_OBSERVERS = ("premium", "enterprise")
BOARD_ROLES = ("admin", "normal", "observer")
WORKSPACE_ROLES = ("admin", "normal")

_sequence = itertools.count(int.from_bytes(os.urandom(3), "big"))


def new_id(at: float | None = None) -> str:
    """A Trello object id: 8 hex digits of creation time in seconds, then 16 that make it unique."""
    seconds = int(time.time() if at is None else at)
    return f"{seconds:08x}{os.getpid() & 0xFFFF:04x}{next(_sequence) & 0xFFFFFFFFFFFF:012x}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TrelloError(Exception):
    """An error Trello would answer with: a status and (often plain-text) message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(kind: str = "id") -> TrelloError:
    return TrelloError(
        404, f"invalid {kind}" if kind != "resource" else "The requested resource was not found."
    )


@dataclass
class Member:
    id: str
    username: str
    full_name: str
    email: str | None = None

    def public(self) -> dict[str, Any]:
        """As other members see it: Trello never shows someone else's email."""
        return {
            "id": self.id,
            "username": self.username,
            "fullName": self.full_name,
            "initials": self.initials,
        }

    @property
    def initials(self) -> str:
        return "".join(part[0] for part in self.full_name.split()[:4]).upper()


@dataclass
class WorkspaceMembership:
    id: str
    member_id: str
    member_type: str  # admin | normal
    unconfirmed: bool = False
    deactivated: bool = False


@dataclass
class Workspace:
    id: str
    name: str
    display_name: str
    plan: str = "standard"
    memberships: dict[str, WorkspaceMembership] = field(default_factory=dict)  # by member id

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "displayName": self.display_name}


@dataclass
class BoardMembership:
    id: str
    member_id: str
    member_type: str  # admin | normal | observer


@dataclass
class Board:
    id: str
    name: str
    short_link: str
    workspace_id: str | None
    closed: bool = False
    memberships: dict[str, BoardMembership] = field(default_factory=dict)  # by member id

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "shortLink": self.short_link}


@dataclass
class Webhook:
    id: str
    id_model: str
    callback_url: str
    token: str
    description: str = ""
    active: bool = True
    consecutive_failures: int = 0
    first_consecutive_fail_date: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "idModel": self.id_model,
            "callbackURL": self.callback_url,
            "active": self.active,
            "consecutiveFailures": self.consecutive_failures,
            "firstConsecutiveFailDate": self.first_consecutive_fail_date,
        }


@dataclass
class Action:
    """An action as Trello records it, and which model's webhooks it fires."""

    body: dict[str, Any]
    model_ids: list[str]

    @property
    def id(self) -> str:
        action_id: str = self.body["id"]
        return action_id


ActionListener = Callable[[Action], None]


class World:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.boards: dict[str, Board] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.actions: list[Action] = []
        self.tokens: dict[str, dict[str, Any]] = {}  # token -> {"member_id", "date_expires"}
        self.listeners: list[ActionListener] = []

    # Lookups: Trello answers "invalid id" for ids it does not know.

    def member(self, member_id: str) -> Member:
        if member_id in self.members:
            return self.members[member_id]
        for member in self.members.values():
            if member.username == member_id:
                return member
        raise not_found()

    def workspace(self, workspace_id: str) -> Workspace:
        if workspace_id in self.workspaces:
            return self.workspaces[workspace_id]
        for workspace in self.workspaces.values():
            if workspace.name == workspace_id:
                return workspace
        raise not_found()

    def board(self, board_id: str) -> Board:
        if board_id in self.boards:
            return self.boards[board_id]
        for board in self.boards.values():
            if board.short_link == board_id:
                return board
        raise not_found()

    def webhook(self, webhook_id: str) -> Webhook:
        if webhook_id not in self.webhooks:
            raise not_found()
        return self.webhooks[webhook_id]

    def model(self, model_id: str) -> dict[str, Any]:
        """The current state of a watched model, as a delivery's `model` carries it."""
        if model_id in self.boards:
            board = self.boards[model_id]
            return {**board.summary(), "closed": board.closed, "idOrganization": board.workspace_id}
        if model_id in self.workspaces:
            return self.workspaces[model_id].summary()
        if model_id in self.members:
            return self.members[model_id].public()
        raise not_found()

    def workspace_boards(self, workspace_id: str) -> list[Board]:
        return [b for b in self.boards.values() if b.workspace_id == workspace_id]

    # Creation (the fixture and the admin endpoints)

    def add_member_account(
        self, username: str, full_name: str, email: str | None = None, id: str | None = None
    ) -> Member:
        member = Member(id=id or new_id(), username=username, full_name=full_name, email=email)
        self.members[member.id] = member
        return member

    def add_workspace(
        self, name: str, display_name: str, plan: str = "standard", id: str | None = None
    ) -> Workspace:
        if plan not in PLANS:
            raise TrelloError(400, f"invalid plan {plan}")
        workspace = Workspace(id=id or new_id(), name=name, display_name=display_name, plan=plan)
        self.workspaces[workspace.id] = workspace
        return workspace

    # Mutations: each records an action

    def create_board(self, workspace_id: str, name: str, by: str, id: str | None = None) -> Board:
        workspace = self.workspace(workspace_id)
        creator = self.member(by)
        board = Board(id=id or new_id(), name=name, short_link=new_id()[-8:], workspace_id=workspace.id)
        self.boards[board.id] = board
        board.memberships[creator.id] = BoardMembership(new_id(), creator.id, "admin")
        data = {"board": board.summary(), "organization": workspace.summary()}
        self._record("createBoard", by, data, [workspace.id, board.id])
        return board

    def set_board_member(self, board_id: str, member_id: str, member_type: str, by: str) -> BoardMembership:
        board, member = self.board(board_id), self.member(member_id)
        if member_type not in BOARD_ROLES:
            raise TrelloError(400, "invalid value for type")
        if member_type == "observer" and self._plan_of(board) not in PLANS_WITH_OBSERVERS:
            raise TrelloError(
                403, "Observers are only available on boards in Premium and Enterprise workspaces"
            )
        current = board.memberships.get(member.id)
        if current is None:
            membership = BoardMembership(new_id(), member.id, member_type)
            board.memberships[member.id] = membership
            data = {"board": board.summary(), "idMemberAdded": member.id, "memberType": member_type}
            self._record("addMemberToBoard", by, data, [board.id], member=member)
            return membership
        if current.member_type == member_type:
            return current
        if current.member_type == "admin" and self._admins(board) == 1:
            raise TrelloError(403, "Not enough admins")
        current.member_type = member_type
        kind = {
            "admin": "makeAdminOfBoard",
            "normal": "makeNormalMemberOfBoard",
            "observer": "makeObserverOfBoard",
        }
        data = {"board": board.summary(), "idMember": member.id, "memberType": member_type}
        self._record(kind[member_type], by, data, [board.id], member=member)
        return current

    def remove_board_member(self, board_id: str, member_id: str, by: str) -> None:
        board, member = self.board(board_id), self.member(member_id)
        current = board.memberships.get(member.id)
        if current is None:
            raise TrelloError(400, "membership not found")
        if current.member_type == "admin" and self._admins(board) == 1:
            raise TrelloError(403, "Not enough admins")
        del board.memberships[member.id]
        data = {"board": board.summary(), "idMember": member.id, "deactivated": False}
        self._record("removeMemberFromBoard", by, data, [board.id], member=member)

    def set_workspace_member(
        self, workspace_id: str, member_id: str, member_type: str, by: str, *, unconfirmed: bool = False
    ) -> WorkspaceMembership:
        workspace, member = self.workspace(workspace_id), self.member(member_id)
        if member_type not in WORKSPACE_ROLES:
            raise TrelloError(400, "invalid value for type")
        current = workspace.memberships.get(member.id)
        data = {"organization": workspace.summary(), "idMember": member.id, "memberType": member_type}
        if current is None:
            membership = WorkspaceMembership(new_id(), member.id, member_type, unconfirmed=unconfirmed)
            workspace.memberships[member.id] = membership
            kind = "unconfirmedOrganizationInvitation" if unconfirmed else "addMemberToOrganization"
            self._record(kind, by, data, [workspace.id], member=member)
            return membership
        if current.member_type != member_type:
            if current.member_type == "admin" and self._workspace_admins(workspace) == 1:
                raise TrelloError(403, "Not enough admins")
            current.member_type = member_type
            kind = "makeAdminOfOrganization" if member_type == "admin" else "makeNormalMemberOfOrganization"
            self._record(kind, by, data, [workspace.id], member=member)
        return current

    def invite_to_workspace(
        self, workspace_id: str, email: str, full_name: str, member_type: str, by: str
    ) -> Member:
        """Trello's invite by email: the account is found by email or made, and joins unconfirmed."""
        existing = next(
            (m for m in self.members.values() if m.email and m.email.lower() == email.lower()), None
        )
        username = email.split("@")[0].lower().replace(".", "")[:20] or "invitee"
        member = existing or self.add_member_account(username + new_id()[-4:], full_name or username, email)
        self.set_workspace_member(workspace_id, member.id, member_type, by, unconfirmed=existing is None)
        return member

    def remove_workspace_member(
        self, workspace_id: str, member_id: str, by: str, *, from_boards: bool = False
    ) -> None:
        """Remove from the workspace; its boards keep the member unless `from_boards` (the `/all` call)."""
        workspace, member = self.workspace(workspace_id), self.member(member_id)
        if member.id not in workspace.memberships:
            raise TrelloError(400, "member not in organization")
        if workspace.memberships[member.id].member_type == "admin" and self._workspace_admins(workspace) == 1:
            raise TrelloError(403, "Not enough admins")
        if from_boards:
            for board in self.workspace_boards(workspace.id):
                if member.id in board.memberships:
                    self.remove_board_member(board.id, member.id, by)
        del workspace.memberships[member.id]
        data = {"organization": workspace.summary(), "idMember": member.id}
        self._record("removeMemberFromOrganization", by, data, [workspace.id], member=member)

    def set_deactivated(self, workspace_id: str, member_id: str, value: bool) -> WorkspaceMembership:
        workspace, member = self.workspace(workspace_id), self.member(member_id)
        if member.id not in workspace.memberships:
            raise TrelloError(400, "member not in organization")
        workspace.memberships[member.id].deactivated = value
        return workspace.memberships[member.id]

    def _record(
        self, kind: str, by: str, data: dict[str, Any], model_ids: list[str], *, member: Member | None = None
    ) -> Action:
        creator = self.member(by)
        body: dict[str, Any] = {
            "id": new_id(),
            "idMemberCreator": creator.id,
            "type": kind,
            "date": now_iso(),
            "data": data,
            "display": {"translationKey": f"action_{kind}"},
            "memberCreator": creator.public(),
        }
        if member is not None:
            body["member"] = member.public()
        action = Action(body=body, model_ids=model_ids)
        self.actions.append(action)
        for listener in self.listeners:
            listener(action)
        return action

    def _plan_of(self, board: Board) -> str:
        return self.workspaces[board.workspace_id].plan if board.workspace_id in self.workspaces else "free"

    @staticmethod
    def _admins(board: Board) -> int:
        return sum(1 for m in board.memberships.values() if m.member_type == "admin")

    @staticmethod
    def _workspace_admins(workspace: Workspace) -> int:
        return sum(1 for m in workspace.memberships.values() if m.member_type == "admin")
