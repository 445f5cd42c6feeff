"""Forms as the console reads them — bounded, with their CSRF token checked — and how a refusal or a
success is carried back to the page."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, quote

from pydantic import ValidationError
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from membership.errors import RuleViolation
from receiver.bodies import BodyTooLarge, ClientGone, read_bounded
from receiver.console.calls import FLASH_COOKIE, Problems
from receiver.console.sessions import PATH, ConsoleSession

MAX_FORM_BYTES = 64 * 1024
FORGED_FORM = (
    "This form did not carry the console's token for your session (it came from elsewhere, or the session "
    "changed since the page was loaded). Nothing was changed: load the page again and retry."
)


async def read_form(request: Request) -> ImmutableMultiDict[str, str] | Response:
    """A url-encoded form, bounded like every body the receiver reads."""
    try:
        raw = await read_bounded(request.scope["headers"], request.receive, MAX_FORM_BYTES)
    except BodyTooLarge:
        return Response("form too large", status_code=413)
    except ClientGone:
        return Response(status_code=400)
    return ImmutableMultiDict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def csrf_matches(form: ImmutableMultiDict[str, str], session: ConsoleSession) -> bool:
    return hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode())


def problems_of(exc: Exception, field_key: str, form: ImmutableMultiDict[str, str]) -> Problems:
    """A refusal as the page shows it: the rule's status and message, next to the field it concerns."""
    values = {key: value for key, value in form.items() if key != "csrf"}
    if isinstance(exc, RuleViolation):
        return Problems(exc.status, {field_key: exc.message}, values)
    assert isinstance(exc, ValidationError)
    by_field = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"])
        by_field[f"{field_key}.{name}" if name else field_key] = error["msg"]
    return Problems(422, by_field, values)


def flash(response: Response, message: str) -> None:
    """The message the next page shows, once (the form that left it redirected there)."""
    response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, path=PATH, httponly=True, samesite="strict")
