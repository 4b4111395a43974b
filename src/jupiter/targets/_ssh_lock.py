"""The lock an SSH target carries: ``flock(1)`` on the remote root directory,
held by a remote command that lives exactly as long as our SSH channel.

The command is ``flock --exclusive ROOT sh -c 'echo READY; exec cat'``: once
``flock`` has the lock it prints a marker and then waits on its standard
input, which is our channel. Closing the channel (release, ``close()``, a
dropped connection, a killed Jupiter) ends ``cat`` and so releases the lock:
a crashed run never leaves it behind. It is the same ``flock`` on the same
directory that :class:`~jupiter.targets.local.LocalTarget` takes, so a run on
the host itself and one over SSH exclude each other as well.

A host without ``flock`` (util-linux; BusyBox has it too) gets a clear error
rather than an unlocked run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from jupiter.errors import TargetError
from jupiter.targets._asyncssh import asyncssh

if TYPE_CHECKING:
    from jupiter.targets.ssh import SSHTarget

READY = "jupiter-lock-held"
BUSY_EXIT = 75
_RELEASE_GRACE = 5.0


def lock_argv(timeout: float) -> list[str]:
    """The remote command (run in the root, so ``.`` is the root directory)."""
    wait = ["--nonblock"] if timeout <= 0 else ["--wait", f"{timeout:g}"]
    hold = f"echo {READY}; exec cat >/dev/null"  # a fixed script: no input in it
    return [
        "flock",
        "--exclusive",
        *wait,
        "--conflict-exit-code",
        str(BUSY_EXIT),
        ".",
        "sh",
        "-c",
        hold,
    ]


async def hold(
    conn: asyncssh.SSHClientConnection, command: str, where: str
) -> asyncssh.SSHClientProcess[str] | None:
    """Start the holding command; the process once it holds the lock,
    ``None`` when another holder kept it past the wait."""
    process = await conn.create_process(command, encoding="utf-8", errors="replace")
    try:
        line = await process.stdout.readline()
    except BaseException:
        process.close()
        raise
    if line.strip() == READY:
        return process
    done = await process.wait()
    status = done.exit_status
    if status == BUSY_EXIT:
        return None
    err = str(done.stderr or "").strip().splitlines()
    if status == 127:
        raise TargetError(
            f"{where} has no flock command, so Jupiter cannot lock the target; install "
            "util-linux (or BusyBox flock) on the host"
        )
    raise TargetError(
        f"taking the lock on {where} failed (exit {status}: {err[-1][:200] if err else ''}); "
        "check that the login user may read the target root"
    )


class RemoteLock:
    """A held remote ``flock``; released by closing its channel."""

    def __init__(self, target: SSHTarget, process: asyncssh.SSHClientProcess[str]) -> None:
        self._target = target
        self._process: asyncssh.SSHClientProcess[str] | None = process

    def alive(self) -> bool:
        process = self._process
        return (
            process is not None
            and process.exit_status is None
            and process.exit_signal is None
            and not process.channel.is_closing()
        )

    def note(self, owner: str) -> None:
        """Nothing to note on: SFTP has no extended attributes (see docs)."""

    def release(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return

        async def op() -> None:
            process.stdin.write_eof()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), _RELEASE_GRACE)
            process.close()

        # The connection may be gone already; then so is the lock.
        with contextlib.suppress(TargetError, asyncssh.Error, OSError):
            self._target.call_on_loop("releasing the target lock", op, _RELEASE_GRACE + 1)
