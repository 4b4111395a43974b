"""MAINTAINER, apt, relative WORKDIR (fixed) and SSH port, lone update,
duplicate alias (named for a person), checked by real Checkov before and
after (one run each)."""

from __future__ import annotations

from pathlib import Path

from jupiter.plans import WriteFile
from jupiter.plugins.dockerfile.detect import check
from jupiter.plugins.dockerfile.fix import DockerfileHardening, DockerfileParams
from jupiter.targets.local import LocalTarget
from tests.tools import checkov_failed

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM debian:12 as build
MAINTAINER Jane "J" <jane@example.com>
WORKDIR /src
WORKDIR app
RUN apt update && \\
    apt install -y --no-install-recommends curl \\
    && rm -rf /var/lib/apt/lists/*
RUN apt-get update
FROM debian:12 as build
EXPOSE 8080 22
USER 10001
HEALTHCHECK CMD ["true"]
CMD ["app"]
"""
FIXED = {"CKV_DOCKER_6", "CKV_DOCKER_9", "CKV_DOCKER_10"}
LEFT = {"CKV_DOCKER_1", "CKV_DOCKER_5", "CKV_DOCKER_11"}


def _checkov(root: Path) -> set[str]:
    return checkov_failed(root, "dockerfile")


def test_instruction_rules_against_checkov(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    assert _checkov(tmp_path) >= FIXED | LEFT
    target, plugin, params = LocalTarget(str(tmp_path)), DockerfileHardening(), DockerfileParams()
    manual = {}
    for finding in check(target):
        plan = plugin.plan(finding, target, params)
        if plan.needs_manual:
            manual[finding.rule_id] = plan.needs_manual
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            (tmp_path / change.path).write_text(change.content)
            assert plugin.validate(plan, target)[0].status == "passed"
        if not plan.needs_manual:
            assert plugin.is_fixed(finding, target, params), finding.rule_id
    after = (tmp_path / "Dockerfile").read_text()
    assert 'LABEL maintainer="Jane \\"J\\" <jane@example.com>"\n' in after
    assert "WORKDIR /src/app\n" in after
    assert (
        "RUN apt-get update && \\\n    apt-get install -y --no-install-recommends curl \\\n"
        in after
    )
    assert "/var/lib/apt/lists/*" in after
    assert set(manual) == {"DOCKER-EXPOSE-SSH", "DOCKER-UPDATE-ALONE", "DOCKER-STAGE-ALIAS"}
    failed = _checkov(tmp_path)
    assert not failed & FIXED, failed
    assert failed >= LEFT
    # a second pass edits nothing
    for finding in check(target):
        assert plugin.plan(finding, target, params).changes == []


def test_relative_workdir_without_a_known_base_needs_a_person(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM node:20\nWORKDIR app\nUSER node\nCMD ["x"]\n')
    target = LocalTarget(str(tmp_path))
    [finding] = [f for f in check(target) if f.rule_id == "DOCKER-WORKDIR-RELATIVE"]
    plan = DockerfileHardening().plan(finding, target, DockerfileParams())
    assert plan.changes == [] and "base image's working directory" in (plan.needs_manual or "")


def test_apt_subcommand_without_an_apt_get_twin_needs_a_person(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nRUN apt list --installed\nUSER 1\n")
    target = LocalTarget(str(tmp_path))
    [finding] = [f for f in check(target) if f.rule_id == "DOCKER-APT"]
    plan = DockerfileHardening().plan(finding, target, DockerfileParams())
    assert plan.changes == [] and "apt list" in (plan.needs_manual or "")
