"""The job wrapper: a job past its time limit is tried again, never failed silently by arq."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from arq import Retry

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
