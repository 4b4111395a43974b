"""REAL Checkov before and after: ingest Checkov's own findings on the
Kubernetes and Dockerfile fixtures, plan and apply them with
kubernetes-pod-security and dockerfile-hardening, and run Checkov again.

Two Checkov runs in all (~2-5 s each). The RHEL fixture is left out:
Checkov's Dockerfile parser (dockerfile-parse) stops at the first heredoc,
so it cannot see a USER written after one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from jupiter.ingest import checkov as checkov_ingest
from jupiter.models import FindingRecord
from jupiter.plans import WriteFile, sha256_bytes
from jupiter.plugins.base import Remediator
from jupiter.plugins.dockerfile.fix import DockerfileHardening, DockerfileParams
from jupiter.plugins.kubernetes.fix import K8sParams, KubernetesPodSecurity
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.tools import tool

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIXED_K8S = {
    "CKV_K8S_16",
    "CKV_K8S_20",
    "CKV_K8S_23",
    "CKV_K8S_28",
    "CKV_K8S_31",
    "CKV_K8S_37",
    "CKV_K8S_38",
    "CKV_K8S_39",
    "CKV_K8S_40",
}
FIXED_DOCKER = {"CKV_DOCKER_3", "CKV_DOCKER_8"}


def run_checkov(binary: Path, root: Path) -> list[FindingRecord]:
    proc = subprocess.run(
        [
            str(binary),
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "-d",
            str(root.resolve()),
            "--framework",
            "kubernetes",
            "dockerfile",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = root.parent / f"{root.name}.checkov.json"
    report.write_text(proc.stdout)
    return list(checkov_ingest.parse(report))


def keys(findings: list[FindingRecord]) -> set[tuple[str, str]]:
    return {(f.rule_id, f.location.path or "") for f in findings}


def test_checkov_before_and_after(tmp_path: Path) -> None:
    binary = tool("checkov", "checkov")
    before_dir = tmp_path / "before"
    shutil.copytree(FIXTURES / "k8s", before_dir / "k8s")
    shutil.copytree(
        FIXTURES / "docker", before_dir / "docker", ignore=shutil.ignore_patterns("rhel")
    )
    before = run_checkov(binary, before_dir)
    failing = {f.rule_id for f in before}
    assert FIXED_K8S | FIXED_DOCKER | {"CKV_DOCKER_4"} <= failing  # the test can fail

    after_dir = tmp_path / "after"
    shutil.copytree(before_dir, after_dir, ignore=shutil.ignore_patterns("*.json"))
    repo = LocalTarget(after_dir)
    plugins: list[tuple[Remediator, object]] = [
        (KubernetesPodSecurity(), K8sParams()),
        (DockerfileHardening(), DockerfileParams()),
    ]
    planned: list[tuple[Remediator, object, FindingRecord, bool]] = []
    for finding in before:
        for plugin, params in plugins:
            if not plugin.handles(finding):
                continue
            plan = plugin.plan(finding, repo, params)  # type: ignore[arg-type]
            if plan.changes:
                results = plugin.validate(plan, OverlayView(repo, plan))
                assert [r.status for r in results] == ["passed"], results
            for change in plan.changes:
                assert isinstance(change, WriteFile)
                assert sha256_bytes(repo.read_bytes(change.path)) == change.before_sha256
                repo.write_bytes(change.path, change.content.encode())
            planned.append((plugin, params, finding, plan.needs_manual is None))
    assert {f.rule_id for _, _, f, automatic in planned if automatic} >= FIXED_K8S | FIXED_DOCKER

    after = run_checkov(binary, after_dir)
    still = keys(after)
    assert not {rule for rule, _ in still} & (FIXED_K8S | FIXED_DOCKER), sorted(still)
    # ADD of a URL stays (needs a human); the local ADDs are gone.
    assert {p for r, p in still if r == "CKV_DOCKER_4"} == {"docker/debian/Dockerfile"}
    # Our verification agrees with Checkov on every finding it handled.
    for plugin, params, finding, _ in planned:
        fixed = plugin.is_fixed(finding, repo, params)  # type: ignore[arg-type]
        in_checkov = (finding.rule_id, finding.location.path or "") in still
        assert fixed is not in_checkov, (finding.rule_id, finding.location.path, fixed)
