"""Exact pins from Python dependency files: what version of which package.

Reads, through a :class:`TargetView`:

* ``requirements*.txt`` (and ``*.txt`` under a ``requirements/`` directory):
  ``==``/``===`` pins with extras, markers, comments, ``\\`` continuations and
  ``--hash`` options; ``-r``/``--requirement`` includes are followed inside
  the target; ``-c`` constraints, ``-e`` editables, URLs and paths are skipped;
  anything pip would reject is an error naming ``file:line``;
* ``pyproject.toml``: PEP 621 ``[project]`` dependencies and
  optional-dependencies, PEP 735 ``[dependency-groups]``, Poetry
  ``[tool.poetry.*dependencies]`` exact versions;
* ``poetry.lock`` and ``uv.lock`` (every locked registry package).

Ranges (``>=``) are not pins: the installed version is unknown, so they are
not reported. Errors are collected per file (:attr:`ManifestScan.errors`) and
the other files are still read; a requirements file stops at its first bad
line, as pip would refuse the whole file.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from jupiter.errors import InputError, JupiterError
from jupiter.plugins.kit import decode_text
from jupiter.targets.base import TargetView, normalise_relpath

LOCK_KINDS = frozenset({"poetry.lock", "uv.lock"})
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "node_modules",
        "site-packages",
        ".tox",
        ".nox",
        "__pycache__",
        ".jupiter",
        ".mypy_cache",
        ".pytest_cache",
    }
)
_COMMENT = re.compile(r"(^|\s+)#.*$")
_URLISH = re.compile(r"^([a-z][a-z0-9+.-]*://|[a-z]+\+[a-z]+:|\.{1,2}/|/|~)", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tar\.bz2|tgz)$", re.IGNORECASE)
# options pip accepts on their own line in a requirements file (value-taking ones first)
_FILE_OPTIONS_WITH_VALUE = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--trusted-host",
        "--no-binary",
        "--only-binary",
        "--use-feature",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-r",
        "--requirement",
    }
)
_FILE_FLAGS = frozenset({"--no-index", "--pre", "--prefer-binary", "--require-hashes"})
_REQ_OPTIONS = frozenset({"--hash", "--global-option", "--config-settings", "-C"})
_POETRY_KEY = re.compile(r"""^\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?\s*=""")


@dataclass(frozen=True)
class PinnedDependency:
    """One exact pin. ``line``/``end_line`` are 1-based physical lines.

    ``kind`` is ``requirements``, ``pyproject`` (PEP 621/735 string),
    ``poetry`` (Poetry table) or a lock kind (``poetry.lock``, ``uv.lock``).
    """

    name: str  # PEP 503 normalised
    display_name: str
    version: str  # as written
    path: str
    line: int
    end_line: int
    kind: str
    operator: str = "=="
    hashed: bool = False
    marker: str | None = None
    text: str = ""

    @property
    def locked(self) -> bool:
        return self.kind in LOCK_KINDS


@dataclass
class ManifestScan:
    """Pins found, files read, and per-file errors (the scan goes on after one)."""

    dependencies: list[PinnedDependency] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def is_manifest(path: str) -> bool:
    parts = path.split("/")
    if any(p in _SKIP_DIRS for p in parts[:-1]):
        return False
    base = parts[-1]
    if base in ("pyproject.toml", "poetry.lock", "uv.lock"):
        return True
    if not base.endswith(".txt"):
        return False
    return base.startswith("requirements") or (len(parts) > 1 and parts[-2] == "requirements")


def scan_manifests(view: TargetView) -> ManifestScan:
    """Read every dependency file of ``view`` (sorted paths, each once)."""
    scan = ManifestScan()
    seen: set[str] = set()
    for path in view.walk():
        if is_manifest(path):
            read_manifest(view, path, scan, seen)
    return scan


def read_manifest(view: TargetView, path: str, scan: ManifestScan, seen: set[str]) -> None:
    """Parse one file (and, for requirements, its includes) into ``scan``."""
    if path in seen:
        return
    seen.add(path)
    scan.files.append(path)
    try:
        text = decode_text(path, view.read_bytes(path))
    except InputError as exc:
        scan.errors.append(exc)
        return
    except (OSError, JupiterError) as exc:
        scan.errors.append(InputError(f"{path} cannot be read ({exc}); check the file"))
        return
    base = path.rsplit("/", 1)[-1]
    try:
        if base == "pyproject.toml":
            scan.dependencies.extend(parse_pyproject(text, path))
        elif base in LOCK_KINDS:
            scan.dependencies.extend(parse_lock(text, path, base))
        else:
            pins, includes = parse_requirements(text, path)
            scan.dependencies.extend(pins)
            for included in includes:
                if view.stat(included) is None:
                    scan.errors.append(
                        InputError(
                            f"{path} includes {included}, which does not exist in the target; "
                            "fix the -r line"
                        )
                    )
                else:
                    read_manifest(view, included, scan, seen)
    except InputError as exc:
        scan.errors.append(exc)


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """``(first_line, last_line, text)`` after joining ``\\`` continuations as pip does."""
    out: list[tuple[int, int, str]] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\") and not _COMMENT.match(raw.strip()):
            buffer.append(raw[:-1])
            continue
        # pip concatenates the pieces as they are (no separator, indentation kept)
        buffer.append(raw if not buffer or not _COMMENT.match(raw.strip()) else " " + raw)
        out.append((start, number, "".join(buffer)))
        buffer = []
    if buffer:
        out.append((start, start + len(buffer) - 1, "".join(buffer)))
    return out


def parse_requirements(text: str, path: str) -> tuple[list[PinnedDependency], list[str]]:
    """Pins and included paths of one requirements file; InputError on a bad line."""
    pins: list[PinnedDependency] = []
    includes: list[str] = []
    for first, last, logical in logical_lines(text):
        line = _COMMENT.sub("", logical).strip()
        if not line:
            continue
        where = f"{path}:{first}"
        tokens = line.split()
        args: list[str] = []
        for token in tokens:
            if token.startswith("-"):
                break
            args.append(token)
        options = tokens[len(args) :]
        if not args:
            included = _file_option(options, where)
            if included is not None:
                includes.append(_resolve_include(path, included, where))
            continue
        hashed = _requirement_options(options, where)
        pin = _pin(" ".join(args), where)
        if pin is not None:
            req, operator, version = pin
            pins.append(
                PinnedDependency(
                    name=canonicalize_name(req.name),
                    display_name=req.name,
                    version=version,
                    path=path,
                    line=first,
                    end_line=last,
                    kind="requirements",
                    operator=operator,
                    hashed=hashed,
                    marker=str(req.marker) if req.marker else None,
                    text=" ".join(line.split()),
                )
            )
    return pins, includes


def _file_option(options: list[str], where: str) -> str | None:
    """Check an option-only line; return the file of a ``-r`` include."""
    head = options[0]
    name, eq, value = head.partition("=")
    if name.startswith("-r") and len(name) > 2 and not name.startswith("--"):
        name, value, eq = "-r", name[2:], "="
    if name in _FILE_FLAGS:
        return None
    if name not in _FILE_OPTIONS_WITH_VALUE:
        raise InputError(
            f"{where}: option {name} is not allowed in a requirements file "
            "(pip would refuse it); remove or correct it"
        )
    if not eq:
        if len(options) < 2:
            raise InputError(f"{where}: option {name} needs a value; add it or remove the line")
        value = options[1]
    if name in ("-r", "--requirement"):
        return value.strip("'\"")
    return None


def _resolve_include(path: str, included: str, where: str) -> str:
    if _URLISH.match(included) and "://" in included:
        raise InputError(
            f"{where}: includes the URL {included}; Jupiter only follows "
            "includes inside the target, vendor the file"
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), included))
    try:
        return normalise_relpath(joined)
    except JupiterError:
        raise InputError(
            f"{where}: the include {included} leads outside the target; "
            "keep included files inside it"
        ) from None


def _requirement_options(options: list[str], where: str) -> bool:
    """Validate per-requirement options; return whether a ``--hash`` is present."""
    hashed = False
    skip_value = False
    for token in options:
        if skip_value:
            skip_value = False
            continue
        if not token.startswith("-"):
            raise InputError(
                f"{where}: unexpected {token!r} after the options; put one requirement per line"
            )
        name, eq, value = token.partition("=")
        if name not in _REQ_OPTIONS:
            raise InputError(
                f"{where}: option {name} is not allowed after a requirement "
                "(pip would refuse it); remove or correct it"
            )
        if name == "--hash":
            hashed = True
            if eq and not re.fullmatch(r"(sha256|sha384|sha512):[0-9a-fA-F]+", value):
                raise InputError(f"{where}: {token} is not ALGO:HEXDIGEST; regenerate the hashes")
        skip_value = not eq
    return hashed


def _pin(spec: str, where: str) -> tuple[Requirement, str, str] | None:
    """Parse a requirement; return it with its exact pin, or None if not pinned."""
    if _URLISH.match(spec) or _ARCHIVE.search(spec.split(";")[0].strip()):
        return None  # a URL or a local path: no PyPI version to check
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(
            f"{where}: {spec!r} is not a valid requirement ({reason}); "
            "correct it, pip would refuse the file"
        ) from None
    if req.url:
        return None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return None
    return req, specs[0].operator, specs[0].version


def parse_pyproject(text: str, path: str) -> list[PinnedDependency]:
    data = _toml(text, path)
    lines = text.splitlines()
    used: set[int] = set()
    pins: list[PinnedDependency] = []
    project = data.get("project", {})
    groups: list[tuple[str, Any]] = [("project.dependencies", project.get("dependencies", []))]
    for extra, reqs in sorted(project.get("optional-dependencies", {}).items()):
        groups.append((f"project.optional-dependencies.{extra}", reqs))
    for group, reqs in sorted(data.get("dependency-groups", {}).items()):
        groups.append((f"dependency-groups.{group}", reqs))
    for field_name, reqs in groups:
        if not isinstance(reqs, list):
            raise InputError(f"{path}: {field_name} is not a list; make it a list of strings")
        for spec in reqs:
            if not isinstance(spec, str):
                continue  # PEP 735 {include-group = ...} tables
            number = _find_line(lines, used, re.compile(r"""(["'])""" + re.escape(spec) + r"\1"))
            pin = _pin(spec, f"{path}:{number or '?'} ({field_name})")
            if pin is not None:
                req, operator, version = pin
                pins.append(
                    PinnedDependency(
                        name=canonicalize_name(req.name),
                        display_name=req.name,
                        version=version,
                        path=path,
                        line=number,
                        end_line=number,
                        kind="pyproject",
                        operator=operator,
                        marker=str(req.marker) if req.marker else None,
                        text=spec,
                    )
                )
    pins.extend(_poetry_pins(data, lines, path))
    return pins


