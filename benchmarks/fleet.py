"""Fleet benchmark: rolling sshd hardening of N local targets, Jupiter vs Ansible.

Builds ``--targets`` copies of ``examples/host`` (tests/fleet.py) twice, once
for each side, then in the same run times

* **Jupiter**: one remediation over the group (every target scanned and
  planned, plans sealed), run by the remediation runner: a rollback point,
  a rolling deploy in batches of ``--batch`` with ``--forks`` targets at a
  time, each target through the runs' one path (snapshot, ``sshd -t``
  validation, atomic write, verification by re-detection, audit), then the
  verify stage re-detects on every target (:func:`jupiter_rolling`);
* **Ansible**: ``ansible-playbook`` with ``serial: BATCH`` and ``--forks
  FORKS``, ``connection: local``, one ``lineinfile`` task per line Jupiter
  changes (the line values are taken from a Jupiter-fixed copy, so both sides
  write the same bytes, which the benchmark checks).

Then ``--overhead-sample`` fresh targets are fixed one by one with a plain
``Engine.fix`` and through :func:`jupiter_rolling` (batch 1, one fork): the
difference per target is what the workflow adds over a plain fix.

Prints one JSON object. Goal (issue 9): ``ansible_over_jupiter`` >= 5.

    .venv/bin/python benchmarks/fleet.py --targets 10 --batch 5   # quick check
    .venv/bin/python benchmarks/fleet.py --targets 500 --batch 50 # the issue's run
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fleet import Fleet, FleetTarget, build_fleet, tree_bytes  # noqa: E402

from jupiter.engine import Engine  # noqa: E402

ANSIBLE = ROOT / ".tools" / "ansible" / "bin" / "ansible-playbook"
ONLY = ["config.ssh"]
PHASES: list[dict[str, float]] = []  # per remediation: create (scan + plan) and run

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
    """Roll the sshd hardening over ``targets`` with the remediation runner:
    one remediation on the group (planned on every target, sealed), a
    workflow of snapshot, rolling deploy (``batch`` per batch, ``forks``
    targets at a time) and verification by re-detection — what ``jupiter
    remediate --group GROUP --only config.ssh`` runs. Returns the targets'
    states."""
    group = f"bench-{len(engine.remediations.listing()) + 1}"
    write_workflow(engine, batch, forks)
    assign_group(engine, targets, group)
    started = time.perf_counter()
    made = engine.remediations.create(group=group, only=ONLY, workflow="bench-rolling")
    assert made.remediation is not None, made.to_json()
    planned = time.perf_counter()
    info = engine.remediations.run(made.remediation.id)
    PHASES.append({"plan_s": planned - started, "run_s": time.perf_counter() - planned})
    if info.status != "completed":
        raise SystemExit(f"the remediation ended {info.status}: {info.to_json()}")
    statuses: dict[str, int] = {}
    for t in info.targets:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    return statuses


def write_workflow(engine: Engine, batch: int, forks: int) -> None:
    import yaml

    stages = [
        {"kind": "snapshot"},
        {
            "kind": "deploy",
            "strategy": {"type": "rolling", "batch": batch, "max_fail": 0},
            "concurrency": forks,
        },
        {"kind": "verify"},
    ]
    folder = engine.workspace.home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench-rolling.yaml").write_text(
        yaml.safe_dump({"name": "bench-rolling", "stages": stages})
    )


def assign_group(engine: Engine, targets: list[FleetTarget], group: str) -> None:
    """Put exactly ``targets`` into ``group`` (the remediation's scope)."""
    import yaml

    path = engine.workspace.home / f"{group}.yaml"
    entries = [
        {"id": t.asset, "group": group, "environment": "prod", "connection": t.connection}
        for t in targets
    ]
    path.write_text(yaml.safe_dump({"assets": entries}))
    engine.import_assets(path)


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
        # Ansible's own speed-up (no module file written per task): fair to it.
        "ANSIBLE_PIPELINING": "True",
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


def overhead(engine: Engine, fleet: Fleet, profile: Path | None) -> dict[str, float]:
    """Per target: plain fix vs the workflow path, one at a time. With
    ``profile``, the plain fixes run under pyinstrument (which samples only
    the calling thread, hence here rather than in the threaded rolling run)."""
    half = len(fleet.targets) // 2
    plain, flow = fleet.targets[:half], fleet.targets[half : 2 * half]
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    plain_s, _ = timed(lambda: [fix_one(engine, t) for t in plain])
    if profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False))
    flow_s, _ = timed(lambda: jupiter_rolling(engine, fleet, flow, 1, 1))
    return {
        "plain_fix_per_target_s": round(plain_s / half, 4),
        "workflow_per_target_s": round(flow_s / half, 4),
        "workflow_overhead_per_target_s": round((flow_s - plain_s) / half, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The full run is --targets 500 --batch 50 (well over an hour on
    # the shared 2-core machine, most of it Ansible); the default is ~5 minutes.
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--forks", type=int, default=None, help="default: the batch size")
    parser.add_argument("--overhead-sample", type=int, default=6)
    parser.add_argument("--skip-ansible", action="store_true")
    parser.add_argument(
        "--profile", type=Path, default=None, help="pyinstrument report of the plain fixes"
    )
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

        jup_s, statuses = timed(
            lambda: jupiter_rolling(engine, fleet, fleet.targets, args.batch, forks)
        )

        result: dict[str, Any] = {
            "targets": args.targets,
            "batch": args.batch,
            "forks": forks,
            "build_s": round(build_s, 2),
            "warmup_fix_s": round(warm_s, 2),
            "jupiter_s": round(jup_s, 2),
            "jupiter_per_target_s": round(jup_s / args.targets, 4),
            "jupiter_statuses": statuses,
            "jupiter_plan_s": round(PHASES[0]["plan_s"], 2),
            "jupiter_run_s": round(PHASES[0]["run_s"], 2),
            "jupiter_path": "remediation runner: snapshot, rolling deploy, verify",
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
            result.update(overhead(engine, ov_fleet, args.profile))
        engine.close()
        print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
