"""Request and response bodies of the membership API, with the seeds' own field names.

Requests are strict: a string where a boolean belongs, or a field the API does not know, is a 422,
never a silent guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from membership.board_views import BoardPage
from membership.invites import EMAIL_PATTERN
from membership.members import BoardGrant
from membership.models import Invite, Membership, as_utc
from membership.paging import Page

Role = Literal["owner", "admin", "member"]
# Ids are 64-bit in the store: a larger one cannot name anything.
MAX_ID = 2**63 - 1
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoardAccessIn(Request):
    board_id: Id
    can_read: StrictBool = False
    can_write: StrictBool = False

    def grant(self) -> BoardGrant:
        return BoardGrant(self.board_id, self.can_read, self.can_write)


class RoleChange(Request):
    role: Role


class AccessUpdate(Request):
    can_read_all_boards: StrictBool | None = None
    can_write_all_boards: StrictBool | None = None
    board_access: list[BoardAccessIn] | None = None


class InviteCreate(Request):
    email: Annotated[StrictStr, Field(max_length=320, pattern=EMAIL_PATTERN)]
    role: Role = "member"
    can_read_all_boards: StrictBool = False
    can_write_all_boards: StrictBool = False
    board_access: list[BoardAccessIn] = Field(default_factory=list)


class InviteAccept(Request):
    token: Annotated[StrictStr, Field(min_length=1, max_length=200)]


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class BoardAccessOut(Response):
    board_id: int
    can_read: bool
    can_write: bool


class UserOut(Response):
    id: int
    email: str | None
    name: str | None
    preferred_name: str | None


class MemberOut(Response):
    id: int
    organization_id: int
    user_id: int
    role: Role
    can_read_all_boards: bool
    can_write_all_boards: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    user: UserOut
    board_access: list[BoardAccessOut]

    @classmethod
    def of(cls, membership: Membership) -> MemberOut:
        return cls.model_validate(membership)


class InviteOut(Response):
    id: int
    organization_id: int
    email: str
    role: Role
    can_read_all_boards: bool
    can_write_all_boards: bool
    token: str
    invited_by_user_id: int | None
    accepted_by_user_id: int | None
    accepted_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    board_access: list[BoardAccessOut]

    @classmethod
    def of(cls, invite: Invite) -> InviteOut:
        return cls.model_validate(invite)


class BoardOut(Response):
    id: int
    organization_id: int
    trello_board_id: str | None
    name: str
    closed: bool


class BoardMemberOut(Response):
    member_id: int
    user: UserOut
    role: Role
    access: Literal["read", "write"]
    workspace_member: Literal[True] = True


class BoardGuestOut(Response):
    """Someone Trello has on the board who is not a member of the workspace (a guest)."""

    trello_member_id: str
    board_role: Literal["admin", "normal", "observer"] = Field(validation_alias="role")
    first_seen_at: UtcDatetime
    workspace_member: Literal[False] = False


class BoardViewOut(BoardOut):
    members: list[BoardMemberOut]
    guests: list[BoardGuestOut]

    @classmethod
    def of(cls, page: BoardPage) -> BoardViewOut:
        members = [
            {"member_id": m.membership.id, "user": m.membership.user, "role": m.membership.role,
             "access": m.access}
            for m in page.members
        ]  # fmt: skip
        board = BoardOut.model_validate(page.board).model_dump()
        return cls.model_validate({**board, "members": members, "guests": page.guests}, from_attributes=True)


class AuditEntryOut(Response):
    """One change, who made it and its cause (a Trello action, a plan, an approval, an API call)."""

    id: int
    at: UtcDatetime
    actor: str
    cause: str
    action: str
    entity: str
    entity_id: int | None
    user_id: int | None
    trello_member_id: str | None
    board_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Removed(Response):
    success: bool
    id: int


T = TypeVar("T")


class PageOut(Response, Generic[T]):
    data: list[T]
    total: int
    limit: int
    offset: int


PageItem = type[MemberOut] | type[InviteOut] | type[BoardOut] | type[AuditEntryOut]


def page_out(page: Page[Any], item: PageItem) -> PageOut[Any]:
    """The `{"data", "total", "limit", "offset"}` answer for a page of store records."""
    return PageOut[item](  # type: ignore[valid-type]
        data=[item.model_validate(record) for record in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


class Error(Response):
    error: str
    detail: str
    errors: list[dict[str, object]] | None = None
