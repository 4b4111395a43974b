"""Parse an asset's ``connection`` string into where its target lives.

Two forms are accepted (the same ones ``AssetSpec.connection`` admits):

* ``local:PATH`` — a directory on this machine, e.g. ``local:/srv/host1``
  (a relative PATH is taken relative to the current directory);
* ``ssh:USER@HOST[:PORT]/ROOT`` — a directory on a host reached over SSH,
  e.g. ``ssh:deploy@10.0.0.5:2222/`` or ``ssh:root@web1/srv/chroot``. PORT
  defaults to 22 and ROOT to ``/``; an IPv6 address goes in brackets
  (``ssh:root@[2001:db8::5]:2222/srv``).

:func:`parse_connection` only parses; opening the target is the caller's
business (``SSHTarget.from_connection`` for the SSH form).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from jupiter.errors import InputError

_FORMS = "use 'local:PATH' or 'ssh:USER@HOST[:PORT]/ROOT'"
# A POSIX login name as useradd accepts it (plus '.' which many sites use).
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*\$?$")
# A DNS name or IPv4 address; IPv6 addresses come in brackets and are checked apart.
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True)
class LocalConnection:
    """A target rooted at a directory of this machine."""

    root: Path

    def __str__(self) -> str:
        return f"local:{self.root}"


@dataclass(frozen=True)
class SSHConnection:
    """A target rooted at ``root`` (absolute, normalised) on ``host`` over SSH."""

    username: str
    host: str
    port: int = 22
    root: str = "/"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh:{self.username}@{host}:{self.port}{self.root}"


def parse_connection(value: str) -> LocalConnection | SSHConnection:
    """Parse ``local:PATH`` or ``ssh:USER@HOST[:PORT]/ROOT``; :class:`InputError` if malformed."""
    if not isinstance(value, str) or "\x00" in value or value != value.strip():
        raise InputError(
            f"connection {value!r} contains a NUL byte or surrounding blanks; {_FORMS}"
        )
    scheme, sep, rest = value.partition(":")
    if not sep or scheme not in {"local", "ssh"}:
        raise InputError(f"connection {value!r} has no known scheme; {_FORMS}")
    if not rest:
        raise InputError(f"connection {value!r} names no location after '{scheme}:'; {_FORMS}")
    if scheme == "local":
        return LocalConnection(root=Path(rest))
    return _parse_ssh(value, rest)


def _parse_ssh(value: str, rest: str) -> SSHConnection:
    if rest.startswith("//"):
        raise InputError(
            f"connection {value!r} looks like a URL; write it as 'ssh:USER@HOST[:PORT]/ROOT' "
            "without '//'"
        )
    user, at, hostpart = rest.partition("@")
    if not at or not user:
        raise InputError(
            f"connection {value!r} names no user; write it as 'ssh:USER@HOST[:PORT]/ROOT'"
        )
    if not _USER_RE.match(user):
        raise InputError(f"connection {value!r} has an invalid user name {user!r}")

    if hostpart.startswith("["):
        close = hostpart.find("]")
        if close < 0:
            raise InputError(
                f"connection {value!r} opens '[' for an IPv6 address but never closes it"
            )
        host, after = hostpart[1:close], hostpart[close + 1 :]
        if not host or not _IPV6_RE.match(host):
            raise InputError(f"connection {value!r} has an invalid IPv6 address {host!r}")
    else:
        slash = hostpart.find("/")
        hostport, after_host = (hostpart, "") if slash < 0 else (hostpart[:slash], hostpart[slash:])
        host, colon, port_text = hostport.partition(":")
        after = (colon + port_text) + after_host
        if not host or not _HOST_RE.match(host):
            raise InputError(f"connection {value!r} has an invalid host name {host!r}")

    port = 22
    if after.startswith(":"):
        slash = after.find("/")
        port_text, after = (after[1:], "") if slash < 0 else (after[1:slash], after[slash:])
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(
                f"connection {value!r} has an invalid port {port_text!r}; use a number 1-65535"
            )
        port = int(port_text)
    if after and not after.startswith("/"):
        raise InputError(
            f"connection {value!r} has {after!r} after the host; the root must start with '/'"
        )
    if ".." in after.split("/"):
        raise InputError(
            f"connection {value!r} has '..' in its root; write the root as a plain absolute path"
        )
    root = posixpath.normpath(after or "/")
    if root.startswith("//"):  # POSIX lets normpath keep a leading '//'
        root = "/" + root.lstrip("/")
    return SSHConnection(username=user, host=host, port=port, root=root)
