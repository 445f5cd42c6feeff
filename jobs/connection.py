"""Where Redis is, and one way to connect to it: a single server by URL, or the primary that a set of
Sentinels names, followed to its successor after a failover.

Every part of Trellis that talks to Redis (the receiver's group commit, the arq worker, the limiter, the
scopes, the CLI) connects through `connect`, so all of them follow a failover the same way: a connection
to a primary that died or was demoted is dropped, and the next one asks the Sentinels where the primary
is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

R = TypeVar("R", bound=Redis)


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is.

    `url` always gives the scheme (`rediss://` for TLS), the password and the database; without
    `sentinels` it also gives the host. With `sentinels` ((host, port) pairs) the primary is the one
    they name `sentinel_master`, and `sentinel_password` is theirs (Sentinel's own `requirepass`).
    `min_replicas` > 0: a write that must not be lost counts only once that many replicas have it.
    """

    url: str = field(repr=False)  # may carry a password
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_password: str | None = field(default=None, repr=False)
    min_replicas: int = 0

    def describe(self) -> str:
        """Where this is, for logs and the doctor: never the password."""
        if self.sentinels:
            where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"primary {self.sentinel_master!r} named by sentinels {where}"
        url = urlsplit(self.url)
        return f"{url.scheme}://{url.hostname or ''}{f':{url.port}' if url.port else ''}{url.path}"


@overload
def connect(target: RedisTarget, *, timeout: float | None) -> Redis: ...
@overload
def connect(target: RedisTarget, *, timeout: float | None, redis_class: type[R]) -> R: ...
def connect(target: RedisTarget, *, timeout: float | None, redis_class: type[Redis] = Redis) -> Redis:
    """A client of `redis_class` for the primary; it connects on first use. Every call gives up after
    `timeout` seconds instead of hanging (None: only connecting is bounded, by 2 s)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout or 2.0,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    if not target.sentinels:
        client: Redis = redis_class.from_url(target.url, **options)
        return client
    url = urlsplit(target.url)
    tls = url.scheme == "rediss"
    primary: dict[str, Any] = {
        **options,
        "db": int(url.path.strip("/") or 0),
        "username": unquote(url.username) if url.username else None,
        "password": unquote(url.password) if url.password else None,
        "ssl": tls,
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={**options, "password": target.sentinel_password, "ssl": tls},
        **primary,
    )
    primary_client: Redis = sentinel.master_for(target.sentinel_master, redis_class=redis_class)
    return primary_client


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """ "host:port,host:port" as (host, port) pairs; a missing port is Sentinel's 26379."""
    pairs = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)
