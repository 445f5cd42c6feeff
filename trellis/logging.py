"""structlog set-up: JSON lines for machines, readable lines for a terminal.

Request and job context (``action_id``, ``job_id``) travels in contextvars, bound by the receiver and the
job wrapper, so every line written while handling one carries it without being passed around.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"


class SecretScrubber:
    """A processor that replaces any known secret value found in a log line.

    Code should never log a secret in the first place; this catches the accident (a URL with a token in
    it inside an exception message, say) before it reaches a log file.
    """

    # Shorter values are no secret worth the name (only the emulator takes them) and would mangle
    # ordinary words: a one-letter "token" turned "Waiting" into "Wai[REDACTED]ing".
    MIN_LENGTH = 8

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= self.MIN_LENGTH}, key=len, reverse=True)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        if not self._secrets:
            return event_dict
        return {key: self._scrub(value) for key, value in event_dict.items()}

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, Mapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        if isinstance(value, BaseException):
            return self._scrub(repr(value))
        return value


def _drop_color_message(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # uvicorn adds a colourised duplicate of its message for its own formatter.
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    *,
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library's logging (uvicorn, arq, alembic) to one renderer."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        SecretScrubber(secrets),
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "alembic"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers[:] = []
        lib_logger.propagate = True
    # One access line per webhook at full load is noise; our own handler logs what matters.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs each request's full URL at INFO, and Trello's token endpoints carry the token in the
    # path: our clients log their calls themselves, with the secrets left out.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Schema upgrades happen by themselves at start for SQLite; `trellis migrate` turns their story on.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    structlog.configure(
        # filter_by_level first: a line below the level costs a method call, not a timestamp and a render.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
