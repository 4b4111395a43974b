"""An offline OSV advisory database in the workspace (``<JUPITER_HOME>/advisories``).

Import OSV records (a directory of ``*.json``, one record, or an OSV
per-ecosystem zip such as ``PyPI/all.zip``) with :meth:`AdvisoryDB.import_path`,
then ask :meth:`AdvisoryDB.query` which advisories affect a package version.

Layout on disk: every import writes a complete new *generation* directory
(``gen-<n>/``: ``records.json`` with every record by id, ``index-<k>.json``
per ecosystem mapping PEP 503 names to compact advisories, ``manifest.json``)
and then atomically replaces the ``CURRENT`` pointer file. A bad record makes
the whole import fail with nothing changed; readers never see a half import.

Version semantics follow the OSV schema: range events are sorted by version
and walked (``introduced`` opens, ``fixed``/``limit`` close at that version,
``last_affected`` closes after it), and the explicit ``versions`` list also
matches. Ecosystem versions are compared with :mod:`packaging.version`
(PEP 440), so ranges are only evaluated for PyPI; other ecosystems match
through their ``versions`` lists. Withdrawn records are kept (a later import
of the same id replaces an earlier one) but never returned.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from jupiter.errors import InputError, WorkspaceError
from jupiter.models import Severity, canonical_advisory_id
from jupiter.osv_records import compact_record

_MAX_MEMBER_BYTES = 16 * 1024 * 1024  # one OSV record is a few kB; refuse zip bombs
_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def default_advisories_dir() -> Path:
    """``$JUPITER_HOME/advisories``, or ``./.jupiter/advisories`` when unset."""
    home = os.environ.get("JUPITER_HOME")
    return (Path(home) if home else Path(".jupiter")) / "advisories"


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or ``None`` when ``text`` is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Advisory:
    """One advisory as it applies to one package (its ``affected`` entries merged).

    ``ranges`` holds each ECOSYSTEM/SEMVER range as sorted ``(event, version)``
    pairs; ``versions`` is the explicit affected-versions list.
    """

    id: str
    ecosystem: str
    package: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    severity: Severity | None = None
    cvss_vector: str | None = None
    cvss_score: float | None = None
    cwe_ids: tuple[str, ...] = ()
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()
    versions: frozenset[str] = frozenset()
    fixed_versions: tuple[str, ...] = ()
    published: str | None = None
    modified: str | None = None

    @property
    def canonical_id(self) -> str:
        """The CVE if any, else the GHSA, else the OSV id (see models)."""
        return canonical_advisory_id([self.id, *self.aliases])

    def affects(self, version: str) -> bool:
        """Whether ``version`` (as written) is affected, per OSV semantics."""
        if version in self.versions:
            return True
        parsed = parse_version(version)
        if parsed is None:
            return False
        if any(parse_version(v) == parsed for v in self.versions):
            return True
        return any(_range_affects(events, parsed) for events in self.ranges)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "canonical_id": self.canonical_id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "severity": self.severity.value if self.severity else None,
            "cvss_vector": self.cvss_vector,
            "cvss_score": self.cvss_score,
            "fixed_versions": list(self.fixed_versions),
        }


def _range_affects(events: tuple[tuple[str, str], ...], version: Version) -> bool:
    affected = False
    for kind, raw in events:  # stored sorted by (version, event order)
        if kind == "introduced":
            if raw == "0" or version >= Version(raw):
                affected = True
        elif kind in ("fixed", "limit"):
            if version >= Version(raw):
                affected = False
        elif kind == "last_affected" and version > Version(raw):
            affected = False
    return affected


@dataclass(frozen=True)
class ImportReport:
    """What one import did."""

    source: str
    records: int
    withdrawn: int
    packages: int
    ecosystems: dict[str, int] = field(default_factory=dict)
    generation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "withdrawn": self.withdrawn,
            "packages": self.packages,
            "ecosystems": dict(self.ecosystems),
            "generation": self.generation,
        }


class AdvisoryDB:
    """The advisory store under ``directory`` (created on first import)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_advisories_dir()
        self._cache_gen: str | None = None
        self._manifest: dict[str, Any] = {}
        self._indexes: dict[str, dict[str, list[dict[str, Any]]]] = {}

    # -- reading ----------------------------------------------------------
    def current_generation(self) -> str | None:
        """Name of the live generation, or ``None`` if nothing was imported."""
        try:
            name = (self.directory / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def is_empty(self) -> bool:
        return not self._load_manifest().get("records")

    def status(self) -> str:
        """One sentence for users: what the database holds or how to fill it."""
        manifest = self._load_manifest()
        if not manifest.get("records"):
            return (
                f"no advisories in {self.directory}; import OSV records first "
                "(a directory of OSV JSON files, one record, or PyPI/all.zip from "
                "https://osv-vulnerabilities.storage.googleapis.com)"
            )
        return (
            f"{manifest['records']} advisories in {self.directory} "
            f"({manifest.get('withdrawn', 0)} withdrawn), generation {manifest.get('generation')}"
        )

    def query(self, ecosystem: str, package: str, version: str) -> list[Advisory]:
        """Advisories affecting ``package`` at ``version`` (sorted by id)."""
        return [a for a in self.advisories_for(ecosystem, package) if a.affects(version)]

    def advisories_for(self, ecosystem: str, package: str) -> list[Advisory]:
        """Every non-withdrawn advisory naming ``package`` (sorted by id)."""
        index = self._load_index(ecosystem)
        # converted on demand: a full PyPI index holds tens of thousands of entries
        return [_advisory_from_compact(e) for e in index.get(canonicalize_name(package), [])]

    def _load_manifest(self) -> dict[str, Any]:
        gen = self.current_generation()
        if gen != self._cache_gen:
            self._indexes = {}
            self._manifest = {}
            self._cache_gen = gen
            if gen is not None:
                self._manifest = _read_json(self.directory / gen / "manifest.json")
        return self._manifest

    def _load_index(self, ecosystem: str) -> dict[str, list[dict[str, Any]]]:
        manifest = self._load_manifest()
        key = ecosystem.lower()
        if key not in self._indexes:
            filename = manifest.get("indexes", {}).get(key)
            raw: dict[str, list[dict[str, Any]]] = {}
            if filename and self._cache_gen:
                raw = _read_json(self.directory / self._cache_gen / filename)
            self._indexes[key] = raw
        return self._indexes[key]

    # -- importing --------------------------------------------------------
    def import_path(self, path: Path) -> ImportReport:
        """Validate and import OSV records from a directory, a ``.json`` record or a zip.

        All or nothing: the first invalid record raises :class:`InputError`
        naming the file (and zip member) and the field, and the database is
        left exactly as it was.
        """
        path = Path(path)
        incoming: dict[str, dict[str, Any]] = {}
        for origin, data in _read_sources(path):
            record = compact_record(data, origin)
            previous = incoming.get(record["id"])
            # the same id twice in one import: keep the most recently modified
            if previous is None or (record.get("modified") or "") >= (
                previous.get("modified") or ""
            ):
                incoming[record["id"]] = record
        if not incoming:
            raise InputError(f"{path} holds no OSV records (*.json); point at OSV JSON files")
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock():
            return self._write_generation(path, incoming)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_generation(self, source: Path, incoming: dict[str, dict[str, Any]]) -> ImportReport:
        old_gen = self.current_generation()
        records: dict[str, dict[str, Any]] = {}
        if old_gen is not None:
            records = _read_json(self.directory / old_gen / "records.json")
        records.update(incoming)
        # past the highest generation on disk: a crashed import may have left one behind
        existing = [int(p.name[4:]) for p in self.directory.glob("gen-*") if p.name[4:].isdigit()]
        number = max(existing, default=0) + 1
        gen = f"gen-{number:06d}"
        indexes: dict[str, dict[str, list[dict[str, Any]]]] = {}
        withdrawn = 0
        for record_id in sorted(records):
            record = records[record_id]
            if record.get("withdrawn"):
                withdrawn += 1
                continue
            for entry in record["packages"]:
                eco = indexes.setdefault(entry["ecosystem"].lower(), {})
                eco.setdefault(entry["name"], []).append(_index_entry(record, entry))
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=self.directory))
        try:
            files: dict[str, str] = {}
            for number_eco, eco_name in enumerate(sorted(indexes)):
                files[eco_name] = f"index-{number_eco}.json"
                _write_json(tmp / files[eco_name], indexes[eco_name])
            _write_json(tmp / "records.json", records)
            manifest = {
                "generation": gen,
                "records": len(records),
                "withdrawn": withdrawn,
                "indexes": files,
            }
            _write_json(tmp / "manifest.json", manifest)
            os.replace(tmp, self.directory / gen)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = self.directory / "CURRENT.tmp"
        pointer.write_text(gen + "\n", encoding="utf-8")
        os.replace(pointer, self.directory / "CURRENT")  # the one atomic commit point
        self._prune(keep={gen, old_gen})
        counts: dict[str, int] = {}
        for record in incoming.values():
            for eco_name in {e["ecosystem"] for e in record["packages"]}:
                counts[eco_name] = counts.get(eco_name, 0) + 1
        return ImportReport(
            source=str(source),
            records=len(incoming),
            withdrawn=sum(1 for r in incoming.values() if r.get("withdrawn")),
            packages=len(
                {(e["ecosystem"], e["name"]) for r in incoming.values() for e in r["packages"]}
            ),
            ecosystems=counts,
            generation=gen,
        )

    def _prune(self, keep: set[str | None]) -> None:
        # the previous generation stays so a reader that just resolved CURRENT can finish
        # and under the import lock any .import-* directory is a crashed import's leftover
        for child in self.directory.iterdir():
            stale_gen = child.name.startswith("gen-") and child.name not in keep
            if child.is_dir() and (stale_gen or child.name.startswith(".import-")):
                shutil.rmtree(child, ignore_errors=True)


