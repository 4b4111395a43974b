"""Which OpenSSH a target runs, what it supports and what it offers by default.

An algorithm policy is only right for the release that reads it: a list that
names ``sntrup761x25519-sha512@openssh.com`` makes OpenSSH 8.4's sshd refuse
to start, and a config that never names ``KexAlgorithms`` offers whatever that
release offers by default. So the policy starts from an :class:`OpenSSH`:

* ``version`` and ``supported`` come from the target's own binaries
  (``ssh -V``, ``ssh -Q kex|cipher|mac|key-sig``), run over the target's
  session — locally for a local target, over SSH for an SSH target;
* for a *directory* target that mirrors a host (``local:/srv/mirror/web-1``)
  the binaries of this machine are read, and the result says so: set the
  remediator parameter ``openssh_version`` (e.g. ``9.2``) to the mirrored
  host's release when it differs; an explicit ``openssh_version`` always wins
  and uses the release table below instead of any binary;
* when nothing can be read the oldest supported release (7.4) is assumed and
  the ``source`` sentence says so; its lists are a subset of every later one.

``defaults`` are the server's compiled-in lists for that release (measured
with ``sshd -T`` on 9.2, and from the release notes for the others),
restricted to what the binary says it supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jupiter.targets.base import CommandResult, Target, TargetView
from jupiter.targets.local_commands import run_argv
from jupiter.targets.overlay import OverlayView

AlgoKind = Literal["ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyalgorithms"]
KINDS: tuple[AlgoKind, ...] = (
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyalgorithms",
)
Version = tuple[int, int]
OLDEST: Version = (7, 4)
PROBE_TIMEOUT = 10.0
_VERSION = re.compile(r"OpenSSH_(\d+)\.(\d+)")

# (name, first release, first release without it); None = still there.
_Table = tuple[tuple[str, Version, Version | None], ...]
_ALWAYS: Version = (0, 0)

_KEX: _Table = (
    ("mlkem768x25519-sha256", (9, 9), None),
    ("sntrup761x25519-sha512", (9, 9), None),
    ("sntrup761x25519-sha512@openssh.com", (8, 5), None),
    ("sntrup4591761x25519-sha512@tinyssh.org", (8, 0), (8, 5)),
    ("curve25519-sha256", (7, 4), None),
    ("curve25519-sha256@libssh.org", _ALWAYS, None),
    ("ecdh-sha2-nistp256", _ALWAYS, None),
    ("ecdh-sha2-nistp384", _ALWAYS, None),
    ("ecdh-sha2-nistp521", _ALWAYS, None),
    ("diffie-hellman-group-exchange-sha256", _ALWAYS, None),
    ("diffie-hellman-group16-sha512", (7, 3), None),
    ("diffie-hellman-group18-sha512", (7, 3), None),
    ("diffie-hellman-group14-sha256", (7, 3), None),
    ("diffie-hellman-group14-sha1", _ALWAYS, None),
    ("diffie-hellman-group-exchange-sha1", _ALWAYS, None),
    ("diffie-hellman-group1-sha1", _ALWAYS, None),
)
_CIPHERS: _Table = (
    ("chacha20-poly1305@openssh.com", _ALWAYS, None),
    ("aes128-ctr", _ALWAYS, None),
    ("aes192-ctr", _ALWAYS, None),
    ("aes256-ctr", _ALWAYS, None),
    ("aes128-gcm@openssh.com", _ALWAYS, None),
    ("aes256-gcm@openssh.com", _ALWAYS, None),
    ("aes128-cbc", _ALWAYS, None),
    ("aes192-cbc", _ALWAYS, None),
    ("aes256-cbc", _ALWAYS, None),
    ("3des-cbc", _ALWAYS, None),
)
_MACS: _Table = tuple(
    (m, _ALWAYS, None)
    for m in (
        "umac-64-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "umac-64@openssh.com",
        "umac-128@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1",
        "hmac-sha1-96",
        "hmac-md5",
        "hmac-md5-96",
        "hmac-sha1-96-etm@openssh.com",
        "hmac-md5-etm@openssh.com",
        "hmac-md5-96-etm@openssh.com",
    )
)
# Signature algorithms, in sshd's default order (9.2's ``sshd -T``).
_SIGS: _Table = (
    ("ssh-ed25519-cert-v01@openssh.com", _ALWAYS, None),
    ("ecdsa-sha2-nistp256-cert-v01@openssh.com", _ALWAYS, None),
    ("ecdsa-sha2-nistp384-cert-v01@openssh.com", _ALWAYS, None),
    ("ecdsa-sha2-nistp521-cert-v01@openssh.com", _ALWAYS, None),
    ("sk-ssh-ed25519-cert-v01@openssh.com", (8, 2), None),
    ("sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", (8, 2), None),
    ("rsa-sha2-512-cert-v01@openssh.com", (7, 8), None),
    ("rsa-sha2-256-cert-v01@openssh.com", (7, 8), None),
    ("ssh-rsa-cert-v01@openssh.com", _ALWAYS, None),
    ("ssh-ed25519", _ALWAYS, None),
    ("ecdsa-sha2-nistp256", _ALWAYS, None),
    ("ecdsa-sha2-nistp384", _ALWAYS, None),
    ("ecdsa-sha2-nistp521", _ALWAYS, None),
    ("sk-ssh-ed25519@openssh.com", (8, 2), None),
    ("sk-ecdsa-sha2-nistp256@openssh.com", (8, 2), None),
    ("rsa-sha2-512", _ALWAYS, None),
    ("rsa-sha2-256", _ALWAYS, None),
    ("ssh-rsa", _ALWAYS, None),
    ("ssh-dss", _ALWAYS, (10, 0)),
    ("ssh-dss-cert-v01@openssh.com", _ALWAYS, (10, 0)),
)
TABLES: dict[AlgoKind, _Table] = {
    "kexalgorithms": _KEX,
    "ciphers": _CIPHERS,
    "macs": _MACS,
    "hostkeyalgorithms": _SIGS,
    "pubkeyalgorithms": _SIGS,
}
_NOT_DEFAULT: dict[AlgoKind, frozenset[str]] = {
    "kexalgorithms": frozenset(
        {
            "diffie-hellman-group-exchange-sha1",
            "diffie-hellman-group1-sha1",
            "sntrup4591761x25519-sha512@tinyssh.org",
        }
    ),
    "ciphers": frozenset({"aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"}),
    "macs": frozenset(
        {
            "hmac-sha1-96",
            "hmac-md5",
            "hmac-md5-96",
            "hmac-sha1-96-etm@openssh.com",
            "hmac-md5-etm@openssh.com",
            "hmac-md5-96-etm@openssh.com",
        }
    ),
    "hostkeyalgorithms": frozenset({"ssh-dss", "ssh-dss-cert-v01@openssh.com"}),
    "pubkeyalgorithms": frozenset({"ssh-dss", "ssh-dss-cert-v01@openssh.com"}),
}
# ``ssh -Q`` query per kind (``key-sig`` lists signature algorithms, 8.2+).
_QUERY: dict[AlgoKind, str] = {
    "kexalgorithms": "kex",
    "ciphers": "cipher",
    "macs": "mac",
    "hostkeyalgorithms": "key-sig",
    "pubkeyalgorithms": "key-sig",
}


@dataclass(frozen=True)
class OpenSSH:
    """One OpenSSH release as the policy sees it.

    ``source`` is a sentence saying how the release was learnt (shown in
    findings and plans); ``assumed`` is true when nothing could be read.
    """

    version: Version
    supported: dict[AlgoKind, tuple[str, ...]]
    defaults: dict[AlgoKind, tuple[str, ...]]
    source: str
    assumed: bool = False

    @property
    def label(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    def supports(self, kind: AlgoKind, name: str) -> bool:
        return name in self.supported[kind]

    @property
    def has_required_rsa_size(self) -> bool:
        """``RequiredRSASize`` exists from OpenSSH 9.1."""
        return self.version >= (9, 1)

    @property
    def pubkey_keyword(self) -> str:
        """The keyword this release reads (renamed in 8.5; the old name stays an alias)."""
        return "PubkeyAcceptedAlgorithms" if self.version >= (8, 5) else "PubkeyAcceptedKeyTypes"


def parse_version(text: str) -> Version | None:
    """``9.2``, ``9.2p1`` or an ``ssh -V`` line → ``(9, 2)``; None if unreadable."""
    m = _VERSION.search(text) or re.fullmatch(r"\s*(\d+)\.(\d+)(?:p\d+)?\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _in_release(since: Version, until: Version | None, version: Version) -> bool:
    return since <= version and (until is None or version < until)


def table_supported(kind: AlgoKind, version: Version) -> tuple[str, ...]:
    return tuple(n for n, since, until in TABLES[kind] if _in_release(since, until, version))


def table_defaults(kind: AlgoKind, version: Version, supported: tuple[str, ...]) -> tuple[str, ...]:
    """sshd's compiled-in list for ``version``, restricted to ``supported``."""
    names = [n for n in table_supported(kind, version) if n not in _NOT_DEFAULT[kind]]
    if kind == "kexalgorithms":
        names = _kex_defaults(version, names)
    if kind in ("hostkeyalgorithms", "pubkeyalgorithms") and version >= (8, 8):
        # 8.8 disabled RSA signatures with SHA-1 by default.
        names = [n for n in names if n not in ("ssh-rsa", "ssh-rsa-cert-v01@openssh.com")]
    if kind == "kexalgorithms" and version >= (8, 2):
        names = [n for n in names if n != "diffie-hellman-group14-sha1"]
    allowed = set(supported)
    # A backport (Debian's 9.2 offers 9.9's plain sntrup761 name) is in the
    # default list when the binary has it.
    extra = [n for n in _BACKPORTED_DEFAULTS.get(kind, ()) if n in allowed and n not in names]
    return tuple(extra + [n for n in names if n in allowed])


