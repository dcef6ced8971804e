"""The Helm chart with a real helm binary: lint, template every scenario under
charts/keda-queue-scaler/ci/, validate every rendered object against the
Kubernetes schemas (strict) of the oldest and newest versions we support, and
check the chart's own promises (headless Service, restricted pods, unique names).

helm comes from scripts/install-helm (pinned, built once with `go install`,
cached); `make test` runs it first and passes its path in KQS_HELM.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.conftest import load_tool

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "keda-queue-scaler"
SCENARIOS = ["default", *sorted(p.stem for p in (CHART / "ci").glob("*.yaml"))]
# Oldest and newest Kubernetes we support (Chart.yaml kubeVersion >= 1.25), and one between.
KUBERNETES = ["1.25.0", "1.31.0", "1.37.0"]
# Custom resources: no Kubernetes schema; checked for shape below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("cert-manager.io/v1", "Certificate"),
}


def template(helm: str, scenario: str, *args: str, release: str = "kqs") -> list[dict[str, Any]]:
    values = [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}.yaml")]
    if "--kube-version" not in args:  # the same answer whichever helm (PATH or built) runs
        args = (*args, "--kube-version", KUBERNETES[-1])
    done = subprocess.run(
        [helm, "template", release, str(CHART), "--namespace", "platform", *values, *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_lint_strict(helm: str) -> None:
    for scenario in SCENARIOS:
        values = [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}.yaml")]
        done = subprocess.run(
            [helm, "lint", "--strict", str(CHART), *values],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (scenario, done.stdout, done.stderr)
        assert "[INFO]" not in done.stdout, done.stdout  # e.g. "icon is recommended"


def test_chart_readme_has_the_sections_users_expect() -> None:
    headings = re.findall(r"^## (.+)$", (CHART / "README.md").read_text(), flags=re.M)
    assert headings == ["Prerequisites", "Install", "Verify", "Upgrade", "Uninstall", "Values"]


def test_chart_icon_is_the_svg_shipped_with_the_chart() -> None:
    import xml.etree.ElementTree as ET

    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["icon"].endswith("/charts/keda-queue-scaler/icon.svg")
    root = ET.parse(CHART / "icon.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("version", KUBERNETES)
def test_rendered_objects_are_valid_kubernetes(helm: str, scenario: str, version: str) -> None:
    docs = template(helm, scenario, "--kube-version", version)
    assert docs, "nothing rendered"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            assert doc["metadata"]["name"].startswith("kqs-")
            assert isinstance(doc["spec"], dict)
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def test_default_render_promises(helm: str) -> None:
    docs = _by_kind(template(helm, "default"))
    assert set(docs) == {"Deployment", "Service", "ServiceAccount", "NetworkPolicy"}
    # Only KEDA should call the scaler, so the NetworkPolicy is on by default: gRPC
    # from the KEDA operator's pods in KEDA's namespace.
    grpc_rule = docs["NetworkPolicy"]["spec"]["ingress"][0]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert grpc_rule["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
        "podSelector": {"matchLabels": {"app": "keda-operator"}},
    }]  # fmt: skip
    service = docs["Service"]["spec"]
    assert service["clusterIP"] == "None"  # headless: KEDA balances over the DNS answers
    assert {p["name"]: p["port"] for p in service["ports"]} == {"grpc": 6000, "metrics": 9464}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # restricted Pod Security Standard
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["grpc"]["port"] == 6000
    assert container["readinessProbe"]["grpc"]["port"] == 6000
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KQS_PORT"] == "6000"
    assert float(env["KQS_GRACE_PERIOD"]) < pod["terminationGracePeriodSeconds"]
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "topology.kubernetes.io/zone", "kubernetes.io/hostname",
    ]  # fmt: skip


def test_tls_and_mtls_render(helm: str) -> None:
    tls = _by_kind(template(helm, "tls-values"))
    container = tls["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KQS_TLS_CERT_FILE"].endswith("/tls.crt")
    assert "KQS_TLS_CLIENT_CA_FILE" not in env
    assert container["readinessProbe"]["exec"]["command"][:2] == ["keda-queue-scaler", "probe"]
    volumes = tls["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "keda-queue-scaler-serving-cert"}} in volumes

    mtls = _by_kind(template(helm, "mtls-values"))
    container = mtls["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KQS_TLS_CLIENT_CA_FILE"].endswith("/ca.crt")
    probe = container["livenessProbe"]["exec"]["command"]
    assert "--tls-cert-file" in probe  # the probe must pass mTLS too
    cert = mtls["Certificate"]["spec"]
    assert "kqs-keda-queue-scaler.platform.svc.cluster.local" in cert["dnsNames"]
    assert cert["secretName"] == "kqs-keda-queue-scaler-tls"


def test_monitoring_render(helm: str) -> None:
    docs = _by_kind(template(helm, "monitoring-values"))
    assert docs["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"
    dashboard = docs["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "keda-queue-scaler.json").read_text())
    assert json.loads(dashboard["data"]["keda-queue-scaler.json"]) == shipped
    policy = docs["NetworkPolicy"]["spec"]
    grpc_rule = policy["ingress"][0]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert grpc_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "keda"
    }


def test_credential_secrets_are_mounted_as_the_credentials_dir(helm: str) -> None:
    docs = _by_kind(template(helm, "replicas-values"))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KQS_CREDENTIALS_DIR"] == "/etc/keda-queue-scaler/credentials"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/etc/keda-queue-scaler/credentials/redis-main"] == "credentials-redis-main"
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["credentials-rabbitmq-prod"]["secret"]
    assert secret == {"secretName": "rabbitmq.prod", "defaultMode": 0o440}  # group-readable
    assert pod["securityContext"]["fsGroup"] == 10001


def test_two_releases_never_collide(helm: str) -> None:
    names = []
    for release in ("team-a", "team-b"):
        for doc in template(helm, "monitoring-values", release=release):
            names.append((doc["kind"], doc["metadata"]["name"]))
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=0"], "replicaCount"),
        (["--set", "service.grpcPort=70000"], "grpcPort"),
        (["--set", "config.logLevel=chatty"], "logLevel"),
        (["--set", "unknownValue=1"], "unknownValue"),
        (["--set", "tls.enabled=true"], "tls.enabled needs tls.existingSecret"),
        (["--set", "tls.clientAuth=true"], "tls.clientAuth (mTLS) needs tls.enabled"),
        (["--set", "config.gracePeriod=40"], "config.gracePeriod must be below"),
    ],
)
def test_bad_values_are_rejected(helm: str, args: list[str], message: str) -> None:
    done = subprocess.run(
        [helm, "template", "kqs", str(CHART), "--kube-version", KUBERNETES[-1], *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr


def notes(helm: str, tmp_path: Path, *args: str) -> str:
    # `helm install --dry-run` needs a cluster; render NOTES.txt as a plain template.
    import shutil

    chart = tmp_path / "chart"
    if not chart.exists():
        shutil.copytree(CHART, chart)
        (chart / "templates" / "NOTES.txt").rename(chart / "notes.txt")
        (chart / "templates" / "notes.yaml").write_text(
            'notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n'
        )
    done = subprocess.run(
        [helm, "template", "kqs", str(chart), "--namespace", "platform", "--kube-version",
         KUBERNETES[-1], "--show-only", "templates/notes.yaml", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(yaml.safe_load(done.stdout)["notes"])


def test_notes_give_the_scaler_address(helm: str, tmp_path: Path) -> None:
    text = notes(helm, tmp_path)
    assert "scalerAddress: kqs-keda-queue-scaler.platform.svc.cluster.local:6000" in text
    assert "authenticationRef" not in text
    # The port-forward runs in the background, so the curl after it is reached.
    forward = next(
        line for line in text.splitlines() if "kubectl" in line and "port-forward" in line
    )
    assert forward.rstrip().endswith("&")


def test_tls_notes_name_only_what_the_examples_create(helm: str, tmp_path: Path) -> None:
    text = notes(helm, tmp_path, "-f", str(CHART / "ci" / "mtls-values.yaml"))
    examples = CHART.parents[1] / "examples"
    named = re.findall(r"examples/([\w-]+\.yaml)", text)
    assert set(named) == {
        "mtls-clustertriggerauthentication.yaml",
        "mtls-triggerauthentication.yaml",
    }
    objects = {
        (d["kind"], d["metadata"]["name"])
        for n in named
        for d in yaml.safe_load_all((examples / n).read_text())
        if d
    }
    ref = re.search(r"authenticationRef:.*\n\s+name: (\S+)\n\s+kind: (\S+)", text)
    assert ref is not None
    assert (ref[2], ref[1]) in objects
    assert "Secret kqs-keda-queue-scaler-tls in platform" in text
    assert "tlsClientCert and tlsClientKey" in text


def _undocumented(lines: list[str]) -> list[str]:
    """Leaves of a values file not under a `# --` comment (on themselves or a parent)."""
    key = re.compile(r"^(\s*)([A-Za-z][\w]*):(.*)$")
    stack: list[tuple[int, bool]] = []  # (indent, documented) of open parents
    undocumented = []
    for i, line in enumerate(lines):
        m = key.match(line)
        if not m:
            continue
        indent, name, rest = len(m[1]), m[2], m[3].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        j = i - 1
        documented = False
        while j >= 0 and lines[j].strip().startswith("#"):
            documented = documented or lines[j].strip().startswith("# --")
            j -= 1
        covered = documented or any(d for _, d in stack)
        nxt = next((m2 for m2 in map(key.match, lines[i + 1 :]) if m2), None)
        is_leaf = bool(rest) or nxt is None or len(nxt[1]) <= indent
        if is_leaf and not covered:
            undocumented.append(name)
        stack.append((indent, covered))
    return undocumented


def test_every_value_is_documented() -> None:
    assert _undocumented((CHART / "values.yaml").read_text().splitlines()) == []


def test_the_documentation_check_can_fail() -> None:
    sample = [
        "# -- documented",
        "a: 1",
        "section:",
        "  # -- fine",
        "  b: 2",
        "  c: 3",
        "d:",
        "  e: {}",
    ]
    assert _undocumented(sample) == ["c", "e"]


def test_schema_covers_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if node.get("type") != "object" or not isinstance(value, dict) or "properties" not in node:
            return
        assert node.get("additionalProperties") is False, path
        for k, v in value.items():
            assert k in node["properties"], f"{path}.{k} missing from values.schema.json"
            walk(v, node["properties"][k], f"{path}.{k}")

    walk(values, schema, "values")


def test_chart_readme_values_table_is_current() -> None:
    chartdocs = load_tool("chartdocs")
    readme = (CHART / "README.md").read_text()
    expected = chartdocs.render(readme, (CHART / "values.yaml").read_text())
    assert readme == expected, (
        "run `python tools/chartdocs.py` and commit charts/keda-queue-scaler/README.md"
    )
    assert readme.count("\n| `") >= 50  # the table is there


def test_allow_lists_reach_the_scaler_as_settings(helm: str) -> None:
    from scaler.settings import from_sources

    docs = _by_kind(template(
        helm, "default",
        "--set", "config.allowBrokers={*.data.svc.cluster.local:6379,10.0.0.0/8}",
        "--set", "config.allowAwsEndpoints={https://sqs.internal.example}",
        "--set", "config.maxBrokerClients=64",
    ))  # fmt: skip
    env = {
        e["name"]: e["value"]
        for e in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    settings = from_sources(None, env={k: v for k, v in env.items() if k.startswith("KQS_")
                                        and "FILE" not in k and "DIR" not in k})  # fmt: skip
    assert settings.allow_brokers == "*.data.svc.cluster.local:6379,10.0.0.0/8"
    assert settings.allow_aws_endpoints == "https://sqs.internal.example"
    assert settings.max_broker_clients == 64
    assert "KQS_ALLOW_AWS_ROLES" not in env
