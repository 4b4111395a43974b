"""The registry of custom scripts in the workspace.

Layout: ``<JUPITER_HOME>/scripts/<name>/manifest.yaml`` plus a copy of the
script (mode 0700, folder 0700). The manifest written there records the
script's sha256; every run checks it (at plan time here, and again by the
sandbox just before the script starts), so a script edited after
registration is refused until it is registered again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from jupiter.custom.manifest import (
    REMEDIATOR_PREFIX,
    DetectorVerify,
    ScriptManifest,
    dump_manifest,
    load_manifest,
)
from jupiter.errors import InputError, NotFoundError
from jupiter.plans import sha256_bytes
from jupiter.workspace import Workspace

if TYPE_CHECKING:
    from jupiter.plugins.registry import Registry

MANIFEST_NAME = "manifest.yaml"


@dataclass(frozen=True)
class RegisteredScript:
    """A script as stored: its manifest, folder and script file."""

    manifest: ScriptManifest
    folder: Path

    @property
    def script_path(self) -> Path:
        """Absolute: the script runs with the target root as working directory."""
        return (self.folder / self.manifest.script).absolute()

    def current_sha256(self) -> str | None:
        try:
            return sha256_bytes(self.script_path.read_bytes())
        except OSError:
            return None

    def check_unchanged(self) -> None:
        """Raise InputError when the stored script no longer matches its hash."""
        actual = self.current_sha256()
        if actual is None:
            raise InputError(
                f"custom script {self.manifest.name!r}: {self.script_path} is missing; "
                "register the script again"
            )
        if actual != self.manifest.sha256:
            raise InputError(
                f"custom script {self.manifest.name!r}: {self.script_path} was modified after "
                f"registration (sha256 {actual[:12]}…, registered "
                f"{(self.manifest.sha256 or '')[:12]}…); review it and register it again"
            )

    def read_checked(self) -> bytes:
        """The script's bytes, or InputError when they no longer match the hash."""
        self.check_unchanged()
        data = self.script_path.read_bytes()
        if sha256_bytes(data) != self.manifest.sha256:
            self.check_unchanged()  # changed in between: the same sentence
        return data

    def to_json(self) -> dict[str, object]:
        m = self.manifest
        actual = self.current_sha256()
        return {
            "name": m.name,
            "remediator": m.remediator_name,
            "description": m.description,
            "rule_ids": list(m.rule_ids),
            "paths": list(m.paths),
            "verify": m.verify.model_dump(mode="json"),
            "timeout": m.timeout,
            "network": m.network,
            "run_as": m.run_as,
            "sandbox": m.sandbox,
            "script": str(self.script_path),
            "sha256": m.sha256,
            "status": "ok" if actual == m.sha256 else ("missing" if actual is None else "modified"),
        }


def scripts_dir(workspace: Workspace) -> Path:
    return workspace.home / "scripts"


@lru_cache(maxsize=1)
def builtin_registry() -> Registry:
    """The entry-point registry of installed remediators (loaded once)."""
    from jupiter.plugins.registry import load_registry

    return load_registry()


def _builtin_names() -> set[str]:
    return set(builtin_registry().plugins)


def check_script(manifest: ScriptManifest, source: Path, manifest_path: Path) -> bytes:
    if not source.is_file():
        raise InputError(
            f"script manifest {manifest_path}, field 'script': {source} does not exist; "
            "put the script next to the manifest"
        )
    data = source.read_bytes()
    if manifest.interpreter is None and not os.access(source, os.X_OK):
        raise InputError(
            f"script manifest {manifest_path}, field 'script': {source.name} is not executable; "
            f"run 'chmod +x {source.name}' or set 'interpreter' (e.g. [/bin/sh])"
        )
    if manifest.interpreter is None and not data.startswith(b"#!"):
        raise InputError(
            f"script manifest {manifest_path}, field 'script': {source.name} has no '#!' line; "
            "add one or set 'interpreter' (e.g. [/bin/bash])"
        )
    actual = sha256_bytes(data)
    if manifest.sha256 is not None and manifest.sha256 != actual:
        raise InputError(
            f"script manifest {manifest_path}, field 'sha256': {source.name} has sha256 "
            f"{actual}, not the pinned value; update the pin or the script"
        )
    return data


