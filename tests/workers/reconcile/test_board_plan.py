"""`plan_board`: the laws a board reconcile obeys, for every store, board and policy."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from membership.vocabulary import board_access
from workers.reconcile.board_plan import (
    ActualBoard,
    DesiredBoard,
    RecordGuests,
    RemoveFromTrello,
    SetStoreAccess,
    SetTrelloRole,
    plan_board,
)
from workers.reconcile.plan import Policy, Skip

members = st.sampled_from([f"m{i}" for i in range(8)])
accesses = st.sampled_from(["write", "read", "none"])
roles = st.sampled_from(["admin", "normal", "observer"])
policies = st.builds(
    Policy,
    authority=st.sampled_from(["trello", "local"]),
    observers_allowed=st.booleans(),
    observer_fallback=st.sampled_from(["normal", "skip"]),
    guard_members=st.integers(1, 10),
    guard_share=st.sampled_from([0.2, 0.5, 1.0]),
    allow_guests=st.booleans(),
)


@st.composite
def boards(draw: Any) -> tuple[DesiredBoard, ActualBoard]:
    access = draw(st.dictionaries(members, accesses))
    pending = draw(st.sets(st.sampled_from(sorted(access)))) if access else set()
    actual = draw(st.dictionaries(members, roles))
    return DesiredBoard("b", access, frozenset(pending)), ActualBoard("b", actual)


def pushed(member: str, desired: DesiredBoard, policy: Policy) -> bool:
    return member in desired.access and (policy.authority == "local" or member in desired.pending)


def apply_to_trello(actual: ActualBoard, operations: list[Any]) -> ActualBoard:
    roles = dict(actual.roles)
    for op in operations:
        if isinstance(op, SetTrelloRole):
            roles[op.member_id] = op.role
        elif isinstance(op, RemoveFromTrello):
            del roles[op.member_id]
    return ActualBoard(actual.board_id, roles)


def agrees(access: str, role: str | None, policy: Policy) -> bool:
    """Whether Trello's role gives the store's access, as far as the policy lets it."""
    if role == "admin":
        return True  # admins are left alone whatever the store says
    if access == "read" and not policy.observers_allowed:
        return role in ({"normal"} if policy.observer_fallback == "normal" else {None, "normal", "observer"})
    return board_access(role) == access  # type: ignore[arg-type]


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_every_pushed_member_ends_with_the_access_the_store_gives(board: Any, policy: Policy) -> None:
    desired, actual = board
    after = apply_to_trello(actual, plan_board(desired, actual, policy).operations)
    for member, access in desired.access.items():
        if pushed(member, desired, policy):
            assert agrees(access, after.roles.get(member), policy), (member, access, after.roles.get(member))


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_a_second_plan_after_the_first_changes_nothing_in_trello(board: Any, policy: Policy) -> None:
    desired, actual = board
    after = apply_to_trello(actual, plan_board(desired, actual, policy).operations)
    again = plan_board(desired, after, policy)
    assert [op for op in again.operations if isinstance(op, SetTrelloRole | RemoveFromTrello)] == []


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_board_admins_are_never_demoted_or_removed(board: Any, policy: Policy) -> None:
    desired, actual = board
    for op in plan_board(desired, actual, policy).operations:
        if isinstance(op, SetTrelloRole | RemoveFromTrello):
            assert actual.roles.get(op.member_id) != "admin"


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_in_mirror_mode_the_store_takes_trellos_state_for_members_with_nothing_to_push(
    board: Any, policy: Policy
) -> None:
    desired, actual = board
    mirror = Policy(**{**policy.__dict__, "authority": "trello"})
    operations = plan_board(desired, actual, mirror).operations
    store = dict(desired.access)
    for op in operations:
        if isinstance(op, SetStoreAccess):
            store[op.member_id] = op.access
        if isinstance(op, SetTrelloRole | RemoveFromTrello):
            assert op.member_id in desired.pending  # Trello is only changed for API changes to push
    for member in desired.access:
        if member not in desired.pending:
            assert store[member] == board_access(actual.roles.get(member))  # type: ignore[arg-type]


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_observers_are_never_asked_of_a_plan_without_them(board: Any, policy: Policy) -> None:
    desired, actual = board
    no_observers = Policy(**{**policy.__dict__, "observers_allowed": False})
    for op in plan_board(desired, actual, no_observers).operations:
        assert not (isinstance(op, SetTrelloRole) and op.role == "observer")


@settings(max_examples=800)
@given(board=boards(), policy=policies)
def test_guests_are_kept_when_allowed_and_removed_when_not_board_admins_aside(
    board: Any, policy: Policy
) -> None:
    desired, actual = board
    for op in plan_board(desired, actual, policy).operations:
        if op.member_id not in desired.access:
            kept = policy.guests_allowed or actual.roles[op.member_id] == "admin"
            assert isinstance(op, Skip if kept else RemoveFromTrello)


def test_guests_are_kept_when_mirroring_and_removed_when_enforcing_unless_allowed() -> None:
    desired, actual = DesiredBoard("b", {}), ActualBoard("b", {"guest": "normal"})
    [mirrored] = plan_board(desired, actual, Policy(authority="trello")).operations
    [enforced] = plan_board(desired, actual, Policy(authority="local")).operations
    [allowed] = plan_board(desired, actual, Policy(authority="local", allow_guests=True)).operations
    assert (type(mirrored), type(enforced), type(allowed)) == (Skip, RemoveFromTrello, Skip)


@given(board=boards(), policy=policies)
def test_the_guests_recorded_are_the_board_members_the_store_does_not_know(
    board: Any, policy: Policy
) -> None:
    desired, actual = board
    recorded = [f.guests for f in plan_board(desired, actual, policy).facts if isinstance(f, RecordGuests)]
    guests = {m: r for m, r in actual.roles.items() if m not in desired.access}
    assert recorded == ([guests] if guests else [])  # the store recorded none so far


def test_guests_already_recorded_as_trello_has_them_are_not_recorded_again() -> None:
    desired = DesiredBoard("b", {"ann": "write"}, guests={"gus": "normal"})
    actual = ActualBoard("b", {"ann": "normal", "gus": "normal"})
    assert plan_board(desired, actual, Policy(authority="trello")).facts == []


def test_a_guest_who_left_or_changed_role_is_recorded_anew() -> None:
    desired = DesiredBoard("b", {}, guests={"gus": "normal", "gia": "normal"})
    actual = ActualBoard("b", {"gus": "observer"})
    [fact] = plan_board(desired, actual, Policy(authority="trello")).facts
    assert fact == RecordGuests("b", {"gus": "observer"})


@settings(max_examples=300)
@given(board=boards(), policy=policies)
def test_every_operation_says_why(board: Any, policy: Policy) -> None:
    desired, actual = board
    assert all(op.reason for op in plan_board(desired, actual, policy).operations)


def test_enforcing_adds_the_missing_and_removes_the_unwanted() -> None:
    desired = DesiredBoard("b", {"ann": "write", "bob": "read", "cid": "none"})
    actual = ActualBoard("b", {"cid": "normal"})
    plan = plan_board(desired, actual, Policy(authority="local"))
    assert {(type(op).__name__, op.member_id) for op in plan.operations} == {
        ("SetTrelloRole", "ann"),
        ("SetTrelloRole", "bob"),
        ("RemoveFromTrello", "cid"),
    }
    assert plan.held is None


def test_removing_one_person_is_never_held() -> None:
    desired = DesiredBoard("b", {"ann": "none", "bob": "write"})
    actual = ActualBoard("b", {"ann": "normal", "bob": "normal"})
    assert (
        plan_board(desired, actual, Policy(authority="local", guard_members=0, guard_share=0.0)).held is None
    )


def test_emptying_a_board_is_held_for_an_operator() -> None:
    people = [f"p{i}" for i in range(12)]
    desired = DesiredBoard("b", dict.fromkeys(people, "none"))
    actual = ActualBoard("b", dict.fromkeys(people, "normal"))
    plan = plan_board(desired, actual, Policy(authority="local"))
    assert plan.held == "12 of 12 members would lose access to board b"


def test_a_pending_api_change_is_pushed_even_in_mirror_mode() -> None:
    desired = DesiredBoard("b", {"ann": "read"}, pending=frozenset({"ann"}))
    actual = ActualBoard("b", {"ann": "normal"})
    [op] = plan_board(desired, actual, Policy(authority="trello")).operations
    assert op == SetTrelloRole("ann", "observer", op.reason)
    assert "membership API" in op.reason
