"""Run one program confined by bubblewrap, under resource limits, with a
scrubbed environment.

Usage (an argument vector, never a shell string)::

    python -I -m jupiter.custom.sandbox --cpu S --memory MB --fsize MB \\
        --nofile N --nproc N [--script PATH | --script-b64 DATA] [--sha256 HEX] \\
        [--interpreter ARG]... [--write REL]... [--network] \\
        [--user NAME | --as-root] [--allow-unconfined] [--label NAME] \\
        -- ARGS...

With ``--script`` the program is ``[*interpreter, SCRIPT, *ARGS]``; without,
``ARGS`` is the program (verify commands). The working directory is the
target root. Only the standard library is imported and nothing of Jupiter,
so the same file runs on a remote host under ``python3 -I -c`` (Python 3.8
or later; see :mod:`jupiter.custom.confine`). That is also why it is one
module longer than the house's ~400 lines: it is sent whole.

What the wrapper does, in order:

* refuses (exit 125, one ``jupiter sandbox: refused:`` line) when the
  script's bytes do not have ``--sha256`` (edited after registration), the
  user does not exist or cannot be switched to, ``bwrap`` is missing (unless
  ``--allow-unconfined``) or bubblewrap cannot create its namespaces;
* stages each ``--write`` path: a copy owned by the script's user is bound
  over the real file, and copied back (content, mode, owner) after the run.
  A declared file that does not exist yet is present as an empty file during
  the run and removed again if the script left it empty;
* forks; the child sets the rlimits and execs ``bwrap`` with: the host
  read-only, a private ``/tmp`` and ``/run``, fresh ``/dev`` and ``/proc``,
  its own PID, IPC, UTS, cgroup and (unless ``--network``) network
  namespaces, ``--die-with-parent``; then ``setpriv`` switches to the user
  (``nobody`` by default) with no capabilities and ``no_new_privs``, or,
  with ``--as-root``, the program runs as root with only the file
  capabilities (chown, fowner, fsetid, dac_override, dac_read_search);
* exits with the program's status; 128 + N when signal N killed it, with a
  line saying which limit; after another non-zero status a line naming the
  limits in force. When the program exits, the PID namespace ends and with
  it every process it started (``setsid`` and double forks included); a
  timeout or cancel that kills this wrapper kills bwrap and the namespace
  through ``--die-with-parent``.

``--probe`` prints one JSON object (bwrap path, effective uid, the user,
whether the namespaces work) and exits 0: the remediator asks it before
planning, so a host that cannot confine scripts is refused up front.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import pwd
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from types import FrameType

# Kept equal to jupiter.targets.local_commands.SAFE_ENV (a test checks): this
# module must not import Jupiter, it also runs on remote hosts.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SAFE_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}

EXIT_REFUSED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
SCRIPT_DIR = "/tmp/.jupiter"  # noqa: S108 - inside the sandbox's own private /tmp
PRIVATE_DIRS = ("/tmp/", "/run/")  # noqa: S108 - replaced by the sandbox's own
ROOT_CAPS = ("CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH")
_MB = 1024 * 1024


class Refused(Exception):
    """One sentence: why the program was not started."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jupiter.custom.sandbox", allow_abbrev=False)
    p.add_argument("--cpu", type=int, default=120, help="CPU seconds (RLIMIT_CPU)")
    p.add_argument("--memory", type=int, default=1024, help="address space MB (RLIMIT_AS)")
    p.add_argument("--fsize", type=int, default=512, help="largest file written, MB")
    p.add_argument("--nofile", type=int, default=256, help="open file descriptors")
    p.add_argument("--nproc", type=int, default=256, help="processes of the user")
    p.add_argument("--script", default=None, help="the script file (read and hashed once)")
    p.add_argument("--script-b64", default=None, help="the script's bytes, base64 (remote)")
    p.add_argument("--script-name", default="script", help="its file name in the sandbox")
    p.add_argument("--sha256", default=None, help="refuse unless the script has this sha256")
    p.add_argument("--interpreter", action="append", default=[], help="runs the script")
    p.add_argument("--write", action="append", default=[], help="a writable path (relative)")
    p.add_argument("--network", action="store_true", help="keep the host's network")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", default=None, help="run as this user (default: nobody)")
    who.add_argument("--as-root", action="store_true", help="run as root (file capabilities)")
    p.add_argument("--allow-unconfined", action="store_true", help="run without bwrap if absent")
    p.add_argument("--bwrap", default="bwrap", help="the bubblewrap program")
    p.add_argument("--probe", action="store_true", help="print what this host supports, as JSON")
    p.add_argument("--label", default=None, help="name used in messages (default: PROGRAM)")
    p.add_argument("argv", nargs="*", help="arguments (after --)")
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


