"""The files sshd's cryptography rests on besides sshd_config: host keys and
the Diffie-Hellman group file ``/etc/ssh/moduli``.

* **Host keys** (``SSHD-WEAK-HOST-KEY``): every key sshd loads — each global
  ``HostKey`` line, or the default ``ssh_host_{rsa,ecdsa,ed25519}_key`` when
  there is none — judged by its public half (``KEY.pub``; the private key is
  never read). DSA and RSA under 2048 bits are refused from ``baseline``,
  ECDSA on NIST curves from ``strict``, RSA under 3072 bits at ``maximum``.
  A key cannot be "edited": its plan is ``needs_manual`` with the commands
  that replace it, because every client that pinned it will see a new key.
* **moduli** (``SSHD-DH-MODULI``, from ``strict``): the groups sshd picks for
  ``diffie-hellman-group-exchange-*``; lines with a modulus under 3072 bits
  are removed — a file edit like any other (snapshotted, reversible). If no
  group would be left, the plan is ``needs_manual`` with the commands that
  generate new ones (sshd would otherwise fall back to a fixed group).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from jupiter.errors import PathEscapeError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.kit import read_text
from jupiter.plugins.sshd.algorithms import Level
from jupiter.plugins.sshd.parse import Directive, SshdConfig, include_pattern
from jupiter.targets.base import TargetView

HOST_KEY = "SSHD-WEAK-HOST-KEY"
MODULI = "SSHD-DH-MODULI"
MODULI_PATH = "etc/ssh/moduli"
MIN_DH_BITS = 3072
DEFAULT_HOST_KEYS = (
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_ecdsa_key",
    "etc/ssh/ssh_host_ed25519_key",
)
_RANK = {"baseline": 0, "strict": 1, "maximum": 2}


@dataclass(frozen=True)
class HostKey:
    path: str  # the private key, target-relative
    key_type: str  # ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ssh-dss, ...
    bits: int | None
    directive: Directive | None  # None: loaded by default

    @property
    def refused_from(self) -> Level | None:
        """The lowest level that refuses this key (``None``: no level does)."""
        t, bits = self.key_type, self.bits or 0
        if t.startswith("ssh-dss") or (t.startswith("ssh-rsa") and bits < 2048):
            return "baseline"
        if t.startswith(("ecdsa-sha2-", "sk-ecdsa-")):
            return "strict"
        if t.startswith("ssh-rsa") and bits < 3072:
            return "maximum"
        return None

    @property
    def described(self) -> str:
        size = f"{self.bits}-bit " if self.bits else ""
        return f"{size}{self.key_type}"


def public_key_info(line: str) -> tuple[str, int | None] | None:
    """(type, bits) of one ``.pub`` line; ``None`` if it is not a public key."""
    parts = line.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    fields = _ssh_strings(blob)
    if not fields:
        return None
    key_type = fields[0].decode("ascii", "replace")
    if key_type == "ssh-rsa" and len(fields) >= 3:
        return key_type, int.from_bytes(fields[2], "big").bit_length()
    if key_type == "ssh-dss" and len(fields) >= 2:
        return key_type, int.from_bytes(fields[1], "big").bit_length()
    if key_type.startswith("ecdsa-sha2-nistp"):
        return key_type, int(key_type.removeprefix("ecdsa-sha2-nistp") or 0) or None
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        return key_type, 256
    return key_type, None


def _ssh_strings(blob: bytes) -> list[bytes]:
    out, i = [], 0
    while i + 4 <= len(blob):
        n = int.from_bytes(blob[i : i + 4], "big")
        if i + 4 + n > len(blob):
            return []
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def loaded_host_keys(view: TargetView, config: SshdConfig) -> list[HostKey]:
    """The host keys sshd loads whose public half exists in the target."""
    lines = [d for d in config.directives if d.keyword == "hostkey" and d.match is None]
    wanted: list[tuple[str, Directive | None]] = []
    for d in lines:
        for arg in d.args:
            try:
                wanted.append((include_pattern(arg), d))
            except PathEscapeError:
                continue
    if not lines:
        wanted = [(p, None) for p in DEFAULT_HOST_KEYS]
    keys = []
    for path, line in wanted:
        pub = path + ".pub"
        st = view.stat(pub)
        if st is None or st.kind not in ("file", "symlink"):
            continue
        try:
            text = read_text(view, pub)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        info = public_key_info(text.strip())
        if info is not None:
            keys.append(HostKey(path, info[0], info[1], line))
    return keys


def host_key_findings(
    view: TargetView, config: SshdConfig, level: str, scanner: str
) -> list[FindingRecord]:
    found = []
    for key in loaded_host_keys(view, config):
        since = key.refused_from
        if since is None or _RANK[since] > _RANK[level]:
            continue
        d = key.directive
        how = f"HostKey in {d.path} line {d.line}" if d else "default HostKey"
        found.append(
            FindingRecord(
                scanner=scanner,
                rule_id=HOST_KEY,
                category=Category.CONFIG_SSH,
                title=f"sshd host key {key.path} is a weak {key.described} key",
                severity=Severity.MEDIUM if since == "baseline" else Severity.LOW,
                location=Location(path=key.path),
                evidence=f"{key.path}.pub: {key.described} ({how})",
                cwe=["CWE-326"],
                identity=key.path,
                extra={
                    "level": level,
                    "since": since,
                    "key_type": key.key_type,
                    "bits": key.bits,
                    "hostkey_line": [d.path, d.line] if d else None,
                },
            )
        )
    return found


def regeneration_steps(key: HostKey) -> str:
    """The manual fix for a weak host key, as one paragraph with commands."""
    host_path = "/" + key.path
    replace = (
        f"replace it: rm {host_path} {host_path}.pub && "
        f"ssh-keygen -q -t rsa -b 4096 -N '' -f {host_path}"
    )
    drop = f"stop loading it: delete {host_path} and {host_path}.pub"
    if key.directive is not None:
        d = key.directive
        drop += f" and the HostKey line {d.path} line {d.line}"
    action = replace if key.key_type.startswith("ssh-rsa") else drop
    return (
        f"{key.path} is a {key.described} host key. Make sure an Ed25519 host key exists "
        "(ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key, loaded by a "
        f"HostKey line if sshd_config names any), then {action}; reload sshd and publish the "
        "new fingerprints (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), because clients "
        "that pinned the old key will refuse the new one until known_hosts is updated"
    )


@dataclass(frozen=True)
class ModuliState:
    text: str
    kept: str  # the file without the small groups
    small: int  # groups under MIN_DH_BITS
    left: int  # groups that stay


def moduli_state(view: TargetView) -> ModuliState | None:
    st = view.stat(MODULI_PATH)
    if st is None or st.kind not in ("file", "symlink"):
        return None
    text = read_text(view, MODULI_PATH)
    kept: list[str] = []
    small = left = 0
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 7 or not fields[4].isdigit():
            kept.append(line)
            continue
        # The size field is the modulus length minus one (3071 for 3072 bits).
        if int(fields[4]) + 1 < MIN_DH_BITS:
            small += 1
        else:
            left += 1
            kept.append(line)
    return ModuliState(text, "".join(kept), small, left)


def moduli_findings(view: TargetView, level: str, scanner: str) -> list[FindingRecord]:
    state = moduli_state(view)
    if state is None or state.small == 0:
        return []
    return [
        FindingRecord(
            scanner=scanner,
            rule_id=MODULI,
            category=Category.CONFIG_SSH,
            title=f"{MODULI_PATH} offers {state.small} Diffie-Hellman groups under "
            f"{MIN_DH_BITS} bits",
            severity=Severity.LOW,
            location=Location(path=MODULI_PATH),
            evidence=f"{state.small} of {state.small + state.left} groups are under "
            f"{MIN_DH_BITS} bits",
            cwe=["CWE-326"],
            identity="global",
            extra={"level": level, "since": "strict", "small": state.small, "left": state.left},
        )
    ]


def moduli_regeneration() -> str:
    tmp = f"moduli-{MIN_DH_BITS}"
    return (
        f"no group of {MIN_DH_BITS} bits or more would be left in /{MODULI_PATH}; generate "
        f"new ones (this takes hours): ssh-keygen -M generate -O bits={MIN_DH_BITS} "
        f"{tmp}.candidates && ssh-keygen -M screen -f {tmp}.candidates {tmp}.safe, then "
        f"install {tmp}.safe as /{MODULI_PATH} and run jupiter again"
    )
