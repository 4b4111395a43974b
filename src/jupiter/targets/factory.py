"""Open a target from a path or a connection string; within a
:class:`TargetPool`, one SSH connection per target for the pool's lifetime."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from jupiter.errors import InputError, TargetError
from jupiter.targets.base import Target
from jupiter.targets.connection import LocalConnection, SSHConnection, parse_connection

if TYPE_CHECKING:
    from jupiter.targets.ssh import SSHTarget

CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0


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


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InputError(f"{name}={text!r} is not a positive number of seconds; fix or unset it")
    return value


def ssh_settings() -> tuple[list[str] | None, str | None, float, float]:
    """Client keys, known_hosts file, connect and command timeouts from the
    environment (``JUPITER_SSH_KEY``, ``JUPITER_KNOWN_HOSTS``,
    ``JUPITER_SSH_CONNECT_TIMEOUT``, ``JUPITER_SSH_COMMAND_TIMEOUT``)."""
    keys = [k for k in os.environ.get("JUPITER_SSH_KEY", "").split(",") if k]
    known = os.environ.get("JUPITER_KNOWN_HOSTS") or None
    return (
        keys or None,
        known,
        _seconds("JUPITER_SSH_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
        _seconds("JUPITER_SSH_COMMAND_TIMEOUT", COMMAND_TIMEOUT),
    )


class TargetPool:
    """SSH targets kept open while the pool is active: every
    :func:`open_target` of the same connection (same user, host, port, root
    and settings) gets a handle on one connection, so a remediation's plan,
    snapshot, deploy, verify and health steps log in once per host. Closing a
    handle keeps the connection; :meth:`close` closes them all."""

    def __init__(self) -> None:
        self._open: dict[tuple[object, ...], SSHTarget] = {}
        self._lock = threading.Lock()
        self._closed = False

    def ssh(self, parsed: SSHConnection) -> SSHTarget:
        from jupiter.targets.ssh import SSHTarget

        keys, known, connect, command = ssh_settings()
        key = (str(parsed), tuple(keys or ()), known, connect, command)
        with self._lock:
            if self._closed:
                raise TargetError("the connection pool is closed; open the target again")
            owner = self._open.get(key)
            if owner is None:
                owner = SSHTarget.from_connection(
                    parsed,
                    client_keys=keys,
                    known_hosts=known,
                    connect_timeout=connect,
                    command_timeout=command,
                )
                self._open[key] = owner
        return owner.share()

    def __len__(self) -> int:
        return len(self._open)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            owners, self._open = list(self._open.values()), {}
        for owner in owners:
            owner.close()


_POOL: contextvars.ContextVar[TargetPool | None] = contextvars.ContextVar(
    "jupiter_target_pool", default=None
)


@contextmanager
def pooled() -> Iterator[TargetPool]:
    """Share SSH connections for the duration of the block (nested blocks
    use the outer pool). Threads started inside must run in a copy of the
    context (``contextvars.copy_context().run``) to see it."""
    outer = _POOL.get()
    if outer is not None:
        yield outer
        return
    pool = TargetPool()
    token = _POOL.set(pool)
    try:
        yield pool
    finally:
        _POOL.reset(token)
        pool.close()


def open_target(connection: str) -> Target:
    """Open ``local:PATH`` or ``ssh:USER@HOST[:PORT]/ROOT``.

    SSH keys, known hosts and timeouts come from the environment (see
    :func:`ssh_settings`); host-key checking is always on. Inside
    :func:`pooled`, an SSH target shares the pool's connection to that host.
    """
    parsed = parse_connection(connection)
    if isinstance(parsed, LocalConnection):
        from jupiter.targets.local import LocalTarget

        if not parsed.root.is_dir():
            raise TargetError(
                f"target {parsed.root} does not exist or is not a directory; check the path"
            )
        return LocalTarget(parsed.root)
    pool = _POOL.get()
    if pool is not None:
        return pool.ssh(parsed)
    from jupiter.targets.ssh import SSHTarget

    keys, known, connect, command = ssh_settings()
    return SSHTarget.from_connection(
        parsed,
        client_keys=keys,
        known_hosts=known,
        connect_timeout=connect,
        command_timeout=command,
    )
