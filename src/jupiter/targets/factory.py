"""Open a target from a path or a connection string."""

from __future__ import annotations

import os
from pathlib import Path

from jupiter.errors import InputError, TargetError
from jupiter.targets.base import Target
from jupiter.targets.connection import LocalConnection, parse_connection


def normalise_connection(spec: str) -> str:
    """A bare path becomes ``local:/absolute/path``; connection strings stay."""
    if spec.startswith(("local:", "ssh:")):
        parsed = parse_connection(spec)
        if isinstance(parsed, LocalConnection):
            return f"local:{parsed.root.absolute()}"
        return str(parsed)
    if ":" in spec.split("/", 1)[0]:
        raise InputError(f"target {spec!r} is neither a path nor local:PATH / ssh:USER@HOST/ROOT")
    return f"local:{Path(spec).expanduser().absolute()}"


def open_target(connection: str) -> Target:
    """Open ``local:PATH`` or ``ssh:USER@HOST[:PORT]/ROOT``.

    SSH keys and known hosts come from ``JUPITER_SSH_KEY`` (comma-separated
    key files) and ``JUPITER_KNOWN_HOSTS``; host-key checking is always on.
    """
    parsed = parse_connection(connection)
    if isinstance(parsed, LocalConnection):
        from jupiter.targets.local import LocalTarget

        if not parsed.root.is_dir():
            raise TargetError(
                f"target {parsed.root} does not exist or is not a directory; check the path"
            )
        return LocalTarget(parsed.root)
    from jupiter.targets.ssh import SSHTarget

    keys = [k for k in os.environ.get("JUPITER_SSH_KEY", "").split(",") if k]
    known = os.environ.get("JUPITER_KNOWN_HOSTS") or None
    return SSHTarget.from_connection(parsed, client_keys=keys or None, known_hosts=known)
