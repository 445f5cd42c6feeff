"""The store's error vocabulary: a broken rule carries the status the membership API answers with."""

from __future__ import annotations


class RuleViolation(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RuleViolation):
    status, code = 404, "not_found"


class Forbidden(RuleViolation):
    status, code = 403, "forbidden"


class Conflict(RuleViolation):
    status, code = 409, "conflict"


class Unprocessable(RuleViolation):
    status, code = 422, "unprocessable"
