"""Which SSH algorithms sshd ends up offering, and which of them are weak.

OpenSSH lets ``Ciphers``, ``MACs`` and ``KexAlgorithms`` be written as an
explicit list or relative to the compiled-in default: ``+a,b`` appends,
``-pat,...`` removes (wildcards allowed), ``^a,b`` puts first. To judge such a
value we resolve it against the OpenSSH 9.x server defaults below (measured
with ``sshd -T`` on OpenSSH 9.2; newer releases only add stronger entries).

Levels:

* ``baseline`` / ``strict`` remove what is broken or deprecated (CBC, 3DES,
  RC4, MD5, SHA-1, 64-bit tags, 1024/2048-bit SHA-1 groups); the rest of the
  configured list is kept;
* ``maximum`` keeps only the strongest: ChaCha20-Poly1305 and AES-256-GCM,
  HMAC-SHA2-512 (encrypt-then-MAC), and hybrid post-quantum or X25519 key
  exchange.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

AlgoKind = Literal["ciphers", "macs", "kexalgorithms"]

DEFAULTS: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": (
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ),
    "macs": (
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
    ),
    "kexalgorithms": (
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
    ),
}

# Names sshd knows besides the defaults, so that ``-pattern`` and wildcard
# entries resolve the way sshd resolves them.
_EXTRA_KNOWN: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": (
        "3des-cbc",
        "aes128-cbc",
        "aes192-cbc",
        "aes256-cbc",
        "rijndael-cbc@lysator.liu.se",
        "blowfish-cbc",
        "cast128-cbc",
        "arcfour",
        "arcfour128",
        "arcfour256",
    ),
    "macs": (
        "hmac-sha1-96",
        "hmac-md5",
        "hmac-md5-96",
        "hmac-sha1-96-etm@openssh.com",
        "hmac-md5-etm@openssh.com",
        "hmac-md5-96-etm@openssh.com",
        "hmac-ripemd160",
        "hmac-ripemd160@openssh.com",
        "hmac-ripemd160-etm@openssh.com",
    ),
    "kexalgorithms": (
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
        "sntrup761x25519-sha512",
        "mlkem768x25519-sha256",
    ),
}

WEAK_PATTERNS: dict[AlgoKind, tuple[str, ...]] = {
    "ciphers": ("*-cbc", "*-cbc@*", "3des*", "arcfour*", "blowfish*", "cast128*", "none"),
    "macs": ("hmac-md5*", "hmac-sha1*", "*-96", "*-96-etm@*", "umac-64*", "hmac-ripemd160*"),
    "kexalgorithms": ("*-sha1", "*-sha1@*", "gss-*-sha1-*", "diffie-hellman-group1-*"),
}

STRONGEST: dict[AlgoKind, frozenset[str]] = {
    "ciphers": frozenset({"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"}),
    "macs": frozenset({"hmac-sha2-512-etm@openssh.com"}),
    "kexalgorithms": frozenset(
        {
            "mlkem768x25519-sha256",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
        }
    ),
}

# Written when a list has to be set from scratch (unset, or nothing left).
# mlkem768x25519-sha256 needs OpenSSH >= 9.9, so it is not in a default we
# write without knowing the host's version.
MODERN: dict[AlgoKind, str] = {
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
    "aes256-ctr,aes192-ctr,aes128-ctr",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256",
}
MAXIMUM: dict[AlgoKind, str] = {
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
    "macs": "hmac-sha2-512-etm@openssh.com",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org",
}


def resolve(kind: AlgoKind, value: str | None) -> list[str]:
    """The list sshd offers for ``value`` (``None`` = unset, the default)."""
    default = list(DEFAULTS[kind])
    if value is None or not value.strip():
        return default
    known = default + [a for a in _EXTRA_KNOWN[kind] if a not in default]
    head, body = value[0], value[1:]
    if head == "-":
        patterns = _items(body)
        return [a for a in default if not any(fnmatchcase(a, p) for p in patterns)]
    if head == "+":
        return _dedup(default + _expand(_items(body), known))
    if head == "^":
        return _dedup(_expand(_items(body), known) + default)
    return _dedup(_expand(_items(value), known))


def is_weak(kind: AlgoKind, name: str) -> bool:
    return any(fnmatchcase(name.lower(), p) for p in WEAK_PATTERNS[kind])


def not_allowed(kind: AlgoKind, names: list[str], maximum: bool) -> list[str]:
    """The entries of ``names`` the level does not accept."""
    if maximum:
        return [n for n in names if n.lower() not in STRONGEST[kind]]
    return [n for n in names if is_weak(kind, n)]


def fixed_list(kind: AlgoKind, value: str | None, maximum: bool) -> str:
    """The value to write: the configured list without what the level refuses,
    or the level's modern list when the setting is unset or nothing is left."""
    fallback = MAXIMUM[kind] if maximum else MODERN[kind]
    if value is None or not value.strip():
        return fallback
    names = resolve(kind, value)
    bad = set(not_allowed(kind, names, maximum))
    keep = [n for n in names if n not in bad]
    return ",".join(keep) if keep else fallback


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