def _index_entry(record: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "aliases": record["aliases"],
        "summary": record["summary"],
        "severity": record["severity"],
        "cvss_vector": record["cvss_vector"],
        "cvss_score": record["cvss_score"],
        "cwe_ids": record["cwe_ids"],
        "published": record.get("published"),
        "modified": record.get("modified"),
        "ecosystem": entry["ecosystem"],
        "package": entry["name"],
        "ranges": entry["ranges"],
        "versions": entry["versions"],
    }


def _advisory_from_compact(entry: dict[str, Any]) -> Advisory:
    ranges = tuple(
        tuple(sorted(((k, v) for k, v in events), key=_event_key)) for events in entry["ranges"]
    )
    fixed = sorted({v for events in ranges for k, v in events if k == "fixed"}, key=_version_key)
    return Advisory(
        id=entry["id"],
        ecosystem=entry["ecosystem"],
        package=entry["package"],
        aliases=tuple(entry["aliases"]),
        summary=entry["summary"],
        severity=Severity(entry["severity"]) if entry["severity"] else None,
        cvss_vector=entry["cvss_vector"],
        cvss_score=entry["cvss_score"],
        cwe_ids=tuple(entry["cwe_ids"]),
        ranges=ranges,
        versions=frozenset(entry["versions"]),
        fixed_versions=tuple(fixed),
        published=entry.get("published"),
        modified=entry.get("modified"),
    )


