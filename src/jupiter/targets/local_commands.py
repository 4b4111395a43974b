"""Running argument vectors for :class:`~jupiter.targets.local.LocalTarget`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from jupiter.errors import InputError
from jupiter.targets.base import CommandResult

# A fixed PATH, not the caller's: commands run on a target must not depend on
# (or be hijacked through) the environment of whoever started Jupiter.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SAFE_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}


def run_argv(argv: list[str], cwd: Path, timeout: float) -> CommandResult:
    """Run ``argv`` (no shell) in ``cwd`` with only :data:`SAFE_ENV`.

    On timeout the whole process group is killed and ``timed_out`` is set. A
    program that is not installed gives return code 127 (126 if it is not
    executable), as a shell on a remote target would.
    """
    if not argv:
        raise InputError("command argument vector is empty; give the program and its arguments")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(SAFE_ENV),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CommandResult(tuple(argv), 127, "", f"{argv[0]}: command not found\n")
    except PermissionError:
        return CommandResult(tuple(argv), 126, "", f"{argv[0]}: permission denied\n")
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        # The new session makes the child a group leader: kill it and anything
        # it spawned, so no grandchild keeps our pipes open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            # A descendant left the group (setsid) and holds the pipes: stop
            # waiting for its output rather than hang.
            proc.kill()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait()
            out, err = b"", b""
    return CommandResult(
        tuple(argv),
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        timed_out=timed_out,
    )