def register_script(workspace: Workspace, manifest_path: Path) -> dict[str, object]:
    """Validate ``manifest_path`` and copy it and its script into the workspace.

    Registering a name again replaces the earlier registration (that is how an
    edited script is accepted again). Returns :meth:`RegisteredScript.to_json`.
    Raises InputError naming the file and field on any problem.
    """
    manifest_path = Path(manifest_path)
    manifest = load_manifest(manifest_path)
    if manifest.script == MANIFEST_NAME:
        raise InputError(
            f"script manifest {manifest_path}, field 'script': the script may not be named "
            f"{MANIFEST_NAME}; rename it"
        )
    data = check_script(manifest, manifest_path.parent / manifest.script, manifest_path)
    builtins = _builtin_names()
    if manifest.remediator_name in builtins:
        raise InputError(
            f"script manifest {manifest_path}, field 'name': remediator "
            f"{manifest.remediator_name!r} already exists; choose another name"
        )
    if isinstance(manifest.verify, DetectorVerify) and manifest.verify.detector not in builtins:
        known = ", ".join(sorted(builtins)) or "none"
        raise InputError(
            f"script manifest {manifest_path}, field 'verify.detector': no remediator named "
            f"{manifest.verify.detector!r} (known: {known}); name an installed remediator"
        )
    manifest = manifest.model_copy(update={"sha256": sha256_bytes(data)})

    workspace.ensure()
    root = scripts_dir(workspace)
    root.mkdir(mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    final = root / manifest.name
    # Build the new folder beside the old one and swap it in, so a failed copy
    # never leaves a half-registered script.
    staging = Path(tempfile.mkdtemp(prefix=f".{manifest.name}-", dir=root))
    try:
        os.chmod(staging, 0o700)
        script = staging / manifest.script
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(script, 0o700)
        (staging / MANIFEST_NAME).write_text(dump_manifest(manifest), encoding="utf-8")
        os.chmod(staging / MANIFEST_NAME, 0o600)
        if final.exists():
            old = root / f".{manifest.name}-old-{os.getpid()}"
            final.rename(old)
            staging.rename(final)
            shutil.rmtree(old)
        else:
            staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return RegisteredScript(manifest, final).to_json()


def load_registered(folder: Path) -> RegisteredScript:
    """Read one registered script's folder (InputError when it is broken)."""
    manifest = load_manifest(folder / MANIFEST_NAME)
    if manifest.sha256 is None:
        raise InputError(
            f"script manifest {folder / MANIFEST_NAME}, field 'sha256': missing in a registered "
            "script; register the script again"
        )
    if manifest.name != folder.name:
        raise InputError(
            f"script manifest {folder / MANIFEST_NAME}, field 'name': {manifest.name!r} does not "
            f"match its folder {folder.name!r}; register the script again"
        )
    return RegisteredScript(manifest, folder)


def registered_scripts(workspace: Workspace) -> list[RegisteredScript]:
    """Every registered script, sorted by name (InputError on a broken one)."""
    root = scripts_dir(workspace)
    if not root.is_dir():
        return []
    return [
        load_registered(entry)
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    ]


def get_script(workspace: Workspace, name: str) -> RegisteredScript:
    folder = scripts_dir(workspace) / name
    if name.startswith(".") or "/" in name or not (folder / MANIFEST_NAME).is_file():
        known = ", ".join(str(s["name"]) for s in list_scripts(workspace)) or "none"
        raise NotFoundError(
            f"no custom script named {name!r} (registered: {known}); "
            "add one with 'jupiter scripts add MANIFEST'"
        )
    return load_registered(folder)


def list_scripts(workspace: Workspace) -> list[dict[str, object]]:
    """Registered scripts as JSON-ready dicts, sorted by name; ``status`` is
    ``ok``, ``modified`` (edited since registration: runs are refused),
    ``missing`` or ``broken`` (unreadable manifest; ``error`` says why)."""
    root = scripts_dir(workspace)
    if not root.is_dir():
        return []
    out: list[dict[str, object]] = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            out.append(load_registered(folder).to_json())
        except InputError as exc:
            out.append({"name": folder.name, "status": "broken", "error": str(exc)})
    return out


def remove_script(workspace: Workspace, name: str) -> None:
    """Delete a registered script; NotFoundError if there is none by that name."""
    if name.startswith(REMEDIATOR_PREFIX) and not (scripts_dir(workspace) / name).is_dir():
        name = name.removeprefix(REMEDIATOR_PREFIX)  # accept the remediator name too
    script = get_script(workspace, name)
    shutil.rmtree(script.folder)
