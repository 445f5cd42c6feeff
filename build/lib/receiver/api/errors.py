"""Every error of the membership API becomes one JSON shape, here and nowhere else."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from membership.errors import RuleViolation


class Unauthorized(Exception):
    """No bearer token, or one that names no active token."""


class BadRequest(Exception):
    """The body cannot be read as JSON, or is larger than the API takes."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


async def rule_violation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RuleViolation)
    return error(exc.status, exc.code, exc.message)


async def unauthorized(request: Request, exc: Exception) -> Response:
    response = error(401, "unauthorized", "a valid bearer token is required")
    response.headers["www-authenticate"] = "Bearer"
    return response


async def bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return error(exc.status, "bad_request", str(exc))


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    problems = [
        {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
    return error(422, "unprocessable", summary, errors=problems)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error(exc.status_code, "http_error", exc.detail)
    response.headers.update(exc.headers or {})
    return response


EXCEPTION_HANDLERS = {
    RuleViolation: rule_violation,
    Unauthorized: unauthorized,
    BadRequest: bad_request,
    ValidationError: validation_error,
    HTTPException: http_exception,
}
