"""Every job the contract builds is one the workers can run: its name and arguments fit the function."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from jobs import builders
from jobs.connection import RedisTarget
from jobs.queue import Job, RawJSON
from workers.runtime import functions
from workers.runtime.config import WorkerConfig
from workers.runtime.worker import JOB_TIMEOUTS, arq_functions

ID = "5f0b0a4d0b0a4d0b0a4d0b0a"
EVERY_BUILT_JOB = {
    "apply_event": builders.apply_event(RawJSON(b'{"action": {}}'), ID),
    "push_member_change": builders.push_member_change(7),
    "offboard_member": builders.offboard_member(ID, ID, "reason"),
    "reconcile_board": builders.reconcile("board", ID, "reason", bulk=True),
    "reconcile_workspace": builders.reconcile("workspace", ID, "reason"),
    "reconcile_board (approved)": builders.reconcile_approved("board", ID, 3),
    "reconcile_workspace (approved)": builders.reconcile_approved("workspace", ID, 3),
    "deactivate_account": builders.deactivate_account(3),
    "ensure_webhooks": builders.ensure_webhooks("reason"),
    "full_resync": builders.full_resync("reason"),
    "sweep_outbox": builders.sweep_outbox("reason"),
    "prune_history": builders.prune_history("reason"),
}


def bound(job: Job) -> inspect.BoundArguments:
    function = getattr(functions, job.function).__wrapped__
    return inspect.signature(function).bind({}, *job.args, **job.kwargs)


@pytest.mark.parametrize("job", EVERY_BUILT_JOB.values(), ids=EVERY_BUILT_JOB.keys())
def test_each_built_job_binds_to_its_function_signature(job: Job) -> None:
    arguments = bound(job)
    hints = typing.get_type_hints(getattr(functions, job.function).__wrapped__)
    for name, value in list(arguments.arguments.items())[1:]:
        if isinstance(value, RawJSON):  # JSON embedded as it came: the function receives it decoded
            assert hints[name] == dict[str, Any]
            continue
        assert isinstance(value, _runtime_types(hints[name])), f"{job.function}({name}={value!r})"


def _runtime_types(hint: Any) -> tuple[type, ...]:
    args = typing.get_args(hint)
    return tuple(typing.get_origin(a) or a for a in args) if args else (typing.get_origin(hint) or hint,)


def test_every_job_function_has_a_builder() -> None:
    built = {job.function for job in EVERY_BUILT_JOB.values()}
    assert {f.__name__ for f in JOB_TIMEOUTS} == built


def test_a_job_queued_under_an_older_name_still_runs() -> None:
    registered = {
        f.name: f.coroutine
        for f in arq_functions(WorkerConfig(RedisTarget("redis://"), "sqlite+aiosqlite://"))
    }
    for old, new in builders.LEGACY_NAMES.items():
        assert registered[old] is registered[new]


def test_approvals_recorded_under_the_older_scope_kind_still_reconcile() -> None:
    assert builders.scope_kind("org") == "workspace"
    assert builders.scope_kind("board") == "board"
    with pytest.raises(ValueError, match="not a reconcile scope"):
        builders.scope_kind("account")


def test_an_approved_plan_reconciles_its_scope_again_with_the_approval() -> None:
    (job,) = builders.after_decision("plan", "board:b1", 7, {}, approved=True)

    assert job.function == "reconcile_board"
    assert job.args == ("b1",)
    assert job.kwargs["approval_id"] == 7


def test_a_rejected_plan_or_deactivation_sets_nothing_going() -> None:
    assert builders.after_decision("plan", "board:b1", 7, {}, approved=False) == []
    assert builders.after_decision("scim_deactivate", "account:a", 8, {}, approved=False) == []


def test_an_approved_deactivation_is_carried_out() -> None:
    (job,) = builders.after_decision("scim_deactivate", "account:a", 8, {}, approved=True)

    assert job.function == "deactivate_account"
    assert job.args == (8,)


def test_a_waves_offboardings_run_whatever_the_decision() -> None:
    payload = {"workspace": "w1", "members": ["m1", "m2"]}
    for approved in (True, False):
        jobs = builders.after_decision("wave", "wave:w1", 9, payload, approved=approved)

        assert [(job.function, job.args) for job in jobs] == [
            ("offboard_member", ("w1", "m1")),
            ("offboard_member", ("w1", "m2")),
        ]