def _poetry_pins(data: dict[str, Any], lines: list[str], path: str) -> list[PinnedDependency]:
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [
        ("tool.poetry.dependencies", poetry.get("dependencies", {})),
        ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies", {})),
    ]
    for group, body in sorted(poetry.get("group", {}).items()):
        tables.append((f"tool.poetry.group.{group}.dependencies", body.get("dependencies", {})))
    pins: list[PinnedDependency] = []
    for table, deps in tables:
        for key, value in deps.items():
            if key.lower() == "python":
                continue
            raw = value.get("version") if isinstance(value, dict) else value
            if not isinstance(raw, str):
                continue
            version = raw.strip().removeprefix("==").strip()
            try:
                Version(version)  # Poetry reads a bare version as an exact pin
            except InvalidVersion:
                continue  # ^, ~, >=, * ...: a range, not a pin
            number = _poetry_line(lines, table, key)
            pins.append(
                PinnedDependency(
                    name=canonicalize_name(key),
                    display_name=key,
                    version=version,
                    path=path,
                    line=number,
                    end_line=number,
                    kind="poetry",
                    operator="==",
                    text=lines[number - 1].strip() if number else f"{key} = {raw!r}",
                )
            )
    return pins


def _poetry_line(lines: list[str], table: str, key: str) -> int:
    header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
    inside = False
    for number, line in enumerate(lines, start=1):
        if header.match(line):
            inside = True
        elif inside and line.lstrip().startswith("["):
            inside = False
        elif inside:
            match = _POETRY_KEY.match(line)
            if match and canonicalize_name(match.group(1)) == canonicalize_name(key):
                return number
    return 0  # e.g. a [tool.poetry.dependencies.NAME] sub-table: found, but not editable


