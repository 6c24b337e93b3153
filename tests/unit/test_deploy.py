"""The deployment files, checked statically (no Docker or Kubernetes here): they parse, every mounted or
copied path exists, every command is a real CLI command, every VIGIE_* variable is a real setting, images
are pinned, and the pieces agree with each other (data source uids, dashboard path, scrape job, ports)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.settings import PROJECT_ROOT, Settings
from grafana import generate, pipeline_health
from grafana.datasources import CLICKHOUSE_UID, PROMETHEUS_UID
from vigie.cli import build_parser

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SETTINGS = {f"VIGIE_{name.upper()}" for name in Settings.model_fields}
PROVISIONING = PROJECT_ROOT / "grafana" / "provisioning"


def cli_accepts(args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as e:  # argparse exits on unknown commands or options
        raise AssertionError(f"not a vigie command: {args}") from e


def test_compose_images_are_pinned_and_commands_exist() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "clickhouse", "grafana", "prometheus", "worker", "simulator", "migrate", "topics"} <= set(services)
    for name, svc in services.items():
        image = svc.get("image", "")
        assert re.search(r":v?\d+(\.\d+)+$", image) or image == "vigie:local", f"{name}: image not pinned: {image}"
        if image == "vigie:local" and svc.get("entrypoint") == ["sh", "-c"]:  # a chain of vigie commands
            for step in svc["command"][0].split("&&"):
                assert step.split()[0] == "vigie", f"{name}: {step}"
                cli_accepts(step.split()[1:])
        elif image == "vigie:local":
            cli_accepts(svc["command"])
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert int(COMPOSE["x-vigie-env"]["VIGIE_TOPIC_PARTITIONS"]) >= services["worker"]["deploy"]["replicas"]


def test_compose_mounts_and_build_context_exist() -> None:
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        if "build" in svc:
            context = DEPLOY / svc["build"]["context"]
            assert (context / svc["build"]["dockerfile"]).is_file()
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (PROJECT_ROOT / src).exists(), src


def test_image_holds_every_package() -> None:
    """The image installs the project from what it copies: every package pyproject names must be copied."""
    import tomllib

    include = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = {line.split()[1] for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert {p.rstrip("*") for p in include["include"]} <= copied


def test_compose_environment_names_are_settings() -> None:
    grafana_env = set(COMPOSE["services"]["grafana"]["environment"])
    for name, svc in COMPOSE["services"].items():
        env = svc.get("environment", {})
        if name == "grafana":
            continue
        for key in env:
            if key.startswith("VIGIE_"):
                assert key in SETTINGS, f"{name}: {key} is not a setting"
    # the provisioning file's ${...} placeholders are all set in Grafana's environment
    text = (PROVISIONING / "datasources" / "vigie.yaml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) <= grafana_env


def test_provisioning_matches_the_dashboards() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "vigie.yaml").read_text())["datasources"]
    by_uid = {d["uid"]: d for d in ds}
    assert by_uid[CLICKHOUSE_UID]["type"] == "grafana-clickhouse-datasource"
    assert by_uid[CLICKHOUSE_UID]["jsonData"]["protocol"] == "native"
    assert by_uid[PROMETHEUS_UID]["type"] == "prometheus"
    used = set()
    for uid in generate.uids():
        used |= set(re.findall(r'"uid": "(vigie-[a-z]+)"', (generate.DASHBOARD_DIR / f"{uid}.json").read_text()))
    assert used - set(generate.uids()) <= set(by_uid)
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "vigie.yaml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2][::-1] for v in COMPOSE["services"]["grafana"]["volumes"])
    assert (DEPLOY / mounts[provider["options"]["path"]]).resolve() == generate.DASHBOARD_DIR
    home = COMPOSE["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/vigie-situation.json"


def test_prometheus_scrapes_the_workers_under_the_job_the_dashboard_expects() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == pipeline_health.JOB)
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and str(sd["port"]) == COMPOSE["x-vigie-env"]["VIGIE_METRICS_PORT"]


def _k8s_docs(directory: Path) -> list[dict]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs = []
    for res in kustomization.get("resources", []):
        path = directory / res
        assert path.exists(), f"{directory}: {res} missing"
        if path.is_file():
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_kustomize_manifests(overlay: str) -> None:
    directory = DEPLOY / "k8s" / overlay
    docs = _k8s_docs(directory) if overlay == "base" else _k8s_docs(DEPLOY / "k8s" / "base")
    kinds = {d["kind"]: d for d in docs}
    assert {"ConfigMap", "Deployment", "Job", "CronJob", "Service", "PodDisruptionBudget"} <= set(kinds)
    assert set(kinds["ConfigMap"]["data"]) <= SETTINGS
    jobs = {d["metadata"]["name"]: d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
            for d in docs if d["kind"] == "CronJob"}
    assert jobs == {"vigie-purge": ["db", "purge"], "vigie-forecast": ["forecast", "predict", "--days", "7"]}
    assert float(kinds["ConfigMap"]["data"]["VIGIE_RETENTION_PERSONAL_DAYS"]) > 0
    for doc in docs:
        pod = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            pod = pod["jobTemplate"]["spec"]
        spec = pod.get("template", {}).get("spec", {})
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if c["image"].startswith("vigie"):
                cli_accepts(c["args"])
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"vigie-worker", "vigie-notifier", "vigie-alertmanager", "vigie-moveup"}
    worker = deployments["vigie-worker"]["spec"]["template"]["spec"]["containers"][0]
    port = next(p for p in worker["ports"] if p["name"] == "metrics")["containerPort"]
    assert str(port) == kinds["ConfigMap"]["data"]["VIGIE_METRICS_PORT"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert worker[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    grace = deployments["vigie-worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(kinds["ConfigMap"]["data"]["VIGIE_WORKER_STOP_TIMEOUT_S"])
    if overlay != "base":
        prod = yaml.safe_load((directory / "kustomization.yaml").read_text())
        replicas = prod["replicas"][0]["count"]
        partitions = next(int(op["value"]) for p in prod["patches"] for op in yaml.safe_load(p["patch"])
                          if op["path"].endswith("VIGIE_TOPIC_PARTITIONS"))
        assert replicas <= partitions
        ops = {op["path"]: op.get("value") for p in prod["patches"] for op in yaml.safe_load(p["patch"])}
        config = {k.removeprefix("/data/"): v for k, v in ops.items() if k.startswith("/data/")}
        assert set(config) <= SETTINGS
        assert config["VIGIE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"  # never PLAINTEXT between machines
        assert (config["VIGIE_TOPIC_REPLICATION_FACTOR"], config["VIGIE_TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert len(config["VIGIE_KAFKA_BOOTSTRAP"].split(",")) >= int(config["VIGIE_TOPIC_REPLICATION_FACTOR"])
        # each patched pod mounts the client certificates (a list set, or one mount appended with "/-")
        mounts = [v if isinstance(v, dict) else v[0] for k, v in ops.items() if k.removesuffix("/-").endswith(
            "volumeMounts")]
        assert len(mounts) >= 2 and all(m["mountPath"] == "/etc/vigie/kafka-tls" for m in mounts)
        assert all(config[f"VIGIE_KAFKA_SSL_{f}"].startswith("/etc/vigie/kafka-tls/") for f in ("CAFILE", "CERTFILE",
                                                                                              "KEYFILE"))
        # network policies: every Vigie pod is selected; egress only where it must go: the workers and the admin
        # jobs to the brokers, ClickHouse and DNS; the notifier to ClickHouse and Alertmanager; Alertmanager out
        # over HTTPS (the paging gateway)
        policies = [d for d in _k8s_docs(directory) if d["kind"] == "NetworkPolicy"]
        pods = [d["spec"]["template"]["metadata"]["labels"] if d["kind"] != "CronJob" else
                d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
                for d in docs if d["kind"] in ("Deployment", "Job", "CronJob")]
        kafka_port = int(config["VIGIE_KAFKA_BOOTSTRAP"].split(",")[0].rsplit(":", 1)[1])
        ch_port = int(kinds["ConfigMap"]["data"]["VIGIE_CLICKHOUSE_PORT"])
        egress = {"vigie-worker": {kafka_port, ch_port, 53}, "vigie-admin": {kafka_port, ch_port, 53},
                  "vigie-notifier": {ch_port, 9093, 53}, "vigie-alertmanager": {443, 53}}
        ingress = {"vigie-worker": {port}, "vigie-admin": set(), "vigie-notifier": set(), "vigie-alertmanager": {9093}}
        for labels in pods:
            mine = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
            assert len(mine) == 1, labels
            name = labels["app.kubernetes.io/name"]
            egress_ports = {port["port"] for rule in mine[0]["spec"]["egress"] for port in rule["ports"]}
            assert egress_ports == egress[name], name
            ingress_ports = {port["port"] for rule in mine[0]["spec"]["ingress"] for port in rule["ports"]}
            assert ingress_ports <= ingress[name], name


def test_compose_has_no_known_secret_and_nothing_open_without_a_password() -> None:
    """Every secret must come from deploy/.env (``make secrets``): no fallback value; no anonymous Grafana; the
    unauthenticated Prometheus is not published."""
    from vigie.cli import STACK_SECRETS

    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used == set(STACK_SECRETS)
    for name in STACK_SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), f"{name} must be required, never defaulted: {uses}"
    grafana = COMPOSE["services"]["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana
    assert "ports" not in COMPOSE["services"]["prometheus"]
    example = (DEPLOY / ".env.example").read_text()
    assert set(re.findall(r"^(\w+)=$", example, re.M)) == set(STACK_SECRETS)


def test_vigie_secrets_writes_every_secret_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    from vigie.cli import STACK_SECRETS, main

    out = tmp_path / "deploy" / ".env"
    assert main(["secrets", "--out", str(out)]) == 0
    values = dict(line.split("=", 1) for line in out.read_text().splitlines() if not line.startswith("#"))
    assert set(values) == set(STACK_SECRETS)
    assert len(set(values.values())) == len(values) and all(len(v) >= 32 for v in values.values())
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["secrets", "--out", str(out)]) == 1 and dict(  # kept: the stack was set up with them
        line.split("=", 1) for line in out.read_text().splitlines() if not line.startswith("#")) == values
    assert main(["secrets", "--out", str(out), "--force"]) == 0 and out.read_text().count("=") == len(values)


def test_only_the_migrations_and_the_purge_hold_the_migrators_account() -> None:
    """The pipeline writes as an account that cannot change a table; the one that can (DDL, mutations, creating
    the other users) is given to the migrate step and the purge only."""
    services = COMPOSE["services"]
    holders = {name for name, svc in services.items()
               if "VIGIE_CLICKHOUSE_MIGRATOR_PASSWORD" in (svc.get("environment") or {})}
    assert holders == {"migrate"}
    assert services["clickhouse"]["environment"]["CLICKHOUSE_USER"] == (
        services["migrate"]["environment"]["VIGIE_CLICKHOUSE_MIGRATOR_USER"])
    assert COMPOSE["x-vigie-env"]["VIGIE_CLICKHOUSE_USER"] != services["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    holders = set()
    for doc in _k8s_docs(DEPLOY / "k8s" / "base"):
        pod = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            pod = pod["jobTemplate"]["spec"]
        spec = pod.get("template", {}).get("spec", {})
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if {"secretRef": {"name": "vigie-migrator"}} in c.get("envFrom", []):
                holders.add(" ".join(c["args"]))
    assert holders == {"db migrate", "db purge"}


def test_the_workers_read_the_shipped_alert_rules() -> None:
    """Kubernetes: the rules ConfigMap is the shipped file, mounted where VIGIE_ALERT_RULES says; compose and the
    image: the image's copy (the Dockerfile sets VIGIE_ALERT_RULES to it)."""
    base = DEPLOY / "k8s" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    (generator,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "vigie-alert-rules"]
    assert generator["files"] == ["rules.toml=alert-rules.toml"]
    assert (base / "alert-rules.toml").read_text() == (DEPLOY / "alerts" / "rules.toml").read_text()
    (worker,) = [d for d in _k8s_docs(base) if d["kind"] == "Deployment" and d["metadata"]["name"] == "vigie-worker"]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "alert-rules"]
    assert env["VIGIE_ALERT_RULES"] == mount["mountPath"] + "/rules.toml"
    assert {"name": "alert-rules", "configMap": {"name": generator["name"]}} in pod["volumes"]
    assert "VIGIE_ALERT_RULES=/app/deploy/alerts/rules.toml" in (DEPLOY / "Dockerfile").read_text()


