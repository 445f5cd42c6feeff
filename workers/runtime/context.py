"""`WorkerContext`: what every job function works with, typed, in place of arq's string-keyed dict.

arq hands each job a dict (`ctx`) holding its own entries (`redis`, `job_id`, `job_try`); ours is one
entry, `ctx[CONTEXT_KEY]`, made once when the worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.queue import JobQueue
from membership.database import Database
from workers.outside import errors
from workers.outside.clients import Clients
from workers.outside.trello import TrelloClient
from workers.runtime.config import JobRules, WorkerConfig
from workers.runtime.scopes import Scopes
from workers.runtime.waves import Departures

CONTEXT_KEY = "trellis"


@dataclass
class WorkerContext:
    config: WorkerConfig
    rules: JobRules
    database: Database
    queue: JobQueue
    clients: Clients
    scopes: Scopes
    departures: Departures

    @property
    def trello(self) -> TrelloClient:
        if self.clients.trello is None:  # not retried: it will not pass until an operator configures them
            raise errors.TrelloUnauthorized("no Trello credentials are configured")
        return self.clients.trello

    def notify(self, occurrence: str, text: str, *, remember: int = 24 * 3600) -> None:
        """Tell a person (`TRELLIS_NOTIFY_URL`), once an occurrence, without waiting; nothing when unset."""
        if self.clients.notifier is not None:
            self.clients.notifier.notify(occurrence, text, remember=remember)

    async def aclose(self) -> None:
        if self.clients.notifier is not None:
            await self.clients.notifier.drain()
        await self.queue.aclose()
        await self.database.dispose()
        await self.clients.aclose()


def context_of(ctx: dict[str, Any]) -> WorkerContext:
    context: WorkerContext = ctx[CONTEXT_KEY]
    return context
