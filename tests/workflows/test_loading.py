"""Workflow files: built-ins, workspace overrides, and errors that name the line."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from jupiter.errors import InputError, NotFoundError
from jupiter.limits import MAX_YAML_BYTES
from jupiter.plugins.domains import load_domains
from jupiter.workflows.definitions import (
    Canary,
    ManualStage,
    MitigateStage,
    Rolling,
)
from jupiter.workflows.loading import (
    available_workflows,
    load_workflow_file,
    workflow_for_category,
    workflow_named,
    workflow_sources,
)

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "src" / "jupiter" / "workflows" / "builtin"


def _kinds(name: str) -> list[str]:
    return [s.kind for s in workflow_named(name, None).stages]


@pytest.mark.parametrize("path", sorted(BUILTIN.glob("*.yaml")), ids=lambda p: p.name)
def test_every_builtin_file_validates(path: Path) -> None:
    wf = load_workflow_file(path)
    assert wf.description
    kinds = [s.kind for s in wf.stages]
    assert kinds[0] == "snapshot" and "verify" in kinds


def test_builtins_ship_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["jupiter"]
    shipped = [p.name for p in files("jupiter.workflows.builtin").iterdir()]
    yamls = sorted(n for n in shipped if n.endswith(".yaml"))
    assert len(yamls) >= 9
    for name in yamls:
        assert any(fnmatch.fnmatch(f"workflows/builtin/{name}", pat) for pat in patterns), name


def test_one_builtin_per_category_family() -> None:
    names = set(available_workflows(None))
    assert {
        "config.ssh",
        "config.database",
        "config.firewall",
        "dependency",
        "code.sql_injection",
        "iac",
        "permissions",
        "default",
        "single",
    } <= names
    chosen = {c: workflow_for_category(c, None).name for c in load_domains().categories()}
    assert chosen["config.ssh"] == "config.ssh"
    assert chosen["iac.terraform"] == chosen["iac.kubernetes"] == "iac"
    assert chosen["code.sql_injection"] == "code.sql_injection"
    assert chosen["other"] == "default"
    assert workflow_for_category("no.such.category", None).name == "default"


def test_ssh_asks_for_keys_before_a_canary() -> None:
    wf = workflow_named("config.ssh", None)
    kinds = _kinds("config.ssh")
    assert kinds == [
        "snapshot",
        "test",
        "approval",
        "manual",
        "deploy",
        "verify",
        "health",
        "notify",
    ]
    manual = next(s for s in wf.stages if isinstance(s, ManualStage))
    assert manual.fields == {"keys_deployed": "bool"} and manual.expect == {"keys_deployed": True}
    assert "SSH keys are deployed for every user" in manual.question
    assert isinstance(wf.deploy().strategy, Canary)


def test_database_mitigates_first_and_iac_needs_no_health() -> None:
    db = workflow_named("config.database", None)
    mitigate = next(s for s in db.stages if isinstance(s, MitigateStage))
    assert mitigate.only == ["PG-LOG-CONNECTIONS", "PG-LOG-DISCONNECTIONS"]
    assert db.deploy().concurrency == 1
    assert "health" not in _kinds("iac")
    assert isinstance(workflow_named("iac", None).deploy().strategy, Rolling)
    assert _kinds("single") == ["snapshot", "deploy", "verify"]


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


SSH_OVERRIDE = """\
name: config.ssh
description: our own
categories: [config.ssh]
stages:
  - kind: snapshot
  - kind: deploy
    strategy: {type: rolling, batch: 50%}
  - kind: verify
