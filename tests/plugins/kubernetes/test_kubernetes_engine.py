"""The whole path through the engine (scan → plan → snapshot → validate →
apply → verify) for kubernetes-pod-security and dockerfile-hardening, with
findings that went through the store; a second run has nothing to do."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from jupiter.engine import Engine
from jupiter.plugins.dockerfile.fix import DockerfileHardening
from jupiter.plugins.kubernetes.fix import KubernetesPodSecurity

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_engine_fixes_manifests_and_dockerfiles(sqlite_engine: Engine, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "k8s", repo / "deploy")
    shutil.copytree(FIXTURES / "docker", repo / "images")
    service = (repo / "deploy" / "app.yaml").read_text().split("\n---\n")[-1]
    registry = sqlite_engine.registry
    for plugin in (KubernetesPodSecurity(), DockerfileHardening()):
        if plugin.name not in registry.plugins:  # until pyproject registers them
            registry.add(plugin)
    mine = {"kubernetes-pod-security", "dockerfile-hardening"}

    only = ["iac.kubernetes", "iac.docker"]
    first = sqlite_engine.fix(f"local:{repo}", only=only)
    steps = first["steps"]
    assert {s["remediator"] for s in steps} == mine
    counts = Counter((s["remediator"], s["status"]) for s in steps)
    assert first["status"] == "succeeded", counts
    assert not {status for _, status in counts} - {"verified", "needs_manual", "already_fixed"}
    assert counts[("kubernetes-pod-security", "verified")] >= 20
    assert counts[("dockerfile-hardening", "verified")] >= 8
    assert (repo / "deploy" / "app.yaml").read_text().endswith(service)

    second = sqlite_engine.fix(f"local:{repo}", only=only)
    assert second["status"] == "nothing_to_do"
    assert {s["status"] for s in second["steps"]} == {"needs_manual"}
