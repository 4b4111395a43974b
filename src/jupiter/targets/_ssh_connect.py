"""Opening an SSH connection for ``SSHTarget``: host-key checking, key-only
login, timeouts, and one clear sentence for each way it can fail."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from jupiter.errors import TargetError, UnreachableError
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets.connection import SSHConnection


async def open_connection(
    info: SSHConnection,
    client_keys: list[Path] | None,
    known_hosts: Path | None,
    connect_timeout: float,
) -> asyncssh.SSHClientConnection:
    """Connect and log in, or raise TargetError.

    The host key must be in ``known_hosts`` (default ``~/.ssh/known_hosts``);
    only public-key authentication is tried, with ``client_keys`` (default:
    asyncssh's default key files and a running ssh-agent). ``~/.ssh/config``
    is not read, so what the caller passed is what is used.
    """
    known = known_hosts or Path("~/.ssh/known_hosts").expanduser()
    scan = f"ssh-keyscan -p {info.port} {info.host} >> {known}"
    if not known.is_file():
        raise TargetError(
            f"known_hosts file {known} does not exist, so the host key of {info.host} cannot "
            f"be checked; after verifying the key's fingerprint add it with `{scan}`"
        )
    options: dict[str, object] = {
        "username": info.username,
        "known_hosts": str(known),
        "config": None,  # explicit settings only, no ~/.ssh/config surprises
        "connect_timeout": connect_timeout,
        "preferred_auth": "publickey",
        "password_auth": False,
        "kbdint_auth": False,
        "gss_auth": False,
        "host_based_auth": False,
    }
    if client_keys is not None:
        for key in client_keys:
            if not key.is_file():
                raise TargetError(
                    f"SSH client key {key} does not exist; fix the path or create the key"
                )
        options["client_keys"] = [str(key) for key in client_keys]
        options["agent_path"] = None
    try:
        # The outer bound is a safety net; asyncssh's connect_timeout fires first.
        return await asyncio.wait_for(
            asyncssh.connect(info.host, info.port, **options),
            connect_timeout + 1.0,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise TargetError(
            f"the host key of {info.host} port {info.port} is not in {known} or does not "
            f"match it; if this is the host you expect, add its key with `{scan}` "
            "(verify the fingerprint), or remove the stale entry first"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        keys = (
            ", ".join(str(k) for k in client_keys)
            if client_keys
            else ("the default keys and agent")
        )
        raise TargetError(
            f"{info.host} refused the SSH login of {info.username!r} with {keys}; put the "
            f"matching public key in ~{info.username}/.ssh/authorized_keys there or pass "
            "the right client key"
        ) from exc
    except TimeoutError as exc:
        raise UnreachableError(
            f"{info} did not answer within {connect_timeout:g} s while "
            f"connecting; check that the host is up and port {info.port} is reachable"
        ) from exc
    except ConnectionRefusedError as exc:
        raise UnreachableError(
            f"{info.host} refused the connection on port {info.port}; check that sshd runs "
            "there and that the port is right"
        ) from exc
    except socket.gaierror as exc:
        raise UnreachableError(
            f"host name {info.host!r} cannot be resolved ({exc.strerror}); check the name "
            "or the DNS settings"
        ) from exc
    except asyncssh.KeyImportError as exc:
        raise TargetError(
            f"an SSH client key cannot be loaded ({exc}); use an unencrypted key file or "
            "an ssh-agent"
        ) from exc
    except OSError as exc:
        raise UnreachableError(
            f"cannot connect to {info} ({exc}); check that the host is up and reachable"
        ) from exc
    except (asyncssh.Error, ValueError) as exc:
        raise TargetError(
            f"cannot connect to {info} ({exc}); check the host, the port and the known_hosts file"
        ) from exc
