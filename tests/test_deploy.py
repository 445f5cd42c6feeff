"""The deployment files parse, and agree with the code: setting names, commands, ports and probes.

Read as text and YAML: no container engine or cluster is needed.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from trellis.cli import main
from trellis.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
PORT = str(Settings.model_fields["port"].default)


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_all(DEPLOY / "kubernetes" / name)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def test_every_variable_the_deployment_sets_is_a_trellis_setting() -> None:
    named: set[str] = set(env_file(DEPLOY / "trellis.env.example"))
    for service in compose()["services"].values():
        named |= {k for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)}
    for doc in [*of_kind("ConfigMap").values(), *of_kind("Secret").values()]:
        named |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    for unit in (DEPLOY / "systemd").glob("*.service"):
        named |= set(re.findall(r"TRELLIS_[A-Z_]+", unit.read_text()))
    named.discard("TRELLIS_CONFIG_FILE")
    assert named - SETTINGS == set()


def trellis_commands() -> set[str]:
    return set(main.commands)


def test_every_container_and_unit_runs_a_real_trellis_command() -> None:
    commands = [
        s["command"][0] for s in compose()["services"].values() if s.get("image", "").startswith("trellis")
    ]
    for deployment in of_kind("Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        commands += [c["args"][0] for c in [*spec.get("initContainers", []), *spec["containers"]]]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        commands += re.findall(r"/opt/trellis/bin/trellis (\w+)", unit.read_text())
    assert commands
    assert set(commands) <= trellis_commands()


def test_compose_runs_two_receivers_behind_a_proxy_two_workers_and_persistent_redis() -> None:
    services = compose()["services"]
    assert sorted(name for name, s in services.items() if s.get("command") == ["serve"]) == [
        "receiver-1",
        "receiver-2",
    ]
    assert len([s for s in services.values() if s.get("command") == ["worker"]]) == 2
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    assert services["postgres"]["image"].startswith("postgres")
    assert services["emulator"]["profiles"] == ["emulator"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert f"server receiver-1:{PORT}" in nginx
    assert f"server receiver-2:{PORT}" in nginx


def test_the_receivers_probes_ask_readyz_and_healthz_on_the_port_it_listens_on() -> None:
    receiver = of_kind("Deployment")["trellis-receiver"]["spec"]["template"]["spec"]["containers"][0]
    port = {p["name"]: p["containerPort"] for p in receiver["ports"]}["http"]
    assert str(port) == PORT == of_kind("ConfigMap")["trellis"]["data"]["TRELLIS_PORT"]
    assert receiver["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert receiver["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for name in ("receiver-1", "receiver-2"):
        assert f"127.0.0.1:{PORT}/readyz" in " ".join(compose()["services"][name]["healthcheck"]["test"])


def test_the_service_ingress_and_budgets_point_at_the_deployments() -> None:
    deployments = {
        name: d["spec"]["template"]["metadata"]["labels"] for name, d in of_kind("Deployment").items()
    }
    service = of_kind("Service")["trellis-receiver"]
    assert service["spec"]["selector"] == deployments["trellis-receiver"]
    backend = of_kind("Ingress")["trellis-receiver"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "trellis-receiver"
    budgets = of_kind("PodDisruptionBudget")
    assert {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in budgets.values()} == set(
        deployments
    )


def test_workers_get_longer_to_stop_than_a_job_may_run() -> None:
    job_timeout = Settings.model_fields["job_timeout_seconds"].default
    worker = of_kind("Deployment")["trellis-worker"]["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] > job_timeout
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "systemd" / "trellis-worker.service").read_text())
    assert int(unit["Service"]["TimeoutStopSec"]) > job_timeout


@pytest.mark.parametrize("deployment", ["trellis-receiver", "trellis-worker"])
def test_containers_run_as_a_non_root_user(deployment: str) -> None:
    spec = of_kind("Deployment")[deployment]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_image_is_multi_stage_slim_and_not_root() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) == 2
    assert all(stage.endswith("-slim") for stage in stages)
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user
    assert user[-1] not in ("root", "0")
    assert f"TRELLIS_PORT={PORT}" in dockerfile
    assert 'ENTRYPOINT ["trellis"]' in dockerfile


def test_the_image_builds_from_every_package_the_distribution_installs() -> None:
    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    packages = {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        line.split()[1]
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    }
    assert packages <= copied


def test_redis_asks_for_a_password_and_publishes_no_port() -> None:
    redis = compose()["services"]["redis"]
    assert "--requirepass" in redis["command"]
    assert "ports" not in redis
    assert "TRELLIS_REDIS_PASSWORD" in of_kind("Secret")["trellis"]["stringData"]
    assert "TRELLIS_REDIS_PASSWORD" in env_file(DEPLOY / "trellis.env.example")


def test_only_trellis_reaches_the_datastores_and_the_ingress_speaks_tls() -> None:
    policy = of_kind("NetworkPolicy")["trellis-datastores"]["spec"]
    [allowed] = policy["ingress"][0]["from"]
    assert allowed["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "trellis"}
    assert of_kind("Ingress")["trellis-receiver"]["spec"]["tls"]


def compose_ha() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.ha.yaml").read_text())
    return document


def ha_overlay() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The high-availability overlay's kustomization and the manifests it adds to the base."""
    overlay = DEPLOY / "kubernetes-ha"
    kustomization: dict[str, Any] = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    added = [
        doc
        for name in kustomization["resources"]
        if name.endswith(".yaml")
        for doc in load_all(overlay / name)
    ]
    return kustomization, added


