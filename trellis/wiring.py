"""From the settings, read once at the edge, to the small typed config objects each part takes.

The receiver and the worker side never import the settings: they are handed what they need from here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.applications import Starlette

from receiver.app import ReceiverConfig, create_app
from receiver.console.app import ConsoleConfig
from receiver.webhooks import WebhookConfig
from trellis.settings import Settings
from workers.outside.clients import ClientsConfig, ScimConfig, TrelloConfig
from workers.outside.limiter import LimiterPolicy
from workers.outside.scim import ScimLimits
from workers.outside.trello import TrelloLimits
from workers.reconcile.plan import Policy
from workers.runtime import worker
from workers.runtime.config import JobRetryPolicy, WorkerConfig
from workers.runtime.waves import WaveRules


def webhook_config(settings: Settings) -> WebhookConfig | None:
    if settings.trello_secret is None or settings.callback_url is None:
        return None
    return WebhookConfig(
        secret=settings.trello_secret.get_secret_value(),
        callback_url=settings.callback_url,
        max_body_bytes=settings.max_body_bytes,
    )


def receiver_config(settings: Settings) -> ReceiverConfig:
    return ReceiverConfig(
        redis=settings.redis_target(),
        database_url=settings.database_url,
        queue_name=settings.queue_name,
        enqueue_timeout_seconds=settings.enqueue_timeout_seconds,
        webhook=webhook_config(settings),
        invite_ttl=timedelta(days=settings.invite_ttl_days),
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        console=console_config(settings),
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def console_config(settings: Settings) -> ConsoleConfig:
    return ConsoleConfig(
        secret=(settings.console_secret.get_secret_value() if settings.console_secret else "") or None,
        session_lifetime=timedelta(hours=settings.console_session_hours),
        # Behind an HTTPS public URL the cookie is Secure even where the proxy speaks plain HTTP to us.
        always_secure=(settings.callback_url or "").startswith("https://"),
    )


def receiver_app(settings: Settings) -> Starlette:
    return create_app(receiver_config(settings))


def clients_config(settings: Settings) -> ClientsConfig:
    trello = scim = None
    if settings.trello_api_key is not None and settings.trello_token is not None:
        trello = TrelloConfig(
            base_url=settings.trello_base_url,
            key=settings.trello_api_key.get_secret_value(),
            token=settings.trello_token.get_secret_value(),
            limits=TrelloLimits(
                key_max=settings.trello_key_limit,
                token_max=settings.trello_token_limit,
                window=settings.trello_limit_window_seconds,
                members_max=settings.trello_members_limit,
                members_window=settings.trello_members_window_seconds,
            ),
        )
    if settings.scim_directory_id and settings.scim_token is not None:
        scim = ScimConfig(
            base_url=settings.scim_base_url,
            directory_id=settings.scim_directory_id,
            token=settings.scim_token.get_secret_value(),
            limits=ScimLimits(settings.scim_limit, settings.scim_limit_window_seconds),
        )
    return ClientsConfig(
        notify_url=settings.notify_url.get_secret_value() if settings.notify_url else None,
        http_timeout=settings.http_timeout_seconds,
        limiter=LimiterPolicy(
            safety_margin=settings.limiter_safety_margin,
            bulk_reserve=settings.limiter_bulk_reserve,
            bulk_max_wait=settings.limiter_bulk_max_wait_seconds,
        ),
        trello=trello,
        scim=scim,
    )


def reconcile_policy(settings: Settings) -> Policy:
    """The configured reconcile rules; each workspace brings its own authority and plan."""
    return Policy(
        observer_fallback=settings.observer_fallback,
        guard_members=settings.guard_max_members,
        guard_share=settings.guard_max_share,
        allow_guests=settings.allow_guests,
    )


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        redis=settings.redis_target(),
        database_url=settings.database_url,
        queue_name=settings.queue_name,
        clients=clients_config(settings),
        policy=reconcile_policy(settings),
        retry=JobRetryPolicy(
            max_tries=settings.job_max_tries,
            base_seconds=settings.job_retry_base_seconds,
            cap_seconds=settings.job_retry_cap_seconds,
        ),
        scim_deactivate=settings.scim_deactivate,
        callback_url=settings.callback_url,
        max_event_age_seconds=settings.max_event_age.total_seconds(),
        job_timeout_seconds=settings.job_timeout_seconds,
        concurrency=settings.worker_concurrency,
        reconcile_debounce_seconds=settings.reconcile_debounce_seconds,
        scope_lease_seconds=settings.scope_lease_seconds,
        event_retention_days=settings.event_retention_days,
        audit_retention_days=settings.audit_retention_days,
        waves=WaveRules(
            members=settings.guard_wave_members,
            seconds=settings.guard_wave_seconds,
            settle_seconds=settings.guard_wave_settle_seconds,
        ),
        resync_interval_hours=settings.resync_interval_hours,
        metrics_host=settings.host,
        metrics_port=settings.worker_metrics_port,
    )


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, from the settings."""
    return worker.worker_settings(worker_config(settings))
