"""Run OpenSSH's own syntax check (``sshd -t``) on a candidate configuration.

The candidate's ``etc/ssh/sshd_config`` and every file it Includes are
copied into a private temporary directory, with the Include paths rewritten
to point at the copies (line numbers stay the same, so sshd's messages point
at the right lines). A throw-away ed25519 host key is generated there, so the
check needs neither the host's keys nor root's files.

A repository's configuration is checked the same way (its own main file,
its Includes resolved as :mod:`jupiter.plugins.sshd.parse` resolves them);
the repository holds no host key, and the result says that the sandbox
supplied a throw-away one. A Jinja template is rendered first with the
role's defaults (in Jinja's sandbox); one that does not render fails.

The check runs the ``sshd`` installed on *this* machine: it also tells
whether that OpenSSH knows every algorithm the candidate lists. For a remote
target with another OpenSSH release, run the check there too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from jupiter.errors import InputError, PathEscapeError
from jupiter.plugins.base import ValidationResult
from jupiter.plugins.sshd.parse import MAIN_CONFIG, SshdConfig, include_pattern, parse
from jupiter.scratch import scratch, scratch_dir
from jupiter.targets.base import FileState, TargetView

if TYPE_CHECKING:
    from jupiter.plugins.sshd.sources import Source

VALIDATOR = "sshd -t"
TIMEOUT = 20.0
_SEARCH = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
# sshd -t refuses to run without its privilege separation directory.
PRIVSEP_DIR = Path("/run/sshd")


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in _SEARCH if os.access(p, os.X_OK)), None)


def sshd_syntax_check(
    candidate: TargetView, sshd: str | None = None, source: Source | None = None
) -> ValidationResult:
    """``passed``/``failed`` (with sshd's message) or ``skipped`` with the reason;
    ``source``: a repository's configuration (default: the host's)."""
    main = source.main if source is not None else MAIN_CONFIG
    host = source.host if source is not None else True
    binary = sshd or find_sshd()
    if binary is None or not os.access(binary, os.X_OK):
        where = f" at {binary}" if binary else ""
        return ValidationResult(
            VALIDATOR, "skipped", f"sshd is not installed{where} on this machine"
        )
    keygen = shutil.which("ssh-keygen") or _sibling(binary, "ssh-keygen")
    if keygen is None:
        return ValidationResult(VALIDATOR, "skipped", "ssh-keygen is not installed")
    config = parse(candidate, main, host=host)
    if config is None:
        return ValidationResult(VALIDATOR, "failed", f"the candidate has no {main}")
    note = ""
    if not host:
        note = (
            " (the repository holds no host key: a throw-away ed25519 key made for "
            "validation, outside the repository, stood in for it)"
        )
    if any(p.endswith(".j2") for p in config.texts):
        try:
            rendered = Rendered(candidate, config)
        except InputError as exc:
            return ValidationResult(VALIDATOR, "failed", str(exc))
        config = parse(rendered, main, host=host) or config
        note = " (rendered with the role's defaults)" + note
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        return ValidationResult(
            VALIDATOR, "skipped", f"cannot create {PRIVSEP_DIR}, which sshd -t needs: {exc}"
        )
    key, problem = _throwaway_host_key(keygen)
    if key is None:
        return ValidationResult(VALIDATOR, "skipped", problem)
    with scratch("sshd") as tmp:
        root = Path(tmp) / "root"
        materialise(config, root)
        result = _run([binary, "-t", "-f", str(root / main), "-h", str(key)])
        if result.returncode == 0:
            what = "the candidate" if host else f"the candidate {main}"
            return ValidationResult(VALIDATOR, "passed", f"{binary} -t accepted {what}{note}")
        message = (result.stderr or result.stdout).strip().replace(f"{root}/", "")
        return ValidationResult(VALIDATOR, "failed", message or f"sshd exited {result.returncode}")


_key_lock = threading.Lock()
_key_dir: str | None = None


def _throwaway_host_key(keygen: str) -> tuple[Path | None, str]:
    """One throw-away ed25519 host key per process, in a private 0700 temp
    directory removed at exit: it only lets ``sshd -t`` start, so making a new
    one for every check (an ``ssh-keygen`` run each) bought nothing."""
    global _key_dir
    with _key_lock:
        if _key_dir is not None and os.path.isfile(os.path.join(_key_dir, "hostkey")):
            return Path(_key_dir, "hostkey"), ""
        if _key_dir is None:
            _key_dir = scratch_dir("sshd-key")
            atexit.register(shutil.rmtree, _key_dir, True)
        key = Path(_key_dir, "hostkey")
        for stale in (key, key.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        made = _run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "jupiter", "-f", str(key)])
        if made.returncode != 0:
            return None, f"ssh-keygen could not make a host key: {made.stderr.strip()}"
        return key, ""


def _sibling(binary: str, name: str) -> str | None:
    for folder in (os.path.dirname(binary), "/usr/bin", "/usr/local/bin"):
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    return None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} timed out after {TIMEOUT}s")


def materialise(config: SshdConfig, root: Path) -> None:
    """Write every file of ``config`` under ``root``, Includes re-pointed there."""
    by_line = {(d.path, d.line): d for d in config.includes}
    for path, text in config.texts.items():
        lines = text.split("\n")
        for number in range(1, len(lines) + 1):
            d = by_line.get((path, number))
            if d is None:
                continue
            targets = []
            followed = config.include_targets.get((path, number))
            for arg in d.args if followed is None else []:
                try:
                    targets.append(_quote(str(root / include_pattern(arg))))
                except PathEscapeError:
                    continue  # not followed by the parser either
            targets.extend(_quote(str(root / p)) for p in followed or [])
            indent = d.text[: len(d.text) - len(d.text.lstrip())]
            cr = "\r" if lines[number - 1].endswith("\r") else ""
            body = f"{d.raw_keyword} {' '.join(targets)}" if targets else f"# {d.text.strip()}"
            lines[number - 1] = f"{indent}{body}{cr}"
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("\n".join(lines), encoding="utf-8")


def _quote(path: str) -> str:
    return f'"{path}"' if any(c in path for c in " \t#'") else path


class Rendered:
    """``base`` with the Jinja templates of ``config`` rendered (role defaults)."""

    def __init__(self, base: TargetView, config: SshdConfig) -> None:
        from jupiter.plugins.configs import render_template

        self._base = base
        self._files = {
            path: render_template(base, path, text).encode()
            for path, text in config.texts.items()
            if path.endswith(".j2")
        }

    def describe(self) -> str:
        return f"rendered {self._base.describe()}"

    def read_bytes(self, path: str) -> bytes:
        return self._files[path] if path in self._files else self._base.read_bytes(path)

    def stat(self, path: str) -> FileState | None:
        state = self._base.stat(path)
        if state is not None and path in self._files:
            size = len(self._files[path])
            return FileState(path, state.kind, size, state.mode, state.uid, state.gid)
        return state

    def glob(self, pattern: str) -> list[str]:
        return self._base.glob(pattern)

    def walk(self, under: str = "") -> list[str]:
        return self._base.walk(under)
