"""``jupiter workflows list|show|validate`` through the real command."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

OWN = """\
name: config.ssh
description: ours
categories: [config.ssh]
window: Sat 02:00-04:00 Europe/Berlin
stages:
  - kind: snapshot
  - kind: deploy
    strategy: {type: rolling, batch: 50%}
  - kind: verify
"""


def test_list_show_and_a_workspace_override(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    listed = run_cli("workflows", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["config.ssh"]["source"] == "builtin"
    assert [s["kind"] for s in rows["single"]["stages"]] == ["snapshot", "deploy", "verify"]
    assert not home.exists()  # listing opens no workspace

    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "ssh.yaml").write_text(OWN)
    rows = {
        r["name"]: r for r in json.loads(run_cli("workflows", "list", "--json", home=home).stdout)
    }
    assert rows["config.ssh"]["source"] == "workspace"
    assert rows["config.ssh"]["path"].endswith("ssh.yaml")
    human = run_cli("workflows", "list", home=home)
    assert (
        "config.ssh  (" in human.stdout and "window Sat 02:00-04:00 Europe/Berlin" in human.stdout
    )

    shown = run_cli("workflows", "show", "config.ssh", "--json", home=home)
    assert json.loads(shown.stdout)["stages"][1]["strategy"]["batch"] == "50%"
    text = run_cli("workflows", "show", "config.firewall", home=home).stdout
    assert "4. services-declared (manual):" in text and "5. deploy: canary percent=10.0" in text

    missing = run_cli("workflows", "show", "nope", home=home)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: there is no workflow named 'nope'; the workflows are")


def test_validate_names_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(OWN)
    ok = run_cli("workflows", "validate", str(good), "--json", home=tmp_path)
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["valid"] is True and out["replaces_builtin"] is True and out["name"] == "config.ssh"
    assert (
        "is valid: snapshot → deploy → verify"
        in run_cli("workflows", "validate", str(good), home=tmp_path).stdout
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text(OWN.replace("batch: 50%", "batch: half"))
    refused = run_cli("workflows", "validate", str(bad), "--json", home=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        f"error: {bad}:8: stage 'deploy', field 'strategy.batch': 'half' is not a count "
        "or a percentage such as 25%\n"
    )
    kind = tmp_path / "kind.yaml"
    kind.write_text(OWN.replace("kind: verify", "kind: verfiy"))
    refused = run_cli("workflows", "validate", str(kind), home=tmp_path)
    assert refused.returncode == 2
    assert f"{kind}:9: stage 'verfiy': unknown stage kind 'verfiy'; the kinds are" in refused.stderr