_BACKPORTED_DEFAULTS: dict[AlgoKind, tuple[str, ...]] = {
    "kexalgorithms": ("sntrup761x25519-sha512",),
}


def _kex_defaults(version: Version, names: list[str]) -> list[str]:
    pq = [n for n in ("mlkem768x25519-sha256", "sntrup761x25519-sha512") if n in names]
    sntrup = "sntrup761x25519-sha512@openssh.com"
    rest = [n for n in names if n not in pq and n != sntrup]
    if sntrup not in names:
        return rest
    if version >= (9, 0):
        return [*pq, sntrup, *rest]
    # 8.5-8.9: offered after the ECDH methods, before the prime groups.
    at = max(i for i, n in enumerate(rest) if n.startswith("ecdh-")) + 1
    return [*rest[:at], sntrup, *rest[at:]]


def from_version(version: Version, source: str, *, assumed: bool = False) -> OpenSSH:
    """The release table's view of ``version`` (no binary consulted)."""
    supported = {k: table_supported(k, version) for k in KINDS}
    defaults = {k: table_defaults(k, version, supported[k]) for k in KINDS}
    return OpenSSH(version, supported, defaults, source, assumed)


def assumed_oldest(why: str) -> OpenSSH:
    return from_version(
        OLDEST,
        f"{why}; assuming OpenSSH {OLDEST[0]}.{OLDEST[1]}, the oldest release Jupiter supports",
        assumed=True,
    )


