"""The console's Starlette app, mounted by the receiver under `/console/`: its routes, and the one path
every request takes — session, CSRF check, operator, transaction, page or form, hand-off to the workers.

Pages are rendered on the server (Jinja2); forms post and are answered with a redirect to the page they
changed (post/redirect/get), or, when the rules refuse them, with that page again, its status the
refusal's (403, 404, 409, 422) and the reason next to the field that caused it.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import parse_qsl, quote

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobs.queue import JobQueue
from membership import outbox
from membership.database import Database
from membership.directory import active_token, token_holder
from membership.errors import Forbidden, RuleViolation
from membership.history import action_words
from membership.models import Organization, User, as_utc
from membership.rules import require_admin
from receiver.api.auth import organization_caller
from receiver.bodies import BodyTooLarge, ClientGone, read_bounded
from receiver.console import approvals, audit, dead_letters, members, overview
from receiver.console.calls import (
    FLASH_COOKIE,
    STATIC,
    TEMPLATES,
    Action,
    Call,
    Done,
    Operator,
    Page,
    Problems,
    Services,
    render,
)
from receiver.console.sessions import PATH, ConsoleSession, Sessions, anonymous
from receiver.handoff import hand_to_workers

log = structlog.get_logger("receiver.console")

MAX_FORM_BYTES = 64 * 1024
Endpoint = Callable[[Request], Awaitable[Response]]
R = TypeVar("R", Response, Done)
FieldOf = Callable[[Request], str]


@dataclass(frozen=True)
class ConsoleConfig:
    # Signs the session cookies: the same for every receiver. None: a key of this process's own, so that
    # sessions end when it stops.
    secret: str | None = field(default=None, repr=False)
    session_lifetime: timedelta = timedelta(hours=8)
    always_secure: bool = False  # Secure cookies even over plain HTTP (the public URL is HTTPS)


class SignInAgain(Exception):
    """No session, an expired one, or one whose token was revoked."""


class Console:
    def __init__(
        self, config: ConsoleConfig, database: Database, queue: JobQueue, redis: Redis, invite_ttl: timedelta
    ) -> None:
        self.database = database
        self.queue = queue
        secret = config.secret or secrets.token_urlsafe(32)
        self.sessions = Sessions(secret, config.session_lifetime, always_secure=config.always_secure)
        templates = Jinja2Templates(directory=TEMPLATES)
        templates.env.filters["when"] = when
        templates.env.filters["action_words"] = action_words
        self.services = Services(templates, queue, redis, invite_ttl)

    def app(self) -> Starlette:
        def member_field(name: str) -> FieldOf:
            return lambda request: f"member-{request.path_params['member_id']}.{name}"

        def field_named(prefix: str, param: str) -> FieldOf:
            return lambda request: f"{prefix}-{request.path_params[param]}"

        def post(path: str, endpoint: Endpoint) -> Route:
            return Route(path, endpoint, methods=["POST"])

        form = self.action
        return Starlette(
            routes=[
                Route("/", self.page(overview.show)),
                Route("/sign-in", self.sign_in, methods=["GET", "POST"]),
                post("/sign-out", self.sign_out),
                Route("/members", self.page(members.show)),
                post("/members/invite", form(members.invite, members.show, lambda _: "invite")),
                post("/invites/{invite_id:id}/revoke",
                     form(members.revoke_invite, members.show, field_named("invite", "invite_id"))),
                post("/members/{member_id:id}/role",
                     form(members.change_role, members.show, member_field("role"))),
                post("/members/{member_id:id}/access",
                     form(members.set_access, members.show, member_field("access"))),
                post("/members/{member_id:id}/remove",
                     form(members.remove, members.show, member_field("remove"))),
                Route("/approvals", self.page(approvals.show)),
                post("/approvals/{approval_id:id}/{decision:str}",
                     form(approvals.decide, approvals.show, field_named("approval", "approval_id"))),
                Route("/audit", self.page(audit.show)),
                Route("/people", self.page(audit.person)),
                Route("/dead-letters", self.page(dead_letters.show)),
                post("/dead-letters/{what:str}",
                     form(dead_letters.handle, dead_letters.show, lambda _: "dead-letters")),
                Mount("/static", StaticFiles(directory=STATIC)),
            ]
        )  # fmt: skip

    # Pages and forms

    def page(self, show: Page) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self.serve(request, lambda call: show(call, Problems()))

        return endpoint

    def action(self, do: Action, page: Page, field_of: FieldOf) -> Endpoint:
        """A form's endpoint: on success back to the page it changed, with a message; refused by the
        rules, that page again with the reason next to `field_of(request)`, nothing changed."""

        async def endpoint(request: Request) -> Response:
            session = self.sessions.read(request)
            if session is None or not session.signed_in:
                return self.to_sign_in(request)
            form = await read_form(request)
            if isinstance(form, Response):
                return form
            if not csrf_matches(form, session):
                return self.refusal(request, 403, FORGED_FORM)
            try:
                done = await self.within(request, session, do, form)
            except (RuleViolation, ValidationError) as exc:
                problems = problems_of(exc, field_of(request), form)
                return await self.within(request, session, lambda call: page(call, problems))
            if isinstance(done, Response):
                return done
            response: Response = RedirectResponse(done.then, status_code=303)
            flash(response, done.message)
            return response

        return endpoint

    async def serve(self, request: Request, work: Callable[[Call], Awaitable[Response]]) -> Response:
        session = self.sessions.read(request)
        if session is None or not session.signed_in:
            return self.to_sign_in(request)
        try:
            return await self.within(request, session, work)
        except RuleViolation as exc:  # a page asked for something that is not there (or not the caller's)
            return self.refusal(request, exc.status, exc.message)

    async def within(
        self,
        request: Request,
        session: ConsoleSession,
        work: Callable[[Call], Awaitable[R]],
        form: ImmutableMultiDict[str, str] | None = None,
    ) -> R | Response:
        """`work` in one transaction, for the session's operator; then the changes it made go to the
        workers, with the jobs it asked for."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        cause = f"console:{request.method} {request.url.path} request:{request_id[:64]}"
        async with self.database.transaction() as store:
            try:
                operator = await self.operator(store, session)
            except SignInAgain:
                response = self.to_sign_in(request)
                self.sessions.clear(response)
                return response
            except Forbidden as exc:
                return self.refusal(request, 403, str(exc))
            call = Call(
                request, store, operator, session.csrf, self.services, cause, form or ImmutableMultiDict()
            )
            result = await work(call)
        await hand_to_workers(self.queue, outbox.added_in(store))
        if isinstance(result, Done) and result.jobs:
            await self.queue.enqueue_many(result.jobs)
        return result

    async def operator(self, store: AsyncSession, session: ConsoleSession) -> Operator:
        assert session.token_id is not None
        user = await token_holder(store, session.token_id)
        if user is None:
            raise SignInAgain
        return await operator_of(store, user)

    # Signing in and out

    async def sign_in(self, request: Request) -> Response:
        session = self.sessions.read(request)
        if request.method == "GET":
            if session is not None and session.signed_in:
                return RedirectResponse("/console/", status_code=303)
            return self.sign_in_page(request, session or anonymous(), Problems())
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        if session is None or not csrf_matches(form, session):
            return self.sign_in_page(request, anonymous(), Problems(403, {"token": EXPIRED_SIGN_IN}))
        async with self.database.transaction() as store:
            token = await active_token(store, form.get("token", "").strip())
            if token is None:
                problems = Problems(401, {"token": NO_SUCH_TOKEN})
                return self.sign_in_page(request, session, problems)
            try:
                user = await token_holder(store, token.id)
                assert user is not None
                operator = await operator_of(store, user)
            except Forbidden as exc:
                return self.sign_in_page(request, session, Problems(403, {"token": str(exc)}))
        log.info("console: signed in", user=operator.user.id, organization=operator.organization.id)
        response = RedirectResponse("/console/", status_code=303)
        # A new CSRF token with the new session: one seen before sign-in is worth nothing after.
        self.sessions.write(response, request, ConsoleSession(csrf=anonymous().csrf, token_id=token.id))
        return response

    def sign_in_page(self, request: Request, session: ConsoleSession, problems: Problems) -> Response:
        response = render(self.services.templates, request, "sign_in.html", problems.status, operator=None,
                          csrf=session.csrf, problems=problems)  # fmt: skip
        self.sessions.write(response, request, session)
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self.sessions.read(request)
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        if session is None or not csrf_matches(form, session):
            return self.refusal(request, 403, FORGED_FORM)
        response = RedirectResponse("/console/sign-in", status_code=303)
        self.sessions.clear(response)
        flash(response, "Signed out.")
        return response

    def to_sign_in(self, request: Request) -> Response:
        return RedirectResponse("/console/sign-in", status_code=303)

    def refusal(self, request: Request, status: int, reason: str) -> Response:
        return render(self.services.templates, request, "refused.html", status, operator=None, reason=reason)


NOT_AN_ADMIN_PREFIX = "The console is for"
FORGED_FORM = (
    "This form did not carry the console's token for your session (it came from elsewhere, or the session "
    "changed since the page was loaded). Nothing was changed: load the page again and retry."
)
EXPIRED_SIGN_IN = "The sign-in form had expired: it is fresh now, please paste the token again."
NO_SUCH_TOKEN = (
    "No active token matches. Create one with `trellis tokens create EMAIL` (a revoked token no longer "  # noqa: S105
    "signs in)."
)


async def operator_of(store: AsyncSession, user: User) -> Operator:
    """The user as an owner or admin of their active organization; Forbidden for anyone else."""
    try:
        caller = await organization_caller(store, user)
        require_admin(caller.actor)
    except Forbidden:
        raise Forbidden(
            f"{NOT_AN_ADMIN_PREFIX} owners and admins of an organization, and {user.email or 'this user'} "
            "is not one in their active organization."
        ) from None
    organization = await store.get(Organization, caller.organization_id)
    assert organization is not None  # the caller's membership guarantees it
    return Operator(user, organization, caller.actor)


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


def when(moment: datetime | float | None) -> str:
    """A moment as the console shows it: UTC, to the second."""
    if moment is None:
        return "never"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S} UTC"
