"""The store's tables, as SQLAlchemy 2 declarative models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

# Named constraints, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read from the store, with its zone: SQLite hands back naive datetimes, and every time the
    store writes is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fitted(record: Any, key: str, value: str) -> str:
    """A cause or a name cut to its column, marked as cut: a long id in a request path must not make
    the database refuse the change it explains."""
    length: int = record.__table__.c[key].type.length
    return value if len(value) <= length else value[: length - 1] + "…"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EventLogEntry(Base):
    """One Trello action as delivered, recorded once however often it arrives."""

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(64))
    action_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_event_log_action_date", "action_date"),)


class Organization(Base):
    """A workspace as the store knows it, linked to Trello by the workspace's id (never its slug)."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    trello_org_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    authority: Mapped[str] = mapped_column(String(16), default="trello")
    # Whether the workspace's Trello plan has board observers; None until a reconcile has read it.
    observers_allowed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    # Lower case, always: emails are compared case-insensitively everywhere.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    preferred_name: Mapped[str | None] = mapped_column(String(200))
    trello_member_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    trello_username: Mapped[str | None] = mapped_column(String(100))
    active_organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    can_read_all_boards: Mapped[bool] = mapped_column(Boolean, default=False)
    can_write_all_boards: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(lazy="joined")
    board_access: Mapped[list[BoardAccess]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="BoardAccess.board_id"
    )

    __table_args__ = (
        UniqueConstraint("organization_id", "user_id"),
        Index("ix_memberships_user_id", "user_id"),
    )


class Board(Base):
    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    trello_board_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_boards_organization_id", "organization_id"),)


class BoardAccess(Base):
    """A per-board override of a membership's organization-wide access."""

    __tablename__ = "board_access"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    can_read: Mapped[bool] = mapped_column(Boolean, default=False)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("membership_id", "board_id"),)


class BoardGuest(Base):
    """Someone Trello has on a board who is not a member of the board's workspace in the store (a guest,
    in Trello's words), as the last board reconcile saw them. Recorded in both authority modes, so that
    the board view shows who can see a board besides the workspace's members."""

    __tablename__ = "board_guests"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    trello_member_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # Trello's board role: admin, normal, observer
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("board_id", "trello_member_id"),)


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    can_read_all_boards: Mapped[bool] = mapped_column(Boolean, default=False)
    can_write_all_boards: Mapped[bool] = mapped_column(Boolean, default=False)
    token: Mapped[str] = mapped_column(String(24), unique=True)
    invited_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    board_access: Mapped[list[InviteBoardAccess]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="InviteBoardAccess.board_id",
    )

    __table_args__ = (Index("ix_invites_pending", "organization_id", "accepted_at", "created_at"),)


class InviteBoardAccess(Base):
    __tablename__ = "invite_board_access"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id", ondelete="CASCADE"))
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    can_read: Mapped[bool] = mapped_column(Boolean, default=False)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("invite_id", "board_id"),)


class ApiToken(Base):
    """A bearer token for the membership API. Only its SHA-256 is kept: the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who or what changed which record, from what to what, and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    organization_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(100))
    cause: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    # Whom and what the change is about, whatever the entity, so that a person's or a board's history
    # is one indexed read: the user, the person as Trello knows them (a guest or someone offboarded may
    # have no user), the board. Not foreign keys: the history outlives what it is about.
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    trello_member_id: Mapped[str | None] = mapped_column(String(64))
    board_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_log_organization_at", "organization_id", "at"),
        Index("ix_audit_log_user_at", "user_id", "at"),
        Index("ix_audit_log_trello_member_at", "trello_member_id", "at"),
        Index("ix_audit_log_board_at", "board_id", "at"),
    )

    @validates("cause", "actor")
    def _bounded(self, key: str, value: str) -> str:
        return fitted(self, key, value)


class MemberChange(Base):
    """The outbox: a change made in the store that Trello must follow, written in the change's own
    transaction so that a crash or an unreachable Redis between commit and enqueue loses nothing."""

    __tablename__ = "member_changes"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_member_changes_pending", "done_at", "id"),)

    @validates("cause")
    def _bounded(self, key: str, value: str) -> str:
        return fitted(self, key, value)


class PendingApproval(Base):
    """Something Trellis will not do without an operator: a plan the mass-change guard held, or a SCIM
    deactivation under the `approve` policy."""

    __tablename__ = "pending_approvals"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[int | None] = mapped_column(BigInteger)
    scope: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_pending_approvals_open", "decided_at", "id"),)
