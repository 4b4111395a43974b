"""file-permissions: detection on real files with real modes, plan, apply,
verify, idempotence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Severity
from jupiter.plans import Plan, SetMode
from jupiter.plugins.permissions.detect import check_permissions
from jupiter.plugins.permissions.fix import FilePermissions, PermissionsParams
from jupiter.targets.local import LocalTarget

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
PRIVATE_PEM = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
OPENSSH_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
PUBLIC_PEM = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----\n"
GROUPS = "root:x:0:\nshadow:x:42:\nssl-cert:x:4242:\nusers:x:100:\n"


def make(root: Path, rel: str, data: bytes, mode: int) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def mode_of(root: Path, rel: str) -> int:
    return (root / rel).stat().st_mode & 0o7777


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "host"
    make(r, "etc/group", GROUPS.encode(), 0o644)
    make(r, "etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n", 0o644)
    return r


def apply(target: LocalTarget, plan: Plan) -> None:
    for change in plan.changes:
        assert isinstance(change, SetMode)
        target.set_mode(change.path, change.mode)
        if change.uid is not None and change.gid is not None:
            target.set_owner(change.path, change.uid, change.gid)


def by_path(findings: list[FindingRecord]) -> dict[str, FindingRecord]:
    return {f.location.path or "": f for f in findings}


def fix_and_verify(target: LocalTarget, rem: FilePermissions, finding: FindingRecord) -> Plan:
    """Plan, apply, then: the path is clean on re-detect and re-planning is empty."""
    params = rem.parse_params({})
    plan = rem.plan(finding, target, params)
    assert not plan.empty and plan.risk.change_kind == "permissions"
    apply(target, plan)
    assert finding.location.path not in by_path(rem.detect(target))
    assert rem.plan(finding, target, params).empty
    return plan


def test_world_writable_file(root: Path) -> None:
    make(root, "srv/app/run.sh", b"#!/bin/sh\n", 0o777)
    make(root, "etc/cron.d/job", b"* * * * * root true\n", 0o666)
    make(root, "srv/app/ok.txt", b"fine\n", 0o664)
    target, rem = LocalTarget(root), FilePermissions()
    found = by_path(rem.detect(target))
    assert sorted(found) == ["etc/cron.d/job", "srv/app/run.sh"]
    assert found["etc/cron.d/job"].severity is Severity.HIGH
    assert found["srv/app/run.sh"].severity is Severity.MEDIUM
    f = found["srv/app/run.sh"]
    assert (f.rule_id, f.category, f.evidence) == (
        "PERM-WORLD-WRITABLE",
        Category.PERMISSIONS,
        "mode 0777 is world-writable",
    )
    plan = fix_and_verify(target, rem, f)
    assert plan.changes == [SetMode(path="srv/app/run.sh", mode=0o775)]
    assert mode_of(root, "srv/app/run.sh") == 0o775
    assert "mode 0777" in plan.diff and "mode 0775" in plan.diff


@pytest.mark.parametrize(
    ("rel", "data", "mode", "expected"),
    [
        ("home/ann/.ssh/id_ed25519", OPENSSH_KEY, 0o644, 0o600),
        ("home/ann/.ssh/deploy", OPENSSH_KEY, 0o640, 0o600),  # sniffed: no telling name
        ("etc/nginx/tls/site.pem", CERT_PEM + PRIVATE_PEM, 0o644, 0o600),
        ("srv/app/.env", b"DB_PASSWORD=hunter2\n", 0o664, 0o600),
        ("srv/app/.env.production", b"TOKEN=x\n", 0o604, 0o600),
        ("srv/app/keystore.p12", b"\x30\x82\x01\x00", 0o644, 0o600),
        ("srv/app/server.key", b"\x30\x82 binary DER key", 0o755, 0o700),
        ("root/.aws/credentials", b"[default]\n", 0o644, 0o600),
    ],
)
def test_readable_secrets(root: Path, rel: str, data: bytes, mode: int, expected: int) -> None:
    make(root, rel, data, mode)
    target, rem = LocalTarget(root), FilePermissions()
    finding = by_path(rem.detect(target))[rel]
    assert finding.rule_id == "PERM-SECRET-READABLE"
    assert finding.severity is (Severity.HIGH if mode & 0o004 else Severity.MEDIUM)
    fix_and_verify(target, rem, finding)
    assert mode_of(root, rel) == expected


def test_public_material_and_templates_are_not_secrets(root: Path) -> None:
    make(root, "etc/ssl/certs/site.pem", CERT_PEM, 0o644)
    make(root, "etc/apt/keys/repo.key", PUBLIC_PEM, 0o644)
    make(root, "home/ann/.ssh/id_ed25519.pub", b"ssh-ed25519 AAAA ann\n", 0o644)
    make(root, "home/ann/.ssh/known_hosts", b"host ssh-ed25519 AAAA\n", 0o644)
    make(root, "srv/app/.env.example", b"DB_PASSWORD=\n", 0o644)
    make(root, "home/ann/.ssh/id_rsa", OPENSSH_KEY, 0o600)
    assert FilePermissions().detect(LocalTarget(root)) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chgrp to an arbitrary group needs root")
def test_key_reader_group_may_read(root: Path) -> None:
    key = make(root, "etc/ssl/private/site.key", PRIVATE_PEM, 0o640)
    os.chown(key, 0, 4242)  # ssl-cert in the target's etc/group
    target = LocalTarget(root)
    assert FilePermissions().detect(target) == []
    assert FilePermissions(PermissionsParams(secret_groups=[])).detect(target) != []
    key.chmod(0o644)  # others still may not
    [finding] = FilePermissions().detect(target)
    fix_and_verify(target, FilePermissions(), finding)
    assert mode_of(root, "etc/ssl/private/site.key") == 0o640


@pytest.mark.parametrize(
    ("rel", "mode", "expected"),
    [
        ("etc/shadow", 0o644, 0o600),
        ("etc/gshadow", 0o604, 0o600),
        ("etc/ssh/ssh_host_ed25519_key", 0o644, 0o600),
        ("etc/sudoers", 0o640, 0o440),
        ("etc/sudoers.d/ops", 0o644, 0o440),
        ("etc/passwd", 0o664, 0o644),
    ],
)
def test_sensitive_files_with_loose_modes(root: Path, rel: str, mode: int, expected: int) -> None:
    make(root, rel, b"data\n", mode)
    target, rem = LocalTarget(root), FilePermissions(PermissionsParams(check_owner=False))
    finding = by_path(rem.detect(target))[rel]
    assert (finding.rule_id, finding.severity) == ("PERM-SENSITIVE-FILE", Severity.HIGH)
    assert f"mode {mode:04o} is looser than" in (finding.evidence or "")
    fix_and_verify(target, rem, finding)
    assert mode_of(root, rel) == expected


@pytest.mark.parametrize(
    ("rel", "mode"),
    [
        ("etc/shadow", 0o000),  # RHEL's choice
        ("etc/shadow", 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub", 0o644),
        ("etc/sudoers", 0o440),
    ],
)
def test_sensitive_files_with_good_modes(root: Path, rel: str, mode: int) -> None:
    make(root, rel, b"data\n", mode)
    assert FilePermissions(PermissionsParams(check_owner=False)).detect(LocalTarget(root)) == []


@as_root
def test_shadow_group_may_read_shadow(root: Path) -> None:
    shadow = make(root, "etc/shadow", b"root:*:1:0:99999:7:::\n", 0o640)
    os.chown(shadow, 0, 42)
    target = LocalTarget(root)
    assert FilePermissions().detect(target) == []
    os.chown(shadow, 0, 100)  # group "users": wrong group, and 0640 is too loose for it
    [finding] = FilePermissions().detect(target)
    assert "owned by 0:100, expected root and group root or shadow" in (finding.evidence or "")
    plan = fix_and_verify(target, FilePermissions(), finding)
    assert plan.changes == [SetMode(path="etc/shadow", mode=0o600, uid=0, gid=0)]
    assert (shadow.stat().st_uid, shadow.stat().st_gid) == (0, 0)


@as_root
def test_wrong_owner_only_checked_when_asked(root: Path) -> None:
    sudoers = make(root, "etc/sudoers", b"root ALL=(ALL) ALL\n", 0o440)
    os.chown(sudoers, 65534, 65534)
    target = LocalTarget(root)
    assert FilePermissions(PermissionsParams(check_owner=False)).detect(target) == []
    assert FilePermissions().detect(target, PermissionsParams(check_owner=False)) == []
    [finding] = FilePermissions().detect(target)  # root scan: owners are checked
    assert finding.rule_id == "PERM-SENSITIVE-FILE"
    fix_and_verify(target, FilePermissions(), finding)
    assert (sudoers.stat().st_uid, mode_of(root, "etc/sudoers")) == (0, 0o440)


def test_one_finding_per_file_with_every_rule(root: Path) -> None:
    make(root, "home/ann/.ssh/id_rsa", OPENSSH_KEY, 0o666)
    target, rem = LocalTarget(root), FilePermissions()
    [finding] = rem.detect(target)
    assert finding.rule_id == "PERM-SECRET-READABLE"
    assert finding.extra["rules"] == ["PERM-SECRET-READABLE", "PERM-WORLD-WRITABLE"]
    plan = fix_and_verify(target, rem, finding)
    assert plan.related_findings == ["PERM-WORLD-WRITABLE"]
    assert any("loses its group permissions" in w for w in plan.risk.warnings)
    assert mode_of(root, "home/ann/.ssh/id_rsa") == 0o600


def test_symlinks_and_pseudo_filesystems_are_skipped(root: Path, tmp_path: Path) -> None:
    outside = make(tmp_path, "outside/loose", b"x\n", 0o666)
    os.symlink(outside, root / "etc" / "link-out")
    make(root, "etc/real", b"x\n", 0o644)
    os.symlink("real", root / "etc" / "link-in")
    make(root, "proc/1/environ", b"x\n", 0o666)
    target = LocalTarget(root)
    assert check_permissions(target) == []
    assert mode_of(tmp_path, "outside/loose") == 0o666


def test_plan_for_a_path_that_changed(root: Path) -> None:
    make(root, "srv/loose", b"x\n", 0o666)
    target, rem = LocalTarget(root), FilePermissions()
    [finding] = rem.detect(target)
    (root / "srv/loose").unlink()
    assert rem.plan(finding, target, rem.parse_params({})).empty
    os.symlink("/etc/hostname", root / "srv/loose")
    plan = rem.plan(finding, target, rem.parse_params({}))
    assert plan.empty and "is now a symlink" in (plan.needs_manual or "")


def test_bad_params_and_findings_without_path(root: Path) -> None:
    rem = FilePermissions()
    with pytest.raises(InputError, match="file-permissions parameter secret_groups"):
        rem.parse_params({"secret_groups": "ssl-cert"})
    with pytest.raises(InputError, match="file-permissions parameter check_owners"):
        rem.parse_params({"check_owners": True})
    no_path = FindingRecord(
        scanner="x", rule_id="PERM-WORLD-WRITABLE", title="t", severity=Severity.LOW
    )
    with pytest.raises(InputError, match="has no file path"):
        rem.plan(no_path, LocalTarget(root), rem.parse_params({}))
