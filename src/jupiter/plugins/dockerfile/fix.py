"""``dockerfile-hardening``: run images as a non-root user and use COPY
instead of ADD, by line edits that keep comments, continuations and layout.

* ``DOCKER-ROOT-USER`` (Checkov CKV_DOCKER_3/8): a non-root user is added in
  the final stage's own idiom, found from its base image (following
  ``FROM <stage>``): Alpine/BusyBox ``addgroup``/``adduser``,
  Debian/Ubuntu/RHEL ``groupadd``/``useradd``, distroless/Chainguard their
  built-in ``nonroot`` (65532); scratch, minimal and unknown bases get a
  numeric ``USER`` without an account (with a warning). ``RUN`` + ``USER`` go
  after the stage's last ``RUN`` and before its ``CMD``/``ENTRYPOINT`` (and
  the comments right above it). A non-root user the stage already switched
  to earlier is reused instead.
* ``DOCKER-ADD`` (CKV_DOCKER_4): ``ADD`` of local paths becomes ``COPY``
  (same flags, keyword case kept); ADD of URLs, git repositories or
  archives (which ADD unpacks) needs a human.
* ``DOCKER-NO-HEALTHCHECK`` (CKV_DOCKER_2) always needs a human (the
  command is app-specific); ``DOCKER-IMAGE-LATEST`` (CKV_DOCKER_7) too,
  unless ``image_pins`` names the reference to use.

Checkov findings (file and line only) are planned like the built-in ones of
the same file and count as fixed when the built-in rule no longer fires there;
one that can only be fixed in part (a local ADD and a URL ADD) is
``needs_manual``, since a partial fix would fail verification. Validation
re-parses the candidate (no Docker daemon is needed).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.dockerfile import detect as checks
from jupiter.plugins.dockerfile import instructions
from jupiter.plugins.dockerfile.parse import Dockerfile, Instruction, split_image
from jupiter.plugins.kit import keep_line_endings
from jupiter.targets.base import TargetView

DISTROLESS_UID = 65532


class DockerfileParams(BaseModel):
    """``uid``/``user`` of the account added for DOCKER-ROOT-USER;
    ``image_pins``: image as written → pinned reference, for DOCKER-IMAGE-LATEST."""

    model_config = ConfigDict(extra="forbid")

    uid: int = Field(default=10001, ge=1000, le=2**31 - 1)
    user: str = Field(default="app", pattern=r"^[a-z_][a-z0-9_-]{0,30}$")
    image_pins: dict[str, str] = Field(default_factory=dict)


_ALPINE = re.compile(r"(^|[/-])(alpine|busybox)($|[-:.])|alpine")
_DEBIAN_TAGS = re.compile(r"bookworm|bullseye|buster|trixie|slim|jammy|noble|focal|bionic")
_DEBIAN_IMAGES = frozenset(
    {
        "debian",
        "ubuntu",
        "python",
        "node",
        "golang",
        "ruby",
        "php",
        "openjdk",
        "eclipse-temurin",
        "nginx",
        "httpd",
        "buildpack-deps",
        "rust",
        "perl",
        "maven",
        "gradle",
        "postgres",
        "redis",
        "mariadb",
        "mysql",
        "elixir",
        "erlang",
        "haskell",
        "julia",
        "r-base",
        "swift",
        "tomcat",
    }
)
_RHEL_IMAGES = re.compile(
    r"(^|/)(ubi\d*|centos|fedora|rockylinux|almalinux|amazonlinux|"
    r"oraclelinux|stream\d*)$"
)


def base_family(image: str) -> str:
    """``alpine``, ``debian``, ``rhel``, ``distroless`` or ``unknown`` (also scratch)."""
    repo, tag, _ = split_image(image.lower())
    short = repo.rsplit("/", 1)[-1]
    if repo.startswith(("gcr.io/distroless/", "cgr.dev/chainguard/")):
        return "distroless"
    if repo == "scratch":
        return "unknown"
    if _ALPINE.search(short) or "alpine" in tag:
        return "alpine"
    if _RHEL_IMAGES.search(repo):
        return "unknown" if re.search(r"minimal|micro", repo + tag) else "rhel"
    if short in _DEBIAN_IMAGES or _DEBIAN_TAGS.search(tag):
        return "debian"
    return "unknown"


class DockerfileHardening(Remediator[DockerfileParams]):
    name: ClassVar[str] = "dockerfile-hardening"
    summary: ClassVar[str] = (
        "Make Dockerfiles run as a non-root user (in the base image's idiom) and use COPY "
        "instead of ADD; flags missing HEALTHCHECKs and unpinned base images."
    )
    categories: ClassVar[frozenset[Category]] = frozenset({Category.IAC_DOCKER})
    rule_ids: ClassVar[frozenset[str]] = checks.RULE_IDS
    params_model: ClassVar[type[BaseModel]] = DockerfileParams

    def parse_params(self, raw: dict[str, object] | None) -> DockerfileParams:
        return _params(raw)

    def detect(
        self, view: TargetView, params: DockerfileParams | None = None
    ) -> list[FindingRecord]:
        return checks.check(view)

    def survey(
        self, view: TargetView, params: DockerfileParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        result = checks.scan(view)
        return result.findings, [str(e) for e in result.errors]

    def plan(self, finding: FindingRecord, view: TargetView, params: DockerfileParams) -> Plan:
        p = _params(params)
        rule = checks.rule_for(finding.rule_id)
        if rule is None:
            raise InputError(
                f"dockerfile-hardening cannot plan rule {finding.rule_id!r}; it handles "
                f"{', '.join(sorted(checks.RULE_IDS))}"
            )
        path = finding.location.path
        if not path:
            raise InputError(
                f"finding {finding.rule_id} has no file path; dockerfile-hardening "
                "needs the Dockerfile's path relative to the target root"
            )
        if view.stat(path) is None:
            raise ConflictError(
                f"{path} named by finding {finding.rule_id} no longer exists on "
                f"{view.describe()}; run detect again and plan the new findings"
            )
        raw = view.read_bytes(path)  # read once: the plan's precondition is these bytes
        df = checks.parse_bytes(path, raw)
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"{finding.title.split(' (')[0]} ({path})",
        )
        open_here = [
            f for f in checks.check_file(df) if f.rule_id == rule and _same(finding, f, rule)
        ]
        if not open_here:
            return base
        lines = df.lines
        warnings: list[str] = []
        manual: list[str] = []
        if rule == checks.ROOT_USER:
            warnings.extend(_add_user(df, lines, p))
        elif rule == checks.ADD:
            for record in open_here:
                instr = _instruction_at(df, record.location.start_line)
                kind = checks.add_kind(instr)
                if kind != "local":
                    manual.append(_ADD_MANUAL[kind].format(line=instr.start_line))
                    continue
                lines[instr.start_line - 1] = _rename_keyword(lines[instr.start_line - 1], instr)
        elif rule == checks.IMAGE_LATEST:
            for record in open_here:
                instr = _instruction_at(df, record.location.start_line)
                image = instr.operands()[0]
                pin = p.image_pins.get(image)
                if pin is None or (split_image(pin)[1] in ("", "latest") and "@" not in pin):
                    manual.append(
                        f"line {instr.start_line}: choose a tested version tag or "
                        f"digest for {image!r} and give it in image_pins"
                    )
                    continue
                lines[instr.start_line - 1] = lines[instr.start_line - 1].replace(image, pin, 1)
        elif rule in instructions.FIXERS:
            for record in open_here:
                instr = _instruction_at(df, record.location.start_line)
                reason = instructions.FIXERS[rule](df, lines, instr)
                if reason is not None:
                    manual.append(reason)
        else:
            manual.append(
                "a HEALTHCHECK runs an app-specific probe (e.g. HEALTHCHECK CMD "
                "curl -fsS http://localhost:8080/health || exit 1, with a tool the "
                "image has); add one, or HEALTHCHECK NONE when the orchestrator "
                "probes instead"
            )
        after = keep_line_endings(df.text, "".join(lines))
        if after == df.text or manual:
            # A partial fix would fail verification and be rolled back: the
            # instances COPY can replace are fixed through their own findings.
            return base.model_copy(update={"needs_manual": "; ".join(manual) or None})
        return base.model_copy(
            update={
                "changes": [WriteFile(path=path, content=after, before_sha256=sha256_bytes(raw))],
                "diff": unified_diff(path, df.text, after),
                "risk": Risk(
                    change_kind="config",
                    warnings=warnings,
                    manual_steps=[f"rebuild and test the image built from {path}"],
                ),
            }
        )

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: DockerfileParams) -> bool:
        """Fixed when the built-in rule no longer fires on the same file (and
        the same instruction, for built-in per-instruction findings)."""
        rule = checks.rule_for(finding.rule_id)
        path = finding.location.path
        if rule is None or not path:
            return super().is_fixed(finding, view, params)
        if view.stat(path) is None:
            return True
        try:
            df = checks.load(view, path)
        except InputError:
            return False
        return not any(f.rule_id == rule and _same(finding, f, rule) for f in checks.check_file(df))

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Re-parse each written Dockerfile (instructions, continuations, heredocs)."""
        problems = []
        for path in plan.touched_paths():
            try:
                checks.load(candidate, path)
            except InputError as exc:
                problems.append(str(exc))
            except FileNotFoundError:
                continue
        if problems:
            return [ValidationResult("dockerfile-parse", "failed", "; ".join(problems))]
        return [ValidationResult("dockerfile-parse", "passed", "the Dockerfile parses")]


