"""The manifest of a custom remediation script (``manifest.yaml``).

A manifest names the script (a file next to the manifest), the finding rule
ids it fixes, the target paths it may change, how its fix is verified and the
limits it runs under. Example::

    name: disable-debug
    description: Turn debug off in app/config.ini
    script: disable_debug.sh          # relative to this manifest
    rule_ids: [APP-DEBUG-ON]
    paths: ["{finding.path}", "app/*.ini"]
    args: ["--file", "{finding.path}"]
    verify: {command: [grep, -q, "debug = false", "{finding.path}"]}
    timeout: 30
    limits: {cpu_seconds: 10, memory_mb: 256}
    # Confinement (see docs/remediation.md): these are the defaults.
    network: false                    # true opens the host network (a risk fact)
    user: nobody                      # or needs_root: true + root_reason: "..."
    sandbox: bwrap                    # none: run unconfined where bwrap is missing

Unknown fields are errors. :func:`load_manifest` turns every problem into one
:class:`~jupiter.errors.InputError` sentence naming the file and the field.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jupiter.errors import InputError

MAX_TIMEOUT = 3600.0
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
REMEDIATOR_PREFIX = "custom-"
"""Custom scripts become remediators named ``custom-<name>``; built-in and
third-party remediators must never use this prefix, so names cannot collide."""

# The finding fields an argument may reference as ``{finding.<field>}``.
FINDING_FIELDS = ("path", "rule_id", "package", "version", "start_line", "identity", "asset")
PLACEHOLDER = re.compile(r"\{finding\.([A-Za-z_]*)\}")
_GLOB_CHARS = frozenset("*?[")


def check_placeholders(value: str) -> str:
    """Refuse ``{finding.x}`` references to fields that do not exist."""
    for match in PLACEHOLDER.finditer(value):
        if match.group(1) not in FINDING_FIELDS:
            raise ValueError(
                f"{match.group(0)} is not a known placeholder "
                f"(use one of {', '.join('{finding.' + f + '}' for f in FINDING_FIELDS)})"
            )
    return value


def check_relative_pattern(value: str) -> str:
    """A target-relative path or glob: not absolute, no ``..``, no ``**``."""
    if not value or "\x00" in value:
        raise ValueError("path is empty or contains a NUL byte")
    if value.startswith(("/", "\\", "~")):
        raise ValueError(f"{value!r} is absolute; give a path relative to the target root")
    parts = value.replace("\\", "/").split("/")
    if ".." in parts:
        raise ValueError(f"{value!r} contains '..'; paths must stay inside the target root")
    if "**" in value:
        raise ValueError(f"{value!r} uses '**', which target globs do not support")
    if posixpath.normpath(value) in (".", ""):
        raise ValueError(f"{value!r} names the target root itself; name files inside it")
    return check_placeholders(value)


def check_argument(value: str) -> str:
    if "\x00" in value:
        raise ValueError("an argument contains a NUL byte")
    return check_placeholders(value)


# Validated one item at a time, so that an error names the item (args[2]).
Argument = Annotated[str, AfterValidator(check_argument)]
NonEmptyArgument = Annotated[str, Field(min_length=1), AfterValidator(check_argument)]
RelativePattern = Annotated[str, AfterValidator(check_relative_pattern)]


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


class Limits(BaseModel):
    """Resource limits applied with ``setrlimit`` before the script starts.

    ``memory_mb`` is the address space (RLIMIT_AS), not resident memory:
    runtimes that reserve large virtual ranges (JVM, Go) need a higher value.
    ``processes`` is RLIMIT_NPROC, which counts *every* process of the user
    the script runs as (not only the script's) and is not enforced for root.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: int = Field(default=120, ge=1, le=3600)
    memory_mb: int = Field(default=1024, ge=32, le=65536)
    file_size_mb: int = Field(default=512, ge=1, le=65536)
    open_files: int = Field(default=256, ge=16, le=65536)
    processes: int = Field(default=256, ge=1, le=65536)


class CommandVerify(BaseModel):
    """Run ``command`` (an argument vector) in the target root inside the same
    sandbox as the script; exit status 0 means the finding is fixed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[NonEmptyArgument] = Field(min_length=1)


class DetectorVerify(BaseModel):
    """The named remediator's detector must no longer report the finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: str = Field(pattern=NAME_PATTERN)


class ScriptManifest(BaseModel):
    """A validated ``manifest.yaml``; see the module docstring for an example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=60, pattern=NAME_PATTERN)
    description: str = Field(min_length=1, max_length=500)
    script: str = Field(min_length=1)
    rule_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1)
    paths: list[RelativePattern] = Field(min_length=1)
    verify: CommandVerify | DetectorVerify
    timeout: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT)
    limits: Limits = Field(default_factory=Limits)
    interpreter: list[NonEmptyArgument] | None = Field(default=None, min_length=1)
    args: list[Argument] = Field(default_factory=list)
    change_kind: Literal["config", "code", "permissions"] = "config"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Recorded at registration; if given beforehand it pins the script."""
    network: bool = False
    """Keep the host's network in the sandbox (a risk fact in the plan)."""
    user: str | None = Field(default=None, pattern=USER_PATTERN)
    """The unprivileged user the script runs as (default ``nobody``)."""
    needs_root: bool = False
    """Run as root (with file capabilities only); needs ``root_reason``."""
    root_reason: str | None = Field(default=None, min_length=1, max_length=300)
    sandbox: Literal["bwrap", "none"] = "bwrap"
    """``none``: on a host without bubblewrap, run unconfined (a risk fact);
    where bubblewrap is installed the sandbox is used anyway."""

    @field_validator("verify", mode="before")
    @classmethod
    def _one_verifier(cls, value: object) -> object:
        # Choose the member here: pydantic's own union errors would list
        # both members' complaints, naming classes the user never wrote.
        keys = set(value) & {"command", "detector"} if isinstance(value, dict) else set()
        if len(keys) != 1:
            raise ValueError(
                "give exactly one of 'command' (an argument vector, exit 0 = fixed) or "
                "'detector' (the name of a remediator whose detector verifies the fix)"
            )
        assert isinstance(value, dict)
        model = CommandVerify if keys == {"command"} else DetectorVerify
        return model.model_validate(value)

    @field_validator("script")
    @classmethod
    def _script_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in (".", "..") or value.startswith("."):
            raise ValueError(f"{value!r} must be a plain file name in the manifest's own folder")
        return value

    @field_validator("rule_ids")
    @classmethod
    def _unique_rules(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a rule id is listed twice")
        return value

    @model_validator(mode="after")
    def _root_needs_reason(self) -> ScriptManifest:
        if self.needs_root and not (self.root_reason or "").strip():
            raise ValueError(
                "'needs_root: true' needs a 'root_reason' saying why the script must run as root"
            )
        if self.root_reason is not None and not self.needs_root:
            raise ValueError("'root_reason' is given but 'needs_root' is not true")
        if self.needs_root and self.user is not None:
            raise ValueError("give either 'user' or 'needs_root: true', not both")
        if self.user == "root":
            raise ValueError("'user: root' is not allowed; say 'needs_root: true' with a reason")
        return self

    @property
    def run_as(self) -> str:
        """Who the script runs as, for plans and docs."""
        return "root" if self.needs_root else (self.user or "nobody")

    @property
    def remediator_name(self) -> str:
        return REMEDIATOR_PREFIX + self.name


def _describe_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = err["loc"]
        # A union (verify) adds the member's class name to the location; a
        # user never wrote that name, so leave it out.
        shown = [str(p) for p in loc if p not in ("CommandVerify", "DetectorVerify")]
        field = ""
        for item in shown:
            field += f"[{item}]" if item.isdigit() else (f".{item}" if field else item)
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"field '{field or '(top level)'}': {message}")
    return "; ".join(dict.fromkeys(parts))


def parse_manifest(data: object, source: Path) -> ScriptManifest:
    """Validate already-parsed manifest data; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise InputError(
            f"script manifest {source} must be a YAML mapping of fields (name, script, ...)"
        )
    try:
        return ScriptManifest.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            f"script manifest {source}: {_describe_error(exc)}; fix the manifest and try again"
        ) from None


def load_manifest(path: Path) -> ScriptManifest:
    """Read and validate a manifest file, or raise one InputError sentence."""
    from jupiter.yamlfile import read_yaml

    if not path.is_file():
        raise InputError(f"script manifest {path} does not exist; give the path of a manifest.yaml")
    return parse_manifest(read_yaml(path, "script manifest ", "try again"), path)


def dump_manifest(manifest: ScriptManifest) -> str:
    """The manifest as YAML text (what the store keeps)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(manifest.model_dump(mode="json", exclude_none=True), out)
    return out.getvalue()
