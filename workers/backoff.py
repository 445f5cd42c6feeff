"""Exponential backoff with full jitter: the one delay rule for everything the workers retry."""

from __future__ import annotations

import random


def full_jitter(base: float, attempt: int, cap: float) -> float:
    """Uniform in [0, min(cap, base * 2^attempt)] for the `attempt`-th retry (0 for the first), so that
    retries of many callers spread out instead of arriving together."""
    return random.uniform(0, min(cap, base * 2**attempt))
