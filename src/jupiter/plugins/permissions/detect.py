"""Built-in checks of file modes and owners over a target tree.

Rule ids (category ``permissions``), one finding per file (the store merges
findings by path and category anyway); ``extra["rules"]`` lists every rule
the file breaks, ``rule_id`` is the most serious of them:

* ``PERM-SENSITIVE-FILE`` — ``etc/shadow``/``etc/gshadow`` (at most 0640
  with group ``shadow``, else 0600), ``etc/ssh/ssh_host_*_key`` (0600, or
  0640 with group ``ssh_keys`` as on Fedora), ``etc/sudoers`` and
  ``etc/sudoers.d/*`` (0440), ``etc/passwd``/``etc/group`` (0644): looser
  bits, or an owner other than root / a group outside those named;
* ``PERM-SECRET-READABLE`` — private keys and secrets readable (or writable)
  by group or others. By name: SSH identities (``id_rsa``...), ``*.p12``,
  ``*.pfx``, ``*.jks``, ``*.keystore``, ``*.ppk``, ``.env``/``.env.*``,
  ``.netrc``, ``.pgpass``, ``.git-credentials``, ``.aws/credentials``; by
  content: ``*.pem``/``*.crt``/``*.cer``/``*.key`` and files in ``.ssh``
  holding a PEM/OpenSSH private key (``*.key`` counts unless it holds only
  public PEM blocks). Group read is accepted for the groups in
  ``secret_groups`` (default ``ssl-cert``, Debian's key-reader group);
* ``PERM-WORLD-WRITABLE`` — regular files writable by others.

Symlinks are skipped (their mode means nothing). Group names are resolved
through the target's own ``etc/group``. Owner checks run only when asked
(``check_owner``), by default when the scanning process is root: an
unprivileged copy of a tree has every file owned by the copier, so owner
findings there would be noise.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass, field

from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.targets.base import FileState, TargetView

SCANNER = "jupiter-permissions"
SKIP_TOP = ("proc", "sys", "dev", "run")
_SNIFF_MAX = 1 << 20
_PRIVATE_PEM = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_SSH_IDENTITIES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
)
_SECRET_NAMES = frozenset({".netrc", ".pgpass", ".git-credentials", ".env"})
_SECRET_SUFFIXES = (".p12", ".pfx", ".jks", ".keystore", ".ppk")
_SNIFF_SUFFIXES = (".pem", ".crt", ".cer", ".key")
_ENV_TEMPLATES = (".example", ".sample", ".template", ".dist")
_SSH_PUBLIC = frozenset({"known_hosts", "known_hosts.old", "authorized_keys", "config"})
_SYSTEM_TOPS = frozenset({"etc", "usr", "bin", "sbin", "lib", "lib64", "boot", "root", "opt"})
_RULE_ORDER = ("PERM-SENSITIVE-FILE", "PERM-SECRET-READABLE", "PERM-WORLD-WRITABLE")


@dataclass(frozen=True)
class SensitiveSpec:
    pattern: str
    max_mode: int
    group: str | None = None  # a group allowed besides root
    group_max_mode: int | None = None  # the ceiling when the file has that group


SENSITIVE = (
    SensitiveSpec("etc/shadow", 0o600, "shadow", 0o640),
    SensitiveSpec("etc/gshadow", 0o600, "shadow", 0o640),
    SensitiveSpec("etc/ssh/ssh_host_*_key", 0o600, "ssh_keys", 0o640),
    SensitiveSpec("etc/sudoers", 0o440),
    SensitiveSpec("etc/sudoers.d/*", 0o440),
    SensitiveSpec("etc/passwd", 0o644),
    SensitiveSpec("etc/group", 0o644),
)


@dataclass
class Assessment:
    """What is wrong with one file and the state that fixes all of it."""

    path: str
    state: FileState
    mode: int
    uid: int
    gid: int
    issues: list[tuple[str, Severity, str]] = field(default_factory=list)

    @property
    def owner_change(self) -> bool:
        return (self.uid, self.gid) != (self.state.uid, self.state.gid)


def read_groups(view: TargetView) -> dict[str, int]:
    """Group name → gid from the target's ``etc/group`` (empty if absent)."""
    try:
        text = view.read_bytes("etc/group").decode("utf-8", errors="replace")
    except (FileNotFoundError, PermissionError):
        return {}
    groups: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            groups.setdefault(parts[0], int(parts[2]))
    return groups


