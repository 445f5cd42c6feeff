"""`/healthz` (the process answers) and `/readyz` (the process can do its job: Redis and store reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Probe = Callable[[], Awaitable[object]]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Readiness:
    def __init__(self, probes: dict[str, Probe], timeout: float = 2.0) -> None:
        self.probes = probes
        self.timeout = timeout

    async def respond(self, request: Request) -> Response:
        results = await asyncio.gather(*(self._check(probe) for probe in self.probes.values()))
        checks = dict(zip(self.probes, results, strict=True))
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    async def _check(self, probe: Probe) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await probe()
        except Exception as exc:
            return f"failed: {type(exc).__name__}"
        return "ok"
