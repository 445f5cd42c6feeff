"""Signing in to the console with a membership-API token, and out; who may (owners and admins of their
active organization)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from membership.database import Database
from membership.directory import active_token, token_holder
from membership.errors import Forbidden
from membership.models import Organization, User
from membership.rules import require_admin
from receiver.api.auth import organization_caller
from receiver.console.calls import Operator, Problems, render
from receiver.console.forms import FORGED_FORM, csrf_matches, flash, read_form
from receiver.console.sessions import ConsoleSession, Sessions, anonymous

log = structlog.get_logger("receiver.console")

EXPIRED_SIGN_IN = "The sign-in form had expired: it is fresh now, please paste the token again."
NO_SUCH_TOKEN = (
    "No active token matches. Create one with `trellis tokens create EMAIL` (a revoked token no longer "  # noqa: S105
    "signs in)."
)


class SignInAgain(Exception):
    """No session, an expired one, or one whose token was revoked."""


async def operator_of(store: AsyncSession, session: ConsoleSession) -> Operator:
    """The session's user as an owner or admin of their active organization: SignInAgain when its token
    was revoked, Forbidden for anyone but an owner or admin."""
    assert session.token_id is not None
    user = await token_holder(store, session.token_id)
    if user is None:
        raise SignInAgain
    return await admin_operator(store, user)


async def admin_operator(store: AsyncSession, user: User) -> Operator:
    try:
        caller = await organization_caller(store, user)
        require_admin(caller.actor)
    except Forbidden:
        raise Forbidden(
            f"The console is for owners and admins of an organization, and {user.email or 'this user'} is "
            "not one in their active organization."
        ) from None
    organization = await store.get(Organization, caller.organization_id)
    assert organization is not None  # the caller's membership guarantees it
    return Operator(user, organization, caller.actor)


class SignIn:
    def __init__(self, database: Database, sessions: Sessions, templates: Jinja2Templates) -> None:
        self.database = database
        self.sessions = sessions
        self.templates = templates

    async def sign_in(self, request: Request) -> Response:
        session = self.sessions.read(request)
        if request.method == "GET":
            if session is not None and session.signed_in:
                return RedirectResponse("/console/", status_code=303)
            return self.page(request, session or anonymous(), Problems())
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        if session is None or not csrf_matches(form, session):
            return self.page(request, anonymous(), Problems(403, {"token": EXPIRED_SIGN_IN}))
        async with self.database.transaction() as store:
            token = await active_token(store, form.get("token", "").strip())
            if token is None:
                return self.page(request, session, Problems(401, {"token": NO_SUCH_TOKEN}))
            try:
                operator = await operator_of(store, ConsoleSession(session.csrf, token.id))
            except Forbidden as exc:
                return self.page(request, session, Problems(403, {"token": str(exc)}))
        log.info("console: signed in", user=operator.user.id, organization=operator.organization.id)
        response = RedirectResponse("/console/", status_code=303)
        # A new CSRF token with the new session: one seen before sign-in is worth nothing after.
        self.sessions.write(response, request, ConsoleSession(csrf=anonymous().csrf, token_id=token.id))
        return response

    def page(self, request: Request, session: ConsoleSession, problems: Problems) -> Response:
        response = render(self.templates, request, "sign_in.html", problems.status, operator=None,
                          csrf=session.csrf, problems=problems)  # fmt: skip
        self.sessions.write(response, request, session)
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self.sessions.read(request)
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        if session is None or not csrf_matches(form, session):
            return render(self.templates, request, "refused.html", 403, operator=None, reason=FORGED_FORM)
        response = RedirectResponse("/console/sign-in", status_code=303)
        self.sessions.clear(response)
        flash(response, "Signed out.")
        return response
