"""Start a real PostgreSQL server on a throw-away cluster.

The validator of the PostgreSQL remediators (and the tests) use this to prove
that a candidate ``postgresql.conf``/``pg_hba.conf`` pair is accepted by the
server itself: a syntax or value error, a malformed pg_hba record, or
``ssl = on`` with a certificate the server cannot load all make the
postmaster exit instead of becoming ready.

* One cluster is ``initdb``-ed per process, on first use, in a private
  temporary directory removed at exit (~0.7 s); each start on it takes
  ~0.1 s. A lock makes starts on it sequential.
* The server never runs as root (PostgreSQL refuses to): when Jupiter runs as
  root the server runs as the ``postgres`` user, else as the current user.
* Settings that would reach outside the sandbox are always overridden on the
  command line (which beats the files): ``data_directory``, ``hba_file``,
  ``ident_file``, ``external_pid_file``, ``unix_socket_directories``, the
  collector and archiving.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jupiter.scratch import scratch_dir

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
INITDB_TIMEOUT = 120.0
_SEARCH = (
    "/usr/lib/postgresql/*/bin/postgres",
    "/usr/pgsql-*/bin/postgres",
    "/usr/local/pgsql/bin/postgres",
)
_SAFE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}


class ServerError(Exception):
    """The server (or initdb) did not do what was asked; ``str`` says why."""


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the server runs as."""

    name: str
    uid: int
    gid: int


def find_postgres() -> str | None:
    """The ``postgres`` binary: on PATH, else the newest packaged one."""
    found = shutil.which("postgres")
    if found:
        # Resolved, so that initdb is looked up next to the real binary.
        return os.path.realpath(found)
    candidates = [p for pattern in _SEARCH for p in glob.glob(pattern) if os.access(p, os.X_OK)]
    return max(candidates, key=_version_key) if candidates else None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.replace("-", "/").split("/") if part.isdigit())


def server_account() -> RunAs | str:
    """Who the server runs as, or the reason no one can."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return "running as root and there is no 'postgres' account to start the server as"
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def give_to(path: Path, who: RunAs) -> None:
    """Make ``path`` (recursively) the server account's, when we are root."""
    if os.geteuid() != 0:
        return
    for current in [path, *path.rglob("*")]:
        os.lchown(current, who.uid, who.gid)


def _popen_user(who: RunAs) -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    return {"user": who.uid, "group": who.gid, "extra_groups": []}


@dataclass
class Cluster:
    """A throw-away data directory; ``base`` also holds per-run work dirs."""

    binary: str
    base: Path
    data: Path
    who: RunAs
    version: str
    lock: threading.Lock

    def workdir(self) -> Path:
        """A fresh directory the server account owns, inside ``base``."""
        path = Path(tempfile.mkdtemp(prefix="run-", dir=self.base))
        give_to(path, self.who)
        return path


_CLUSTERS: dict[str, Cluster] = {}
_CLUSTERS_LOCK = threading.Lock()


def throwaway_cluster(binary: str, who: RunAs) -> Cluster:
    """The process's cluster for ``binary`` (created on first call)."""
    with _CLUSTERS_LOCK:
        cached = _CLUSTERS.get(binary)
        if cached is not None and cached.data.is_dir():
            return cached
        base = Path(scratch_dir("pg"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o700)
        give_to(base, who)
        initdb = str(Path(binary).with_name("initdb"))
        argv = [
            initdb,
            "-D",
            str(base / "data"),
            "--no-sync",
            "--auth=trust",
            f"--username={who.name}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        result = _run(argv, who, INITDB_TIMEOUT)
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {_tail(result.stdout)}")
        version = _run([binary, "--version"], who, 20).stdout.strip()
        cluster = Cluster(binary, base, base / "data", who, version, threading.Lock())
        _CLUSTERS[binary] = cluster
        return cluster


def _run(argv: list[str], who: RunAs, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=_SAFE_ENV,
            cwd="/",
            check=False,
            **_popen_user(who),
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{argv[0]} did not finish within {timeout:.0f} s") from exc


def _tail(log: str, limit: int = 12) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    important = [
        line
        for line in lines
        if any(
            tag in line
            for tag in (
                "FATAL",
                "ERROR",
                "PANIC",
                "CONTEXT",
                "HINT",
                "DETAIL",
                "could not",
                "invalid",
            )
        )
    ]
    return " | ".join((important or lines)[-limit:])


@dataclass(frozen=True)
class Running:
    """A started server: connect with ``host=socket_dir port=port``."""

    pid: int
    port: int
    socket_dir: Path
    log: Path
    version: str


@contextlib.contextmanager
def running_server(
    cluster: Cluster, config_file: Path, settings: dict[str, str], workdir: Path, port: int = 5432
) -> Iterator[Running]:
    """Start ``postgres`` on ``cluster`` with ``config_file`` and stop it on exit.

    ``settings`` are extra ``-c`` overrides (e.g. ``listen_addresses``); the
    sandbox's own overrides are applied last. Raises :class:`ServerError`
    with the server's messages when it exits or is not ready in time.
    """
    socket_dir = workdir / "sock"
    socket_dir.mkdir(exist_ok=True)
    give_to(socket_dir, cluster.who)
    log_path = workdir / "server.log"
    forced = {
        "data_directory": str(cluster.data),
        "external_pid_file": str(workdir / "external.pid"),
        "unix_socket_directories": str(socket_dir),
        "port": str(port),
        "logging_collector": "off",
        "log_destination": "stderr",
        "archive_mode": "off",
        "lc_messages": "C",
    }
    overrides = {"listen_addresses": "", **settings, **forced}
    argv = [cluster.binary, "-D", str(cluster.data), "-c", f"config_file={config_file}"]
    for name, value in overrides.items():
        argv += ["-c", f"{name}={value}"]
    with cluster.lock, open(log_path, "w") as log:
        pid_file = cluster.data / "postmaster.pid"
        proc = subprocess.Popen(  # type: ignore[call-overload]
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_SAFE_ENV,
            cwd=str(workdir),
            start_new_session=True,
            **_popen_user(cluster.who),
        )
        try:
            _wait_ready(proc, pid_file, log_path)
            yield Running(proc.pid, port, socket_dir, log_path, cluster.version)
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], pid_file: Path, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"postgres exited with status {proc.returncode}: {_tail(log_path.read_text())}"
            )
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            # Line 1 is the postmaster's pid, line 8 its status ("ready" once
            # it accepts connections); both are locale-independent.
            if len(lines) >= 8 and lines[0] == str(proc.pid) and lines[7].strip() == "ready":
                return
        time.sleep(0.02)
    raise ServerError(
        f"postgres was not ready within {START_TIMEOUT:.0f} s: {_tail(log_path.read_text())}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # fast shutdown
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The server was started in its own session: its group is exactly the
        # postmaster and its children.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
