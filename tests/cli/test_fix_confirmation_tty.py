"""The real `jupiter fix` at a terminal: an edit made while the user reads
the plan makes it show the new plan and ask again."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

SSHD = "etc/ssh/sshd_config"
PROMPT = b"Apply these changes?"


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while seen.count(marker) < 1:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} in output: {bytes(seen)[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"output ended before {marker!r}: {bytes(seen)[-2000:]!r}"
            seen.extend(chunk)


def test_an_edit_at_the_prompt_shows_the_new_plan_and_asks_again(tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", host, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k not in ("JUPITER_HOME", "JUPITER_DATABASE_URL")}
    env.update({"JUPITER_HOME": str(tmp_path / "home"), "JUPITER_ACTOR": "tty", "COLUMNS": "200"})
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupiter.cli.app", "fix", str(host), "--only", "config.ssh"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    out = bytearray()
    try:
        _read_until(leader, PROMPT, out)
        assert b"PermitRootLogin no" in out and b"changed while you were deciding" not in out
        with (host / SSHD).open("a") as fh:
            fh.write("# edited while the plan was on screen\n")
        os.write(leader, b"y\n")
        second = bytearray()
        _read_until(leader, PROMPT, second)
        assert b"the target changed while you were deciding" in second
        assert b"PermitRootLogin no" in second, "the new plan is shown again"
        os.write(leader, b"y\n")
        _read_until(leader, b"run 1:", second)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    text = (host / SSHD).read_text()
    assert "# edited while the plan was on screen\n" in text and "PermitRootLogin no" in text
