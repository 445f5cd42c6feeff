"""What every console page and form handler is given: the request, the store session, the signed-in
operator, the form, and the services the pages read from; and how a page is rendered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from jobs.queue import Job, JobQueue
from membership.models import Organization, User
from membership.rules import Actor
from receiver.api.handlers import path_id

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "trellis_console_flash"


@dataclass(frozen=True)
class Operator:
    """An owner or admin of their active organization, signed in to the console."""

    user: User
    organization: Organization
    actor: Actor


@dataclass(frozen=True)
class Services:
    templates: Jinja2Templates
    queue: JobQueue
    redis: Redis
    invite_ttl: timedelta


@dataclass
class Call:
    request: Request
    session: AsyncSession
    operator: Operator
    csrf: str
    services: Services
    cause: str
    form: ImmutableMultiDict[str, str] = field(default_factory=ImmutableMultiDict)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """A page in the console's frame: its navigation, the operator, the CSRF token for its forms, and
        the message the last form left (once)."""
        return render(
            self.services.templates, self.request, template, status,
            operator=self.operator, csrf=self.csrf, **context,
        )  # fmt: skip

    @property
    def actor(self) -> Actor:
        return self.operator.actor

    @property
    def organization_id(self) -> int:
        return self.operator.organization.id

    def page_number(self, name: str) -> int:
        """A page number from the query: anything that is not a small whole number is the first page."""
        value = self.request.query_params.get(name, "0")
        return int(value) if value.isdigit() and len(value) < 7 else 0

    def path_id(self, name: str) -> int:
        """A store id from the path, bounded as the API bounds it (404 past the store's 64 bits)."""
        return path_id(self.request, name)


def render(
    templates: Jinja2Templates, request: Request, template: str, status: int, **context: Any
) -> Response:
    """A page, with the message the last form left for it (shown once)."""
    flash = request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        request, template, {"flash": None if flash is None else unquote(flash), **context}, status_code=status
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


@dataclass(frozen=True)
class Problems:
    """Why a form was refused, by the field it is shown next to, and what the form held (to show again)."""

    status: int = 200
    by_field: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """A form that did what it asked: the message to show, and the page to show it on."""

    message: str
    then: str
    jobs: list[Job] = field(default_factory=list)  # queued once the change has committed


Page = Callable[[Call, Problems], Awaitable[Response]]
Action = Callable[[Call], Awaitable[Done]]
