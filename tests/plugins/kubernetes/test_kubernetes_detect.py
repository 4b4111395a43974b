"""kubernetes-pod-security detection: rules, identities, YAML errors, Checkov ids."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Severity
from jupiter.plugins.kubernetes import detect as k8s
from jupiter.plugins.kubernetes import parse as k8s_yaml
from jupiter.plugins.kubernetes.fix import KubernetesPodSecurity
from jupiter.targets.local import LocalTarget
from tests.tools import tool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
PLUGIN = KubernetesPodSecurity()


def target(tmp_path: Path) -> LocalTarget:
    shutil.copytree(FIXTURES, tmp_path / "repo")
    return LocalTarget(tmp_path / "repo")


def by_rule(findings: list[FindingRecord], identity: str) -> set[str]:
    return {f.rule_id for f in findings if f.identity == identity}


def test_detects_per_container_with_stable_identity(tmp_path: Path) -> None:
    findings = PLUGIN.detect(target(tmp_path))
    assert all(f.category is Category.IAC_KUBERNETES for f in findings)
    shipper = by_rule(findings, "Deployment/shop-web/log-shipper")
    assert {
        "K8S-PRIVILEGED",
        "K8S-PRIV-ESCALATION",
        "K8S-CAP-SYS-ADMIN",
        "K8S-CAP-NET-RAW",
        "K8S-RUN-AS-NON-ROOT",
        "K8S-LOW-UID",
        "K8S-CAPS-DROP-ALL",
        "K8S-SECCOMP",
        "K8S-IMAGE-LATEST",
        "K8S-IMAGE-DIGEST",
        "K8S-PROBES",
        "K8S-RESOURCES",
    } <= shipper
    web = by_rule(findings, "Deployment/shop-web/web")
    assert "K8S-PRIVILEGED" not in web and "K8S-IMAGE-LATEST" not in web
    assert {"K8S-RUN-AS-NON-ROOT", "K8S-LOW-UID", "K8S-PRIV-ESCALATION"} <= web
    root = next(
        f
        for f in findings
        if f.rule_id == "K8S-RUN-AS-NON-ROOT" and f.identity == "Deployment/shop-web/web"
    )
    assert root.evidence == "runAsUser: 0" and root.severity is Severity.HIGH
    assert root.location.path == "app.yaml" and root.location.start_line == 32  # "- name: web"
    assert root.extra["resource"] == "Deployment.shop.shop-web"
    assert by_rule(findings, "Deployment/shop-web") == {
        "K8S-SA-TOKEN-AUTOMOUNT",
        "K8S-POD-SECURITY-CONTEXT",
    }
    # The CronJob: no probes (batch), its own namespace, pod-level rule on the resource.
    cron = by_rule(findings, "CronJob/nightly-report/report")
    assert "K8S-PROBES" not in cron and "K8S-RUN-AS-NON-ROOT" in cron
    # ConfigMap and Service are in a namespace and have no containers: nothing to report.
    assert not [f for f in findings if f.extra["kind"] in ("Service", "ConfigMap")]


def test_fingerprint_survives_an_edit_that_moves_lines(tmp_path: Path) -> None:
    repo = target(tmp_path)
    before = {f.fingerprint("a") for f in PLUGIN.detect(repo)}
    text = (repo.root / "app.yaml").read_text()
    (repo.root / "app.yaml").write_text("# a new comment\n# and another\n" + text)
    after = PLUGIN.detect(repo)
    assert {f.fingerprint("a") for f in after} == before
    assert min(f.location.start_line or 0 for f in after if f.location.path == "app.yaml") > 3


def test_effective_settings_pod_level_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n"
        "spec:\n  automountServiceAccountToken: false\n  securityContext:\n"
        "    runAsNonRoot: true\n    runAsUser: 20000\n    seccompProfile:\n"
        "      type: RuntimeDefault\n  containers:\n  - name: ok\n    image: a:1@sha256:00\n"
        "  - name: override\n    image: b:latest\n    securityContext:\n      runAsUser: 0\n"
        "      seccompProfile:\n        type: Unconfined\n"
    )
    findings = PLUGIN.detect(LocalTarget(tmp_path))
    ok = by_rule(findings, "Pod/p/ok")
    assert not {"K8S-RUN-AS-NON-ROOT", "K8S-LOW-UID", "K8S-SECCOMP", "K8S-IMAGE-DIGEST"} & ok
    assert {"K8S-RUN-AS-NON-ROOT", "K8S-LOW-UID", "K8S-SECCOMP", "K8S-IMAGE-LATEST"} <= by_rule(
        findings, "Pod/p/override"
    )
    assert by_rule(findings, "Pod/p") == {"K8S-DEFAULT-NAMESPACE"}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n", 5, "'name' appears twice"),
        ("apiVersion: v1\nkind: Pod\nspec:\n\tcontainers: []\n", 4, "tab"),
        ("a: 1\n---\napiVersion: v1\nkind: [Pod\n", 5, "fix the YAML syntax"),
    ],
)
def test_broken_yaml_is_an_input_error_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    repo = target(tmp_path)
    (repo.root / "broken.yaml").write_text(text)
    with pytest.raises(InputError, match=rf"^broken\.yaml line {line}: .*{words}"):
        k8s.load_resources(repo, "broken.yaml")
    result = k8s.scan(repo)  # detect goes on with the other files and says what it skipped
    assert [str(e).split(":")[0] for e in result.errors] == [f"broken.yaml line {line}"]
    assert {f.location.path for f in result.findings} == {"app.yaml", "jobs.yaml", "workloads.yaml"}


def test_non_kubernetes_yaml_and_skipped_dirs_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\njobs:\n  a:\n    runs-on: x\n")
    (tmp_path / "node_modules").mkdir()
    shutil.copy(FIXTURES / "app.yaml", tmp_path / "node_modules" / "app.yaml")
    assert PLUGIN.detect(LocalTarget(tmp_path)) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.yaml", k8s_yaml.Indent(mapping=2, sequence=4, offset=2)),
        ("jobs.yaml", k8s_yaml.Indent(mapping=4, sequence=2, offset=0)),
    ],
)
def test_indent_is_detected_per_file(name: str, expected: k8s_yaml.Indent) -> None:
    docs = k8s_yaml.load(name, (FIXTURES / name).read_text())
    assert [
        d.indent
        for d in docs
        if d.data is not None and d.data.get("kind") in ("Deployment", "CronJob")
    ] == [expected]


def test_unchanged_round_trip_is_byte_exact() -> None:
    for path in FIXTURES.glob("*.yaml"):
        text = path.read_text()
        docs = k8s_yaml.load(path.name, text)
        for doc in docs:
            doc.changed = doc.data is not None  # force a re-dump of every document
        assert k8s_yaml.dump(docs) == text, path.name


def test_checkov_ids_exist_in_installed_checkov() -> None:
    """Every Checkov id we claim is a real check of the pinned Checkov, and it
    is about what our rule is about (its name mentions the subject)."""
    binary = tool("checkov", "checkov")
    checks = next((binary.parent.parent / "lib").glob("python3*/site-packages/checkov"))
    names: dict[str, str] = {}
    for source in (checks / "kubernetes" / "checks" / "resource" / "k8s").glob("*.py"):
        text = source.read_text()
        found = re.search(r'id = "(CKV_K8S_\d+)"', text)
        name = re.search(r'name = "([^"]+)"', text)
        if found and name:
            names[found.group(1)] = name.group(1).lower()
    subjects = {
        "K8S-PRIVILEGED": "privileged",
        "K8S-PRIV-ESCALATION": "privilegeescalation",
        "K8S-CAP-SYS-ADMIN": "sys_admin",
        "K8S-RUN-AS-NON-ROOT": "root",
        "K8S-LOW-UID": "uid",
        "K8S-CAPS-DROP-ALL": "capabilities",
        "K8S-CAP-NET-RAW": "net_raw",
        "K8S-SECCOMP": "seccomp",
        "K8S-SA-TOKEN-AUTOMOUNT": "service account tokens",
        "K8S-READ-ONLY-ROOT-FS": "read-only",
        "K8S-IMAGE-LATEST": "tag",
        "K8S-IMAGE-DIGEST": "digest",
        "K8S-DEFAULT-NAMESPACE": "namespace",
        "K8S-PROBES": "probe",
        "K8S-RESOURCES": ("cpu", "memory"),
        "K8S-POD-SECURITY-CONTEXT": "security context",
        "K8S-CONTAINER-SC": "security context",
        "K8S-IMAGE-PULL-POLICY": "pull policy",
        "K8S-DEFAULT-SA-TOKEN": "default service accounts",
        "K8S-HOST-NAMESPACES": "share the host",
        "K8S-HOST-PORT": "hostport",
        "K8S-DOCKER-SOCKET": "docker daemon socket",
        "K8S-SECRET-ENV": "secrets as environment variables",
    }
    for rule in k8s.RULES:
        for ck in rule.checkov:
            assert ck in names, ck
            words = subjects[rule.rule_id]
            words = (words,) if isinstance(words, str) else words
            assert any(w in names[ck] for w in words), (rule.rule_id, ck, names[ck])
