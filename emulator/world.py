"""The emulated Trello: workspaces, boards, members, memberships, webhooks, and the actions they make.

Every change goes through a method here, whether it came through the REST API or through an admin
endpoint playing a person clicking in Trello; each records an action shaped like Trello's and hands it
to the listeners (the webhook deliveries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import shapes
from emulator.models import (
    BOARD_ROLES,
    PLANS,
    PLANS_WITH_OBSERVERS,
    WORKSPACE_ROLES,
    Action,
    Board,
    BoardMembership,
    Member,
    TrelloError,
    Webhook,
    Workspace,
    WorkspaceMembership,
    new_id,
    not_found,
    now_iso,
)

__all__ = ["Action", "Board", "BoardMembership", "Member", "TrelloError", "Webhook", "Workspace",
           "WorkspaceMembership", "World", "new_id", "not_found", "now_iso"]  # fmt: skip

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

    # Lookups: by id or by the other name Trello accepts (a username, a workspace's name, a board's short
    # link). An unknown well-formed id is 404, anything else 400 `invalid id` (`models.not_found`).

    def member(self, member_id: str) -> Member:
        if member_id in self.members:
            return self.members[member_id]
        found = next((m for m in self.members.values() if m.username == member_id), None)
        if found is None:
            raise not_found(member_id)
        return found

    def workspace(self, workspace_id: str) -> Workspace:
        if workspace_id in self.workspaces:
            return self.workspaces[workspace_id]
        found = next((w for w in self.workspaces.values() if w.name == workspace_id), None)
        if found is None:
            raise not_found(workspace_id)
        return found

    def board(self, board_id: str) -> Board:
        if board_id in self.boards:
            return self.boards[board_id]
        found = next((b for b in self.boards.values() if b.short_link == board_id), None)
        if found is None:
            raise not_found(board_id)
        return found

    def webhook(self, webhook_id: str) -> Webhook:
        if webhook_id not in self.webhooks:
            raise not_found(webhook_id)
        return self.webhooks[webhook_id]

    def model(self, model_id: str) -> dict[str, Any]:
        """The current state of a watched model, as a delivery's `model` carries it."""
        if model_id in self.boards:
            return shapes.board(self.boards[model_id])
        if model_id in self.workspaces:
            return shapes.organization(self.workspaces[model_id])
        if model_id in self.members:
            return shapes.member(self.members[model_id])
        raise not_found(model_id)

    def workspace_boards(self, workspace_id: str) -> list[Board]:
        return [b for b in self.boards.values() if b.workspace_id == workspace_id]

    def workspaces_of(self, member_id: str) -> list[Workspace]:
        return [w for w in self.workspaces.values() if member_id in w.memberships]

    def boards_of(self, member_id: str) -> list[Board]:
        return [b for b in self.boards.values() if member_id in b.memberships]

    # Creation (the fixture and the admin endpoints)

    def add_member_account(
        self, username: str, full_name: str, email: str | None = None, id: str | None = None
    ) -> Member:
        member = Member(id=id or new_id(), username=username, full_name=full_name, email=email)
        self.members[member.id] = member
        return member

    def account_of(self, email: str) -> str | None:
        """The Atlassian account id of the member with this email, if any."""
        wanted = email.lower()
        return next((m.aa_id for m in self.members.values() if m.email and m.email.lower() == wanted), None)

    def add_workspace(
        self, name: str, display_name: str, plan: str = "standard", id: str | None = None
    ) -> Workspace:
        if plan not in PLANS:
            raise TrelloError(400, f"invalid plan {plan}")
        workspace = Workspace(id=id or new_id(), name=name, display_name=display_name, plan=plan)
        self.workspaces[workspace.id] = workspace
        return workspace

    # Mutations: each records an action

    # Boards: created, copied, closed and reopened, moved between workspaces, deleted

    def create_board(
        self,
        workspace_id: str | None,
        name: str,
        by: str,
        id: str | None = None,
        *,
        source: str | None = None,
    ) -> Board:
        """A new board, its creator its admin: `createBoard`, or `copyBoard` when copied from `source`
        (which brings the source's members along, as Trello's default `keepFromSource` does)."""
        workspace = self.workspace(workspace_id) if workspace_id else None
        creator = self.member(by)
        original = self.board(source) if source else None
        board = Board(
            id=id or new_id(), name=name, short_link=new_id()[-8:],
            workspace_id=workspace.id if workspace else None, creator_id=creator.id,
        )  # fmt: skip
        self.boards[board.id] = board
        if original is not None:
            for membership in original.memberships.values():
                board.memberships[membership.member_id] = BoardMembership(
                    new_id(), membership.member_id, membership.member_type
                )
        board.memberships[creator.id] = BoardMembership(new_id(), creator.id, "admin")
        data: dict[str, Any] = {"board": board.summary()}
        if workspace is not None:
            data["organization"] = workspace.summary()
        if original is not None:
            data["boardSource"] = {"id": original.id, "name": original.name}
        models = [board.id, *([workspace.id] if workspace else []), creator.id]
        self._record("copyBoard" if original else "createBoard", by, data, models)
        return board

    def set_board_closed(self, board_id: str, closed: bool, by: str) -> Board:
        """Close (archive) or reopen a board: `updateBoard` with `data.old.closed`."""
        board = self.board(board_id)
        if board.closed != closed:
            board.closed = closed
            data = {"board": {**board.summary(), "closed": closed}, "old": {"closed": not closed}}
            self._record("updateBoard", by, data, self._board_models(board))
        return board

    def rename_board(self, board_id: str, name: str, by: str) -> Board:
        board = self.board(board_id)
        if not name:
            raise TrelloError(400, "invalid value for name")
        if board.name != name:
            old, board.name = board.name, name
            data = {"board": board.summary(), "old": {"name": old}}
            self._record("updateBoard", by, data, self._board_models(board))
        return board

    def move_board(self, board_id: str, workspace_id: str | None, by: str) -> Board:
        """Into another workspace (`removeFromOrganizationBoard` on the old one, `addToOrganizationBoard`
        on the new), or out of any (`workspace_id` None: only the removal)."""
        board = self.board(board_id)
        target = self.workspace(workspace_id) if workspace_id else None
        if (target.id if target else None) == board.workspace_id:
            return board
        old = self.workspaces.get(board.workspace_id or "")
        if old is not None:
            data = {"board": board.summary(), "organization": old.summary()}
            self._record("removeFromOrganizationBoard", by, data, [board.id, old.id])
        board.workspace_id = target.id if target else None
        if target is not None:
            data = {"board": board.summary(), "organization": target.summary()}
            self._record("addToOrganizationBoard", by, data, [board.id, target.id])
        return board

    def delete_board(self, board_id: str) -> None:
        """Gone for good, with its webhooks. Trello has no `deleteBoard` action type: nothing is sent."""
        board = self.board(board_id)
        del self.boards[board.id]
        for webhook in [w for w in self.webhooks.values() if w.id_model == board.id]:
            del self.webhooks[webhook.id]

    def _board_models(self, board: Board) -> list[str]:
        return [board.id, *([board.workspace_id] if board.workspace_id else [])]

    # Memberships

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
        member, new = self._account_for(email, full_name)
        self.set_workspace_member(workspace_id, member.id, member_type, by, unconfirmed=new)
        return member

    def invite_to_board(self, board_id: str, email: str, full_name: str, member_type: str, by: str) -> Member:
        """A board invitation by email: someone Trello knows by it is added; anyone else gets a new,
        unconfirmed ("ghost") account on the board (`unconfirmedBoardInvitation`)."""
        board = self.board(board_id)
        member, new = self._account_for(email, full_name)
        if not new:
            self.set_board_member(board.id, member.id, member_type, by)
            return member
        if member_type not in BOARD_ROLES:
            raise TrelloError(400, "invalid value for type")
        board.memberships[member.id] = BoardMembership(new_id(), member.id, member_type, unconfirmed=True)
        data = {"board": board.summary(), "idMember": member.id, "memberType": member_type}
        self._record("unconfirmedBoardInvitation", by, data, [board.id], member=member)
        return member

    def confirm_member(self, member_id: str) -> Member:
        """The invitee signs up: every membership of theirs is confirmed (`memberJoinedTrello`, sent to
        the member's webhooks and to those of each workspace and board that invited them)."""
        member = self.member(member_id)
        if member.confirmed:
            return member
        member.confirmed = True
        models = [member.id]
        for workspace in self.workspaces_of(member.id):
            workspace.memberships[member.id].unconfirmed = False
            models.append(workspace.id)
        for board in self.boards_of(member.id):
            board.memberships[member.id].unconfirmed = False
            models.append(board.id)
        self._record("memberJoinedTrello", member.id, {"member": shapes.member(member, nested=True)}, models)
        return member

    def _account_for(self, email: str, full_name: str) -> tuple[Member, bool]:
        """The account with this email, or a new unconfirmed one; True when it is new."""
        if "@" not in email:
            raise TrelloError(400, "invalid value for email")
        existing = next(
            (m for m in self.members.values() if m.email and m.email.lower() == email.lower()), None
        )
        if existing is not None:
            return existing, False
        username = email.split("@")[0].lower().replace(".", "")[:20] or "invitee"
        member = self.add_member_account(username + new_id()[-4:], full_name or username, email)
        member.confirmed = False
        return member, True

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

    def set_deactivated(
        self, workspace_id: str, member_id: str, value: bool, by: str | None = None
    ) -> WorkspaceMembership:
        """A workspace admin deactivates or reactivates a member: `deactivatedMemberInOrganization` or
        `reactivatedMemberInOrganization` on the workspace."""
        workspace, member = self.workspace(workspace_id), self.member(member_id)
        if member.id not in workspace.memberships:
            raise TrelloError(400, "member not in organization")
        membership = workspace.memberships[member.id]
        if membership.deactivated != value:
            membership.deactivated = value
            kind = "deactivatedMemberInOrganization" if value else "reactivatedMemberInOrganization"
            data = {"organization": workspace.summary(), "idMember": member.id}
            self._record(kind, by or member.id, data, [workspace.id], member=member)
        return membership

    def deactivate_in_enterprise(self, member_id: str, value: bool, by: str) -> Member:
        """An enterprise admin deactivates (or reactivates) the member: every workspace and board
        membership of theirs is marked `deactivated`, and `deactivatedMemberInEnterprise` (or
        `reactivatedMemberInEnterprise`) goes to the member's webhooks and each of their workspaces'.
        Trello documents neither the action nor who receives it: this is a guess, named as public
        clients name the action types."""
        member = self.member(member_id)
        workspaces = self.workspaces_of(member.id)
        for workspace in workspaces:
            workspace.memberships[member.id].deactivated = value
        for board in self.boards_of(member.id):
            board.memberships[member.id].deactivated = value
        kind = "deactivatedMemberInEnterprise" if value else "reactivatedMemberInEnterprise"
        models = [member.id, *(w.id for w in workspaces)]
        self._record(kind, by, {"idMember": member.id}, models, member=member)
        return member

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
            "memberCreator": shapes.action_member(creator),
        }
        if member is not None:
            body["member"] = shapes.action_member(member)
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
