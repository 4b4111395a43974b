"""Run one program under resource limits with a scrubbed environment.

Usage (an argument vector, never a shell string)::

    python -I -m jupiter.custom.sandbox --cpu S --memory MB --fsize MB \\
        --nofile N --nproc N [--check-sha256 PATH HEX] [--label NAME] \\
        -- PROGRAM ARGS...

This is how custom remediation scripts get limits without changing the
Target protocol: the engine runs this module through ``Target.run`` like any
other command. The wrapper

* becomes a session (and process-group) leader if it is not one already, so
  a timeout that kills the group kills the script and everything it spawned;
* refuses (exit 125) when ``--check-sha256`` is given and the file no longer
  has that hash (a script edited after registration);
* forks; the child sets the rlimits (CPU, address space, file size, open
  files, processes; no core files), restores default SIGPIPE/SIGXFSZ
  handling (Python ignores both, and ignored signals survive ``exec``) and
  execs PROGRAM with only ``PATH`` and ``LANG`` in its environment;
* exits with the program's exit status; when a signal killed it, writes one
  line to stderr saying which (and which limit, for SIGXCPU/SIGXFSZ/SIGKILL)
  and exits 128 + the signal number, as a shell does; after any other
  non-zero exit it adds one stderr line naming the limits in force (a
  memory or open-files limit shows only as the program's own error).
  127/126: the program is missing / not executable.

Only the standard library is imported, so start-up stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import resource
import signal
import sys
from types import FrameType

from jupiter.targets.local_commands import SAFE_ENV

EXIT_MODIFIED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
_MB = 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jupiter.custom.sandbox", allow_abbrev=False)
    p.add_argument("--cpu", type=int, required=True, help="CPU seconds (RLIMIT_CPU)")
    p.add_argument("--memory", type=int, required=True, help="address space MB (RLIMIT_AS)")
    p.add_argument("--fsize", type=int, required=True, help="largest file written, MB")
    p.add_argument("--nofile", type=int, required=True, help="open file descriptors")
    p.add_argument("--nproc", type=int, required=True, help="processes of the user")
    p.add_argument(
        "--check-sha256",
        nargs=2,
        metavar=("PATH", "HEX"),
        action="append",
        default=[],
        help="refuse to run unless PATH has this sha256",
    )
    p.add_argument("--label", default=None, help="name used in messages (default: PROGRAM)")
    p.add_argument("argv", nargs="+", help="program and its arguments (after --)")
    return p


def _limits(ns: argparse.Namespace) -> list[tuple[int, int]]:
    return [
        (resource.RLIMIT_CPU, ns.cpu),
        (resource.RLIMIT_AS, ns.memory * _MB),
        (resource.RLIMIT_FSIZE, ns.fsize * _MB),
        (resource.RLIMIT_NOFILE, ns.nofile),
        (resource.RLIMIT_NPROC, ns.nproc),
        (resource.RLIMIT_CORE, 0),
    ]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _child(argv: list[str], limits: list[tuple[int, int]]) -> None:
    """In the forked child: apply limits, then become the program. Never returns."""
    try:
        for which, value in limits:
            _soft, hard = resource.getrlimit(which)
            # Never ask for more than the hard limit we were given (an
            # unprivileged user cannot raise it); lower both so the program
            # cannot raise its soft limit back.
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            # CPU: the soft limit sends SIGXCPU, the hard one (a second later) SIGKILL.
            hard_value = value + 1 if which == resource.RLIMIT_CPU else value
            if hard != resource.RLIM_INFINITY:
                hard_value = min(hard_value, hard)
            resource.setrlimit(which, (value, hard_value))
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        # An argument vector on purpose: no shell ever parses the arguments.
        os.execvpe(argv[0], argv, dict(SAFE_ENV))  # noqa: S606
    except FileNotFoundError:
        os.write(2, f"jupiter sandbox: {argv[0]}: not found\n".encode())
        os._exit(EXIT_NOT_FOUND)
    except PermissionError:
        os.write(2, f"jupiter sandbox: {argv[0]}: not executable\n".encode())
        os._exit(EXIT_NOT_EXECUTABLE)
    except OSError as exc:
        os.write(2, f"jupiter sandbox: cannot start {argv[0]}: {exc.strerror}\n".encode())
        os._exit(EXIT_NOT_EXECUTABLE)
    os._exit(EXIT_NOT_EXECUTABLE)  # pragma: no cover - execvpe does not return


def _signal_note(sig: int, ns: argparse.Namespace) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    if sig == signal.SIGXCPU:
        return f"{name}: CPU time limit of {ns.cpu} s exceeded"
    if sig == signal.SIGXFSZ:
        return f"{name}: file size limit of {ns.fsize} MB exceeded"
    if sig == signal.SIGKILL:
        return f"{name} (CPU limit of {ns.cpu} s, the timeout, or the kernel's OOM killer)"
    return name


def main(args: list[str] | None = None) -> int:
    ns = _parser().parse_args(args)
    argv: list[str] = ns.argv
    label: str = ns.label or argv[0]
    for path, expected in ns.check_sha256:
        try:
            actual = _sha256(path)
        except OSError as exc:
            print(
                f"jupiter sandbox: refused: cannot read {path} ({exc.strerror}); "
                "register the script again",
                file=sys.stderr,
            )
            return EXIT_MODIFIED
        if actual != expected.lower():
            print(
                f"jupiter sandbox: refused: {path} was modified after registration "
                f"(sha256 {actual}, registered {expected}); review it and register it again",
                file=sys.stderr,
            )
            return EXIT_MODIFIED
    with contextlib.suppress(PermissionError):
        # Fails when we already lead a process group (Target.run starts us in
        # a new session): then the group is already ours.
        os.setsid()
    limits = _limits(ns)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _child(argv, limits)
        finally:
            # Whatever happens, the child never returns into the parent's code.
            os._exit(EXIT_NOT_EXECUTABLE)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        print(f"jupiter sandbox: {label} was killed by {_signal_note(sig, ns)}", file=sys.stderr)
        return 128 + sig
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        # A limit that makes a call fail (memory, open files, processes) shows
        # only as the program's own error: say which limits were in force.
        print(
            f"jupiter sandbox: {label} exited with status {code} (limits: CPU {ns.cpu} s, "
            f"memory {ns.memory} MB, file size {ns.fsize} MB, {ns.nofile} open files, "
            f"{ns.nproc} processes)",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
