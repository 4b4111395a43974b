"""Fleet benchmark over SSH: rolling sshd hardening of N hosts, Jupiter vs Ansible.

Starts ``--targets`` real OpenSSH ``sshd`` servers on loopback ports (each a
"host", with its own host key and login key; tests/sshserver.py), and two
copies of ``examples/host`` per host, one for each side. Then, in the same
run, over the same sshd servers and with the same ``--forks``:

* **Jupiter**: what ``jupiter remediate --group G --only config.ssh --forks F``
  does: one remediation over the group, every host scanned and planned over
  SSH (plans sealed), then the runner: rollback point, rolling deploy in
  batches of ``--batch``, each host through the runs' one path (its flock,
  snapshot, ``sshd -t`` validation of the candidate, atomic write,
  verification by re-detection, audit), then the verify stage re-detects on
  every host. One SSH connection per host for all of it.
* **Ansible**: ``ansible-playbook`` with ``serial: BATCH`` and ``--forks F``
  over ``ansible_connection: ssh`` (OpenSSH with ControlPersist and
  pipelining: Ansible's fast path), strict host key checking against the
  same known_hosts, one ``lineinfile`` task per line Jupiter changes (the
  values taken from a Jupiter-fixed copy, so both write the same bytes, which
  is checked) and a verification task: ``sshd -t`` of the resulting config.

Prints one JSON object. Goal (issue 13): ``ansible_over_jupiter`` >= 3.

    .venv/bin/python benchmarks/fleet_ssh.py                 # 50 hosts, forks 20
    .venv/bin/python benchmarks/fleet_ssh.py --targets 10    # quick check
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.fleet import build_fleet, tree_bytes  # noqa: E402
from tests.sshserver import SSHTestServer, openssh_available, start_openssh_server  # noqa: E402

from fleet import ANSIBLE, ONLY, ansible_edits, timed, write_workflow  # noqa: E402
from jupiter.engine import Engine  # noqa: E402
from jupiter.targets._asyncssh import asyncssh  # noqa: E402, F401  (quiet import first)


def start_hosts(work: Path, n: int) -> list[SSHTestServer]:
    servers: list[SSHTestServer] = []
    try:
        for i in range(n):
            servers.append(start_openssh_server(work / "sshd" / f"h{i:03d}"))
        # One login key for the fleet (as an operator has): offering 50 keys
        # would exceed sshd's MaxAuthTries. sshd reads the file per login.
        public = Path(str(servers[0].client_key) + ".pub").read_text()
        for s in servers:
            (s.workdir / "authorized_keys").write_text(public)
            s.client_key = servers[0].client_key
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


def jupiter_rolling(
    engine: Engine, group: str, batch: int, forks: int, env: dict[str, str]
) -> dict[str, Any]:
    """Plan and drive one remediation over ``group`` (as ``jupiter remediate``)."""
    from jupiter.targets.factory import pooled

    os.environ.update(env)
    write_workflow(engine, batch, forks)
    started = time.perf_counter()
    with pooled():
        made = engine.remediations.create(
            group=group, only=ONLY, workflow="bench-rolling", forks=forks
        )
        assert made.remediation is not None, made.to_json()
        planned = time.perf_counter()
        info = engine.remediations.run(made.remediation.id, forks=forks)
    done = time.perf_counter()
    if info.status != "completed":
        raise SystemExit(f"the remediation ended {info.status}: {info.to_json()}")
    statuses: dict[str, int] = {}
    for t in info.targets:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    return {"statuses": statuses, "plan_s": planned - started, "run_s": done - planned}


def write_assets(path: Path, group: str, hosts: list[SSHTestServer], roots: list[Path]) -> Path:
    import yaml

    entries = [
        {
            "id": f"{group}-{i:03d}",
            "group": group,
            "environment": "prod",
            "connection": f"ssh:{s.username}@{s.host}:{s.port}{r}",
        }
        for i, (s, r) in enumerate(zip(hosts, roots, strict=True), 1)
    ]
    path.write_text(yaml.safe_dump({"assets": entries}))
    return path


def write_playbook(
    work: Path,
    hosts: list[SSHTestServer],
    roots: list[Path],
    known: Path,
    tasks: list[dict[str, Any]],
    batch: int,
) -> Path:
    import yaml

    inventory = {
        "all": {
            "hosts": {
                f"h{i:03d}": {
                    "ansible_host": s.host,
                    "ansible_port": s.port,
                    "ansible_user": s.username,
                    "ansible_ssh_private_key_file": str(s.client_key),
                    "root": str(r),
                    "hostkey": str(s.host_key),
                }
                for i, (s, r) in enumerate(zip(hosts, roots, strict=True))
            },
            "vars": {
                "ansible_connection": "ssh",
                "ansible_python_interpreter": str(ANSIBLE.parent / "python"),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} "
                "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
            },
        }
    }
    (work / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    verify = {
        "name": "verify: sshd -t accepts the hardened config",
        "command": {
            "argv": [
                "/usr/sbin/sshd",
                "-t",
                "-f",
                "{{ root }}/etc/ssh/sshd_config",
                "-h",
                "{{ hostkey }}",
            ]
        },
        "changed_when": False,
    }
    play = [{"hosts": "all", "gather_facts": False, "serial": batch, "tasks": [*tasks, verify]}]
    path = work / "playbook.yaml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def ansible_rolling(work: Path, playbook: Path, forks: int) -> float:
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        # Ansible's own speed-ups, fair to it: no module file written per
        # task, and one master connection per host kept for the play.
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
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


def _differences(expected: dict[str, bytes], roots: list[Path]) -> dict[str, list[str]]:
    """Per root that differs from the reference: the differing lines (a few)."""
    import difflib

    out: dict[str, list[str]] = {}
    for root in roots:
        got = tree_bytes(root)
        paths = sorted(p for p in set(got) | set(expected) if got.get(p) != expected.get(p))
        lines: list[str] = []
        for rel in paths:
            a = expected.get(rel, b"").decode(errors="replace").splitlines()
            b = got.get(rel, b"").decode(errors="replace").splitlines()
            changed = [
                f"{rel}: {d[:100]}"
                for d in difflib.unified_diff(a, b, lineterm="", n=0)
                if d[:1] in "+-" and not d.startswith(("+++", "---"))
            ]
            lines.extend(changed or [rel])
        if lines:
            out[root.name] = lines[:6]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--skip-ansible", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: tmp)")
    args = parser.parse_args(argv)
    if not openssh_available():
        raise SystemExit("needs /usr/sbin/sshd and root (run scripts/services.sh)")
    if not args.skip_ansible and not ANSIBLE.exists():
        raise SystemExit(f"{ANSIBLE} is missing; run scripts/tools.sh or pass --skip-ansible")
    work = Path(tempfile.mkdtemp(prefix="jupiter-fleetssh-", dir=args.dir))
    hosts: list[SSHTestServer] = []
    try:
        start_s, hosts = timed(lambda: start_hosts(work, args.targets))
        jup = build_fleet(work / "jupiter", args.targets, group="j", servers=False)
        ans = build_fleet(work / "ansible", args.targets, group="a", servers=False)
        sample = build_fleet(work / "sample", 1, group="sample", servers=False)
        known = work / "known_hosts"
        known.write_text("".join(s.known_hosts.read_text() for s in hosts))
        env = {
            "JUPITER_SSH_KEY": str(hosts[0].client_key),
            "JUPITER_KNOWN_HOSTS": str(known),
        }
        engine = Engine.open(home=work / "home")
        engine.init()
        engine.import_assets(sample.assets_file)
        engine.import_assets(
            write_assets(work / "fleet.yaml", "fleet", hosts, [t.root for t in jup.targets])
        )
        # Warm up (imports, registry, sshd version probe) on a local copy;
        # its fixed files give Ansible the exact lines to write.
        out = engine.fix(sample.targets[0].connection, asset=sample.targets[0].asset, only=ONLY)
        assert out["status"] == "succeeded", out
        tasks = ansible_edits(sample.targets[0].root)
        expected = tree_bytes(sample.targets[0].root)

        jup_s, phases = timed(lambda: jupiter_rolling(engine, "fleet", args.batch, args.forks, env))
        logins = [s.log().count("Accepted publickey") for s in hosts]
        result: dict[str, Any] = {
            "targets": args.targets,
            "batch": args.batch,
            "forks": args.forks,
            "sshd_start_s": round(start_s, 2),
            "jupiter_s": round(jup_s, 2),
            "jupiter_plan_s": round(phases["plan_s"], 2),
            "jupiter_run_s": round(phases["run_s"], 2),
            "jupiter_statuses": phases["statuses"],
            "jupiter_ssh_logins_per_host": sorted(set(logins)),
            "jupiter_all_equal_reference": all(tree_bytes(t.root) == expected for t in jup.targets),
        }
        differ = _differences(expected, [t.root for t in jup.targets])
        if differ:
            result["jupiter_differences"] = differ
        if not args.skip_ansible:
            playbook = write_playbook(
                work, hosts, [t.root for t in ans.targets], known, tasks, args.batch
            )
            ans_s = ansible_rolling(work, playbook, args.forks)
            result["ansible_s"] = round(ans_s, 2)
            result["ansible_over_jupiter"] = round(ans_s / jup_s, 2)
            result["ansible_all_equal_reference"] = all(
                tree_bytes(t.root) == expected for t in ans.targets
            )
        engine.close()
        print(json.dumps(result))
        return 0
    finally:
        for s in hosts:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
