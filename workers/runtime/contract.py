"""A job's arguments checked against its function's signature before it runs.

Jobs come from Redis, where the receiver, the CLI and the workers put them through `jobs.builders`; but
anything that can write to Redis can plant one. A job whose arguments do not fit its function (unknown
keywords, a list where an id belongs) is refused with the reason, never run.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any


def violation(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Why these arguments do not fit `function(ctx, ...)`, or None when they do."""
    signature, hints = _contract(function)
    try:
        bound = signature.bind({}, *args, **kwargs)
    except TypeError as exc:
        return f"arguments do not fit {function.__name__}: {exc}"
    for name, value in list(bound.arguments.items())[1:]:
        allowed = _runtime_types(hints[name])
        if not isinstance(value, allowed):
            return f"{function.__name__}: {name} must be {hints[name]}, not {type(value).__name__}"
    return None


@functools.cache
def _contract(function: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]]:
    return inspect.signature(function), typing.get_type_hints(function)


def _runtime_types(hint: Any) -> tuple[type, ...]:
    """`str` -> (str,); `int | None` -> (int, NoneType); `dict[str, Any]` -> (dict,)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _runtime_types(arg))
    if hint is None or hint is type(None):
        return (type(None),)
    if hint is float:
        return (float, int)
    return (typing.get_origin(hint) or hint,)
