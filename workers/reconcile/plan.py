"""What every reconcile plan is: facts to record, operations with reasons, and the mass-change guard.

A plan is the pure result of comparing what the store wants with what Trello has (`board_plan`,
`workspace_plan`); `runner` applies it. Two kinds of entries:

- *facts*: what Trello is, recorded in the store (a board linked, closed or renamed, whether the plan
  has observers). They take nobody's access, so they are never held, and `trellis plan` shows them.
- *operations*: changes to who may see what, each with its reason; the guard may hold them for an
  operator. A `Skip` is an operation that says why nothing can be done for a member.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, TypeVar

from membership.vocabulary import Authority

Op = TypeVar("Op")
Fact = TypeVar("Fact")


@dataclass(frozen=True)
class Skip:
    """Nothing can be done for this member; said in the report, never retried."""

    member_id: str
    reason: str


@dataclass(frozen=True)
class Policy:
    authority: Authority = "trello"
    observers_allowed: bool = True
    observer_fallback: Literal["normal", "skip"] = "normal"
    guard_members: int = 10  # held when more than this many people would lose access ...
    guard_share: float = 0.2  # ... or more than this share of the scope; never for one person alone
    # Board members the store does not know (guests: not members of the workspace) are kept when
    # mirroring; when enforcing, only if this allows them.
    allow_guests: bool = False
    # Plan as if the workspace had this authority (`trellis orgs authority` shows what a switch would
    # do); None: each workspace's own, as the store has it.
    as_if_authority: Authority | None = None

    @property
    def guests_allowed(self) -> bool:
        return self.authority == "trello" or self.allow_guests

    def for_workspace(self, authority: str) -> Authority:
        """The authority a plan follows: the one previewed, else the workspace's own."""
        if self.as_if_authority is not None:
            return self.as_if_authority
        return "local" if authority == "local" else "trello"


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Plan(Generic[Op, Fact]):
    scope: str  # "board:<id>" or "workspace:<id>": what the plan covers, as approvals name it
    operations: list[Op | Skip] = field(default_factory=list)
    held: str | None = None  # why an operator must approve it first, if so
    losing: frozenset[str] = frozenset()  # members the plan takes access from
    facts: list[Fact] = field(default_factory=list)

    @property
    def changes(self) -> list[Op]:
        return [op for op in self.operations if not isinstance(op, Skip)]


def guard(losing: frozenset[str], size: int, policy: Policy, where: str) -> str | None:
    """Why a plan must wait for an operator, when it takes access from too many of `size` people."""
    size = max(size, 1)
    # One person losing access (an offboarding) is never held, whatever the thresholds.
    if len(losing) > 1 and (len(losing) > policy.guard_members or len(losing) / size > policy.guard_share):
        return f"{len(losing)} of {size} members would lose access to {where}"
    return None


def describe(entry: Any) -> dict[str, Any]:
    """An operation or fact (a dataclass of a plan) as the audit log and approvals record it."""
    return {"operation": type(entry).__name__, **asdict(entry)}
