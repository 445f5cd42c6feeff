"""No secret (Trello key and token, webhook secret, SCIM token, API tokens) appears in anything a full
run prints: every process's log, errors, `/metrics`, `trellis doctor` and the other commands."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

from tests.faults.conftest import Stack
from tests.stack import KEY, SECRET, TOKEN
from tests.support import free_port

SCIM_TOKEN = "emulator-scim-token"


@pytest.mark.timeout(180)
async def test_a_full_run_prints_no_secret(stack: Stack) -> None:
    metrics_port = free_port()
    stack.env.update({
        "TRELLIS_SCIM_BASE_URL": stack.emulator, "TRELLIS_SCIM_DIRECTORY_ID": "emulator-directory",
        "TRELLIS_SCIM_TOKEN": SCIM_TOKEN,
        "TRELLIS_SCIM_DEACTIVATE": "auto", "TRELLIS_WORKER_METRICS_PORT": str(metrics_port),
        "TRELLIS_LOG_LEVEL": "debug",
        "TRELLIS_GUARD_WAVE_SETTLE_SECONDS": "1",  # the offboarding's wait for a wave: 30 s by default
    })  # fmt: skip
    stack.up()
    state = await stack.linked_and_watched()
    env = {k: v for k, v in stack.env.items() if k.startswith("TRELLIS_")}
    # A token Trello refuses: the commands print the errors, and must not print the token.
    revoked = {**env, "TRELLIS_TRELLO_TOKEN": TOKEN + "-revoked"}
    outputs: list[str] = []

    async def trellis(*args: str, settings: dict[str, str] = env) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trellis", *args, env={**os.environ, **settings},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            printed, _ = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.kill()
            raise
        return printed.decode()

    created = await trellis("tokens", "create", "owner@acme.example")  # prints the new token, by design
    api_token = created.split()[-1]
    workspace = state["workspaces"][0]["id"]
    grace = next(m["id"] for m in state["members"] if m["username"] == "grace.hopper")
    receiver = stack.callback.removesuffix("/webhooks/trello")
    async with httpx.AsyncClient() as client:
        # The API, with the real token and with a forged one; a webhook with a forged signature.
        for bearer in (api_token, api_token + "x"):
            members = await client.get(receiver + "/organizations/me/members",
                                       headers={"authorization": f"Bearer {bearer}"})  # fmt: skip
            outputs.append(members.text)
        outputs.append((await client.post(stack.callback, content=b'{"action": {}}',
                                          headers={"x-trello-webhook": "forged"})).text)  # fmt: skip
        # An offboarding, with its SCIM deactivation.
        await stack.admin("DELETE", f"/_emulator/organizations/{workspace}/members/{grace}")
        assert await stack.converged() == []
        outputs.append((await client.get(receiver + "/metrics")).text)
        outputs.append((await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text)
    # The commands at once: each is a process of its own, and one after the other they took 15 s.
    outputs += await asyncio.gather(
        trellis("doctor"), trellis("webhooks", "list"), trellis("plan", "--org", workspace),
        trellis("events", "--json"), trellis("dead-letters", "list"),
        trellis("doctor", settings=revoked), trellis("webhooks", "list", settings=revoked),
    )  # fmt: skip
    outputs += [stack.log(name) for name in ("receiver", "worker-0")]

    everything = "\n".join(outputs)
    assert "refuses the key or token" in everything  # the refusal was printed, without the token
    for secret in (KEY, TOKEN, SECRET, SCIM_TOKEN, api_token):
        assert secret not in everything, f"a secret ({secret[:3]}...) was printed"
