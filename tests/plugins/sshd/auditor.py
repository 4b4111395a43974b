"""Start a throw-away sshd with a configuration and judge it with ssh-audit.

The configuration (with its Includes) is copied as ``sshd -t`` sees it
(:func:`jupiter.plugins.sshd.validate.materialise`); its ``HostKey`` lines are
replaced by test host keys (Ed25519 and RSA 3072, made once per session),
so the auditor sees the algorithms of the config, on loopback, on a free port.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.plugins.sshd.parse import MAIN_CONFIG, parse
from jupiter.plugins.sshd.validate import PRIVSEP_DIR, find_sshd, materialise
from jupiter.targets.base import TargetView
from tests.conftest import ROOT, need_service

SSH_AUDIT = ROOT / ".tools" / "ssh-audit" / "bin" / "ssh-audit"
SECTIONS = ("kex", "key", "enc", "mac")


@dataclass
class Verdict:
    """ssh-audit's judgement: ``(section, algorithm, note)`` per failure and warning."""

    failures: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    offered: dict[str, list[str]] = field(default_factory=dict)
    returncode: int = 0

    def failing(self) -> set[str]:
        return {alg for _, alg, _ in self.failures}

    def warned(self) -> set[str]:
        return {alg for _, alg, _ in self.warnings}


def tools_present() -> tuple[str, str]:
    """(sshd, ssh-audit) or skip/fail as ``need_service`` says."""
    sshd = find_sshd()
    need_service(sshd is not None, "sshd is not installed; run scripts/services.sh")
    need_service(SSH_AUDIT.exists(), f"{SSH_AUDIT} is missing; run scripts/tools.sh")
    assert sshd is not None
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    return sshd, str(SSH_AUDIT)


def make_host_keys(folder: Path) -> list[Path]:
    keygen = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
    keys = []
    for kind, bits in (("ed25519", None), ("rsa", "3072")):
        key = folder / f"ssh_host_{kind}_key"
        argv = [keygen, "-q", "-t", kind, "-N", "", "-C", "jupiter-test", "-f", str(key)]
        if bits:
            argv[4:4] = ["-b", bits]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        keys.append(key)
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_sshd(view: TargetView, work: Path, keys: list[Path]) -> Iterator[int]:
    """sshd reading ``view``'s configuration, on 127.0.0.1:PORT (yields PORT)."""
    sshd, _ = tools_present()
    config = parse(view)
    assert config is not None, "no sshd_config in the target"
    root = work / "root"
    materialise(config, root)
    for path in config.texts:
        dest = root / path
        lines = dest.read_text().split("\n")
        keyless = ["# " + ln if ln.strip().lower().startswith("hostkey ") else ln for ln in lines]
        dest.write_text("\n".join(keyless))
    port = free_port()
    argv = [sshd, "-D", "-e", "-f", str(root / MAIN_CONFIG), "-p", str(port)]
    argv += ["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none"]
    for key in keys:
        argv += ["-h", str(key)]
    log = (work / "sshd.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sshd did not start: {(work / 'sshd.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def audit(port: int) -> Verdict:
    """``ssh-audit -j`` against 127.0.0.1:PORT. The DHEat connection-rate
    test is skipped: it measures throttling, not the algorithms."""
    _, tool = tools_present()
    done = subprocess.run(
        [tool, "-j", "--skip-rate-test", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    data = json.loads(done.stdout)
    verdict = Verdict(returncode=done.returncode)
    for section in SECTIONS:
        verdict.offered[section] = []
        for entry in data.get(section, []):
            name = entry["algorithm"]
            verdict.offered[section].append(name)
            notes = entry.get("notes", {})
            verdict.failures += [(section, name, n) for n in notes.get("fail", [])]
            verdict.warnings += [(section, name, n) for n in notes.get("warn", [])]
    for cve in data.get("cves", []):
        verdict.failures.append(("cve", cve.get("name", "?"), cve.get("description", "")))
    return verdict


def audit_target(view: TargetView, work: Path, keys: list[Path]) -> Verdict:
    with running_sshd(view, work, keys) as port:
        return audit(port)
