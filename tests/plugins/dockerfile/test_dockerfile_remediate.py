"""dockerfile-hardening plans: plan → apply → detect clean → re-plan empty, per base family."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import Plan, WriteFile, sha256_bytes
from jupiter.plugins.dockerfile.fix import DockerfileHardening, DockerfileParams
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "docker"
PLUGIN = DockerfileHardening()
PARAMS = DockerfileParams()


def target(tmp_path: Path) -> LocalTarget:
    shutil.copytree(FIXTURES, tmp_path / "repo")
    return LocalTarget(tmp_path / "repo")


def apply(repo: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, WriteFile)
        assert sha256_bytes(repo.read_bytes(change.path)) == change.before_sha256
        repo.write_bytes(change.path, change.content.encode())


def fix(repo: LocalTarget, path: str, rule: str) -> Plan:
    finding = next(f for f in PLUGIN.detect(repo) if f.location.path == path and f.rule_id == rule)
    plan = PLUGIN.plan(finding, repo, PARAMS)
    assert [r.status for r in PLUGIN.validate(plan, OverlayView(repo, plan))] == ["passed"]
    apply(repo, plan)
    assert PLUGIN.is_fixed(finding, repo, PARAMS)
    assert not PLUGIN.plan(finding, repo, PARAMS).changes
    return plan


USERADD = "RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home app"
USER_FIXES = {
    "alpine": (
        "HEALTHCHECK --interval=30s CMD wget -qO- http://127.0.0.1:8080/healthz || exit 1\n"
        "RUN addgroup -S -g 10001 app && adduser -S -D -H -u 10001 -G app app\n"
        "USER 10001:10001\n"
        "# Start the API\n"
        'ENTRYPOINT ["/usr/local/bin/api"]\n'
    ),
    "debian": (
        "COPY src/ ./src/\n\nUSER root\n"
        f"{USERADD}\n"
        "USER 10001:10001\n"
        'CMD ["python", "-m", "src.app"]\n'
    ),
    "ubuntu": (f'EXPOSE 8080\n{USERADD}\nUSER 10001:10001\nCMD ["nginx", "-g", "daemon off;"]\n'),
    "rhel": (
        "add app.py /opt/app/\n"
        f"{USERADD}\n"
        "USER 10001:10001\n"
        'CMD ["python3.12", "/opt/app/app.py"]\n'
    ),
    "distroless": (
        'COPY --from=builder /bin/worker /worker\nUSER 65532:65532\nENTRYPOINT ["/worker"]\n'
    ),
    "scratch": (
        'copy --from=build /src/target/release/tool /tool\nuser 10001:10001\nentrypoint ["/tool"]\n'
    ),
}


@pytest.mark.parametrize("family", sorted(USER_FIXES))
def test_root_user_fixed_in_the_base_images_idiom(tmp_path: Path, family: str) -> None:
    repo = target(tmp_path)
    path = f"{family}/Dockerfile"
    before = (FIXTURES / path).read_text()
    plan = fix(repo, path, "DOCKER-ROOT-USER")
    after = (repo.root / path).read_text()
    assert after.endswith(USER_FIXES[family])
    # Only lines were inserted: every original line is still there, in order.
    kept = iter(after.splitlines())
    assert all(line in kept for line in before.splitlines())
    assert len(after.splitlines()) - len(before.splitlines()) in (1, 2)
    unknown = family == "scratch"
    assert any("without a passwd entry" in w for w in plan.risk.warnings) is unknown
    assert plan.risk.manual_steps[-1].startswith("rebuild and test the image")


def test_existing_non_root_user_is_reused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM node:20\nUSER node\nRUN npm ci\nUSER root\nRUN apt-get update\n\n"
        '# serve\nCMD ["node", "server.js"]\n'
    )
    repo = LocalTarget(tmp_path)
    fix(repo, "Dockerfile", "DOCKER-ROOT-USER")
    assert (
        (tmp_path / "Dockerfile")
        .read_text()
        .endswith('RUN apt-get update\n\nUSER node\n\n# serve\nCMD ["node", "server.js"]\n')
    )


def test_add_of_local_paths_becomes_copy(tmp_path: Path) -> None:
    repo = target(tmp_path)
    plan = fix(repo, "ubuntu/Dockerfile", "DOCKER-ADD")
    assert "-ADD site/ /var/www/html/\n+COPY site/ /var/www/html/\n" in plan.diff
    fix(repo, "rhel/Dockerfile", "DOCKER-ADD")
    assert "\ncopy app.py /opt/app/\n" in (repo.root / "rhel/Dockerfile").read_text()


def test_add_of_url_or_archive_needs_a_human(tmp_path: Path) -> None:
    repo = target(tmp_path)
    findings = [
        f
        for f in PLUGIN.detect(repo)
        if f.location.path == "debian/Dockerfile" and f.rule_id == "DOCKER-ADD"
    ]
    local, url = sorted(findings, key=lambda f: f.location.start_line or 0)
    plan = PLUGIN.plan(url, repo, PARAMS)
    assert plan.needs_manual and "downloads a URL" in plan.needs_manual and not plan.changes
    apply(repo, PLUGIN.plan(local, repo, PARAMS))
    assert PLUGIN.plan(url, repo, PARAMS).needs_manual  # still there, still manual
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "Dockerfile").write_text(
        "FROM alpine:3.20\nADD rootfs.tar.gz /\nADD --checksum=sha256:00 a.txt /a\n"
    )
    view = LocalTarget(tmp_path / "x")
    reasons = [
        PLUGIN.plan(f, view, PARAMS).needs_manual or ""
        for f in PLUGIN.detect(view)
        if f.rule_id == "DOCKER-ADD"
    ]
    assert ["unpacks this archive" in r for r in reasons] == [True, False]
    assert "flags COPY does not have" in reasons[1]


def test_healthcheck_and_latest_need_a_human_or_a_pin(tmp_path: Path) -> None:
    repo = target(tmp_path)
    findings = PLUGIN.detect(repo)
    health = next(f for f in findings if f.rule_id == "DOCKER-NO-HEALTHCHECK")
    assert "app-specific" in (PLUGIN.plan(health, repo, PARAMS).needs_manual or "")
    latest = next(f for f in findings if f.rule_id == "DOCKER-IMAGE-LATEST")
    assert "image_pins" in (PLUGIN.plan(latest, repo, PARAMS).needs_manual or "")
    pinned = DockerfileParams(
        image_pins={
            "gcr.io/distroless/static-debian12": "gcr.io/distroless/static-debian12:nonroot"
        }
    )
    plan = PLUGIN.plan(latest, repo, pinned)
    apply(repo, plan)
    assert (
        "FROM gcr.io/distroless/static-debian12:nonroot\n"
        in (repo.root / "distroless/Dockerfile").read_text()
    )
    assert PLUGIN.is_fixed(latest, repo, pinned)


def test_fix_everything_then_replan_is_empty(tmp_path: Path) -> None:
    repo = target(tmp_path)
    findings = PLUGIN.detect(repo)
    for finding in findings:
        plan = PLUGIN.plan(finding, repo, PARAMS)
        apply(repo, plan)
    left = PLUGIN.detect(repo)
    assert {f.rule_id for f in left} == {
        "DOCKER-NO-HEALTHCHECK",
        "DOCKER-ADD",
        "DOCKER-IMAGE-LATEST",
    }
    for finding in findings:
        again = PLUGIN.plan(finding, repo, PARAMS)
        assert not again.changes
        assert (again.needs_manual is None) is PLUGIN.is_fixed(finding, repo, PARAMS)


def test_checkov_findings_map_to_the_built_in_rules(tmp_path: Path) -> None:
    repo = target(tmp_path)
    ck3 = FindingRecord(
        scanner="checkov",
        rule_id="CKV_DOCKER_3",
        category=Category.IAC_DOCKER,
        title="Ensure that a user for the container has been created",
        severity=Severity.HIGH,
        location=Location(path="ubuntu/Dockerfile", start_line=1, end_line=8),
    )
    ck4 = ck3.model_copy(update={"rule_id": "CKV_DOCKER_4"})
    assert PLUGIN.handles(ck3) and not PLUGIN.is_fixed(ck3, repo, PARAMS)
    apply(repo, PLUGIN.plan(ck3, repo, PARAMS))
    apply(repo, PLUGIN.plan(ck4, repo, PARAMS))
    assert PLUGIN.is_fixed(ck3, repo, PARAMS) and PLUGIN.is_fixed(ck4, repo, PARAMS)
    assert not PLUGIN.plan(ck3, repo, PARAMS).changes


def test_unhappy_paths(tmp_path: Path) -> None:
    repo = target(tmp_path)
    finding = next(f for f in PLUGIN.detect(repo) if f.rule_id == "DOCKER-ROOT-USER")
    (repo.root / finding.location.path).write_text("FROM alpine:3.20\nCOPPY a b\n")  # type: ignore[operator]
    with pytest.raises(InputError, match=r"Dockerfile line 2: unknown instruction 'COPPY'"):
        PLUGIN.plan(finding, repo, PARAMS)
    assert (repo.root / finding.location.path).read_text() == "FROM alpine:3.20\nCOPPY a b\n"  # type: ignore[operator]
    with pytest.raises(ConflictError, match="no longer exists"):
        PLUGIN.plan(
            finding.model_copy(update={"location": Location(path="gone/Dockerfile")}), repo, PARAMS
        )
    with pytest.raises(InputError, match="cannot plan rule 'CKV_K8S_16'"):
        PLUGIN.plan(finding.model_copy(update={"rule_id": "CKV_K8S_16"}), repo, PARAMS)
    with pytest.raises(InputError, match="parameter uid"):
        PLUGIN.parse_params({"uid": 0})


def test_user_root_after_cmd_is_overridden_once(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM alpine:3.20\nRUN apk add curl\nCMD ["sh"]\nUSER root\n'
    )
    repo = LocalTarget(tmp_path)
    fix(repo, "Dockerfile", "DOCKER-ROOT-USER")
    assert (tmp_path / "Dockerfile").read_text() == (
        'FROM alpine:3.20\nRUN apk add curl\nCMD ["sh"]\nUSER root\n'
        "RUN addgroup -S -g 10001 app && adduser -S -D -H -u 10001 -G app app\n"
        "USER 10001:10001\n"
    )


def test_stored_findings_and_partial_fixes_stay_honest(tmp_path: Path) -> None:
    """The store hands findings back with scanner "jupiter": the identity
    still picks the instruction. A Checkov finding that can only be fixed in
    part is needs_manual (a partial fix would fail verification)."""
    repo = target(tmp_path)
    local, url = sorted(
        (
            f
            for f in PLUGIN.detect(repo)
            if f.rule_id == "DOCKER-ADD" and f.location.path == "debian/Dockerfile"
        ),
        key=lambda f: f.location.start_line or 0,
    )
    stored = local.model_copy(update={"scanner": "jupiter"})
    plan = PLUGIN.plan(stored, repo, PARAMS)
    assert plan.changes and plan.needs_manual is None
    ck4 = FindingRecord(
        scanner="jupiter",
        rule_id="CKV_DOCKER_4",
        category=Category.IAC_DOCKER,
        title="Ensure that COPY is used instead of ADD in Dockerfiles",
        severity=Severity.MEDIUM,
        location=Location(path="debian/Dockerfile", start_line=1),
    )
    whole = PLUGIN.plan(ck4, repo, PARAMS)
    assert not whole.changes and "downloads a URL" in (whole.needs_manual or "")
    apply(repo, plan)
    assert PLUGIN.is_fixed(stored, repo, PARAMS)
    assert not PLUGIN.is_fixed(ck4, repo, PARAMS)
    assert not PLUGIN.is_fixed(url.model_copy(update={"scanner": "jupiter"}), repo, PARAMS)
