"""kustomize patches are fixed where the field is produced; Helm templates
name the values key."""

from __future__ import annotations

from pathlib import Path

from jupiter.models import FindingRecord, Location, Severity
from jupiter.plans import WriteFile
from jupiter.plugins.kubernetes.fix import K8sParams, KubernetesPodSecurity
from jupiter.targets.local import LocalTarget

PLUGIN = KubernetesPodSecurity()
BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0
"""
PATCH = """\
# prod needs the debugger, says the ticket
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          securityContext:
            privileged: true
"""


def _write(root: Path, files: dict[str, str]) -> LocalTarget:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return LocalTarget(root)


def _checkov_finding(path: str, rule: str, resource: str) -> FindingRecord:
    return FindingRecord(
        scanner="checkov",
        rule_id=rule,
        title=rule,
        severity=Severity.HIGH,
        location=Location(path=path, start_line=2, end_line=13),
        extra={"check_type": "kubernetes", "resource": resource},
    )


def test_kustomize_patch_fixed_only_where_it_sets_the_field(tmp_path: Path) -> None:
    target = _write(
        tmp_path,
        {
            "base/deployment.yaml": BASE,
            "base/kustomization.yaml": "resources: [deployment.yaml]\n",
            "overlays/prod/kustomization.yaml": (
                "resources: [../../base]\npatches:\n  - path: patch.yaml\n"
            ),
            "overlays/prod/patch.yaml": PATCH,
        },
    )
    found, errors = PLUGIN.survey(target)
    assert errors == []
    in_patch = {f.rule_id for f in found if f.location.path == "overlays/prod/patch.yaml"}
    assert in_patch == {"K8S-PRIVILEGED"}  # the only value the patch produces
    in_base = {f.rule_id for f in found if f.location.path == "base/deployment.yaml"}
    assert {"K8S-RUN-AS-NON-ROOT", "K8S-PRIV-ESCALATION", "K8S-SECCOMP"} <= in_base

    params = K8sParams()
    for finding in found:
        plan = PLUGIN.plan(finding, target, params)
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            (tmp_path / change.path).write_text(change.content)
    patch = (tmp_path / "overlays/prod/patch.yaml").read_text()
    assert patch == PATCH.replace("privileged: true", "privileged: false")
    base = (tmp_path / "base/deployment.yaml").read_text()
    assert "allowPrivilegeEscalation: false" in base and "runAsNonRoot: true" in base

    # A scanner that reads the patch alone reports fields the base sets.
    finding = _checkov_finding("overlays/prod/patch.yaml", "CKV_K8S_23", "Deployment.default.web")
    plan = PLUGIN.plan(finding, target, params)
    assert plan.changes == []
    assert plan.needs_manual and "kustomize patch" in plan.needs_manual
    assert "overlays/prod/kustomization.yaml" in plan.needs_manual


def test_helm_template_names_the_values_key(tmp_path: Path) -> None:
    template = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
        "          image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n"
        "          securityContext:\n"
        "            {{- toYaml .Values.securityContext | nindent 12 }}\n"
    )
    target = _write(
        tmp_path,
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "chart/values.yaml": "securityContext: {}\nimage: {repository: app, tag: '1'}\n",
            "chart/templates/deployment.yaml": template,
        },
    )
    found, errors = PLUGIN.survey(target)
    assert found == [] and errors == []  # a template is not YAML until rendered
    path = "chart/templates/deployment.yaml"
    plan = PLUGIN.plan(
        _checkov_finding(path, "CKV_K8S_20", "Deployment.default.app"), target, K8sParams()
    )
    assert plan.changes == []
    assert plan.needs_manual is not None
    assert ".Values.securityContext in chart/values.yaml" in plan.needs_manual
    plan = PLUGIN.plan(
        _checkov_finding(path, "CKV_K8S_38", "Deployment.default.app"), target, K8sParams()
    )
    assert plan.needs_manual and "does not read automountServiceAccountToken" in plan.needs_manual
