"""The alerting rules and the dashboard in `deploy/` name only metrics a receiver or a worker exports,
and the rules pass `promtool check rules`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest

from workers import metrics as worker_metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yaml"
METRIC = re.compile(r"\btrellis_[a-z_]+")
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def exported(text: str) -> set[str]:
    """Every series name a scrape can carry: each family's name with its suffixes."""
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return families | {family + suffix for family in families for suffix in SUFFIXES}


def named(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC.findall(expr)}


def rule_expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "trellis.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(client: httpx.AsyncClient) -> None:
    receiver = (await client.get("/metrics")).text
    worker = generate_latest(worker_metrics.REGISTRY).decode()  # what each worker serves on its port
    available = exported(receiver) | exported(worker)
    assert named(rule_expressions() + dashboard_expressions()) - available == set()


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_the_alerting_rules_pass_promtool() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
