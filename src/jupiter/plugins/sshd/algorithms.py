"""Which SSH algorithms sshd ends up offering, and which of them a level accepts.

OpenSSH lets ``Ciphers``, ``MACs``, ``KexAlgorithms``, ``HostKeyAlgorithms``
and ``PubkeyAcceptedAlgorithms`` be written as an explicit list or relative
to the compiled-in default: ``+a,b`` appends, ``-pat,...`` removes
(wildcards allowed), ``^a,b`` puts first. A value is resolved against the
defaults *of the target's release* (:class:`~jupiter.plugins.sshd.openssh.OpenSSH`),
so a config that never names ``KexAlgorithms`` is judged by what that
release offers — on OpenSSH 9.2 that includes ``ecdh-sha2-nistp*``.

The classes below follow ssh-audit (3.9), the auditor SSH administrators
point at a server, so that each level keeps its promise there:

* ``BROKEN`` — ssh-audit *fails* them (SHA-1, MD5, NIST-curve ECDH/ECDSA, DSA,
  3DES, RC4) — plus what Jupiter has always refused (CBC modes, 64-bit tags);
* ``baseline`` and ``strict`` refuse ``BROKEN``: 0 failures from the auditor.
  At ``baseline`` an asset that declares legacy clients (``ssh_clients:
  legacy`` with a reason) keeps the ``LEGACY`` subset its clients need;
* ``maximum`` accepts only ``STRONGEST``: post-quantum hybrid key exchange,
  AEAD and CTR ciphers, encrypt-then-MAC SHA-2 MACs, Ed25519 and RSA-SHA2
  signatures — 0 failures and 0 warnings. On a release without a
  post-quantum key exchange (< 8.5) X25519 is the best it can do, and the
  plan says what is missing.

Every list written is explicit (never ``+``/``-``/``^``), in the release's
own preference order, and names only what that release supports.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from jupiter.plugins.sshd.openssh import KINDS, AlgoKind, OpenSSH

Level = Literal["baseline", "strict", "maximum"]

# Names older releases knew, so that ``-pattern`` entries resolve like sshd.
_EXTRA_KNOWN: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": (
        "rijndael-cbc@lysator.liu.se",
        "blowfish-cbc",
        "cast128-cbc",
        "arcfour",
        "arcfour128",
        "arcfour256",
    ),
    "macs": (
        "hmac-ripemd160",
        "hmac-ripemd160@openssh.com",
        "hmac-ripemd160-etm@openssh.com",
    ),
    "kexalgorithms": (),
    "hostkeyalgorithms": (),
    "pubkeyalgorithms": (),
}

_SIG_BROKEN = (
    "ssh-rsa",
    "ssh-rsa-cert-*",
    "ssh-dss*",
    "ecdsa-sha2-*",
    "sk-ecdsa-*",
    "webauthn-sk-ecdsa-*",
)
BROKEN: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": ("*-cbc", "*-cbc@*", "3des*", "arcfour*", "blowfish*", "cast128*", "none"),
    "macs": ("*md5*", "*sha1*", "*ripemd160*", "*-96", "*-96-etm@*", "umac-64*"),
    "kexalgorithms": (
        "*-sha1",
        "*-sha1@*",
        "*-sha1-*",
        "diffie-hellman-group1-*",
        "ecdh-sha2-*",
        "gss-*",
        "sntrup4591761x25519-sha512@tinyssh.org",
    ),
    "hostkeyalgorithms": _SIG_BROKEN,
    "pubkeyalgorithms": _SIG_BROKEN,
}
# What ``ssh_clients: legacy`` keeps at baseline: old but not trivially
# broken. 3DES, RC4, MD5, DSA and 1024-bit groups are never kept.
_SIG_LEGACY = ("ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "ecdsa-sha2-nistp*", "sk-ecdsa-*")
LEGACY: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": ("aes128-cbc", "aes192-cbc", "aes256-cbc"),
    "macs": ("hmac-sha1", "hmac-sha1-etm@openssh.com"),
    "kexalgorithms": (
        "ecdh-sha2-nistp*",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
    ),
    "hostkeyalgorithms": _SIG_LEGACY,
    "pubkeyalgorithms": _SIG_LEGACY,
}
POST_QUANTUM = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
)
_SIG_STRONG = (
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
)
STRONGEST: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": (
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ),
    "macs": (
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
    ),
    "kexalgorithms": POST_QUANTUM,
    "hostkeyalgorithms": _SIG_STRONG,
    "pubkeyalgorithms": _SIG_STRONG,
}
# The best a release without post-quantum key exchange can offer.
X25519 = ("curve25519-sha256", "curve25519-sha256@libssh.org")
# Written at baseline/strict when nothing acceptable is left: 0 failures.
RECOMMENDED: dict[AlgoKind, tuple[str, ...]] = {
    **STRONGEST,
    "kexalgorithms": (
        *POST_QUANTUM,
        *X25519,
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group-exchange-sha256",
    ),
}


def resolve(kind: AlgoKind, value: str | None, ssh: OpenSSH) -> list[str]:
    """The list sshd offers for ``value`` (``None`` = unset, the default)."""
    default = list(ssh.defaults[kind])
    if value is None or not value.strip():
        return default
    known = _dedup([*default, *ssh.supported[kind], *_EXTRA_KNOWN[kind]])
    head, body = value[0], value[1:]
    if head == "-":
        patterns = _items(body)
        return [a for a in default if not any(fnmatchcase(a, p) for p in patterns)]
    if head == "+":
        return _dedup(default + _expand(_items(body), known))
    if head == "^":
        return _dedup(_expand(_items(body), known) + default)
    return _dedup(_expand(_items(value), known))


def is_broken(kind: AlgoKind, name: str) -> bool:
    return _matches(name, BROKEN[kind])


def accepted(kind: AlgoKind, level: Level, ssh: OpenSSH, *, legacy: bool = False) -> set[str]:
    """Every name the level accepts from what ``ssh`` supports (and the
    legacy names of a baseline asset with legacy clients)."""
    known = _dedup([*ssh.supported[kind], *_EXTRA_KNOWN[kind]])
    if level == "maximum":
        return set(n for n in strongest(kind, ssh) if n in known)
    keep_legacy = legacy and level == "baseline"
    return {
        n for n in known if not is_broken(kind, n) or (keep_legacy and _matches(n, LEGACY[kind]))
    }


def strongest(kind: AlgoKind, ssh: OpenSSH) -> tuple[str, ...]:
    """``STRONGEST`` for ``kind`` as far as ``ssh`` supports it (X25519
    standing in for post-quantum key exchange on releases without one)."""
    names = tuple(n for n in STRONGEST[kind] if ssh.supports(kind, n))
    if kind == "kexalgorithms" and not names:
        return tuple(n for n in X25519 if ssh.supports(kind, n))
    return names


def missing_for_maximum(ssh: OpenSSH) -> list[str]:
    """What level maximum wants that this release lacks (one phrase each)."""
    if any(ssh.supports("kexalgorithms", n) for n in POST_QUANTUM):
        return []
    return [
        "a post-quantum key exchange (sntrup761x25519-sha512@openssh.com needs OpenSSH >= 8.5, "
        f"mlkem768x25519-sha256 >= 9.9; OpenSSH {ssh.label} offers none): upgrade OpenSSH to "
        "reach level maximum"
    ]


def not_allowed(
    kind: AlgoKind, names: list[str], level: Level, ssh: OpenSSH, *, legacy: bool = False
) -> list[str]:
    """The entries of ``names`` the level refuses (unknown names are left to
    ``sshd -t``, which rejects them with a clearer message)."""
    ok = accepted(kind, level, ssh, legacy=legacy)
    known = set(ssh.supported[kind]) | set(_EXTRA_KNOWN[kind])
    return [n for n in names if n not in ok and (n in known or level == "maximum")]


def fixed_list(
    kind: AlgoKind, value: str | None, level: Level, ssh: OpenSSH, *, legacy: bool = False
) -> str:
    """The explicit value to write: what sshd offers now without what the
    level refuses, or the level's own list when nothing is left."""
    names = resolve(kind, value, ssh)
    bad = set(not_allowed(kind, names, level, ssh, legacy=legacy))
    keep = [n for n in names if n not in bad]
    if not keep:
        pool = strongest(kind, ssh) if level == "maximum" else RECOMMENDED[kind]
        keep = [n for n in pool if ssh.supports(kind, n)]
    return ",".join(keep)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    low = name.lower()
    return any(fnmatchcase(low, p) for p in patterns)


def _items(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _expand(items: list[str], known: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if any(ch in item for ch in "*?"):
            out.extend(a for a in known if fnmatchcase(a, item))
        else:
            out.append(item)
    return out


def _dedup(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


__all__ = [
    "BROKEN",
    "KINDS",
    "LEGACY",
    "STRONGEST",
    "AlgoKind",
    "accepted",
    "fixed_list",
    "is_broken",
    "missing_for_maximum",
    "not_allowed",
    "resolve",
    "strongest",
]