def _version_key(raw: str) -> Version:
    return Version("0") if raw == "0" else Version(raw)


def _event_key(event: tuple[str, str]) -> tuple[Version, int]:
    return (_version_key(event[1]), _EVENT_ORDER[event[0]])


def _read_sources(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(origin, parsed JSON)`` for every record under ``path``."""
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            if file.is_file():
                yield str(file), _parse_json(file.read_bytes(), str(file))
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                origin = f"{path} (member {info.filename})"
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise InputError(
                        f"{origin} is {info.file_size} bytes, too big for an OSV "
                        "record; check that the zip is an OSV export"
                    )
                yield origin, _parse_json(archive.read(info), origin)
    elif path.is_file():
        yield str(path), _parse_json(path.read_bytes(), str(path))
    else:
        raise InputError(f"{path} does not exist; give a directory, an OSV .json record or a zip")


def _parse_json(data: bytes, origin: str) -> Any:
    from jupiter.limits import check_nesting

    try:
        loaded = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{origin} is not valid JSON ({exc}); fix or remove the file") from exc
    check_nesting(loaded, origin, "fix or remove the file")
    return loaded


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise WorkspaceError(
            f"advisory database file {path} is unreadable ({exc}); re-import the advisories"
        ) from exc


def _write_json(path: Path, data: Any) -> None:
    with open(path, "wb") as handle:
        handle.write(orjson.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