_ADD_MANUAL = {
    "url": (
        "line {line}: ADD downloads a URL or git repository without verifying it; "
        "download it in a RUN step with a checksum check (or ADD --checksum=sha256:...)"
    ),
    "archive": (
        "line {line}: ADD unpacks this archive, which COPY would not; unpack it in a "
        "RUN step or keep ADD on purpose"
    ),
    "flags": (
        "line {line}: ADD uses flags COPY does not have (--checksum, --keep-git-dir); "
        "keep ADD or rewrite the step by hand"
    ),
}


def _params(raw: object) -> DockerfileParams:
    if isinstance(raw, DockerfileParams):
        return raw
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})  # type: ignore[call-overload]
    try:
        return DockerfileParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        raise InputError(f"dockerfile-hardening parameter {where}: {err['msg']}") from None


def _same(finding: FindingRecord, record: FindingRecord, rule: str) -> bool:
    """Whether ``record`` (built-in, current file) is the issue ``finding`` names.
    Built-in findings match by identity (the store keeps it, not the scanner
    name); Checkov findings have none and match every instance in the file."""
    if finding.identity:
        return record.identity == finding.identity
    return True


def _instruction_at(df: Dockerfile, line: int | None) -> Instruction:
    for instr in df.instructions:
        if instr.start_line == line:
            return instr
    raise AssertionError(f"no instruction starts at line {line}")  # detect made the record