def secret_reason(view: TargetView, path: str, state: FileState) -> str | None:
    """Why ``path`` holds a secret (by name or content), or None."""
    name = posixpath.basename(path)
    parent = posixpath.basename(posixpath.dirname(path))
    if name in _SSH_IDENTITIES or name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES):
        return f"named like a secret ({name})"
    if name.startswith(".env.") and not name.endswith(_ENV_TEMPLATES):
        return f"named like a secret ({name})"
    if name == "credentials" and parent == ".aws":
        return "AWS credentials file"
    in_ssh = parent == ".ssh" and name not in _SSH_PUBLIC and not name.endswith(".pub")
    if not (in_ssh or name.endswith(_SNIFF_SUFFIXES)) or state.size > _SNIFF_MAX:
        return None
    try:
        head = view.read_bytes(path)
    except (FileNotFoundError, PermissionError):
        head = b""
    if _PRIVATE_PEM.search(head) or b"-----BEGIN OPENSSH PRIVATE KEY-----" in head:
        return "contains a private key"
    if name.endswith(".key") and b"-----BEGIN" not in head:
        return f"named like a private key ({name})"
    return None


def assess(
    view: TargetView,
    path: str,
    state: FileState,
    groups: dict[str, int],
    *,
    check_owner: bool,
    secret_groups: frozenset[str] = frozenset({"ssl-cert"}),
) -> Assessment:
    """Every permission problem of one regular file and the fixing state."""
    a = Assessment(path, state, state.mode, state.uid, state.gid)
    if state.mode & 0o002:
        top = path.split("/", 1)[0]
        severity = Severity.HIGH if top in _SYSTEM_TOPS else Severity.MEDIUM
        a.issues.append(
            ("PERM-WORLD-WRITABLE", severity, f"mode {state.mode:04o} is world-writable")
        )
        a.mode &= ~0o002
    reason = secret_reason(view, path, state)
    if reason and a.mode & 0o077:
        allowed = {groups[g] for g in secret_groups if g in groups}
        ceiling = 0o740 if state.gid in allowed else 0o700
        if a.mode & ~ceiling & 0o7777:
            severity = Severity.HIGH if a.mode & 0o006 else Severity.MEDIUM
            a.issues.append(
                (
                    "PERM-SECRET-READABLE",
                    severity,
                    f"{reason}; mode {state.mode:04o} lets group/others read it",
                )
            )
            a.mode &= ceiling
    for spec in SENSITIVE:
        if not fnmatch.fnmatchcase(path, spec.pattern):
            continue
        group_gid = groups.get(spec.group) if spec.group else None
        ok_gids = {0} | ({group_gid} if group_gid is not None else set())
        if check_owner and (state.uid != 0 or state.gid not in ok_gids):
            a.uid, a.gid = 0, state.gid if state.gid in ok_gids else 0
            a.issues.append(
                (
                    "PERM-SENSITIVE-FILE",
                    Severity.HIGH,
                    f"owned by {state.uid}:{state.gid}, expected root and group root"
                    + (f" or {spec.group}" if spec.group else ""),
                )
            )
        ceiling = spec.max_mode
        if spec.group_max_mode is not None and group_gid is not None and a.gid == group_gid:
            ceiling = spec.group_max_mode
        if a.mode & ~ceiling & 0o7777:
            a.issues.append(
                (
                    "PERM-SENSITIVE-FILE",
                    Severity.HIGH,
                    f"mode {state.mode:04o} is looser than {ceiling:04o}",
                )
            )
            a.mode &= ceiling
        break
    return a


def _record(a: Assessment) -> FindingRecord:
    rules = sorted({r for r, _, _ in a.issues}, key=_RULE_ORDER.index)
    severity = max((s for _, s, _ in a.issues), key=lambda s: s.rank)
    titles = {
        "PERM-SENSITIVE-FILE": "Sensitive system file has loose permissions",
        "PERM-SECRET-READABLE": "Secret or private key is readable by group or others",
        "PERM-WORLD-WRITABLE": "File is writable by any user",
    }
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rules[0],
        category=Category.PERMISSIONS,
        title=f"{titles[rules[0]]}: {a.path}",
        severity=severity,
        location=Location(path=a.path),
        evidence="; ".join(text for _, _, text in a.issues),
        cwe=["CWE-732"],
        extra={
            "rules": rules,
            "mode": f"{a.state.mode:04o}",
            "uid": a.state.uid,
            "gid": a.state.gid,
        },
    )


def default_check_owner() -> bool:
    return os.geteuid() == 0


def check_permissions(
    view: TargetView,
    *,
    check_owner: bool | None = None,
    secret_groups: frozenset[str] = frozenset({"ssl-cert"}),
    skip_top: tuple[str, ...] = SKIP_TOP,
) -> list[FindingRecord]:
    """Findings for every regular file below the target root except the
    top-level directories in ``skip_top`` (kernel pseudo-filesystems)."""
    owner = default_check_owner() if check_owner is None else check_owner
    groups = read_groups(view)
    findings: list[FindingRecord] = []
    for top in view.glob("*"):
        if top in skip_top:
            continue
        top_state = view.stat(top)
        if top_state is None:
            continue
        paths = view.walk(top) if top_state.kind == "dir" else [top]
        for path in paths:
            state = view.stat(path)
            if state is None or state.kind != "file":
                continue
            a = assess(view, path, state, groups, check_owner=owner, secret_groups=secret_groups)
            if a.issues:
                findings.append(_record(a))
    return findings
