"""Reconciling one board: its members in Trello against the access the store gives them.

`BoardSubject` is the board's side of `runner.reconcile`: it reads the board from Trello (where it lives,
whether it is closed, its memberships: one call) and the store's view of it, plans with `board_plan`, and
applies each operation (Trello's board role, or the access the store records). A board Trello no longer
has, or that now lives in another workspace, is a fact to record, not a failure: the plan is then that
one fact. `reconcile_board` puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import structlog
from sqlalchemy import update

from membership.boards import (
    board_by_trello_id,
    board_view,
    forget_guest,
    membership_by_trello_ids,
    move_board,
    record_guests,
    set_board_access,
    unlink_board,
)
from membership.database import Database
from membership.models import Organization
from membership.workspaces import organization_by_trello_id
from workers.outside import errors
from workers.outside.limiter import Priority
from workers.outside.trello import TrelloClient, has_observers
from workers.reconcile.board_plan import (
    ActualBoard,
    BoardFact,
    BoardOperation,
    BoardPlan,
    DesiredBoard,
    MoveBoard,
    RecordGuests,
    RecordObservers,
    RemoveFromTrello,
    SetStoreAccess,
    UnlinkBoard,
    plan_board,
    plan_departure,
)
from workers.reconcile.plan import DEFAULT_POLICY, Policy
from workers.reconcile.runner import RECONCILER, Observation, Report, audit_change, reconcile

log = structlog.get_logger("workers.reconcile.board")

BoardReport = Report[BoardOperation, BoardFact]


async def remember_observers(database: Database, organization_id: int, allowed: bool) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(observers_allowed=allowed)
        )


@dataclass
class BoardSubject:
    trello: TrelloClient
    database: Database
    board_id: str  # Trello's
    policy: Policy = DEFAULT_POLICY
    priority: Priority = Priority.EVENT
    kind: str = "board"
    _observation: Observation[BoardOperation, BoardFact] | None = None
    _workspace_id: str = ""

    async def observe(self) -> Observation[BoardOperation, BoardFact] | None:
        async with self.database.transaction() as session:
            board = await board_by_trello_id(session, self.board_id)
            home = await session.get(Organization, board.organization_id) if board else None
        if board is None or home is None:
            return None  # not a board of ours: Trello is not asked
        # Trello first: the plan must not rest on a store read older than what Trello says.
        try:
            state = await self.trello.board_state(self.board_id, priority=self.priority)
        except errors.ABSENT:  # an answer, not a failure: the board is gone
            return await self._departed(home, board.id, None, exists=False)
        if state.get("idOrganization") != home.trello_org_id:
            return await self._departed(home, board.id, state.get("idOrganization"), exists=True)
        roles = {row["idMember"]: row["memberType"] for row in state.get("memberships", [])}
        async with self.database.transaction() as session:
            board = await board_by_trello_id(session, self.board_id)
            if board is None:
                return None  # let go of meanwhile, by a workspace reconcile
            view = await board_view(session, board, on_board=roles.keys())
        organization = view.organization
        observers = organization.observers_allowed
        if observers is None:
            # Asked once, then remembered (a fact of the plan), so that a resync costs one call a board.
            workspace = await self.trello.organization(
                organization.trello_org_id or "", priority=self.priority
            )
            observers = has_observers(workspace)
        policy = replace(
            self.policy,
            authority=self.policy.for_workspace(organization.authority),
            observers_allowed=observers,
        )
        desired = DesiredBoard(
            self.board_id,
            view.access,
            view.pending,
            view.guests,
            observers_known=organization.observers_allowed is not None,
        )
        plan = plan_board(desired, ActualBoard(self.board_id, roles), policy)
        self._workspace_id = organization.trello_org_id or ""
        self._observation = Observation(plan, organization.id, "trello_board", view.board.id)
        return self._observation

    async def _departed(
        self, home: Organization, board_id: int, now: str | None, *, exists: bool
    ) -> Observation[BoardOperation, BoardFact]:
        """The board is gone, or lives in another workspace now: a plan of that one fact."""
        async with self.database.transaction() as session:
            linked = now is not None and await organization_by_trello_id(session, now) is not None
        fact = plan_departure(self.board_id, home.trello_org_id or "", now, linked, exists=exists)
        plan = BoardPlan(f"board:{self.board_id}", facts=[fact])
        self._observation = Observation(plan, home.id, "trello_board", board_id)
        return self._observation

    async def record(self, facts: list[BoardFact], cause: str) -> None:
        assert self._observation is not None
        for fact in facts:
            if isinstance(fact, RecordObservers):
                await remember_observers(self.database, self._observation.organization_id, fact.allowed)
            elif isinstance(fact, RecordGuests):
                await self._record_guests(fact, cause)
            else:
                await record_departure(self.database, fact, cause)

    async def apply(self, operation: BoardOperation, cause: str) -> bool:
        observation = self._observation
        assert observation is not None
        if isinstance(operation, SetStoreAccess):
            return await self._record_access(operation, cause)
        if isinstance(operation, RemoveFromTrello):
            try:
                await self.trello.remove_board_member(self.board_id, operation.member_id)
            except errors.ABSENT:  # someone removed them first (an offboarding, a person)
                log.info("already not a member", member=operation.member_id, board=self.board_id)
                return False
        else:
            await self.trello.set_board_member(self.board_id, operation.member_id, operation.role)
        async with self.database.transaction() as session:
            if isinstance(operation, RemoveFromTrello):
                await forget_guest(session, observation.entity_id, operation.member_id)
            audit_change(session, observation, operation, cause)
        return True

    async def refused(self, operation: BoardOperation, refusal: errors.TrelloError) -> None:
        if isinstance(refusal, errors.ObserversNotAllowed):
            # The plan changed since the store last read it: remembered, so the next run falls back.
            assert self._observation is not None
            await remember_observers(self.database, self._observation.organization_id, False)

    async def _record_guests(self, fact: RecordGuests, cause: str) -> None:
        async with self.database.transaction() as session:
            board = await board_by_trello_id(session, fact.board_id)
            if board is not None:
                await record_guests(session, RECONCILER, board, fact.guests, cause=cause)

    async def _record_access(self, operation: SetStoreAccess, cause: str) -> bool:
        assert self._observation is not None
        async with self.database.transaction() as session:
            _, membership = await membership_by_trello_ids(session, self._workspace_id, operation.member_id)
            if membership is None:
                # Offboarded between the plan and now: there is no access left to record.
                log.info("skipped: no longer a member in the store", member=operation.member_id)
                return False
            board_id = self._observation.entity_id
            await set_board_access(session, RECONCILER, membership, board_id, operation.access, cause=cause)
        return True


async def record_departure(database: Database, fact: UnlinkBoard | MoveBoard, cause: str) -> None:
    """Record in the store that a board is gone or moved (the board's and the workspace's reconciles
    may both find it: the second finds nothing left to do)."""
    async with database.transaction() as session:
        board = await board_by_trello_id(session, fact.board_id)
        if board is None:
            return
        if isinstance(fact, UnlinkBoard):
            await unlink_board(session, RECONCILER, board, reason=fact.reason, cause=cause)
            return
        target = await organization_by_trello_id(session, fact.workspace_id)
        if target is not None and target.id != board.organization_id:
            await move_board(session, RECONCILER, board, target.id, cause=cause)


async def reconcile_board(
    trello: TrelloClient,
    database: Database,
    trello_board_id: str,
    *,
    cause: str,
    priority: Priority = Priority.EVENT,
    apply: bool = True,
    approved_losing: frozenset[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> BoardReport | None:
    """Make one board and the store agree; None when the board is not linked in the store. `policy`
    brings the configured rules; authority and observers are the workspace's own."""
    subject = BoardSubject(trello, database, trello_board_id, policy, priority)
    return await reconcile(subject, database, cause=cause, apply=apply, approved_losing=approved_losing)