"""


def test_workspace_files_replace_builtins_and_win_ties(tmp_path: Path) -> None:
    flows = tmp_path / "workflows"
    _write(flows, "ssh.yaml", SSH_OVERRIDE)
    _write(
        flows,
        "tf.yml",
        "name: terraform\ncategories: ['iac.terraform']\nstages:\n  - kind: deploy\n",
    )
    _write(flows, "notes.txt", "not a workflow")
    sources = workflow_sources(tmp_path)
    wf, source = sources["config.ssh"]
    assert wf.description == "our own" and source.origin == "workspace"
    assert sources["iac"][1].origin == "builtin"
    assert workflow_for_category("config.ssh", tmp_path).description == "our own"
    # An exact category beats the built-in's iac.* pattern.
    assert workflow_for_category("iac.terraform", tmp_path).name == "terraform"
    assert workflow_for_category("iac.docker", tmp_path).name == "iac"
    # The built-ins themselves are untouched for another workspace.
    assert workflow_named("config.ssh", None).description != "our own"


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    flows = tmp_path / "workflows"
    _write(flows, "a.yaml", SSH_OVERRIDE)
    _write(flows, "b.yaml", SSH_OVERRIDE)
    with pytest.raises(InputError, match=r"a\.yaml and .*b\.yaml both define workflow 'config"):
        available_workflows(tmp_path)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"no workflow named 'nope'; the workflows are .*ssh"):
        workflow_named("nope", None)


BAD = {
    "bad count": (
        "name: t\nstages:\n  - kind: snapshot\n  - kind: deploy\n    strategy:\n"
        "      type: rolling\n      batch: lots\n",
        r":7: stage 'deploy', field 'strategy.batch': 'lots' is not a count or a percentage",
    ),
    "unknown kind": (
        "name: t\nstages:\n  - kind: snapshot\n  - kind: deplo\n",
        r":4: stage 'deplo': unknown stage kind 'deplo'; the kinds are snapshot, test, approval, "
        r"manual, deploy, mitigate, verify, health, notify",
    ),
    "no kind": (
        "name: t\nstages:\n  - kind: deploy\n  - name: x\n",
        r":4: stage 'x': it has no 'kind'; give one of snapshot, test",
    ),
    "batch beside strategy": (
        "name: t\nstages:\n  - kind: deploy\n    batch: 3\n",
        r":4: stage 'deploy', field 'batch': not a field of the stage itself; it belongs under",
    ),
    "named stage": (
        "name: t\nstages:\n  - name: go\n    kind: deploy\n    concurrency: 0\n",
        r":5: stage 'go', field 'concurrency': Input should be greater than or equal to 1",
    ),
    "unknown strategy": (
        "name: t\nstages:\n  - kind: deploy\n    strategy: {type: purple}\n",
        r":4: stage 'deploy', field 'strategy': unknown type 'purple'; the choices are rolling",
    ),
    "missing field": (
        "name: t\nstages:\n  - kind: deploy\n  - kind: manual\n    fields: {a: bool}\n",
        r":4: stage 'manual', field 'question': required but missing",
    ),
    "wrong manual type": (
        "name: t\nstages:\n  - kind: deploy\n  - kind: manual\n    question: q\n"
        "    fields:\n      a: float\n",
        r":7: stage 'manual', field 'fields.a': Input should be 'bool', 'int' or 'str'",
    ),
    "probe url": (
        "name: t\nhealth:\n  probes:\n    - kind: http\n      url: ftp://x\nstages:\n"
        "  - kind: deploy\n",
        r":5: field 'health.probes.0.url': probe url 'ftp://x' is not http\(s\)://",
    ),
    "probe kind": (
        "name: t\nhealth:\n  probes:\n    - kind: ping\nstages:\n  - kind: deploy\n",
        r":4: field 'health.probes.0': unknown kind 'ping'; the choices are http, command, metric",
    ),
    "two deploys": (
        "name: t\nstages:\n  - kind: deploy\n  - kind: deploy\n    name: again\n",
        r":2: a workflow has exactly one 'deploy' stage",
    ),
    "approval after deploy": (
        "name: t\nstages:\n  - kind: deploy\n  - kind: approval\n",
        r":4: stage 'approval' must come before the first mitigate or deploy stage",
    ),
    "verify before deploy": (
        "name: t\nstages:\n  - kind: verify\n  - kind: deploy\n",
        r":3: stage 'verify' must come after a mitigate or deploy stage",
    ),
    "mitigate after deploy": (
        "name: t\nstages:\n  - kind: deploy\n  - kind: mitigate\n",
        r":4: stage 'mitigate' must come before the deploy stage",
    ),
    "top-level typo": (
        "name: t\nstagse: []\nstages:\n  - kind: deploy\n",
        r":2: field 'stagse': not a field here; check its spelling",
    ),
    "bad name": (
        "name: Bad Name\nstages:\n  - kind: deploy\n",
        r":1: field 'name': String should match pattern",
    ),
    "bad window": (
        "name: t\nwindow: always\nstages:\n  - kind: deploy\n    window: Saturday nights\n",
        r":5: stage 'deploy', field 'window': window 'Saturday nights' is not a maintenance "
        r"window; write DAYS HH:MM-HH:MM ZONE",
    ),
    "not yaml": ("name: t\nstages: [kind: deploy\n", r":3: not valid YAML"),
    "a list": ("- kind: deploy\n", r":1: a workflow is a mapping with name and stages"),
    "empty": ("", r":1: a workflow is a mapping .* this file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_name_file_line_stage_and_field(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    path = _write(tmp_path, "wf.yaml", text)
    with pytest.raises(InputError) as caught:
        load_workflow_file(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ":"), message
    assert re.search(expected, message), message
    assert "\n" not in message


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot be read \(No such file"):
        load_workflow_file(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        load_workflow_file(latin)
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:  # sparse: the size is checked before reading
        out.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(InputError, match="over Jupiter's limit"):
        load_workflow_file(big)
