"""`plan_workspace`: the laws a workspace reconcile obeys, for every store, workspace and policy."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from membership.vocabulary import workspace_role
from workers.reconcile.plan import Policy, Skip
from workers.reconcile.workspace_plan import (
    ActualWorkspace,
    AdoptMember,
    DesiredWorkspace,
    Offboard,
    RemoveFromWorkspace,
    SetStoreRole,
    SetWorkspaceRole,
    TrelloMember,
    WorkspaceOperation,
    plan_workspace,
)

members = st.sampled_from([f"m{i}" for i in range(8)])
store_roles = st.sampled_from(["owner", "admin", "member"])
trello_members = st.builds(
    TrelloMember,
    role=st.sampled_from(["admin", "normal"]),
    username=st.just("someone"),
    unconfirmed=st.booleans(),
)
policies = st.builds(
    Policy,
    authority=st.sampled_from(["trello", "local"]),
    guard_members=st.integers(1, 10),
    guard_share=st.sampled_from([0.2, 0.5, 1.0]),
)


@st.composite
def workspaces(draw: Any) -> tuple[DesiredWorkspace, ActualWorkspace]:
    roles = draw(st.dictionaries(members, store_roles))
    actual = draw(st.dictionaries(members, trello_members))
    pending = draw(st.sets(members))
    return DesiredWorkspace("w", roles, frozenset(pending)), ActualWorkspace("w", actual)


def ops_for(member: str, operations: list[WorkspaceOperation]) -> list[WorkspaceOperation]:
    return [op for op in operations if op.member_id == member]


@settings(max_examples=600)
@given(workspace=workspaces(), policy=policies)
def test_a_trello_workspace_admin_is_never_demoted_or_removed(workspace: Any, policy: Policy) -> None:
    desired, actual = workspace
    for op in plan_workspace(desired, actual, policy).operations:
        if actual.members.get(op.member_id, TrelloMember("normal")).role == "admin":
            assert not isinstance(op, RemoveFromWorkspace)
            assert not (isinstance(op, SetWorkspaceRole) and op.role == "normal")


@settings(max_examples=600)
@given(workspace=workspaces(), policy=policies)
def test_enforcing_leaves_trello_with_the_stores_roles_except_for_admins_and_open_invitations(
    workspace: Any, policy: Policy
) -> None:
    desired, actual = workspace
    enforce = Policy(authority="local", guard_members=policy.guard_members, guard_share=policy.guard_share)
    after = dict(actual.members)
    for op in plan_workspace(desired, actual, enforce).operations:
        if isinstance(op, SetWorkspaceRole):
            after[op.member_id] = TrelloMember(op.role)
        elif isinstance(op, RemoveFromWorkspace):
            del after[op.member_id]
    for member, role in desired.roles.items():
        assert after[member].role == workspace_role(role) or after[member].role == "admin"
    for member in set(after) - set(desired.roles):
        assert after[member].role == "admin" or (after[member].unconfirmed and member not in desired.pending)


@settings(max_examples=600)
@given(workspace=workspaces())
def test_mirroring_never_writes_to_trello_for_members_with_nothing_to_push(workspace: Any) -> None:
    desired, actual = workspace
    for op in plan_workspace(desired, actual, Policy(authority="trello")).operations:
        if isinstance(op, SetWorkspaceRole | RemoveFromWorkspace):
            assert op.member_id in desired.pending


@settings(max_examples=600)
@given(workspace=workspaces(), policy=policies)
def test_every_member_gets_at_most_one_operation_and_each_says_why(workspace: Any, policy: Policy) -> None:
    desired, actual = workspace
    operations = plan_workspace(desired, actual, policy).operations
    assert len({op.member_id for op in operations}) == len(operations)
    assert all(op.reason for op in operations)


def test_mirroring_adopts_a_member_the_store_does_not_know() -> None:
    actual = ActualWorkspace("w", {"m1": TrelloMember("admin", "ada", "Ada Lovelace")})
    plan = plan_workspace(DesiredWorkspace("w", {}), actual, Policy(authority="trello"))
    assert plan.operations == [AdoptMember("m1", "admin", "ada", "Ada Lovelace", "admin in Trello")]


def test_mirroring_offboards_a_member_gone_from_trello() -> None:
    plan = plan_workspace(DesiredWorkspace("w", {"m1": "member"}), ActualWorkspace("w", {}), Policy())
    assert [type(op) for op in plan.operations] == [Offboard]


def test_mirroring_takes_a_demotion_in_trello_but_keeps_an_owner() -> None:
    desired = DesiredWorkspace("w", {"m1": "admin", "m2": "owner"})
    actual = ActualWorkspace("w", {"m1": TrelloMember("normal"), "m2": TrelloMember("normal")})
    operations = plan_workspace(desired, actual, Policy()).operations
    assert isinstance(operations[0], SetStoreRole)
    assert operations[0].role == "member"
    assert isinstance(operations[1], Skip)


def test_enforcing_removes_someone_let_in_by_hand_and_adds_back_the_missing() -> None:
    desired = DesiredWorkspace("w", {"m1": "member"})
    actual = ActualWorkspace("w", {"m2": TrelloMember("normal", "intruder")})
    operations = plan_workspace(desired, actual, Policy(authority="local")).operations
    assert [type(op) for op in operations] == [SetWorkspaceRole, RemoveFromWorkspace]


def test_an_open_invitation_is_left_alone_in_both_modes() -> None:
    actual = ActualWorkspace("w", {"m1": TrelloMember("normal", unconfirmed=True)})
    for authority in ("trello", "local"):
        plan = plan_workspace(DesiredWorkspace("w", {}), actual, Policy(authority=authority))  # type: ignore[arg-type]
        assert [type(op) for op in plan.operations] == [Skip]


def test_a_pending_removal_through_the_api_is_pushed_even_in_mirror_mode() -> None:
    desired = DesiredWorkspace("w", {}, pending=frozenset({"m1"}))
    actual = ActualWorkspace("w", {"m1": TrelloMember("normal")})
    operations = plan_workspace(desired, actual, Policy(authority="trello")).operations
    assert [type(op) for op in operations] == [RemoveFromWorkspace]


def test_departures_trello_made_are_left_to_the_wave_guard_not_held_by_the_plan() -> None:
    everyone = {f"m{i}": "member" for i in range(5)}
    many = plan_workspace(DesiredWorkspace("w", everyone), ActualWorkspace("w", {}), Policy())  # type: ignore[arg-type]
    assert [type(op) for op in many.operations] == [Offboard] * 5
    assert (many.held, many.losing) == (None, frozenset())


def test_one_removal_by_trellis_is_never_held_but_many_at_once_are() -> None:
    intruders = {f"m{i}": TrelloMember("normal") for i in range(5)}
    one = plan_workspace(DesiredWorkspace("w", {}), ActualWorkspace("w", {"m0": intruders["m0"]}),
                         Policy(authority="local"))  # fmt: skip
    assert one.held is None
    many = plan_workspace(
        DesiredWorkspace("w", {}), ActualWorkspace("w", intruders), Policy(authority="local")
    )
    assert many.held == "5 of 5 members would lose access to workspace w"
