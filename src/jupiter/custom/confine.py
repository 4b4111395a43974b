"""How a custom script is confined on a target: the argument vector that runs
it through :mod:`jupiter.custom.sandbox`, locally or over SSH, and the check
that the host can confine it at all.

Locally the wrapper runs as ``python -I -m jupiter.custom.sandbox`` and reads
the registered script file itself. Over SSH nothing of Jupiter is installed
on the host: the wrapper's own source travels in the command line
(compressed, base64) and runs under the host's ``python3 -I -c``; the script
travels the same way and the wrapper checks its sha256 there before running
it. A command line must fit one argument of the remote shell (128 KiB), so
scripts sent over SSH are limited to :data:`MAX_REMOTE_SCRIPT` bytes.

:func:`check_host` asks the wrapper's ``--probe`` once per host, user and
process: a host without bubblewrap (and no ``sandbox: none``), a user that
does not exist there, or a kernel that refuses bubblewrap's namespaces
becomes one :class:`~jupiter.errors.InputError` sentence before anything
runs.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jupiter.custom.sandbox as sandbox
from jupiter.custom.manifest import ScriptManifest
from jupiter.errors import InputError
from jupiter.targets.base import Target, TargetView

SANDBOX_MODULE = "jupiter.custom.sandbox"
BWRAP = "bwrap"
"""The bubblewrap program the wrapper looks for on the host's fixed PATH."""
MAX_REMOTE_SCRIPT = 64 * 1024
PROBE_TIMEOUT = 30.0
# Decodes the wrapper from argv[1] and runs it as __main__; fixed text, never input.
_BOOT = (
    "import base64,sys,zlib;src=zlib.decompress(base64.b64decode(sys.argv.pop(1)));"
    "exec(compile(src,'jupiter-sandbox','exec'),{'__name__':'__main__'})"
)


@dataclass(frozen=True)
class Where:
    """Where a script runs: ``local`` or ``ssh``, and the host's description."""

    kind: str
    described: str


def where(view: TargetView) -> Where:
    """Local or SSH, looking through candidate views; InputError otherwise."""
    described = view.describe()
    while described.startswith("candidate of "):
        described = described.removeprefix("candidate of ")
    if described.startswith("local:"):
        return Where("local", described)
    if described.startswith("ssh:"):
        return Where("ssh", described)
    raise InputError(
        f"custom scripts run on local and SSH targets, not {described}; use a local: or ssh: asset"
    )


def real_target(view: TargetView) -> Target | None:
    """The Target under a chain of candidate views, or None."""
    seen = 0
    while not isinstance(view, Target) and seen < 100:
        base = getattr(view, "_base", None)  # OverlayView keeps the view it overlays
        if base is None:
            return None
        view, seen = base, seen + 1
    return view if isinstance(view, Target) else None


@lru_cache(maxsize=1)
def _wrapper_blob() -> str:
    source = Path(sandbox.__file__).read_bytes()
    return base64.b64encode(zlib.compress(source, 9)).decode("ascii")


def _options(manifest: ScriptManifest, label: str) -> list[str]:
    lim = manifest.limits
    out = [
        "--cpu",
        str(lim.cpu_seconds),
        "--memory",
        str(lim.memory_mb),
        "--fsize",
        str(lim.file_size_mb),
        "--nofile",
        str(lim.open_files),
        "--nproc",
        str(lim.processes),
    ]
    out += _who(manifest)
    if manifest.sandbox == "none":
        out.append("--allow-unconfined")
    return [*out, "--bwrap", BWRAP, "--label", label]


def _who(manifest: ScriptManifest) -> list[str]:
    if manifest.needs_root:
        return ["--as-root"]
    return ["--user", manifest.user] if manifest.user else []


def _prefix(kind: str) -> list[str]:
    if kind == "local":
        return [sys.executable, "-I", "-m", SANDBOX_MODULE]
    return ["python3", "-I", "-c", _BOOT, _wrapper_blob()]


