"""The members page: the grid of members by boards, with roles and access, and the pending invites; and its
forms, each through the same `membership` functions (and so the same rules) as the membership API."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from membership import invites, members
from membership.board_views import list_boards
from membership.boards import effective_access
from membership.members import AccessChange, BoardGrant
from membership.models import Board, Membership
from membership.vocabulary import Access
from receiver.api.schemas import InviteCreate, RoleChange
from receiver.console.calls import Call, Done, Problems

MEMBERS_A_PAGE = 50
BOARDS_A_PAGE = 12
ROLES = ("member", "admin", "owner")
# A cell's choices: follow the member's all-boards access, or an override of the board's own.
CELL_CHOICES = ("default", "none", "read", "write")


@dataclass(frozen=True)
class Cell:
    board: Board
    access: Access  # what the member has on the board
    override: str  # "default", or the board's own override: "none", "read" or "write"


@dataclass(frozen=True)
class Row:
    membership: Membership
    cells: list[Cell]

    @property
    def inherited(self) -> Access:
        """What a board without its own override gives the member."""
        m = self.membership
        return "write" if m.can_write_all_boards else "read" if m.can_read_all_boards else "none"


async def show(call: Call, problems: Problems) -> Response:
    actor, organization = call.actor, call.organization_id
    page, board_page = call.page_number("page"), call.page_number("boards")
    people = await members.list_members(call.session, actor, organization, limit=MEMBERS_A_PAGE,
                                        offset=page * MEMBERS_A_PAGE)  # fmt: skip
    boards = await list_boards(call.session, actor, organization, limit=BOARDS_A_PAGE,
                               offset=board_page * BOARDS_A_PAGE)  # fmt: skip
    pending = await invites.list_invites(call.session, actor, organization, limit=100, offset=0,
                                         ttl=call.services.invite_ttl)  # fmt: skip
    rows = [
        Row(m, [Cell(b, effective_access(m, b.id), override(m, b.id)) for b in boards.items])
        for m in people.items
    ]
    return call.render(
        "members.html", status=problems.status, problems=problems, rows=rows, boards=boards.items,
        invites=pending.items, roles=ROLES, choices=CELL_CHOICES, page=page, board_page=board_page,
        more_members=people.has_more, more_boards=boards.has_more,
    )  # fmt: skip


async def invite(call: Call) -> Done:
    new = InviteCreate.model_validate(
        {
            "email": call.form.get("email", "").strip(),
            "role": call.form.get("role", "member"),
            "can_read_all_boards": "can_read_all_boards" in call.form,
            "can_write_all_boards": "can_write_all_boards" in call.form,
        }
    )
    created = await invites.create_invite(
        call.session, call.actor, call.organization_id, email=new.email, role=new.role,
        can_read_all_boards=new.can_read_all_boards, can_write_all_boards=new.can_write_all_boards,
        board_access=[], cause=call.cause, ttl=call.services.invite_ttl,
    )  # fmt: skip
    return Done(f"Invited {created.email} as {created.role}.", "/console/members")


async def revoke_invite(call: Call) -> Done:
    revoked = await invites.revoke_invite(
        call.session, call.actor, call.organization_id, call.path_id("invite_id"),
        cause=call.cause,
    )  # fmt: skip
    return Done(f"Revoked the invite of {revoked.email}.", "/console/members")


async def change_role(call: Call) -> Done:
    change = RoleChange.model_validate({"role": call.form.get("role", "")})
    membership = await members.change_role(
        call.session, call.actor, call.organization_id, call.path_id("member_id"),
        change.role, cause=call.cause,
    )  # fmt: skip
    return Done(f"{person(membership)} is now {membership.role}.", back(call))


async def set_access(call: Call) -> Done:
    """The row's all-boards flags and the cells on the page; overrides of boards on other pages are kept."""
    membership = await the_member(call)
    shown, grants = set(), []
    for key, choice in call.form.multi_items():
        if key.startswith("board-") and key[6:].isdigit() and choice in CELL_CHOICES:
            board = int(key[6:])
            shown.add(board)
            if choice != "default":
                grants.append(BoardGrant(board, choice in ("read", "write"), choice == "write"))
    kept = [
        BoardGrant(a.board_id, a.can_read, a.can_write)
        for a in membership.board_access
        if a.board_id not in shown
    ]
    change = AccessChange(
        can_read_all_boards="can_read_all_boards" in call.form,
        can_write_all_boards="can_write_all_boards" in call.form,
        board_access=kept + grants,
    )
    await members.set_access(
        call.session, call.actor, call.organization_id, membership.id, change, cause=call.cause
    )
    return Done(f"Saved the board access of {person(membership)}.", back(call))


async def remove(call: Call) -> Done:
    membership = await the_member(call)
    name = person(membership)
    await members.remove_member(
        call.session, call.actor, call.organization_id, membership.id, cause=call.cause
    )
    return Done(f"Removed {name} from the organization; Trello follows.", back(call))


async def the_member(call: Call) -> Membership:
    """The member a form is about: one of the operator's organization (else 404)."""
    return await members.get_member(call.session, call.actor, call.organization_id, call.path_id("member_id"))


def override(membership: Membership, board_id: int) -> str:
    for access in membership.board_access:
        if access.board_id == board_id:
            return "write" if access.can_write else "read" if access.can_read else "none"
    return "default"


def person(membership: Membership) -> str:
    return membership.user.name or membership.user.email or f"member {membership.id}"


def back(call: Call) -> str:
    """The grid page the form was posted from."""
    page, boards = call.form.get("page", "0"), call.form.get("boards", "0")
    if page.isdigit() and boards.isdigit() and len(page) < 7 and len(boards) < 7:
        return f"/console/members?page={page}&boards={boards}"
    return "/console/members"
