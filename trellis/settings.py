"""Configuration: environment variables prefixed ``TRELLIS_`` over an optional TOML file.

Everything Trellis reads from its environment is declared here, validated once at start.
Secrets are ``SecretStr`` so that ``repr``, logs and tracebacks show them masked.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from jobs.connection import RedisTarget, parse_sentinels

ENV_PREFIX = "TRELLIS_"
CONFIG_FILE_ENV = "TRELLIS_CONFIG_FILE"

LogFormat = Literal["auto", "json", "console"]


# Credentials as Trello issues them (TRELLO.md): checked only against Trello itself.
TRELLO_HOST = "api.trello.com"
TRELLO_KEY = re.compile(r"[0-9a-fA-F]{32}")
TRELLO_TOKEN = re.compile(r"[0-9a-fA-F]{64}|ATTA[0-9a-f]{64}[0-9A-F]{8}")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it and fits on one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # Where things live.
    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS
    # Redis's password (`requirepass`), kept apart from the URL so that it can come from a secret; it
    # joins the URL unless the URL carries one.
    redis_password: SecretStr | None = None
    # High availability: the Sentinels ("host:port,host:port") that name the primary, the primary's name
    # there, and their own password. TRELLIS_REDIS_URL then gives only the scheme, password and database.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr | None = None
    # A delivery (or an API change) is acknowledged only once this many replicas have its job (Redis's
    # WAIT), so that a failover cannot lose it. 0: a single Redis, acknowledged once the primary has it.
    redis_min_replicas: int = Field(default=0, ge=0, le=10)
    # A Slack-compatible incoming webhook (Mattermost and Teams workflows take the same): told when a
    # plan or a wave is held, a job is dead-lettered, a webhook was switched off, the token is expiring.
    notify_url: SecretStr | None = None
    # When set, the receiver's /metrics answers only "Authorization: Bearer <this>".
    metrics_token: SecretStr | None = None
    # Signs the web console's session cookies: the same for every receiver. Unset, each receiver makes
    # one of its own, and console sessions end when it stops.
    console_secret: SecretStr | None = None
    # A console session ends this long after sign-in.
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    database_url: str = "sqlite+aiosqlite:///trellis.db"
    queue_name: str = "trellis:queue"

    # Trello. Without key and token Trellis has nothing to talk to: `trellis run` then plays the demo.
    trello_api_key: SecretStr | None = None
    trello_token: SecretStr | None = None
    trello_secret: SecretStr | None = None
    trello_base_url: str = "https://api.trello.com/1"
    callback_url: str | None = None

    # Trello's limits, shared by every worker through Redis (defaults: Trello's published ones).
    trello_key_limit: int = Field(default=300, ge=1)
    trello_token_limit: int = Field(default=100, ge=1)
    trello_limit_window_seconds: float = Field(default=10.0, gt=0)
    trello_members_limit: int = Field(default=100, ge=1)
    trello_members_window_seconds: float = Field(default=900.0, gt=0)
    limiter_safety_margin: int = Field(default=0, ge=0)
    limiter_bulk_reserve: float = Field(default=0.2, ge=0, lt=1)
    limiter_bulk_max_wait_seconds: float = Field(default=30.0, gt=0)
    http_timeout_seconds: float = Field(default=10.0, gt=0)

    # Atlassian SCIM (opt-in: deactivation there disables the person in every Atlassian product).
    scim_base_url: str = "https://api.atlassian.com"
    scim_directory_id: str | None = None
    scim_token: SecretStr | None = None
    scim_limit: int = Field(default=100, ge=1)
    scim_limit_window_seconds: float = Field(default=60.0, gt=0)
    # What offboarding does to the person's Atlassian account: nothing, ask an operator, or deactivate.
    scim_deactivate: Literal["never", "approve", "auto"] = "never"

    # The HTTP edge.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    enqueue_timeout_seconds: float = Field(default=2.0, gt=0)
    # The receiver's bounds on a request before any route sees it: the time and bytes its head (request
    # line and headers) may take, and the connections served at once (past that: 503).
    request_head_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_request_head_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024)
    max_connections: int = Field(default=1000, ge=10)
    # The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (addresses or networks, comma
    # separated, "*" for any): uvicorn's --forwarded-allow-ips.
    forwarded_allow_ips: str = "127.0.0.1"

    # Workers.
    job_max_tries: int = Field(default=8, ge=1)
    # A job's time limit (offboardings and webhook checks get 5). A job lost with a killed worker runs
    # again only after the longest limit + 10 s: short limits, quick recovery.
    job_timeout_seconds: int = Field(default=60, ge=1)
    job_retry_base_seconds: float = Field(default=1.0, gt=0)
    job_retry_cap_seconds: float = Field(default=300.0, gt=0)
    worker_concurrency: int = Field(default=16, ge=1)
    reconcile_debounce_seconds: float = Field(default=1.0, ge=0)
    # A running reconcile's hold on its scope, renewed every third of it: a dead worker's lapses in this.
    scope_lease_seconds: float = Field(default=20.0, ge=1)
    # Where each worker serves its Prometheus metrics (on TRELLIS_HOST); 0 serves none.
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)
    # Reconcile rules: read access on a plan without observers, and the mass-change guard.
    observer_fallback: Literal["normal", "skip"] = "normal"
    guard_max_members: int = Field(default=10, ge=1)
    guard_max_share: float = Field(default=0.2, gt=0, le=1)
    # The guard across events: more than this many departures from a workspace within the window hold
    # their offboardings as one approval; each offboarding first waits the settling time.
    guard_wave_members: int = Field(default=5, ge=1)
    guard_wave_seconds: float = Field(default=600.0, gt=0)
    guard_wave_settle_seconds: float = Field(default=30.0, ge=0)
    # Board members who are not members of the workspace (guests): mirroring keeps them; enforcing
    # removes those the store does not grant, unless this allows them.
    allow_guests: bool = False
    # How long the event log and the audit log keep their rows (pruned daily, in short batches).
    event_retention_days: int = Field(default=90, ge=1)
    audit_retention_days: int = Field(default=400, ge=1)
    # How long an invite of the membership API can be accepted; an older one answers as unknown.
    invite_ttl_days: int = Field(default=14, ge=1, le=365)
    # The safety net: every linked workspace and board reconciled, and its webhooks checked.
    resync_interval_hours: int = Field(default=6, ge=1, le=24)
    # A delivery whose action is older than this (seconds, or an ISO 8601 duration such as PT6H) is
    # recorded and reconciled, but starts no offboarding: Trello signs no time, so a captured delivery
    # could otherwise be replayed at will. Trello's own retries end well within the default.
    max_event_age: timedelta = timedelta(hours=6)

    # Logging.
    log_format: LogFormat = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _redis_password_joins_the_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("redis_password"):
            return data
        password = data["redis_password"]
        password = password.get_secret_value() if isinstance(password, SecretStr) else str(password)
        url = urlsplit(str(data.get("redis_url") or cls.model_fields["redis_url"].default))
        if url.password is None and url.scheme in {"redis", "rediss"}:
            user = quote(url.username or "", safe="")
            netloc = f"{user}:{quote(password, safe='')}@{url.netloc.rsplit('@', 1)[-1]}"
            data = {**data, "redis_url": urlunsplit(url._replace(netloc=netloc))}
        return data

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: str) -> str:
        parse_sentinels(value)  # refuses what is not host:port
        return value

    @field_validator("max_event_age", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        # An environment variable is a string: plain digits are seconds, as for the other durations.
        return (
            float(value) if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit() else value
        )

    @field_validator("max_event_age")
    @classmethod
    def _positive_age(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be a positive duration")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("trello_base_url", "callback_url", "scim_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # Kept as the exact string given: the webhook signature covers the callback URL byte for byte,
        # so no normalisation (trailing slash, case) may happen here.
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _credentials_shaped_as_issued(self) -> Settings:
        """Against Trello itself, a key and a token of the shape Trello issues: a one-letter token is a
        slip (and would make the log scrubber redact that letter everywhere). The emulator takes any."""
        if urlsplit(self.trello_base_url).hostname != TRELLO_HOST:
            return self
        key, token = self.trello_api_key, self.trello_token
        if key is not None and not TRELLO_KEY.fullmatch(key.get_secret_value()):
            raise ValueError("TRELLIS_TRELLO_API_KEY: not a Trello API key (32 hex digits)")
        if token is not None and not TRELLO_TOKEN.fullmatch(token.get_secret_value()):
            raise ValueError("TRELLIS_TRELLO_TOKEN: not a Trello token (64 hex digits, or ATTA and 72 more)")
        return self

    @model_validator(mode="after")
    def _scim_configured(self) -> Settings:
        if self.scim_deactivate != "never" and not (self.scim_directory_id and self.scim_token):
            needs = "TRELLIS_SCIM_DIRECTORY_ID and TRELLIS_SCIM_TOKEN"
            raise ValueError(f"scim_deactivate={self.scim_deactivate} needs {needs}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    def redis_target(self) -> RedisTarget:
        """Where Redis is, as every part that talks to it takes it."""
        sentinel_password = self.redis_sentinel_password
        return RedisTarget(
            url=self.redis_url,
            sentinels=parse_sentinels(self.redis_sentinels),
            sentinel_master=self.redis_sentinel_master,
            sentinel_password=sentinel_password.get_secret_value() if sentinel_password else None,
            min_replicas=self.redis_min_replicas,
        )

    @property
    def has_trello_credentials(self) -> bool:
        return self.trello_api_key is not None and self.trello_token is not None

    def service_not_ready(self) -> str | None:
        """Why the service (not the demo) must not start: with Trello credentials, the webhook endpoint
        needs the secret and the callback URL, or every delivery fails and Trello switches it off."""
        secret = self.trello_secret.get_secret_value() if self.trello_secret else ""
        if self.has_trello_credentials and not (secret and self.callback_url):
            return (
                "TRELLIS_TRELLO_SECRET and TRELLIS_CALLBACK_URL are both needed to receive Trello's webhooks"
                " (without them every delivery fails and Trello disables the webhooks)"
            )
        return None

    def secret_values(self) -> list[str]:
        """The plain values of every secret set, for scrubbing them out of anything printed."""
        secrets = (
            self.trello_api_key,
            self.trello_token,
            self.trello_secret,
            self.scim_token,
            self.redis_password,
            self.redis_sentinel_password,
            self.metrics_token,
            self.console_secret,
            self.notify_url,
        )
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


# Variables with the prefix that are not settings: the settings file's name, and the tests' and the
# benchmarks' own (TRELLIS_TEST_*, TRELLIS_BENCH_*).
NOT_SETTINGS = (CONFIG_FILE_ENV, "TRELLIS_TEST_", "TRELLIS_BENCH_")


def setting_names() -> list[str]:
    return [ENV_PREFIX + name.upper() for name in Settings.model_fields]


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`TRELLIS_*` variables that name no setting: a typo would otherwise leave the default in force."""
    known = set(setting_names())
    return sorted(
        name
        for name in environ
        if name.startswith(ENV_PREFIX) and name not in known and not name.startswith(NOT_SETTINGS)
    )


def nearest(name: str) -> str:
    """`; did you mean TRELLIS_X?` for the closest setting, if one is close."""
    close = difflib.get_close_matches(name, setting_names(), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning pydantic's report into one line that names the setting. A `TRELLIS_`
    variable that is no setting stops start-up, naming the nearest one."""
    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"{CONFIG_FILE_ENV}: no such file: {config_file}")
    if unknown := unknown_variables(os.environ):
        raise SettingsError("; ".join(f"{name}: not a known setting{nearest(name)}" for name in unknown))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them
            problems.append(message)
            continue
        name = ENV_PREFIX + str(error["loc"][0]).upper()
        if error["type"] == "extra_forbidden":
            problems.append(f"{name}: not a known setting{nearest(name)}")
        else:
            problems.append(f"{name}: {message}")
    return "invalid configuration: " + "; ".join(problems)
