"""Receiver throughput against a bare Starlette endpoint, measured in the same run.

Starts a redis-server of its own, the real receiver (`trellis serve`) and a bare endpoint that only reads
the body (same uvicorn, same options), and drives each in turn with wrk: the same number of connections,
the same distinct signed deliveries. Prints requests/s, p50 and p99 for both and their ratio; then checks
that every action the receiver answered 2xx is in Redis exactly once. A third endpoint is the same
receiver on a primary with a replica and TRELLIS_REDIS_MIN_REPLICAS=1: what waiting for the replica
(one WAIT a group-committed batch) costs, as `replicated_ratio` against the same bare endpoint.

The servers under test run on one core, the same for each, and wrk and Redis on the others: the
comparison is of what each server gets done with one core, and Redis's share of the work (a server of its
own in production) is not counted against the receiver. `--shared-cores` lets every process run anywhere,
as the figures before this rule were measured.

Each round drives the three endpoints one after the other, the bare one first in one round and last in
the next, and the ratio is the median of the rounds' own ratios: the machine's speed drifts by more than
the difference measured, and two runs of the same round are the closest in time there are. Each run
also reads the server's own CPU time from /proc: the CPU a request, the share of the run it kept its core
busy, and `cpu_ratio`, the comparison by CPU a request.

    python bench/receiver.py [--quick] [--connections 32] [--seconds 8] [--rounds 7] [--shared-cores]

Ends with: result: receiver ratio=R p99_ms=P lost=N ... ratio_min=A ratio_max=B replicated_ratio=Q ...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.processes import cpu_seconds, free_port, python_module, redis_server, running
from bench.redis_ha import ReplicatedRedis

SECRET = "bench-webhook-secret"  # noqa: S105 (signs the benchmark's own deliveries)
CALLBACK_URL = "https://trellis.bench/webhooks/trello"
QUEUE = "trellis:queue"

# One realistic addMemberToBoard delivery; {action} and {member} are replaced by fresh ids.
TEMPLATE = json.dumps(
    {
        "action": {
            "id": "{action}",
            "idMemberCreator": "5f0c0ffee0c0ffee0c0ffee0",
            "type": "addMemberToBoard",
            "date": "2026-11-22T10:00:00.000Z",
            "data": {
                "board": {"id": "5f0b0a4d0b0a4d0b0a4d0b0a", "name": "Roadmap 2027", "shortLink": "Qx7fK2pA"},
                "idMemberAdded": "{member}",
                "memberType": "normal",
            },
            "member": {"id": "{member}", "username": "zoe.celik", "fullName": "Zoë Çelik", "initials": "ZÇ"},
            "memberCreator": {
                "id": "5f0c0ffee0c0ffee0c0ffee0",
                "username": "it-admin",
                "fullName": "IT Admin",
            },
            "display": {"translationKey": "action_add_member_to_board"},
        },
        "model": {"id": "5f0b0a4d0b0a4d0b0a4d0b0a", "name": "Roadmap 2027"},
        "webhook": {"id": "5f0e0e0e0e0e0e0e0e0e0e0e", "idModel": "5f0b0a4d0b0a4d0b0a4d0b0a"},
    },
    ensure_ascii=False,
)

LUA = r"""
local template = [==[%(template)s]==]
local actions = { %(actions)s }
local members = { %(members)s }
local signatures = { %(signatures)s }
local n = #actions
local i = 0
non2xx = 0
acked = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  i = i + 1
  local k = ((i - 1) %% n) + 1
  local body = template:gsub("{action}", actions[k]):gsub("{member}", members[k])
  local headers = { ["Content-Type"] = "application/json", ["X-Trello-Webhook"] = signatures[k] }
  return wrk.format("POST", "/webhooks/trello", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  else
    -- The receiver names the action it acknowledged: that is what the audit checks in Redis.
    local id = body:match('"action_id":"(%%x+)"')
    if id then acked[#acked + 1] = id .. " " .. (body:match('"status":"(%%a+)"') or "?") end
  end
end

function done(summary, latency, requests)
  local bad = 0
  local out = io.open(os.getenv("WRK_ACKED_FILE"), "w")
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    for _, line in ipairs(thread:get("acked")) do
      out:write(line, "\n")
    end
  end
  out:close()
  local e = summary.errors
  io.write(string.format('WRK {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,'
    .. '"p999_us":%%d,"non2xx":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), bad, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    non2xx: int
    socket_errors: int
    server_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server's CPU time a request (its own process: user and system)."""
        return 1e6 * self.server_cpu_seconds / max(1, self.requests)

    @property
    def busy(self) -> float:
        """The share of the run the server spent on its core; the rest it waited on wrk or Redis (or the
        machine did not run it)."""
        return self.server_cpu_seconds / self.seconds


def ids(prefix: int, count: int) -> list[str]:
    now = int(time.time())
    return [f"{now:08x}{prefix:04x}{i:012x}" for i in range(count)]


def write_script(path: Path, actions: list[str], members: list[str]) -> None:
    signatures = []
    for action, member in zip(actions, members, strict=True):
        body = TEMPLATE.replace("{action}", action).replace("{member}", member).encode()
        digest = hmac.new(SECRET.encode(), body + CALLBACK_URL.encode(), hashlib.sha1).digest()
        signatures.append(base64.b64encode(digest).decode())
    quoted = lambda values: ",".join(f'"{v}"' for v in values)  # noqa: E731
    path.write_text(
        LUA
        % {
            "template": TEMPLATE,
            "actions": quoted(actions),
            "members": quoted(members),
            "signatures": quoted(signatures),
        }
    )


def drive(
    server: subprocess.Popen[bytes], port: int, script: Path, connections: int, seconds: float
) -> tuple[Run, list[tuple[str, str]]]:
    """One wrk run against `server` on `port`; returns its figures and (action id, status) of every 2xx
    answer that named one."""
    acked_file = script.with_suffix(".acked")
    cpu_before = cpu_seconds(server.pid)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "5s", "-s", str(script),
         f"http://127.0.0.1:{port}/webhooks/trello"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
        env={**os.environ, "WRK_ACKED_FILE": str(acked_file)},
    )  # fmt: skip
    server_cpu = cpu_seconds(server.pid) - cpu_before
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK "))
    data = json.loads(line[4:])
    acked = [(line.split()[0], line.split()[1]) for line in acked_file.read_text().splitlines()]
    return Run(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        non2xx=data["non2xx"],
        socket_errors=data["socket_errors"],
        server_cpu_seconds=server_cpu,
    ), acked


def audit(redis_url: str, acked: list[tuple[str, str]], sent: set[str]) -> tuple[int, int]:
    """(acknowledged actions not queued exactly once, queued jobs that are no action sent).

    Every action answered 2xx must have its job stored and its id in the queue; an action answered
    "queued" twice was enqueued twice. A job for an action sent but never answered is fine: wrk stopped
    while it was in flight.
    """
    client = redis.Redis.from_url(redis_url)
    queued = {member.decode() for member in client.zrange(QUEUE, 0, -1)}
    ids = sorted({action for action, _ in acked})
    pipe = client.pipeline(transaction=False)
    for action in ids:
        pipe.exists(f"arq:job:{action}")
    has_job = pipe.execute()
    missing = sum(1 for action, job in zip(ids, has_job, strict=True) if not job or action not in queued)
    queued_answers = [action for action, status in acked if status == "queued"]
    missing += len(queued_answers) - len(set(queued_answers))
    foreign = len(queued - sent)
    client.flushdb()
    client.close()
    return missing, foreign


def split_cores(shared: bool) -> tuple[set[int] | None, set[int] | None]:
    """(the core the servers under test run on, the cores for everything else); (None, None) when they
    share every core: asked for, or a single core."""
    cores = sorted(os.sched_getaffinity(0))
    if shared or len(cores) < 2:
        return None, None
    return {cores[-1]}, set(cores[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one short round (under a minute)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shared-cores", action="store_true", help="let every process run on any core")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not on PATH (apt-get install wrk)")
    seconds, rounds = (5.0, 1) if args.quick else (args.seconds, args.rounds)
    # More distinct actions than a run can send at the rates seen here, so every request is a new one.
    distinct = int(25_000 * seconds)

    server_core, other_cores = split_cores(args.shared_cores)
    if other_cores is not None:
        os.sched_setaffinity(0, other_cores)  # wrk and the redis-servers started from here inherit them
    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis_url, ExitStack() as stack:
        receiver_port, bare_port, replicated_port = free_port(), free_port(), free_port()
        # The same receiver on a primary with a replica, acknowledging only what the replica has (WAIT).
        replicated = ReplicatedRedis(Path(tmp), sentinels=False)
        replicated.start()
        stack.callback(replicated.stop)
        replicated_url = replicated.env()["TRELLIS_REDIS_URL"]
        env = {
            "TRELLIS_REDIS_URL": redis_url,
            "TRELLIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "TRELLIS_TRELLO_SECRET": SECRET,
            "TRELLIS_CALLBACK_URL": CALLBACK_URL,
            "TRELLIS_QUEUE_NAME": QUEUE,
            "TRELLIS_LOG_LEVEL": "warning",
            "TRELLIS_LOG_FORMAT": "json",
        }
        receiver_argv = python_module("trellis", "serve", "--port", str(receiver_port))
        bare_argv = python_module(
            "uvicorn", "bench.bare_app:app", "--port", str(bare_port), "--log-level", "warning",
            "--no-access-log", "--no-server-header", "--no-proxy-headers",  # as `trellis serve` runs it
        )  # fmt: skip
        replicated_argv = python_module("trellis", "serve", "--port", str(replicated_port))
        replicated_env = {**env, "TRELLIS_REDIS_URL": replicated_url, "TRELLIS_REDIS_MIN_REPLICAS": "1"}
        receiver_runs: list[Run] = []
        replicated_runs: list[Run] = []
        bare_runs: list[Run] = []
        lost = extra = acked_total = 0
        with (
            running(receiver_argv, receiver_port, env, cores=server_core) as receiver,
            running(replicated_argv, replicated_port, replicated_env, cores=server_core) as replicated_server,
            running(bare_argv, bare_port, cores=server_core) as bare,
        ):
            warmup = Path(tmp) / "warmup.lua"
            write_script(warmup, ids(0xFFFF, 2000), ids(0xFFFE, 2000))
            for server, port in (
                (bare, bare_port),
                (receiver, receiver_port),
                (replicated_server, replicated_port),
            ):
                drive(server, port, warmup, args.connections, 1)
            for url in (redis_url, replicated_url):
                redis.Redis.from_url(url).flushdb()
            for round_number in range(rounds):
                script = Path(tmp) / f"round{round_number}.lua"
                actions = ids(2 * round_number, distinct)
                write_script(script, actions, ids(2 * round_number + 1, distinct))
                if round_number % 2 == 0:
                    bare_runs.append(drive(bare, bare_port, script, args.connections, seconds)[0])
                run, acked = drive(receiver, receiver_port, script, args.connections, seconds)
                receiver_runs.append(run)
                missing, foreign = audit(redis_url, acked, set(actions))
                replicated_run, replicated_acked = drive(
                    replicated_server, replicated_port, script, args.connections, seconds
                )
                replicated_runs.append(replicated_run)
                replicated_missing, replicated_foreign = audit(replicated_url, replicated_acked, set(actions))
                if round_number % 2 == 1:
                    bare_runs.append(drive(bare, bare_port, script, args.connections, seconds)[0])
                acked_total += len(acked) + len(replicated_acked)
                if run.requests > distinct:
                    print(f"note: {run.requests} requests over {distinct} actions: some were redeliveries")
                lost += missing + replicated_missing
                extra += foreign + replicated_foreign

    receiver_rps = statistics.median(r.rps for r in receiver_runs)
    bare_rps = statistics.median(r.rps for r in bare_runs)
    ratios = [r.rps / b.rps for r, b in zip(receiver_runs, bare_runs, strict=True)]
    # The same comparison by the CPU each server spent a request: a stall of wrk or Redis idles a server,
    # which lowers its rate far more than it raises its cost.
    cpu_ratios = [b.cpu_us / r.cpu_us for r, b in zip(receiver_runs, bare_runs, strict=True)]
    replicated_ratios = [r.rps / b.rps for r, b in zip(replicated_runs, bare_runs, strict=True)]
    p50 = statistics.median(r.p50_ms for r in receiver_runs)
    p99 = statistics.median(r.p99_ms for r in receiver_runs)
    replicated_p99 = statistics.median(r.p99_ms for r in replicated_runs)
    non2xx = sum(r.non2xx + r.socket_errors for r in receiver_runs + replicated_runs)
    print(
        f"{'endpoint':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'non-2xx':>8}"
        f" {'CPU us/req':>11} {'busy':>5}"
    )
    for name, runs in (("bare", bare_runs), ("receiver", receiver_runs), ("replicated", replicated_runs)):
        for r in runs:
            print(
                f"{name:10} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.p999_ms:9.2f} {r.non2xx:8d}"
                f" {r.cpu_us:11.1f} {r.busy:5.2f}"
            )
    placement = (
        "all share every core"
        if server_core is None
        else f"servers on CPU {min(server_core)}, wrk and Redis on {sorted(other_cores or ())}"
    )
    print(f"{args.connections} connections, {seconds:.0f} s a run, {rounds} round(s); {placement}")
    print(
        f"audit: {lost} acknowledged actions not queued exactly once, {extra} foreign jobs, {non2xx} non-2xx"
    )
    print("ratio of each round: " + " ".join(f"{ratio:.3f}" for ratio in ratios))
    print(
        f"result: receiver ratio={statistics.median(ratios):.3f} p99_ms={p99:.2f} lost={lost} "
        f"rps={receiver_rps:.0f} bare_rps={bare_rps:.0f} p50_ms={p50:.2f} acked={acked_total} "
        f"non2xx={non2xx} extra={extra} ratio_min={min(ratios):.3f} ratio_max={max(ratios):.3f} "
        f"cpu_ratio={statistics.median(cpu_ratios):.3f} "
        f"replicated_ratio={statistics.median(replicated_ratios):.3f} "
        f"replicated_p99_ms={replicated_p99:.2f} pinned={int(server_core is not None)}"
    )


if __name__ == "__main__":
    main()
