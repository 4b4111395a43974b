"""Manifest entries: what one path looked like when it was snapshotted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jupiter.errors import SnapshotError

KINDS = ("file", "dir", "symlink", "other", "absent")


@dataclass(frozen=True)
class ManifestEntry:
    """One snapshotted path, JSON-able via :meth:`to_dict` / :meth:`from_dict`.

    ``existed=False`` (kind ``"absent"``, all other fields ``None``) means
    rollback must remove whatever is at ``path``. ``sha256`` names the blob
    holding a regular file's content and is ``None`` for anything else.
    ``mode`` holds permission bits only (including setuid/setgid/sticky).
    """

    path: str
    existed: bool
    kind: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        """Rebuild an entry from :meth:`to_dict` output (e.g. read from the DB)."""
        fields = ("path", "existed", "kind", "mode", "uid", "gid", "size", "sha256")
        unknown = set(data) - set(fields)
        if unknown or "path" not in data or "existed" not in data or "kind" not in data:
            raise SnapshotError(
                f"manifest entry {data!r} is malformed (needs path, existed, kind; "
                f"unknown keys {sorted(unknown)}); the stored snapshot is damaged"
            )
        ints = {name: data.get(name) for name in ("mode", "uid", "gid", "size")}
        sha = data.get("sha256")
        if (
            not isinstance(data["path"], str)
            or not isinstance(data["existed"], bool)
            or not isinstance(data["kind"], str)
            or any(v is not None and type(v) is not int for v in ints.values())
            or (sha is not None and not isinstance(sha, str))
        ):
            raise SnapshotError(
                f"manifest entry {data!r} has a field of the wrong type; the stored snapshot "
                "is damaged"
            )
        entry = cls(
            data["path"],
            data["existed"],
            data["kind"],
            ints["mode"],
            ints["uid"],
            ints["gid"],
            ints["size"],
            sha,
        )
        if entry.kind not in KINDS or (entry.kind == "absent") == entry.existed:
            raise SnapshotError(
                f"manifest entry for {entry.path!r} has kind {entry.kind!r} and existed="
                f"{entry.existed}, which do not fit together; the stored snapshot is damaged"
            )
        if entry.kind == "file" and entry.sha256 is None:
            raise SnapshotError(
                f"manifest entry for file {entry.path!r} has no sha256; the stored snapshot is "
                "damaged"
            )
        return entry

    @classmethod
    def absent(cls, path: str) -> ManifestEntry:
        return cls(path=path, existed=False, kind="absent")