def _apply_limits(limits: list[tuple[int, int]]) -> None:
    for which, value in limits:
        _soft, hard = resource.getrlimit(which)
        # Never ask for more than the hard limit we were given; lower both so
        # the program cannot raise its soft limit back.
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: the soft limit sends SIGXCPU, the hard one (a second later) SIGKILL.
        hard_value = value + 1 if which == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            hard_value = min(hard_value, hard)
        resource.setrlimit(which, (value, hard_value))


class Identity:
    """Who the program runs as: ``switch`` means setpriv changes to uid/gid."""

    def __init__(self, name: str, uid: int, gid: int, root: bool, switch: bool) -> None:
        self.name, self.uid, self.gid, self.root, self.switch = name, uid, gid, root, switch


def resolve_identity(user: str | None, as_root: bool) -> Identity:
    euid = os.geteuid()
    if as_root:
        if euid != 0:
            raise Refused(
                f"the script needs root (needs_root) but this runs as uid {euid}; "
                "run Jupiter (or log in over SSH) as root"
            )
        return Identity("root", 0, 0, True, False)
    name = user or "nobody"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise Refused(
            f"user {name!r} does not exist on this host; create it or name another 'user'"
        ) from None
    if entry.pw_uid == 0:
        raise Refused(f"user {name!r} is root; say 'needs_root: true' with a reason instead")
    if euid == entry.pw_uid:
        return Identity(name, entry.pw_uid, entry.pw_gid, False, False)
    if euid != 0:
        raise Refused(
            f"running the script as {name!r} needs root to switch users, but this runs as uid "
            f"{euid}; run Jupiter as root or set 'user' to the login user"
        )
    return Identity(name, entry.pw_uid, entry.pw_gid, False, True)


def find_bwrap(name: str) -> str | None:
    return shutil.which(name, path=SAFE_PATH) if "/" not in name else name


def bwrap_argv(
    bwrap: str,
    who: Identity,
    root: str,
    binds: list[tuple[str, str]],
    network: bool,
    extra: list[str],
    program: list[str],
) -> list[str]:
    """The bubblewrap command line; ``binds`` are (staged source, real path)."""
    argv = [bwrap, "--die-with-parent", "--unshare-ipc", "--unshare-pid", "--unshare-uts"]
    argv += ["--unshare-cgroup-try"]
    if not network:
        argv.append("--unshare-net")
    if os.geteuid() != 0:
        # Unprivileged bubblewrap works through a user namespace.
        argv += ["--unshare-user", "--uid", str(who.uid), "--gid", str(who.gid)]
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # /run holds sockets (docker, dbus): a read-only mount does not stop connect().
    argv += ["--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run"]  # noqa: S108
    if root.startswith(PRIVATE_DIRS):
        argv += ["--ro-bind", root, root]  # a target under /tmp stays visible
    for source, dest in binds:
        argv += ["--bind", source, dest]
    argv += [*extra, "--chdir", root]
    if who.switch:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        argv += ["setpriv", "--reuid", str(who.uid), "--regid", str(who.gid), "--clear-groups"]
        argv += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    elif who.root:
        for cap in ROOT_CAPS:
            argv += ["--cap-add", cap]
        argv.append("--")
    else:
        argv.append("--")
    return argv + program


