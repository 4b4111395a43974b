"""Fleet benchmark: rolling sshd hardening of N local targets, Jupiter vs Ansible.

Builds ``--targets`` copies of ``examples/host`` (tests/fleet.py) twice, once
for each side, then in the same run times

* **Jupiter**: a rolling deploy in batches of ``--batch``, each batch fixed by
  ``--forks`` threads, every target through the engine's full fix path (scan,
  plan, snapshot, ``sshd -t`` validation, atomic write, verification by
  re-detection, audit). :func:`jupiter_rolling` is the one function that
  chooses how (today ``Engine.fix`` per target; ``remediate --group`` once the
  remediation runner is on main);
* **Ansible**: ``ansible-playbook`` with ``serial: BATCH`` and ``--forks
  FORKS``, ``connection: local``, one ``lineinfile`` task per line Jupiter
  changes (the line values are taken from a Jupiter-fixed copy, so both sides
  write the same bytes, which the benchmark checks).

Then ``--overhead-sample`` fresh targets are fixed one by one with a plain
``Engine.fix`` and through :func:`jupiter_rolling` (batch 1, one fork): the
difference per target is what the workflow adds over a plain fix.

Prints one JSON object. Goal (issue 9): ``ansible_over_jupiter`` >= 5.

    .venv/bin/python benchmarks/fleet.py --targets 40        # quick check
    .venv/bin/python benchmarks/fleet.py --profile prof.txt  # where Jupiter's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fleet import Fleet, FleetTarget, build_fleet, tree_bytes  # noqa: E402

from jupiter.engine import Engine  # noqa: E402

ANSIBLE = ROOT / ".tools" / "ansible" / "bin" / "ansible-playbook"
ONLY = ["config.ssh"]

# (file, regexp, insertafter): one lineinfile task per line Jupiter's sshd
# hardening changes on examples/host; the line itself comes from a fixed copy.
EDITS: list[tuple[str, str, str | None]] = [
    ("etc/ssh/sshd_config", r"^PermitRootLogin\s", None),
    ("etc/ssh/sshd_config", r"^MaxAuthTries\s", None),
    ("etc/ssh/sshd_config", r"^X11Forwarding\s", None),
    ("etc/ssh/sshd_config", r"^ClientAliveInterval\s", None),
    ("etc/ssh/sshd_config", r"^ClientAliveCountMax\s", None),
    ("etc/ssh/sshd_config", r"^KexAlgorithms\s", r"^Subsystem\s"),
    ("etc/ssh/sshd_config", r"^HostKeyAlgorithms\s", r"^KexAlgorithms\s"),
    ("etc/ssh/sshd_config", r"^PubkeyAcceptedAlgorithms\s", r"^HostKeyAlgorithms\s"),
    ("etc/ssh/sshd_config", r"^LoginGraceTime\s", r"^PubkeyAcceptedAlgorithms\s"),
    ("etc/ssh/sshd_config", r"^RequiredRSASize\s", r"^LoginGraceTime\s"),
    ("etc/ssh/sshd_config.d/50-cloud-init.conf", r"^PasswordAuthentication\s", None),
    ("etc/ssh/sshd_config.d/90-legacy-crypto.conf", r"^Ciphers\s", None),
    ("etc/ssh/sshd_config.d/90-legacy-crypto.conf", r"^MACs[\s=]", None),
]


# -- Jupiter ----------------------------------------------------------------


def fix_one(engine: Engine, target: FleetTarget) -> str:
    """A plain ``jupiter fix --only config.ssh`` of one target, in process."""
    out = engine.fix(target.connection, asset=target.asset, only=ONLY)
    return str(out["status"])


def jupiter_rolling(
    engine: Engine, fleet: Fleet, targets: list[FleetTarget], batch: int, forks: int
) -> dict[str, int]:
    """Roll the sshd hardening over ``targets`` in batches, ``forks`` at a time.

    The one place to switch to the remediation runner once it is on main
    (``engine.remediations`` / ``jupiter remediate --group GROUP --only
    config.ssh --strategy rolling`` with ``batch``); until then every target
    goes through ``Engine.fix`` and a batch must finish before the next starts.
    """
    statuses: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=forks) as pool:
        for start in range(0, len(targets), batch):
            chunk = targets[start : start + batch]
            for status in pool.map(lambda t: fix_one(engine, t), chunk):
                statuses[status] = statuses.get(status, 0) + 1
    return statuses


# -- Ansible ----------------------------------------------------------------


def ansible_edits(fixed_root: Path) -> list[dict[str, Any]]:
    """The lineinfile tasks, each with the line as Jupiter wrote it."""
    import re

    tasks = []
    for rel, regexp, after in EDITS:
        lines = (fixed_root / rel).read_text().splitlines()
        found = [line for line in lines if re.search(regexp, line)]
        if len(found) != 1:
            raise SystemExit(f"expected one line matching {regexp!r} in fixed {rel}, got {found}")
        args: dict[str, Any] = {"path": f"{{{{ root }}}}/{rel}", "regexp": regexp, "line": found[0]}
        if after is not None:
            args["insertafter"] = after
        tasks.append({"name": f"{rel}: {found[0][:40]}", "lineinfile": args})
    return tasks


def write_playbook(work: Path, fleet: Fleet, tasks: list[dict[str, Any]], batch: int) -> Path:
    import yaml

    inventory = {
        "all": {
            "hosts": {t.asset: {"root": str(t.root)} for t in fleet.targets},
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(ANSIBLE.parent / "python"),
            },
        }
    }
    (work / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    play = [{"hosts": "all", "gather_facts": False, "serial": batch, "tasks": tasks}]
    path = work / "playbook.yaml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def ansible_rolling(work: Path, playbook: Path, forks: int) -> float:
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [str(ANSIBLE), "-i", str(work / "inventory.yaml"), "--forks", str(forks)]
    start = time.perf_counter()
    done = subprocess.run(
        [*argv, str(playbook)], env=env, capture_output=True, text=True, timeout=3600
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return took


# -- the run ----------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def overhead(engine: Engine, fleet: Fleet) -> dict[str, float]:
    """Per target: plain fix vs the workflow path, one at a time."""
    half = len(fleet.targets) // 2
    plain, flow = fleet.targets[:half], fleet.targets[half : 2 * half]
    plain_s, _ = timed(lambda: [fix_one(engine, t) for t in plain])
    flow_s, _ = timed(lambda: jupiter_rolling(engine, fleet, flow, 1, 1))
    return {
        "plain_fix_per_target_s": round(plain_s / half, 4),
        "workflow_per_target_s": round(flow_s / half, 4),
        "workflow_overhead_per_target_s": round((flow_s - plain_s) / half, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--forks", type=int, default=None, help="default: the batch size")
    parser.add_argument("--overhead-sample", type=int, default=10)
    parser.add_argument("--skip-ansible", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument text report")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: tmp)")
    args = parser.parse_args(argv)
    forks = args.forks or args.batch
    if not args.skip_ansible and not ANSIBLE.exists():
        raise SystemExit(f"{ANSIBLE} is missing; run scripts/tools.sh or pass --skip-ansible")

    work = Path(tempfile.mkdtemp(prefix="jupiter-fleetbench-", dir=args.dir))
    try:
        build_s, fleets = timed(
            lambda: (
                build_fleet(work / "jupiter", args.targets, group="fleet", servers=False),
                build_fleet(work / "ansible", args.targets, group="fleet", servers=False),
                build_fleet(work / "sample", 1, group="sample", servers=False),
                build_fleet(work / "overhead", 2 * args.overhead_sample, group="ov", servers=False),
            )
        )
        fleet, ans_fleet, sample, ov_fleet = fleets
        engine = Engine.open(home=work / "home")
        engine.init()
        for f in (fleet, sample, ov_fleet):
            engine.import_assets(f.assets_file)
        # Warm up (imports, registry, sshd version probe) on a copy nobody times;
        # its fixed files give Ansible the exact lines to write.
        warm_s, status = timed(lambda: fix_one(engine, sample.targets[0]))
        assert status == "succeeded", status
        tasks = ansible_edits(sample.targets[0].root)

        profiler = None
        if args.profile is not None:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        jup_s, statuses = timed(
            lambda: jupiter_rolling(engine, fleet, fleet.targets, args.batch, forks)
        )
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_text(unicode=False, color=False))

        result: dict[str, Any] = {
            "targets": args.targets,
            "batch": args.batch,
            "forks": forks,
            "build_s": round(build_s, 2),
            "warmup_fix_s": round(warm_s, 2),
            "jupiter_s": round(jup_s, 2),
            "jupiter_per_target_s": round(jup_s / args.targets, 4),
            "jupiter_statuses": statuses,
            "jupiter_path": "Engine.fix per target (remediation runner not on main yet)",
        }
        expected = tree_bytes(sample.targets[0].root)
        result["jupiter_all_equal_reference"] = all(
            tree_bytes(t.root) == expected for t in fleet.targets
        )
        if not args.skip_ansible:
            playbook = write_playbook(work, ans_fleet, tasks, args.batch)
            ans_s = ansible_rolling(work, playbook, forks)
            result["ansible_s"] = round(ans_s, 2)
            result["ansible_per_target_s"] = round(ans_s / args.targets, 4)
            result["ansible_over_jupiter"] = round(ans_s / jup_s, 2)
            result["ansible_all_equal_reference"] = all(
                tree_bytes(t.root) == expected for t in ans_fleet.targets
            )
        if args.overhead_sample > 0:
            result.update(overhead(engine, ov_fleet))
        engine.close()
        print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
