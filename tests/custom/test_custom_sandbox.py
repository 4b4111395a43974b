"""The sandbox wrapper, with real processes: limits, environment, working
directory, literal arguments, exit codes and killing on timeout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from custom_helpers import MakeScript, finding, run_plan

from jupiter.targets.local import LocalTarget

SANDBOX = [sys.executable, "-I", "-m", "jupiter.custom.sandbox"]
LIMITS = ["--cpu", "10", "--memory", "512", "--fsize", "8", "--nofile", "64", "--nproc", "64"]


def test_environment_is_scrubbed_and_cwd_is_target_root(
    make_script: MakeScript, target: LocalTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-do-not-leak")
    monkeypatch.setenv("HOME", "/root-of-the-operator")
    rem = make_script(
        "#!/bin/sh\nenv > env.txt\npwd -P > cwd.txt\necho to-stdout\necho to-stderr >&2\nexit 3\n",
        paths=["env.txt", "cwd.txt"],
    )
    result = run_plan(rem, target)
    assert result.returncode == 3
    assert result.stdout == "to-stdout\n"
    assert result.stderr.startswith("to-stderr\njupiter sandbox: ")
    assert "custom script test-script exited with status 3 (limits:" in result.stderr
    env = (target.root / "env.txt").read_text()
    assert "fake-secret" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "HOME=" not in env
    assert "PATH=/usr/local/sbin:" in env
    assert (target.root / "cwd.txt").read_text().strip() == str(target.root)


def test_sandbox_scrubs_even_when_called_with_a_dirty_environment(tmp_path: Path) -> None:
    # Not through Target.run (which scrubs too): the wrapper must not rely on it.
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="fake-secret", HOME="/somewhere")
    proc = subprocess.run(
        [*SANDBOX, *LIMITS, "--", "env"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    env_names = sorted(line.split("=")[0] for line in proc.stdout.splitlines())
    # bubblewrap sets PWD to the working directory (the target root).
    assert env_names == ["LANG", "PATH", "PWD"]


def test_hostile_finding_values_stay_literal(make_script: MakeScript, target: LocalTarget) -> None:
    (target.root / "sentinel").write_text("still here\n")
    rem = make_script(
        "#!/bin/sh\nprintf '[%s]\\n' \"$@\" > args.txt\n",
        paths=["args.txt"],
        args=[
            "--path={finding.path}",
            "{finding.rule_id}",
            "{finding.package}",
            "x {finding.version} y",
        ],
    )
    record = finding(
        "$(id)", path="a b; rm -rf sentinel", package="`touch pwned`", version="'; rm -rf / #"
    )
    result = run_plan(rem, target, record)
    assert result.ok, result.stderr
    assert (target.root / "args.txt").read_text() == (
        "[--path=a b; rm -rf sentinel]\n[$(id)]\n[`touch pwned`]\n[x '; rm -rf / # y]\n"
    )
    assert (target.root / "sentinel").exists()
    assert not (target.root / "pwned").exists()


def test_values_that_would_be_options_or_escape_are_not_planned(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script("#!/bin/sh\n", paths=["{finding.path}"], args=["{finding.path}"])
    params = rem.parse_params(None)
    plan = rem.plan(finding(path="-rf"), target, params)
    assert plan.empty and plan.needs_manual and "read as an option" in plan.needs_manual
    plan = rem.plan(finding(path="../../etc/passwd"), target, params)
    assert plan.empty and plan.needs_manual and "'..'" in plan.needs_manual
    plan = rem.plan(finding(path=None), target, params)
    assert plan.needs_manual and "has no path" in plan.needs_manual


def test_cpu_limit_kills_a_busy_script(make_script: MakeScript, target: LocalTarget) -> None:
    rem = make_script("#!/bin/bash\nwhile :; do :; done\n", limits={"cpu_seconds": 1})
    started = time.monotonic()
    result = run_plan(rem, target)
    assert not result.timed_out
    assert result.returncode == 128 + signal.SIGXCPU
    assert "killed by SIGXCPU: CPU time limit of 1 s exceeded" in result.stderr
    assert time.monotonic() - started < 15


def test_file_size_limit_stops_a_big_write(make_script: MakeScript, target: LocalTarget) -> None:
    rem = make_script(
        "#!/bin/bash\nexec head -c 3000000 /dev/zero > big.bin\n",
        paths=["big.bin"],
        limits={"file_size_mb": 1},
    )
    result = run_plan(rem, target)
    assert result.returncode == 128 + signal.SIGXFSZ
    assert "file size limit of 1 MB exceeded" in result.stderr
    assert (target.root / "big.bin").stat().st_size == 1024 * 1024


def test_file_size_limit_fails_a_script_under_set_e(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script(
        "#!/bin/bash\nset -e\nhead -c 3000000 /dev/zero > big.bin\necho done\n",
        paths=["big.bin"],
        limits={"file_size_mb": 1},
    )
    result = run_plan(rem, target)
    assert result.returncode != 0
    assert "done" not in result.stdout


PY_ALLOC = (
    "#!/usr/bin/python3\nimport sys\nblock = bytearray(int(sys.argv[1]) * 1024 * 1024)\n"
    "print('allocated', len(block) // (1024 * 1024))\n"
)


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
def test_memory_limit_refuses_a_large_allocation(
    make_script: MakeScript, target: LocalTarget
) -> None:
    rem = make_script(PY_ALLOC, args=["{finding.start_line}"], limits={"memory_mb": 128})
    small = run_plan(rem, target, finding(start_line=16))
    assert small.ok, small.stderr
    assert small.stdout == "allocated 16\n"
    big = run_plan(rem, target, finding(start_line=400))
    assert big.returncode == 1
    assert "MemoryError" in big.stderr
    assert "exited with status 1 (limits: CPU 120 s, memory 128 MB" in big.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
def test_open_files_limit(make_script: MakeScript, target: LocalTarget) -> None:
    rem = make_script(
        "#!/usr/bin/python3\nfiles = [open('/dev/null') for _ in range(100)]\n",
        limits={"open_files": 32},
    )
    result = run_plan(rem, target)
    assert result.returncode == 1
    assert "Too many open files" in result.stderr


PY_FORK = """#!/usr/bin/python3
import os, time
pids = []
for n in range(30):
    try:
        pid = os.fork()
    except BlockingIOError:
        print("fork refused after", n)
        break
    if pid == 0:
        time.sleep(0.3)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