def ha_patched_settings() -> dict[str, str]:
    kustomization, _ = ha_overlay()
    values: dict[str, str] = {}
    for patch in kustomization["patches"]:
        for operation in yaml.safe_load(patch["patch"]):
            name = operation["path"].rsplit("/", 1)[1]
            if name.startswith(ENV_PREFIX):
                values[name] = str(operation["value"])
    return values


def test_the_ha_variants_set_only_trellis_settings() -> None:
    named = set(ha_patched_settings())
    for service in compose_ha()["services"].values():
        named |= {k for k in service.get("environment", {}) if k.startswith(ENV_PREFIX)}
    assert named - SETTINGS == set()


def test_compose_ha_runs_a_replica_and_three_sentinels_and_points_every_trellis_service_at_them() -> None:
    services = compose_ha()["services"]
    sentinels = sorted(name for name, s in services.items() if "--sentinel" in " ".join(s.get("command", [])))
    assert len(sentinels) == 3
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1] == "redis"
    assert all("--appendonly" in services[name]["command"] for name in ("redis", "redis-replica"))
    monitor = re.search(r"sentinel monitor (\S+) (\S+) 6379 (\d)", services[sentinels[0]]["command"][0])
    assert monitor is not None
    assert monitor.group(2) == "redis"
    assert monitor.group(3) == "2"
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("trellis"):
            environment = services[name]["environment"]
            assert {a.split(":")[0] for a in environment["TRELLIS_REDIS_SENTINELS"].split(",")} == set(
                sentinels
            )
            assert environment["TRELLIS_REDIS_SENTINEL_MASTER"] == monitor.group(1)
            assert environment["TRELLIS_REDIS_MIN_REPLICAS"] == "1"


def test_kubernetes_ha_adds_a_replica_and_three_sentinels_that_trellis_is_pointed_at() -> None:
    kustomization, added = ha_overlay()
    assert "../kubernetes" in kustomization["resources"]
    sets = {doc["metadata"]["name"]: doc for doc in added if doc["kind"] == "StatefulSet"}
    assert sets["redis"]["spec"]["replicas"] == 2
    assert sets["sentinel"]["spec"]["replicas"] == 3
    script = sets["sentinel"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    monitor = re.search(r"sentinel monitor (\S+) (\S+) 6379 (\d)", script)
    assert monitor is not None
    assert monitor.group(3) == "2"
    settings = ha_patched_settings()
    service = sets["sentinel"]["spec"]["serviceName"]
    assert settings["TRELLIS_REDIS_SENTINELS"].split(",") == [
        f"sentinel-{i}.{service}:26379" for i in range(3)
    ]
    assert settings["TRELLIS_REDIS_SENTINEL_MASTER"] == monitor.group(1)
    assert settings["TRELLIS_REDIS_MIN_REPLICAS"] == "1"
    for statefulset in sets.values():
        labels = statefulset["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "trellis"  # the NetworkPolicy lets them meet
