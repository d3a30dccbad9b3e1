"""Deployment configuration checked without a cluster: the Helm values and the instance yaml.

``deploy/helm/values.yaml`` is validated against the Dagster chart's own values schema
(``deploy/helm/values.schema.subset.json``, transcribed from the chart; what it does and
does not check is in ``deploy/helm/README.md``). Helm validates the chart's defaults merged
with ours, and the defaults supply every key we leave out, so ``required`` lists are not
enforced here except where the chart makes them conditional on a choice we make (the
run launcher's type needs its config block). Types, enums, unknown keys
(``additionalProperties: false``) and those conditions are.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml
from jsonschema import Draft7Validator

from homicide_assets.lib.settings import REPO_ROOT

HELM = REPO_ROOT / "deploy" / "helm"


def _relax_required(node, in_then: bool = False):
    """Drop ``required`` lists except inside if/then (see the module docstring)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "required" and isinstance(value, list) and not in_then:
                continue
            out[key] = _relax_required(value, in_then or key == "then")
        return out
    if isinstance(node, list):
        return [_relax_required(v, in_then) for v in node]
    return node


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads((HELM / "values.schema.subset.json").read_text())
    return Draft7Validator(_relax_required(schema))


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def _errors(validator: Draft7Validator, values: dict) -> list[str]:
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in validator.iter_errors(values)]


def test_helm_values_conform_to_the_dagster_chart_schema(validator, values):
    """Every key we set exists in the chart's schema with the right type and enum value."""
    assert _errors(validator, values) == []


def test_the_schema_check_catches_typos_wrong_types_and_missing_launcher_config(validator, values):
    """The same check fails on a misspelt key, a wrong type, an unknown launcher and a
    K8sRunLauncher without its config block."""
    typo = copy.deepcopy(values)
    typo["runLauncher"]["config"]["k8sRunLauncher"]["envVar"] = ["X=1"]
    wrong_type = copy.deepcopy(values)
    wrong_type["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] = "four"
    unknown_launcher = copy.deepcopy(values)
    unknown_launcher["runLauncher"]["type"] = "KubernetesRunLauncher"
    no_config = copy.deepcopy(values)
    no_config["runLauncher"]["config"] = {}
    for broken in (typo, wrong_type, unknown_launcher, no_config):
        assert _errors(validator, broken), "a broken values file passed"


def test_helm_values_say_what_the_deployment_needs(values):
    """Kubernetes run launcher; external PostgreSQL with psycopg2 and no password in the
    file; no ingress (the SSO proxy is the way in); telemetry off; the code location's
    secrets, data volume and env reach every launched run."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    pg = values["postgresql"]
    assert pg["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert pg["postgresqlPassword"] == "" and pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["ingress"]["enabled"] is False
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert values["telemetry"]["enabled"] is False
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert location["dagsterApiGrpcArgs"] == ["--module-name", "homicide_assets.definitions"]
    assert location["includeConfigInLaunchedRuns"]["enabled"] is True
    claim = {v["persistentVolumeClaim"]["claimName"] for v in location["volumes"]}
    assert claim == {v["persistentVolumeClaim"]["claimName"] for v in launcher["volumes"]} == {"homicide-data"}
    assert {s["name"] for s in location["envSecrets"]} == {s["name"] for s in launcher["envSecrets"]}
    assert "HOMICIDE_DATA_DIR=/data" in launcher["envVars"]
    text = (HELM / "values.yaml").read_text().lower()
    for secret_word in ("password:", "pseudonym_key:", "secret_key"):
        for line in text.splitlines():
            if secret_word in line and not line.strip().startswith("#"):
                assert line.split(":", 1)[1].strip() in ('""', ""), f"a secret value in values.yaml: {line}"


def test_helm_renders_when_helm_is_installed(tmp_path):
    """`helm template` with the chart, when both helm and a local copy of the chart exist."""
    helm = shutil.which("helm")
    chart = REPO_ROOT / "deploy" / "helm" / "charts" / "dagster"
    if helm is None:
        pytest.skip("helm is not installed here (not in Debian's archive; get.helm.sh is not reachable)")
    if not chart.exists():
        pytest.skip(f"the dagster chart is not vendored at {chart} (helm pull dagster/dagster --version 1.13.27)")
    import subprocess

    done = subprocess.run([helm, "template", "homicide", str(chart), "-f", str(HELM / "values.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "K8sRunLauncher" in done.stdout


def test_dagster_postgres_yaml_is_a_valid_instance_config(tmp_path, monkeypatch):
    """deploy/dagster.postgres.yaml passes Dagster's own instance-config validation and
    selects PostgreSQL storage, the queued coordinator, run monitoring and retries."""
    from dagster._core.instance.config import dagster_instance_config

    shutil.copyfile(REPO_ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    for name, value in {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USERNAME": "dagster",
                        "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "dagster"}.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_queue"]["max_concurrent_runs"] >= 1
    assert config["run_monitoring"]["enabled"] is True and config["run_retries"]["enabled"] is True
    assert config["telemetry"]["enabled"] is False