def _rename_keyword(line: str, instr: Instruction) -> str:
    at = line.index(instr.spelled)
    copy = "copy" if instr.spelled.islower() else "COPY"
    return line[:at] + copy + line[at + len(instr.spelled) :]


def _add_user(df: Dockerfile, lines: list[str], p: DockerfileParams) -> list[str]:
    """Insert RUN (when needed) + USER into the final stage; returns warnings."""
    final = df.stages[-1]
    low = df.lowercase()
    run_kw, user_kw = ("run", "user") if low else ("RUN", "USER")
    chain = df.base_chain(final)
    reuse = [
        u
        for s in chain
        for i in reversed(s.instructions)
        if i.keyword == "USER"
        for u in [" ".join(i.operands())]
        if u and not checks.is_root(checks.user_of(u))
    ]
    family = base_family(chain[-1].image)
    uid = p.uid
    new: list[str] = []
    warnings = [
        "the image now runs as a non-root user: files the app writes at run time "
        "must be writable by it (chown them with COPY --chown or RUN chown)"
    ]
    if reuse:
        new.append(f"{user_kw} {reuse[0]}")
    elif family == "alpine":
        new += [
            f"{run_kw} addgroup -S -g {uid} {p.user} && "
            f"adduser -S -D -H -u {uid} -G {p.user} {p.user}",
            f"{user_kw} {uid}:{uid}",
        ]
    elif family in ("debian", "rhel"):
        new += [
            f"{run_kw} groupadd --gid {uid} {p.user} && "
            f"useradd --uid {uid} --gid {p.user} --no-create-home {p.user}",
            f"{user_kw} {uid}:{uid}",
        ]
    elif family == "distroless":
        new.append(f"{user_kw} {DISTROLESS_UID}:{DISTROLESS_UID}")
    else:
        new.append(f"{user_kw} {uid}:{uid}")
        warnings.append(
            f"the base image {chain[-1].image!r} has no known way to add a user, "
            f"so the image runs as UID {uid} without a passwd entry (no name, "
            "HOME=/); check that the app does not need one"
        )
    at = _insert_at(final.instructions, lines, final.source.end_line)
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    block = [t + "\n" for t in new]
    if at > 0 and not lines[at - 1].strip() and at < len(lines):
        block.append("\n")  # keep the blank line that separated the steps
    lines[at:at] = block
    return warnings


def _insert_at(stage: list[Instruction], lines: list[str], from_end: int) -> int:
    """0-based line index: before the first CMD/ENTRYPOINT after the last RUN
    and the last USER (and the comments right above it), else after the
    stage's last instruction. After the last USER, so a ``USER root`` written
    below the CMD cannot undo the fix."""
    last = max((k for k, i in enumerate(stage) if i.keyword in ("RUN", "USER")), default=-1)
    for instr in stage[last + 1 :]:
        if instr.keyword in ("CMD", "ENTRYPOINT"):
            at = instr.start_line - 1
            while at > 0 and lines[at - 1].lstrip().startswith("#"):
                at -= 1
            return at
    return stage[-1].end_line if stage else from_end
