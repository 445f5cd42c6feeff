"""Commands that run Trellis: serve, worker, run, demo, emulator, migrate."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from trellis.cli import CliContext, main, pass_cli
from trellis.logging import configure_logging
from trellis.settings import Settings


@main.command()
@click.option("--host", default=None, help="Address to listen on [TRELLIS_HOST, default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [TRELLIS_PORT, default 8080].")
@pass_cli
def serve(cli: CliContext, host: str | None, port: int | None) -> None:
    """Run the receiver: Trello webhooks, the membership API, health and metrics."""
    import uvicorn

    from receiver.protocol import bounded_protocol
    from trellis.wiring import receiver_app

    settings = cli.settings
    refuse_if_not_ready(settings)
    config = uvicorn.Config(
        receiver_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        server_header=False,
        # trellis.logging silences uvicorn.access anyway; not calling it spares every request the call.
        access_log=False,
        # The app believes X-Forwarded-* itself, on every route but the webhook's (receiver.app).
        proxy_headers=False,
        timeout_graceful_shutdown=30,
        # Bounded before any route: a slow or oversized request head, too many connections at once.
        http=bounded_protocol(settings.request_head_timeout_seconds, settings.max_request_head_bytes),
        limit_concurrency=settings.max_connections,
    )
    uvicorn.Server(config).run()


@main.command()
@pass_cli
def worker(cli: CliContext) -> None:
    """Run an arq worker: applies events and reconciles with Trello."""
    from trellis.wiring import worker_config
    from workers.runtime.restarts import run_until_stopped

    asyncio.run(run_until_stopped(worker_config(cli.settings)))


@main.command()
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
@pass_cli
def migrate(cli: CliContext, revision: str) -> None:
    """Create or upgrade the store's schema."""
    import logging

    from membership.database import upgrade

    settings = cli.settings
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    upgrade(settings.database_url, revision)
    click.echo(f"store at revision {revision}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False), help="JSON state to start from.")
@click.option("--key", default="emulator-key", show_default=True, help="The API key it accepts.")
@click.option("--token", default="emulator-token", show_default=True, help="The token it accepts.")
@click.option(
    "--secret", default="emulator-secret", show_default=True, help="The secret it signs webhooks with."
)
@click.option(
    "--retry-delay", default=5.0, show_default=True, help="First pause before a failed delivery is retried."
)
@click.option(
    "--signature-encoding",
    type=click.Choice(["utf-8", "binary"]),
    default="utf-8",
    show_default=True,
    help="Sign deliveries over the UTF-8 body (Trello today) or its old 'binary' string form.",
)
def emulator(
    host: str,
    port: int,
    fixture: str | None,
    key: str,
    token: str,
    secret: str,
    retry_delay: float,
    signature_encoding: str,
) -> None:
    """Run the Trello and SCIM emulator (the built-in sample workspace unless --fixture)."""
    import uvicorn

    from emulator.app import EmulatorConfig, create_emulator
    from emulator.deliveries import DeliveryPolicy

    configure_logging(secrets=[key, token, secret])
    state = json.loads(Path(fixture).read_text()) if fixture else None
    config = EmulatorConfig(
        key=key,
        token=token,
        secret=secret,
        fixture=state,
        delivery=DeliveryPolicy(retry_base_delay=retry_delay),
        signature_encoding=signature_encoding,
    )
    uvicorn.run(create_emulator(config), host=host, port=port, log_config=None, server_header=False)


@main.command()
@click.option("--exit", "exit_after", is_flag=True, help="Stop once the story is told.")
@pass_cli
def demo(cli: CliContext, exit_after: bool) -> None:
    """The whole loop against the emulator: no Trello credentials needed."""
    from trellis.demo import run_demo
    from trellis.supervisor import RedisUnavailable

    try:
        sys.exit(run_demo(cli.settings, exit_after=exit_after))
    except RedisUnavailable as exc:
        click.echo(f"trellis: {exc}", err=True)
        sys.exit(1)


@main.command()
@pass_cli
def run(cli: CliContext) -> None:
    """Run a receiver and a worker under one supervisor; without Trello credentials, play the demo."""
    from trellis.supervisor import Child, RedisUnavailable, Supervisor, start_local_redis, trellis_command

    settings = cli.settings
    if not settings.has_trello_credentials:
        click.echo("No Trello credentials (TRELLIS_TRELLO_API_KEY, TRELLIS_TRELLO_TOKEN): playing the demo.")
        click.get_current_context().invoke(demo, exit_after=False)
        return
    refuse_if_not_ready(settings)
    try:
        # Sentinels name a Redis of its own elsewhere: nothing to start here.
        local_redis = None if settings.redis_sentinels else start_local_redis(settings.redis_url)
    except RedisUnavailable as exc:
        click.echo(f"trellis: {exc}", err=True)
        sys.exit(1)
    try:
        supervisor = Supervisor(
            [Child("receiver", trellis_command("serve")), Child("worker", trellis_command("worker"))]
        )
        code = supervisor.run()
    finally:
        if local_redis is not None:
            local_redis.terminate()
            local_redis.wait(10)
    sys.exit(code)


def refuse_if_not_ready(settings: Settings) -> None:
    """The service does not start half-configured: one line, exit 2."""
    if (reason := settings.service_not_ready()) is not None:
        click.echo(f"trellis: {reason}", err=True)
        sys.exit(2)