def parse_lock(text: str, path: str, kind: str) -> list[PinnedDependency]:
    data = _toml(text, path)
    lines = text.splitlines()
    used: set[int] = set()
    pins: list[PinnedDependency] = []
    for package in data.get("package", []):
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        source = package.get("source", {})
        if (
            kind == "uv.lock"
            and isinstance(source, dict)
            and ({"editable", "virtual", "directory", "path"} & set(source))
        ):
            continue  # the project itself or a local checkout
        if (
            kind == "poetry.lock"
            and isinstance(source, dict)
            and (source.get("type") in ("directory", "file"))
        ):
            continue
        pattern = re.compile(r"""^\s*name\s*=\s*["']""" + re.escape(name) + r"""["']""")
        number = _find_line(lines, used, pattern)
        pins.append(
            PinnedDependency(
                name=canonicalize_name(name),
                display_name=name,
                version=version,
                path=path,
                line=number,
                end_line=number,
                kind=kind,
                operator="==",
                text=f"{name} {version}",
            )
        )
    return pins


def _find_line(lines: list[str], used: set[int], pattern: re.Pattern[str]) -> int:
    for number, line in enumerate(lines, start=1):
        if number not in used and pattern.search(line):
            used.add(number)
            return number
    return 0


def _toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the file") from None
