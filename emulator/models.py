"""The emulated Trello's objects: members, workspaces, boards, memberships, webhooks, actions, ids.

Plain records; every change to them goes through `emulator.world.World`, which records the action.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PLANS = ("free", "standard", "premium", "enterprise")
PLANS_WITH_OBSERVERS = ("premium", "enterprise")
BOARD_ROLES = ("admin", "normal", "observer")
WORKSPACE_ROLES = ("admin", "normal")
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")

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


def not_found(value: str = "") -> TrelloError:
    """Trello's answer for an id it does not know: a well-formed id is a resource it cannot find (404),
    anything else cannot be an id at all (400 `invalid id`)."""
    if value and not OBJECT_ID.fullmatch(value):
        return TrelloError(400, "invalid id")
    return TrelloError(404, "The requested resource was not found.")


@dataclass
class Member:
    id: str
    username: str
    full_name: str
    email: str | None = None
    confirmed: bool = True  # False: invited by email, has not joined Trello yet (a "ghost")
    aa_id: str = field(default_factory=lambda: new_id())  # the Atlassian account id

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
    unconfirmed: bool = False  # invited by email, not joined yet
    deactivated: bool = False


@dataclass
class Board:
    id: str
    name: str
    short_link: str
    workspace_id: str | None
    closed: bool = False
    memberships: dict[str, BoardMembership] = field(default_factory=dict)  # by member id
    creator_id: str | None = None

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
