"""kubernetes-pod-security plans: plan → apply → detect clean → re-plan empty,
layout preservation, the privileged/allowPrivilegeEscalation trap, params."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.kubernetes import parse as k8s_yaml
from jupiter.plugins.kubernetes.fix import K8sParams, KubernetesPodSecurity
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
PLUGIN = KubernetesPodSecurity()
MANUAL_RULES = {
    "K8S-READ-ONLY-ROOT-FS",
    "K8S-IMAGE-LATEST",
    "K8S-IMAGE-DIGEST",
    "K8S-PROBES",
    "K8S-RESOURCES",
    "K8S-DEFAULT-NAMESPACE",
    "K8S-HOST-NAMESPACES",
    "K8S-HOST-PORT",
    "K8S-DOCKER-SOCKET",
    "K8S-SECRET-ENV",
}


def target(tmp_path: Path) -> LocalTarget:
    shutil.copytree(FIXTURES, tmp_path / "repo")
    return LocalTarget(tmp_path / "repo")


def apply(repo: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        assert sha256_bytes(repo.read_bytes(change.path)) == change.before_sha256
        repo.write_bytes(change.path, change.content.encode())


def fix_all(repo: LocalTarget, params: K8sParams) -> tuple[list[FindingRecord], list[Plan]]:
    findings = PLUGIN.detect(repo, params)
    manual = []
    for finding in findings:
        plan = PLUGIN.plan(finding, repo, params)
        if plan.needs_manual:
            assert not plan.changes
            manual.append(plan)
            continue
        if plan.changes:
            results = PLUGIN.validate(plan, OverlayView(repo, plan))
            assert [r.status for r in results] == ["passed"], results
            apply(repo, plan)
    return findings, manual


def documents(text: str) -> list[str]:
    return [chunk for _, chunk in k8s_yaml.split(text)]


def test_fix_all_then_clean_and_replan_empty(tmp_path: Path) -> None:
    repo = target(tmp_path)
    params = K8sParams()
    findings, manual = fix_all(repo, params)
    remaining = PLUGIN.detect(repo, params)
    assert {f.rule_id for f in remaining} <= MANUAL_RULES
    assert {p.rule_id for p in manual} == {f.rule_id for f in remaining}
    for finding in findings:  # every automatic fix verifies, every plan is now empty
        again = PLUGIN.plan(finding, repo, params)
        assert not again.changes, finding.rule_id
        assert PLUGIN.is_fixed(finding, repo, params) is (finding.rule_id not in MANUAL_RULES)
    # Still YAML, with the values we meant.
    docs = list(YAML(typ="safe").load_all((repo.root / "app.yaml").read_text()))
    web, shipper = docs[1]["spec"]["template"]["spec"]["containers"]
    assert web["securityContext"] == {
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert shipper["securityContext"]["privileged"] is False
    assert shipper["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    pod = docs[1]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_layout_comments_and_other_documents_survive(tmp_path: Path) -> None:
    repo = target(tmp_path)
    fix_all(repo, K8sParams())
    before = (FIXTURES / "app.yaml").read_text()
    after = (repo.root / "app.yaml").read_text()
    old_docs, new_docs = documents(before), documents(after)
    assert len(new_docs) == len(old_docs) == 4
    # Header comments, the ConfigMap (quotes, inline comment) and the Service: byte for byte.
    for i in (0, 1, 3):
        assert new_docs[i] == old_docs[i]
    deployment = new_docs[2]
    assert deployment.startswith("---\n# The web tier.\napiVersion: apps/v1\n")
    assert '          image: "registry.example.com/shop/web:1.4.2"\n' in deployment
    assert "            - containerPort: 8080   # plain HTTP behind the mesh\n" in deployment
    # The comment that introduces the second container still sits right above it.
    assert (
        "        # Ships logs from the node; historically privileged.\n"
        "        - name: log-shipper\n"
    ) in deployment
    # Key order of untouched keys is kept.
    assert (
        deployment.index("replicas:")
        < deployment.index("selector:")
        < deployment.index("template:")
    )
    # The CronJob keeps its 4-space mappings and unindented sequences.
    jobs = (repo.root / "jobs.yaml").read_text()
    assert "                      securityContext:\n                          " in jobs
    assert "                              drop:\n                              - ALL\n" in jobs


def test_privileged_escalation_trap_is_fixed_together(tmp_path: Path) -> None:
    """allowPrivilegeEscalation: false next to privileged: true (or an added
    SYS_ADMIN) is rejected by the API server: the plan fixes all three."""
    repo = target(tmp_path)
    finding = next(
        f
        for f in PLUGIN.detect(repo)
        if f.rule_id == "K8S-PRIV-ESCALATION" and f.identity == "Deployment/shop-web/log-shipper"
    )
    plan = PLUGIN.plan(finding, repo, K8sParams())
    assert plan.risk.disruption is True
    assert any("no longer runs privileged" in w for w in plan.risk.warnings)
    assert any("CAP_SYS_ADMIN" in w for w in plan.risk.warnings)
    assert [r.status for r in PLUGIN.validate(plan, OverlayView(repo, plan))] == ["passed"]
    assert "-            privileged: true\n+            privileged: false\n" in plan.diff
    assert '+              add: ["NET_RAW"]\n' in plan.diff  # SYS_ADMIN gone, NET_RAW kept
    apply(repo, plan)
    rules = {
        f.rule_id for f in PLUGIN.detect(repo) if f.identity == "Deployment/shop-web/log-shipper"
    }
    assert not {"K8S-PRIV-ESCALATION", "K8S-PRIVILEGED", "K8S-CAP-SYS-ADMIN"} & rules


def test_validate_catches_an_invalid_hand_edit(tmp_path: Path) -> None:
    repo = target(tmp_path)
    text = (
        (repo.root / "app.yaml")
        .read_text()
        .replace(
            "            privileged: true\n",
            "            privileged: true\n            allowPrivilegeEscalation: false\n",
        )
    )
    plan = Plan(
        remediator=PLUGIN.name,
        rule_id="K8S-PRIVILEGED",
        title="t",
        changes=[
            WriteFile(
                path="app.yaml",
                content=text,
                before_sha256=sha256_bytes(repo.read_bytes("app.yaml")),
            )
        ],
    )
    [result] = PLUGIN.validate(plan, OverlayView(repo, plan))
    assert result.status == "failed"
    assert "log-shipper" in result.detail and "privileged: true" in result.detail


def test_run_as_non_root_sets_a_numeric_uid_and_warns(tmp_path: Path) -> None:
    repo = target(tmp_path)
    finding = next(
        f
        for f in PLUGIN.detect(repo)
        if f.rule_id == "K8S-RUN-AS-NON-ROOT" and f.identity == "CronJob/nightly-report/report"
    )
    plan = PLUGIN.plan(finding, repo, K8sParams(run_as_user=20001))
    assert "runAsUser: 20001" in plan.diff and "runAsNonRoot: true" in plan.diff
    assert any("UID 20001" in w and "runAsNonRoot alone" in w for w in plan.risk.warnings)
    with pytest.raises(InputError, match="run_as_user"):
        PLUGIN.parse_params({"run_as_user": 0})


def test_checkov_finding_fixes_every_container_of_its_resource(tmp_path: Path) -> None:
    repo = target(tmp_path)
    checkov = FindingRecord(  # as ingested from `checkov -o json`: resource, line range
        scanner="checkov",
        rule_id="CKV_K8S_20",
        category=Category.IAC_KUBERNETES,
        title="Containers should not run with allowPrivilegeEscalation",
        severity=Severity.HIGH,
        location=Location(path="app.yaml", start_line=14, end_line=56),
        extra={"resource": "Deployment.shop.shop-web"},
    )
    params = K8sParams()
    assert PLUGIN.handles(checkov)
    assert not PLUGIN.is_fixed(checkov, repo, params)
    plan = PLUGIN.plan(checkov, repo, params)
    assert plan.diff.count("+            allowPrivilegeEscalation: false") == 2
    apply(repo, plan)
    assert PLUGIN.is_fixed(checkov, repo, params)
    assert not PLUGIN.plan(checkov, repo, params).changes
    # SARIF carries no resource name: the line picks the document.
    sarif = checkov.model_copy(
        update={
            "rule_id": "CKV_K8S_38",
            "extra": {},
            "location": Location(path="jobs.yaml", start_line=1),
        }
    )
    plan = PLUGIN.plan(sarif, repo, params)
    assert "+                    automountServiceAccountToken: false\n" in plan.diff
    apply(repo, plan)
    assert PLUGIN.is_fixed(sarif, repo, params)


def test_human_decisions_are_manual_unless_params_supply_them(tmp_path: Path) -> None:
    repo = target(tmp_path)
    findings = PLUGIN.detect(repo)
    res = next(
        f
        for f in findings
        if f.rule_id == "K8S-RESOURCES" and f.identity == "Deployment/shop-web/web"
    )
    plan = PLUGIN.plan(res, repo, K8sParams())
    assert plan.needs_manual and "limits.cpu, limits.memory" in plan.needs_manual
    assert not plan.changes
    pinned = "fluent/fluent-bit:3.1.9@sha256:" + "a" * 64
    params = K8sParams.model_validate(
        {
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "1", "memory": "256Mi"},
            },
            "image_pins": {"fluent/fluent-bit": pinned},
        }
    )
    plan = PLUGIN.plan(res, repo, params)
    assert plan.needs_manual is None
    assert (
        "+            limits:\n+              cpu: '1'\n+              memory: 256Mi\n" in plan.diff
    )
    assert "cpu: 50m" not in plan.diff  # existing requests are left alone
    apply(repo, plan)
    pin = next(f for f in findings if f.rule_id == "K8S-IMAGE-LATEST")
    apply(repo, PLUGIN.plan(pin, repo, params))
    left = {(f.rule_id, f.identity) for f in PLUGIN.detect(repo)}
    assert ("K8S-RESOURCES", "Deployment/shop-web/web") not in left
    assert ("K8S-IMAGE-LATEST", "Deployment/shop-web/log-shipper") not in left
    assert ("K8S-IMAGE-DIGEST", "Deployment/shop-web/log-shipper") not in left
    probes = next(f for f in findings if f.rule_id == "K8S-PROBES")
    assert "probes depend on the app" in (PLUGIN.plan(probes, repo, params).needs_manual or "")


def test_default_namespace_with_param(tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api  # public API\n"
        "spec:\n  ports:\n  - port: 80\n"
    )
    repo = LocalTarget(tmp_path)
    [finding] = PLUGIN.detect(repo)
    assert finding.rule_id == "K8S-DEFAULT-NAMESPACE" and finding.identity == "Service/api"
    assert "namespace" in (PLUGIN.plan(finding, repo, K8sParams()).needs_manual or "")
    plan = PLUGIN.plan(finding, repo, K8sParams(namespace="shop"))
    apply(repo, plan)
    assert (tmp_path / "svc.yaml").read_text() == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api  # public API\n"
        "  namespace: shop\nspec:\n  ports:\n  - port: 80\n"
    )
    assert PLUGIN.detect(repo) == []


def test_plan_on_broken_file_raises_and_leaves_it_alone(tmp_path: Path) -> None:
    repo = target(tmp_path)
    finding = next(f for f in PLUGIN.detect(repo) if f.location.path == "jobs.yaml")
    broken = (
        (repo.root / "jobs.yaml")
        .read_text()
        .replace("    schedule:", "    schedule: x\n    schedule:")
    )
    (repo.root / "jobs.yaml").write_text(broken)
    with pytest.raises(InputError, match=r"^jobs\.yaml line 8: key 'schedule' appears twice"):
        PLUGIN.plan(finding, repo, K8sParams())
    assert (repo.root / "jobs.yaml").read_text() == broken
    assert not PLUGIN.is_fixed(finding, repo, K8sParams())


def test_stale_and_foreign_findings(tmp_path: Path) -> None:
    repo = target(tmp_path)
    finding = PLUGIN.detect(repo)[0]
    gone = finding.model_copy(update={"identity": "Deployment/renamed/web"})
    with pytest.raises(ConflictError, match="no longer holds the resource"):
        PLUGIN.plan(gone, repo, K8sParams())
    moved = finding.model_copy(update={"location": Location(path="nope.yaml")})
    with pytest.raises(ConflictError, match="no longer exists"):
        PLUGIN.plan(moved, repo, K8sParams())
    with pytest.raises(InputError, match="cannot plan rule 'CKV_K8S_999'"):
        PLUGIN.plan(finding.model_copy(update={"rule_id": "CKV_K8S_999"}), repo, K8sParams())


def test_crlf_manifest_keeps_its_line_endings(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\nspec:\n"
        "  containers:\n  - name: c\n    image: a:1\n"
    ).replace("\n", "\r\n")
    (tmp_path / "pod.yaml").write_bytes(text.encode())
    repo = LocalTarget(tmp_path)
    finding = next(
        f
        for f in PLUGIN.detect(repo)
        if f.rule_id == "K8S-PRIVILEGED" or f.rule_id == "K8S-PRIV-ESCALATION"
    )
    apply(repo, PLUGIN.plan(finding, repo, K8sParams()))
    data = (tmp_path / "pod.yaml").read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b"    securityContext:\r\n      allowPrivilegeEscalation: false\r\n" in data


def test_checkov_finding_fixable_only_in_part_is_manual(tmp_path: Path) -> None:
    repo = target(tmp_path)
    ck43 = FindingRecord(
        scanner="jupiter",
        rule_id="CKV_K8S_43",
        category=Category.IAC_KUBERNETES,
        title="Image should use digest",
        severity=Severity.LOW,
        location=Location(path="app.yaml", start_line=14),
        extra={"resource": "Deployment.shop.shop-web"},
    )
    web = "registry.example.com/shop/web:1.4.2"
    params = K8sParams(image_pins={web: web + "@sha256:" + "b" * 64})
    plan = PLUGIN.plan(ck43, repo, params)
    assert not plan.changes
    assert "log-shipper" in (plan.needs_manual or "") and "'web'" not in (plan.needs_manual or "")
    own = next(
        f
        for f in PLUGIN.detect(repo)
        if f.rule_id == "K8S-IMAGE-DIGEST" and f.identity == "Deployment/shop-web/web"
    )
    apply(repo, PLUGIN.plan(own.model_copy(update={"scanner": "jupiter"}), repo, params))
    assert PLUGIN.is_fixed(own, repo, params) and not PLUGIN.is_fixed(ck43, repo, params)


def test_sa_token_with_a_dedicated_service_account_is_disruptive(tmp_path: Path) -> None:
    (tmp_path / "op.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: op\n  namespace: ops\n"
        "spec:\n  template:\n    spec:\n      serviceAccountName: op-controller\n"
        "      containers:\n      - name: op\n        image: op:1\n"
    )
    repo = LocalTarget(tmp_path)
    token = next(f for f in PLUGIN.detect(repo) if f.rule_id == "K8S-SA-TOKEN-AUTOMOUNT")
    plan = PLUGIN.plan(token, repo, K8sParams())
    assert plan.risk.disruption is True
    assert any("'op-controller'" in w for w in plan.risk.warnings)
    plain = next(
        f for f in PLUGIN.detect(target(tmp_path / "t")) if f.rule_id == "K8S-SA-TOKEN-AUTOMOUNT"
    )
    assert PLUGIN.plan(plain, target(tmp_path / "u"), K8sParams()).risk.disruption is False
