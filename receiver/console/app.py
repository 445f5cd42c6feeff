"""The console's Starlette app, mounted by the receiver under `/console/`: its routes, and the one path
every request takes — session, CSRF check, operator, transaction, page or form, hand-off to the workers.

Pages are rendered on the server (Jinja2); forms post and are answered with a redirect to the page they
changed (post/redirect/get), or, when the rules refuse them, with that page again, its status the
refusal's (403, 404, 409, 422) and the reason next to the field that caused it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
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
from membership.errors import Forbidden, RuleViolation
from membership.history import action_words
from membership.models import as_utc
from receiver.console import approvals, audit, dead_letters, members, overview
from receiver.console.calls import STATIC, TEMPLATES, Action, Call, Done, Page, Problems, Services, render
from receiver.console.forms import FORGED_FORM, csrf_matches, flash, problems_of, read_form
from receiver.console.sessions import ConsoleSession, Sessions
from receiver.console.signing import SignIn, SignInAgain, operator_of
from receiver.handoff import hand_to_workers

log = structlog.get_logger("receiver.console")

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
        templates.env.filters["limit_label"] = overview.limit_label
        self.services = Services(templates, queue, redis, invite_ttl)
        self.signing = SignIn(database, self.sessions, templates)

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
                Route("/sign-in", self.signing.sign_in, methods=["GET", "POST"]),
                post("/sign-out", self.signing.sign_out),
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
            flash(response, await self.follow_up(done))
            return response

        return endpoint

    async def follow_up(self, done: Done) -> str:
        """Queue the jobs a committed change asked for; the message for the operator, which says so if
        they could not be queued (the change is recorded, what it sets going is not)."""
        if not done.jobs:
            return done.message
        try:
            await self.queue.enqueue_many(done.jobs)
        except Exception as exc:
            log.warning("console: follow-up jobs not queued", jobs=len(done.jobs), error=type(exc).__name__)
            return f"{done.message} But its follow-up could not be queued (Redis did not answer)."
        return done.message

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
        workers."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        cause = f"console:{request.method} {request.url.path} request:{request_id[:64]}"
        async with self.database.transaction() as store:
            try:
                operator = await operator_of(store, session)
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
        return result

    def to_sign_in(self, request: Request) -> Response:
        return RedirectResponse("/console/sign-in", status_code=303)

    def refusal(self, request: Request, status: int, reason: str) -> Response:
        return render(self.services.templates, request, "refused.html", status, operator=None, reason=reason)


def when(moment: datetime | float | None) -> str:
    """A moment as the console shows it: UTC, to the second."""
    if moment is None:
        return "never"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S} UTC"