def test_alertmanager_is_deployed_with_the_shipped_routing_and_the_webhook_file() -> None:
    """Compose and Kubernetes run Alertmanager on the generated routing (deploy/alertmanager/alertmanager.yml),
    with the webhook address mounted where the routing reads it; the notifier points at it; compose's default
    webhook address is the notifier's own receiver."""
    from vigie.notify import ROUTING_FILE, WEBHOOK_URL_FILE

    am, notifier = COMPOSE["services"]["alertmanager"], COMPOSE["services"]["notifier"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in am["volumes"])}
    assert (DEPLOY / mounts["/etc/alertmanager/alertmanager.yml"]).resolve() == ROUTING_FILE
    hook = (DEPLOY / mounts[WEBHOOK_URL_FILE]).read_text().strip()
    assert hook == f"http://notifier:{notifier['command'][notifier['command'].index('--receive') + 1]}/"
    assert notifier["environment"]["VIGIE_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    assert COMPOSE["services"]["grafana"]["environment"]["VIGIE_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    base = DEPLOY / "k8s" / "base"
    assert (base / "alertmanager.yml").read_text() == ROUTING_FILE.read_text()
    generators = yaml.safe_load((base / "kustomization.yaml").read_text())["configMapGenerator"]
    assert {"name": "vigie-alertmanager", "files": ["alertmanager.yml"]} in generators
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs(base)}
    pod = docs["Deployment", "vigie-alertmanager"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    by_volume = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert by_volume["webhook"] == WEBHOOK_URL_FILE.rsplit("/", 1)[0]
    assert {"name": "webhook", "secret": {"secretName": "vigie-alertmanager-webhook", "defaultMode": 0o400}} in (
        pod["volumes"])
    assert by_volume["config"] == "/etc/alertmanager/alertmanager.yml"
    (notifier_c,) = docs["Deployment", "vigie-notifier"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in notifier_c["env"]}
    service_port = docs["Service", "vigie-alertmanager"]["spec"]["ports"][0]["port"]
    assert env["VIGIE_ALERTMANAGER_URL"] == f"http://vigie-alertmanager:{service_port}"
