"""The job wrapper: a job past its time limit is tried again, never failed silently by arq."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from arq import Retry

from jobs.deadletters import DeadLetters
from workers.runtime.config import JobRetryPolicy, JobRules
from workers.runtime.context import CONTEXT_KEY
from workers.runtime.wrapper import job


def rules_only(rules: JobRules) -> SimpleNamespace:
    """A worker context with nothing but the job rules: all the wrapper reads of it."""
    return SimpleNamespace(rules=rules)


@job
async def sleepy(ctx: dict[str, Any]) -> str:
    await asyncio.sleep(5)
    return "woke"


async def test_a_job_past_its_time_limit_is_retried() -> None:
    ctx = {CONTEXT_KEY: rules_only(JobRules(JobRetryPolicy(), {"sleepy": 0.05})), "job_try": 1}
    with pytest.raises(Retry):
        await sleepy(ctx)


async def test_nothing_cuts_short_a_job_without_a_limit() -> None:
    ctx = {CONTEXT_KEY: rules_only(JobRules(JobRetryPolicy())), "job_try": 1}
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # it would sleep its 5 s: no limit cut it short
            await sleepy(ctx)


async def test_a_job_whose_arguments_do_not_fit_its_function_is_dead_lettered_unrun(
    redis_client: Any,
) -> None:
    ran: list[str] = []

    @job
    async def offboard_member(
        ctx: dict[str, Any], workspace_id: str, member_id: str, reason: str = ""
    ) -> str:
        ran.append(member_id)
        return "ran"

    ctx = {CONTEXT_KEY: rules_only(JobRules()), "job_try": 1, "job_id": "planted", "redis": redis_client}
    planted = await offboard_member(ctx, "5f0c0c0c0c0c0c0c0c0c0c0c", ["not", "an", "id"], path="/evil")
    [letter] = await DeadLetters(redis_client).list()
    assert planted.startswith("refused")
    assert ran == []
    assert (letter.job_id, letter.error.split(":")[0]) == ("planted", "ContractViolation")


async def test_a_dead_lettered_job_tells_a_person(redis_client: Any) -> None:
    told: list[tuple[str, str]] = []

    @job
    async def reconcile_board(ctx: dict[str, Any], board_id: str) -> str:
        raise ValueError("a bug, not a passing failure")

    context = SimpleNamespace(
        rules=JobRules(), notify=lambda occurrence, text: told.append((occurrence, text))
    )
    ctx = {CONTEXT_KEY: context, "job_try": 1, "job_id": "reconcile:b:1", "redis": redis_client}
    with pytest.raises(ValueError, match="a bug"):
        await reconcile_board(ctx, "5f0b0a4d0b0a4d0b0a4d0b0a")
    [(occurrence, text)] = told
    assert occurrence == "dead:reconcile:b:1"
    assert "gave up on reconcile_board" in text
