"""Property: capture the paths a plan touches, apply it, restore -> the tree is
byte-for-byte and mode-for-mode what it was."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from jupiter.snapshots import BlobStore, capture, restore, verify_restored
from jupiter.targets.local import LocalTarget

NAMES = ["a", "b", "c.conf", ".hidden", "d d", "é"]
MODES = [0o600, 0o644, 0o755, 0o400]

rel_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
contents = st.one_of(st.binary(max_size=300), st.just(b""), st.text(max_size=50).map(str.encode))


def without_conflicts(files: dict[str, tuple[bytes, int]]) -> dict[str, tuple[bytes, int]]:
    """Drop files that would need to be a directory of another file."""
    dirs = {p.rsplit("/", 1)[0] for p in files if "/" in p}
    prefixes = {"/".join(d.split("/")[: i + 1]) for d in dirs for i in range(d.count("/") + 1)}
    return {p: v for p, v in files.items() if p not in prefixes}


trees = st.dictionaries(rel_paths, st.tuples(contents, st.sampled_from(MODES)), max_size=8).map(
    without_conflicts
)
ops = st.one_of(
    st.tuples(st.just("write"), rel_paths, contents, st.one_of(st.none(), st.sampled_from(MODES))),
    st.tuples(st.just("chmod"), rel_paths, st.sampled_from(MODES)),
    st.tuples(st.just("remove"), rel_paths),
)


def state(root: Path) -> tuple[dict[str, tuple[bytes, int]], dict[str, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    dirs: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath, name)
            files[str(full.relative_to(root))] = (
                full.read_bytes(),
                stat.S_IMODE(full.lstat().st_mode),
            )
        for name in dirnames:
            full = Path(dirpath, name)
            dirs[str(full.relative_to(root))] = stat.S_IMODE(full.lstat().st_mode)
    return files, dirs


def apply(target: LocalTarget, root: Path, op: tuple[object, ...]) -> None:
    """Apply one plan step the way the engine would; steps that cannot apply
    to the current tree (a parent is a file, chmod of an absent file) are
    skipped, as a planner would never emit them."""
    kind, path = op[0], str(op[1])
    full = root / path
    if any((root / p).is_file() for p in _parents(path)) or full.is_dir():
        return
    if kind == "write":
        data, mode = op[2], op[3]
        assert isinstance(data, bytes) and (mode is None or isinstance(mode, int))
        target.write_bytes(path, data, mode)
    elif kind == "chmod" and full.is_file():
        mode = op[2]
        assert isinstance(mode, int)
        target.set_mode(path, mode)
    elif kind == "remove":
        target.remove(path)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@settings(max_examples=50, deadline=None)
@given(tree=trees, plan=st.lists(ops, min_size=1, max_size=6))
def test_capture_apply_restore_is_identity(
    tree: dict[str, tuple[bytes, int]], plan: list[tuple[object, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "root")
        root.mkdir()
        for rel, (data, mode) in tree.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            (root / rel).chmod(mode)
        before_files, before_dirs = state(root)
        target = LocalTarget(root)
        blobs = BlobStore(Path(tmp, "blobs"))
        touched = sorted({str(op[1]) for op in plan})
        entries = capture(target, touched, blobs)

        for op in plan:
            apply(target, root, op)
        restore(target, entries, blobs)

        after_files, after_dirs = state(root)
        assert after_files == before_files
        # Directories the plan created for new files are gone again, and every
        # directory that existed keeps its mode.
        assert after_dirs == before_dirs
        assert verify_restored(target, entries) == []