def probe(ns: argparse.Namespace) -> dict[str, object]:
    """What this host offers; ``namespaces`` is "ok" or bubblewrap's error."""
    out: dict[str, object] = {"euid": os.geteuid(), "bwrap": find_bwrap(ns.bwrap)}
    try:
        who = resolve_identity(ns.user, ns.as_root)
    except Refused as exc:
        out["refused"] = str(exc)
        return out
    out["user"] = who.name
    bwrap = out["bwrap"]
    if isinstance(bwrap, str):
        argv = bwrap_argv(bwrap, who, "/", [], False, [], ["true"])
        try:
            proc = subprocess.run(
                argv, env=dict(SAFE_ENV), capture_output=True, text=True, timeout=20, check=False
            )
            ok = proc.returncode == 0
            out["namespaces"] = "ok" if ok else (proc.stderr.strip() or f"exit {proc.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            out["namespaces"] = str(exc)
    return out


def _load_script(ns: argparse.Namespace) -> bytes | None:
    if ns.script is None and ns.script_b64 is None:
        return None
    if ns.script is not None:
        try:
            with open(ns.script, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise Refused(
                f"cannot read {ns.script} ({exc.strerror}); register the script again"
            ) from None
    else:
        data = base64.b64decode(ns.script_b64, validate=True)
    actual = hashlib.sha256(data).hexdigest()
    if ns.sha256 is not None and actual != ns.sha256.lower():
        where = ns.script or ns.script_name
        raise Refused(
            f"{where} was modified after registration (sha256 {actual}, registered "
            f"{ns.sha256}); review it and register it again"
        )
    return data


def _real_path(root: str, rel: str) -> str:
    """``root/rel`` when no component is a symlink and it stays inside root."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or rel.startswith("/"):
        raise Refused(f"declared path {rel!r} is not a path inside the target root")
    path = root
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise Refused(
                f"declared path {rel!r} goes through the symlink {path}; declare the file"
            )
    return path


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _remove_stale_staging() -> None:
    """Staging folders of wrappers that were killed (a timeout sends SIGKILL)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        parts = name.split("-")
        stale = len(parts) >= 4 and parts[2].isdigit() and not os.path.exists(f"/proc/{parts[2]}")
        if name.startswith("jupiter-sandbox-") and stale:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


class Staging:
    """Copies of the writable paths, owned by the script's user."""

    def __init__(self, root: str, paths: list[str], who: Identity) -> None:
        _remove_stale_staging()
        self.dir = tempfile.mkdtemp(prefix=f"jupiter-sandbox-{os.getpid()}-")
        self.who = who
        self.items: list[tuple[str, str, bool, os.stat_result, str]] = []
        try:
            for n, rel in enumerate(dict.fromkeys(paths)):
                self._stage(_real_path(root, rel), rel, os.path.join(self.dir, str(n)))
        except BaseException:
            self.finish()
            raise

    def _stage(self, real: str, rel: str, staged: str) -> None:
        created = not os.path.lexists(real)
        if created:
            if not os.path.isdir(os.path.dirname(real)):
                raise Refused(f"declared path {rel!r}: its folder does not exist in the target")
            os.close(os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        elif not stat.S_ISREG(os.lstat(real).st_mode):
            raise Refused(f"declared path {rel!r} is not a regular file; declare files only")
        elif os.lstat(real).st_nlink > 1:
            # The copy back writes in place: it would reach the file's other names.
            raise Refused(
                f"declared path {rel!r} has {os.lstat(real).st_nlink} hard links; a script may "
                "not change it (replace the link with a copy first)"
            )
        shutil.copyfile(real, staged)
        mode = stat.S_IMODE(os.lstat(real).st_mode)
        os.chmod(staged, mode | 0o600)
        if os.geteuid() == 0:
            os.chown(staged, self.who.uid, self.who.gid)
        self.items.append((real, staged, created, os.lstat(staged), _file_sha256(staged)))

    @property
    def binds(self) -> list[tuple[str, str]]:
        return [(item[1], item[0]) for item in self.items]

    def finish(self) -> None:
        """Copy back what the script changed (after every process of it ended)."""
        try:
            linked = [r for r, *_ in self.items if os.path.lexists(r) and os.lstat(r).st_nlink > 1]
            if linked:
                # The copy back writes in place: it would reach the other names.
                raise Refused(
                    f"{', '.join(linked)} got another hard link while the script ran; none of "
                    "its changes were copied back"
                )
            for real, staged, created, before, digest in self.items:
                after = os.lstat(staged)
                changed = _file_sha256(staged) != digest
                if created and after.st_size == 0 and after.st_mode == before.st_mode:
                    os.unlink(real)
                    continue
                if changed or created:
                    with open(staged, "rb") as src:
                        fd = os.open(real, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
                        with os.fdopen(fd, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                if after.st_mode != before.st_mode:
                    os.chmod(real, stat.S_IMODE(after.st_mode))
                if (after.st_uid, after.st_gid) != (before.st_uid, before.st_gid):
                    os.chown(real, after.st_uid, after.st_gid)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _check_program(program: list[str]) -> int:
    first = program[0]
    path = first if "/" in first else shutil.which(first, path=SAFE_PATH)
    if path is None or not os.path.exists(path):
        os.write(2, f"jupiter sandbox: {first}: not found\n".encode())
        return EXIT_NOT_FOUND
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        os.write(2, f"jupiter sandbox: {first}: not executable\n".encode())
        return EXIT_NOT_EXECUTABLE
    return 0


def _script_fd(data: bytes) -> int:
    fd = os.memfd_create("jupiter-script") if hasattr(os, "memfd_create") else -1
    if fd < 0:
        fd, name = tempfile.mkstemp()
        os.unlink(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _spawn(
    argv: list[str], limits: list[tuple[int, int]], fds: list[int], stderr: int | None = None
) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        if stderr is not None:
            os.dup2(stderr, 2)
        _apply_limits(limits)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        for fd in fds:
            os.set_inheritable(fd, True)
        # An argument vector on purpose: no shell ever parses the arguments.
        os.execvpe(argv[0], argv, dict(SAFE_ENV))  # noqa: S606
    except OSError as exc:
        os.write(2, f"jupiter sandbox: cannot start {argv[0]}: {exc.strerror}\n".encode())
    finally:
        os._exit(EXIT_NOT_EXECUTABLE)


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


def _forward_signals(pid: int) -> None:
    """A cancel (SIGTERM, SIGINT) goes to bwrap, whose end ends the sandbox;
    this wrapper stays to copy back and report."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def _wait(pid: int) -> int:
    _forward_signals(pid)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _report(code: int, label: str, ns: argparse.Namespace) -> int:
    # bwrap, like a shell, reports a program killed by signal N as 128 + N.
    if 128 < code < 160:
        print(
            f"jupiter sandbox: {label} was killed by {_signal_note(code - 128, ns)}",
            file=sys.stderr,
        )
    elif code != 0:
        # A limit that makes a call fail (memory, open files, processes) shows
        # only as the program's own error: say which limits were in force.
        print(
            f"jupiter sandbox: {label} exited with status {code} (limits: CPU {ns.cpu} s, "
            f"memory {ns.memory} MB, file size {ns.fsize} MB, {ns.nofile} open files, "
            f"{ns.nproc} processes)",
            file=sys.stderr,
        )
    return code


def _run_unconfined(ns: argparse.Namespace, data: bytes | None, label: str) -> int:
    """``sandbox: none`` on a host without bwrap: limits and environment only."""
    print(
        f"jupiter sandbox: WARNING: {label} runs WITHOUT a sandbox (sandbox: none and no bwrap "
        "on this host): it can reach everything its login user can",
        file=sys.stderr,
    )
    tmpdir = tempfile.mkdtemp(prefix=f"jupiter-unconfined-{os.getpid()}-")
    try:
        program = list(ns.argv)
        if data is not None:
            path = os.path.join(tmpdir, ns.script_name)
            with open(path, "wb") as fh:
                fh.write(data)
            os.chmod(path, 0o700)
            program = [*ns.interpreter, path, *program]
        return _report(_wait(_spawn(program, _limits(ns), [])), label, ns)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _confined(ns: argparse.Namespace, data: bytes | None, bwrap: str, label: str) -> int:
    who = resolve_identity(ns.user, ns.as_root)
    root = os.getcwd()
    extra: list[str] = []
    fds: list[int] = []
    program = list(ns.argv)
    if data is not None:
        fd = _script_fd(data)
        fds.append(fd)
        inside = f"{SCRIPT_DIR}/{ns.script_name}"
        extra += ["--perms", "0555", "--ro-bind-data", str(fd), inside]
        program = [*ns.interpreter, inside, *program]
    elif not program:
        raise Refused("no program given after --")
    else:
        checked = _check_program(program)
        if checked:
            return checked
    info_r, info_w = os.pipe()
    fds.append(info_w)
    extra += ["--info-fd", str(info_w)]
    staging = Staging(root, ns.write, who)
    refusals: list[str] = []
    try:
        argv = bwrap_argv(bwrap, who, root, staging.binds, ns.network, extra, program)
        err_r, err_w = os.pipe()
        pid = _spawn(argv, _limits(ns), fds, err_w)
        _forward_signals(pid)
        for fd in [*fds, err_w]:
            os.close(fd)
        refusals = _relay_stderr(err_r)
        code = _wait(pid)
    finally:
        staging.finish()
    os.set_blocking(info_r, False)
    try:
        started = os.read(info_r, 65536)
    except BlockingIOError:
        started = b""
    os.close(info_r)
    if not started:
        raise Refused(
            "bubblewrap could not build the sandbox on this host (its error is above): the "
            "kernel or container refuses the namespaces it needs, and custom scripts are never "
            "run unconfined"
        )
    code = _report(code, label, ns)
    if refusals:
        # Last on purpose: the engine shows a failed command's last line.
        shown = "; ".join(refusals[:3]) + (" ..." if len(refusals) > 3 else "")
        print(f"jupiter sandbox: access refused in the sandbox: {shown}", file=sys.stderr)
    return code


REFUSAL_MARKS = ("Read-only file system", "Permission denied", "Operation not permitted")


def _relay_stderr(fd: int) -> list[str]:
    """Pass the program's stderr through; return its lines about refused access."""
    found: list[str] = []
    pending = b""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            os.write(2, chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if any(mark in line for mark in REFUSAL_MARKS) and len(found) < 20:
                    found.append(line[:200])
            pending = pending[-4096:]
    return found


def main(args: list[str] | None = None) -> int:
    ns = _parser().parse_args(args)
    if ns.probe:
        print(json.dumps(probe(ns)))
        return 0
    label: str = ns.label or (ns.script or (ns.argv[0] if ns.argv else "program"))
    try:
        data = _load_script(ns)
        bwrap = find_bwrap(ns.bwrap)
        if bwrap is None:
            if ns.allow_unconfined:
                return _run_unconfined(ns, data, label)
            raise Refused(
                f"bubblewrap ({ns.bwrap}) is not installed on this host; install it "
                "(apt-get install bubblewrap) or, to run unconfined, set 'sandbox: none'"
            )
        return _confined(ns, data, bwrap, label)
    except Refused as exc:
        print(f"jupiter sandbox: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