print("forked", len(pids))
"""


def test_process_limit_stops_a_fork_loop() -> None:
    # RLIMIT_NPROC counts the processes of a *user* and is not enforced for
    # root, so as root the test runs the sandbox as 'nobody' through setpriv.
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3")
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: RLIMIT_NPROC cannot be exercised")
        prefix = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    folder = Path(tempfile.mkdtemp(prefix="jupiter-nproc-"))
    try:
        folder.chmod(0o755)
        script = folder / "fork.py"
        script.write_text(PY_FORK)
        script.chmod(0o755)
        argv = [
            *prefix,
            *SANDBOX,
            "--cpu",
            "10",
            "--memory",
            "512",
            "--fsize",
            "1",
            "--nofile",
            "64",
            "--nproc",
            "6",
            "--",
            str(script),
        ]
        proc = subprocess.run(
            argv, cwd=folder, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        shutil.rmtree(folder)
    assert proc.returncode == 0, proc.stderr
    assert "fork refused after" in proc.stdout
    assert int(proc.stdout.split("fork refused after")[1].split()[0]) < 6


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


def test_exit_codes_of_missing_and_refused_programs(tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SANDBOX, *LIMITS, *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    missing = run("--", "/nonexistent/program")
    assert missing.returncode == 127 and "not found" in missing.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    assert run("--", str(plain)).returncode == 126
    assert run("--", "sh", "-c", "exit 42").returncode == 42
    # Everything after the first '--' is the program's, options and '--' included.
    echoed = run("--", "printf", "[%s]", "--", "-h", "--cpu", "1")
    assert echoed.returncode == 0 and echoed.stdout == "[--][-h][--cpu][1]"
    wrong = run("--script", str(plain), "--sha256", "0" * 64, "--")
    assert wrong.returncode == 125 and "modified after registration" in wrong.stderr
    bad_option = subprocess.run(
        [*SANDBOX, "--cpu", "x", "--", "true"], capture_output=True, text=True, timeout=30
    )
    assert bad_option.returncode == 2 and "invalid int value" in bad_option.stderr


def test_the_wrapper_keeps_the_targets_safe_environment() -> None:
    # sandbox.py must not import Jupiter (it also runs on remote hosts), so
    # it keeps its own copy of the environment LocalTarget gives commands.
    from jupiter.custom import sandbox
    from jupiter.targets import local_commands

    assert sandbox.SAFE_ENV == local_commands.SAFE_ENV
    source = Path(sandbox.__file__).read_text()
    assert "import jupiter" not in source and "from jupiter" not in source
