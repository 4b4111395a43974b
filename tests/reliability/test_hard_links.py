"""Hard links: a file inside a target that has other names (``st_nlink > 1``)
is never chmod-ed, chown-ed or rewritten, by any remediator or rollback —
its mode and content belong to the inode, which may also be a file outside
the root (``/etc/shadow``, a private key). Such a change is ``needs_manual``.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from jupiter.applying import apply_plan
from jupiter.engine import Engine
from jupiter.errors import HardLinkRefused
from jupiter.plans import Plan, SetMode, WriteFile
from jupiter.plugins.registry import load_registry
from jupiter.snapshots import BlobStore, capture, restore
from jupiter.targets.local import LocalTarget
from jupiter.workspace import Workspace
from tests.conftest import ROOT
from tests.reliability.counts import count

FIXTURES = ROOT / "tests" / "fixtures"
#: Trees on which every built-in remediator finds something to change.
TREES = [
    ROOT / "examples" / "host",
    ROOT / "examples" / "webapp",
    FIXTURES / "cloudformation",
    FIXTURES / "terraform",
    FIXTURES / "firewall",
]


def state(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_ino


def permissions_tree(root: Path) -> Path:
    """The measured case: a world-writable config, a readable private key
    and a readable shadow file, for the file-permissions remediator."""
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/app.conf").write_text("token = 1\n")
    (root / "etc/app.conf").chmod(0o666)
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (root / "etc/ssh/ssh_host_ed25519_key").chmod(0o644)
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o644)
    return root


def link_everything(root: Path, outside: Path) -> dict[Path, tuple[bytes, int, int]]:
    """Hard-link every regular file of ``root`` from ``outside``; returns both
    names of each with their state (content, mode, inode)."""
    outside.mkdir(parents=True, exist_ok=True)
    seen: dict[Path, tuple[bytes, int, int]] = {}
    for n, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file())):
        if path.is_symlink():
            continue
        other = outside / f"{n}-{path.name}"
        os.link(path, other)
        seen[other] = seen[path] = state(other)
    return seen


@pytest.fixture(scope="module")
def linked_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One ``fix`` per tree with every file hard-linked from outside the root."""
    base = tmp_path_factory.mktemp("hardlinks")
    engine = Engine(Workspace(base / "home", f"sqlite:///{base / 'jupiter.db'}"), actor="tester")
    engine.import_advisories(FIXTURES / "osv")
    trees = []
    for n, tree in enumerate(TREES):
        dst = base / f"t{n}-{tree.name}"
        shutil.copytree(tree, dst, symlinks=True)
        trees.append(dst)
    trees.append(permissions_tree(base / "perms"))
    steps: list[dict[str, object]] = []
    outside: dict[Path, tuple[bytes, int, int]] = {}
    try:
        for n, root in enumerate(trees):
            links = link_everything(root, base / "outside" / str(n))
            outside.update(links)
            result = engine.fix(str(root))
            steps.extend(result["steps"])
            count("hard-link trials")
            count("hard links planted", len(links))
        audit_ok = engine.audit_verify().ok
    finally:
        engine.close()
    return {"steps": steps, "outside": outside, "audit_ok": audit_ok}


def test_every_remediator_leaves_hard_linked_files_alone(linked_runs: dict[str, object]) -> None:
    steps = linked_runs["steps"]
    assert isinstance(steps, list)
    outside = linked_runs["outside"]
    assert isinstance(outside, dict)
    # Neither name of any linked file changed: same content, mode and inode
    # (a fix may only create new files on these trees).
    changed = [str(p) for p, before in outside.items() if state(p) != before]
    assert changed == [], f"hard-linked files changed: {changed}"
    failed = [s for s in steps if s["status"] in ("rolled_back", "failed", "conflict")]
    assert failed == [], "a refusal is needs_manual, never a failed or rolled back step"
    refused = {s["remediator"] for s in steps if "hard links" in str(s["detail"])}
    assert all(s["status"] == "needs_manual" for s in steps if "hard links" in str(s["detail"]))
    # Walk the registry: every built-in remediator was refused at least once.
    registry = {p.name for p in load_registry()}
    assert refused == registry, f"not exercised: {sorted(registry - refused)}"
    assert linked_runs["audit_ok"]
    count("remediators checked against hard links", len(refused))


def test_target_refuses_chmod_chown_and_replace_of_a_hard_linked_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "shadow").write_text("secret\n")
    (root / "shadow").chmod(0o644)
    os.link(root / "shadow", tmp_path / "etc-shadow")
    before = state(tmp_path / "etc-shadow")
    target = LocalTarget(root)
    for attempt in (
        lambda: target.set_mode("shadow", 0o777),
        lambda: target.set_owner("shadow", os.getuid(), os.getgid()),
        lambda: target.write_bytes("shadow", b"pwned\n"),
        lambda: apply_plan(target, _plan(SetMode(path="shadow", mode=0o666))),
    ):
        with pytest.raises(HardLinkRefused, match="2 hard links"):
            attempt()
        count("faults injected")
    assert state(tmp_path / "etc-shadow") == before
    assert state(root / "shadow") == before
    # Removing a name is fine: the other name keeps the file.
    target.remove("shadow")
    assert state(tmp_path / "etc-shadow") == before
    # Directories always have several links; they are not refused.
    (root / "d" / "sub").mkdir(parents=True)
    target.set_mode("d", 0o750)


def _plan(*changes: WriteFile | SetMode) -> Plan:
    return Plan(remediator="test", rule_id="R", title="t", changes=list(changes))


def test_rollback_never_writes_through_a_hard_link(tmp_path: Path) -> None:
    """A fix wrote the file, then someone linked it elsewhere: the rollback
    skips it with the reason instead of restoring through the link."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "app.conf").write_text("old\n")
    target = LocalTarget(root)
    blobs = BlobStore(tmp_path / "blobs")
    entries = capture(target, ["app.conf"], blobs)
    target.write_bytes("app.conf", b"new\n", 0o600)
    os.link(root / "app.conf", tmp_path / "elsewhere")
    report = restore(target, entries, blobs)
    assert [p for p, _ in report.skipped] == ["app.conf"]
    assert "hard links" in report.skipped[0][1]
    assert (tmp_path / "elsewhere").read_bytes() == b"new\n"
    assert stat.S_IMODE((tmp_path / "elsewhere").stat().st_mode) == 0o600
    # Unlinked again, the same rollback restores it.
    (tmp_path / "elsewhere").unlink()
    assert restore(target, entries, blobs).complete
    assert (root / "app.conf").read_bytes() == b"old\n"


def test_a_link_made_after_planning_ends_the_step_as_needs_manual(
    engine: Engine, tmp_path: Path
) -> None:
    """The apply-time refusal (what an SSH target relies on) is a needs_manual
    step with nothing of it left on the target."""
    root = permissions_tree(tmp_path / "perms")
    outside = tmp_path / "shadow-outside"
    real_plan = engine.fix(str(root), dry_run=True)
    assert any(s["changes"] for s in real_plan["steps"])

    def link_then_confirm(preview: list[dict[str, object]]) -> bool:
        os.link(root / "etc/shadow", outside)
        return True

    before = state(root / "etc/shadow")
    result = engine.fix(str(root), confirm=link_then_confirm)
    by_path = {s["rule_id"]: s for s in result["steps"]}
    shadow = [s for s in result["steps"] if "shadow" in str(s["detail"])]
    assert shadow and all(s["status"] == "needs_manual" for s in shadow), by_path
    assert state(outside) == before
    assert engine.audit_verify().ok