def script_argv(
    kind: str,
    manifest: ScriptManifest,
    script: Path,
    data: bytes,
    args: list[str],
    writes: list[str],
) -> list[str]:
    """Run the script (``data`` is its registered content) with ``writes`` writable."""
    if kind == "local":
        source = ["--script", str(script)]
    else:
        if len(data) > MAX_REMOTE_SCRIPT:
            raise InputError(
                f"custom script {manifest.name!r} is {len(data)} bytes, more than the "
                f"{MAX_REMOTE_SCRIPT} that fit in an SSH command; make it smaller"
            )
        source = ["--script-b64", base64.b64encode(data).decode("ascii")]
    argv = [*_prefix(kind), *_options(manifest, f"custom script {manifest.name}"), *source]
    argv += ["--script-name", manifest.script, "--sha256", manifest.sha256 or ""]
    for word in manifest.interpreter or []:
        argv += ["--interpreter", word]
    for path in writes:
        argv += ["--write", path]
    if manifest.network:
        argv.append("--network")
    return [*argv, "--", *args]


def command_argv(kind: str, manifest: ScriptManifest, program: list[str], label: str) -> list[str]:
    """Run ``program`` (a verify command) in the same sandbox, nothing writable."""
    argv = [*_prefix(kind), *_options(manifest, label)]
    if manifest.network:
        argv.append("--network")
    return [*argv, "--", *program]


def _probe_argv(kind: str, manifest: ScriptManifest) -> list[str]:
    return [*_prefix(kind), "--probe", "--bwrap", BWRAP, *_who(manifest)]


_PROBES: dict[tuple[str, ...], dict[str, object]] = {}


def _probe(target: Target | None, at: Where, manifest: ScriptManifest) -> dict[str, object]:
    key = (at.described if at.kind == "ssh" else "local", BWRAP, *_who(manifest))
    if key in _PROBES:
        return _PROBES[key]
    argv = _probe_argv(at.kind, manifest)
    if at.kind == "local":
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        if target is None:
            return {}  # a view without its target: the wrapper checks again when it runs
        result = target.run(argv, PROBE_TIMEOUT)
        code, out, err = result.returncode, result.stdout, result.stderr
    if code == 127:
        raise InputError(
            f"python3 is not installed on {at.described}; custom scripts need python3 and "
            "bubblewrap (bwrap) on the host they run on"
        )
    try:
        found = json.loads(out.strip().splitlines()[-1])
        assert isinstance(found, dict)
    except (ValueError, IndexError, AssertionError):
        raise InputError(
            f"cannot tell whether {at.described} can confine custom scripts (the check "
            f"printed {(err or out).strip()[:200]!r}); check python3 and bwrap there"
        ) from None
    _PROBES[key] = found
    return found


def check_host(view: TargetView, manifest: ScriptManifest) -> Where:
    """Refuse (InputError) a host that cannot run this script confined."""
    at = where(view)
    found = _probe(real_target(view), at, manifest)
    if not found:
        return at
    name = manifest.name
    if "refused" in found:
        raise InputError(f"custom script {name!r} cannot run on {at.described}: {found['refused']}")
    if found.get("bwrap") is None:
        if manifest.sandbox == "none":
            return at
        raise InputError(
            f"custom script {name!r} cannot run on {at.described}: bubblewrap ({BWRAP}) is not "
            "installed there; install it, or set 'sandbox: none' in the manifest to run unconfined"
        )
    if found.get("namespaces") != "ok":
        raise InputError(
            f"custom script {name!r} cannot run on {at.described}: bubblewrap cannot create its "
            f"namespaces there ({str(found.get('namespaces'))[:200]}); custom scripts are never "
            "run unconfined, so allow user namespaces or run Jupiter as root"
        )
    return at


def forget_probes() -> None:
    """Drop cached host checks (after installing bwrap, and in tests)."""
    _PROBES.clear()