def for_version(version: str) -> OpenSSH:
    """The release named by an ``openssh_version`` parameter (``9.2``, ``9.2p1``)."""
    parsed = parse_version(version)
    if parsed is None:
        return assumed_oldest(f"openssh_version {version!r} is not a release such as 9.2")
    return from_version(parsed, f"OpenSSH {parsed[0]}.{parsed[1]} (parameter openssh_version)")


_CACHE: dict[str, OpenSSH] = {}


def for_target(view: TargetView, version: str | None = None) -> OpenSSH:
    """The OpenSSH that reads ``view``'s sshd_config (see the module docs).

    ``version`` (the ``openssh_version`` parameter) wins over any binary.
    """
    if version is not None:
        return for_version(version)
    host = _real_target(view)
    if host is not None and not _is_directory_mirror(host):
        where = host.describe()
        if where not in _CACHE:
            _CACHE[where] = probe(lambda argv: host.run(argv, PROBE_TIMEOUT), f"on {where}")
        return _CACHE[where]
    found = this_machine()
    if found.assumed:
        return found
    mirror = (host or view).describe()  # the target, not a plan's candidate of it
    return OpenSSH(
        found.version,
        found.supported,
        found.defaults,
        f"{found.source}; {mirror} is a directory, so this machine's OpenSSH stands for the "
        "host it mirrors (set sshd-hardening.openssh_version if that host runs another release)",
    )


def this_machine() -> OpenSSH:
    """The OpenSSH installed here (cached for the process)."""
    if "local" not in _CACHE:
        _CACHE["local"] = probe(
            lambda argv: run_argv(argv, Path("/"), PROBE_TIMEOUT), "on this machine"
        )
    return _CACHE["local"]


def probe(run: Callable[[list[str]], CommandResult], where: str) -> OpenSSH:
    """Read the version and algorithm lists with ``run(argv)``."""
    version, detail = None, ""
    # The client is on nearly every host; a server-only install still has
    # sshd, whose -V (or, before 9.1, its usage text) names the release.
    for argv in (["ssh", "-V"], ["sshd", "-V"], ["/usr/sbin/sshd", "-V"]):
        out = run(argv)
        text = out.stderr + out.stdout
        version = None if out.timed_out else parse_version(text)
        if version is not None:
            break
        detail = detail or (text.strip().splitlines() or [f"exit {out.returncode}"])[0]
    if version is None:
        return assumed_oldest(f"the OpenSSH version {where} could not be read ({detail})")
    supported: dict[AlgoKind, tuple[str, ...]] = {}
    for kind in KINDS:
        listed = run(["ssh", "-Q", _QUERY[kind]])
        names = tuple(listed.stdout.split()) if listed.ok else ()
        supported[kind] = names or table_supported(kind, version)
    defaults = {k: table_defaults(k, version, supported[k]) for k in KINDS}
    return OpenSSH(version, supported, defaults, f"OpenSSH {version[0]}.{version[1]} {where}")


def _real_target(view: TargetView) -> Target | None:
    """The target under ``view``: a plan's candidate (an overlay of pending
    edits) is read with the binaries of the target it overlays."""
    seen = 0
    current: object = view
    while not isinstance(current, Target) and seen < 32:
        if not isinstance(current, OverlayView):
            return None
        current, seen = current.base, seen + 1
    return current if isinstance(current, Target) else None


def _is_directory_mirror(target: Target) -> bool:
    root = getattr(target, "root", None)
    return isinstance(root, Path) and root != Path("/")


def clear_cache() -> None:
    """Forget probed releases (tests; a host upgraded during a long process)."""
    _CACHE.clear()
