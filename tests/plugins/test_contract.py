"""The remediator contract, for every registered built-in on its own fixture:
plan reports a change -> the engine applies and verifies it -> planning again
is empty. A new built-in without a fixture here fails
``test_every_builtin_has_a_contract_fixture``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.plugins.domains import load_domains
from jupiter.plugins.registry import load_registry
from tests.conftest import FIXTURES, ROOT


def _copy(src: Path) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        dst = tmp / "target"
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            dst.mkdir()
            shutil.copy2(src, dst / src.name)
        return dst

    return make


def _bare_host(tmp: Path) -> Path:
    """A host with services declared and no firewall."""
    dst = _copy(ROOT / "examples/host")(tmp)
    (dst / "etc/nftables.conf").unlink(missing_ok=True)
    return dst


def _loose_permissions(tmp: Path) -> Path:
    dst = tmp / "target"
    (dst / "etc/ssh").mkdir(parents=True)
    (dst / "etc/group").write_text("root:x:0:\nshadow:x:42:\n")
    (dst / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    shadow = dst / "etc/shadow"
    shadow.write_text("root:*:19000:0:99999:7:::\n")
    shadow.chmod(0o666)
    return dst


def _webapp(engine: Engine) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        engine.import_advisories(FIXTURES / "osv")
        return _copy(FIXTURES / "deps/webapp")(tmp)

    return make


#: name -> what builds its fixture target (given the engine, for workspace data)
CONTRACT: dict[str, Callable[[Engine], Callable[[Path], Path]]] = {
    "sshd-hardening": lambda e: _copy(FIXTURES / "sshd/messy"),
    "nftables-firewall": lambda e: _bare_host,
    "file-permissions": lambda e: _loose_permissions,
    "python-dependencies": _webapp,
    "postgresql-conf": lambda e: _copy(FIXTURES / "postgres"),
    "pg-hba": lambda e: _copy(FIXTURES / "postgres"),
    "sql-injection-python": lambda e: _copy(FIXTURES / "sqli/sqlite_app.py"),
    "kubernetes-pod-security": lambda e: _copy(FIXTURES / "k8s"),
    "dockerfile-hardening": lambda e: _copy(FIXTURES / "docker/debian"),
    "cloudformation-hardening": lambda e: _copy(FIXTURES / "cloudformation/contract"),
    "python-security": lambda e: _copy(FIXTURES / "pyapp"),
    "terraform-iac": lambda e: _copy(FIXTURES / "terraform/gcp"),
}

BUILTINS = sorted(n for n, src in load_registry().sources.items() if src == "jupiter-remediation")


def test_every_builtin_has_a_contract_fixture() -> None:
    assert set(BUILTINS) == set(CONTRACT)


def test_every_builtin_belongs_to_a_registered_domain() -> None:
    domains = load_domains()
    assert domains.errors == {}
    categories = set(domains.categories())
    for plugin in load_registry():
        assert plugin.categories <= categories, plugin.name


@pytest.mark.parametrize("name", BUILTINS)
def test_plan_apply_replan_is_empty(name: str, engine: Engine, tmp_path: Path) -> None:
    plugin = load_registry().get(name)
    target = CONTRACT[name](engine)(tmp_path)
    only = sorted(plugin.rule_ids)

    first = engine.fix(str(target), only=only)
    mine = [s for s in first["steps"] if s["remediator"] == name]
    changed = [s for s in mine if s["status"] == "verified"]
    assert changed, f"{name} fixed nothing on its fixture: {first['steps']}"
    assert first["status"] == "succeeded", first

    again = engine.fix(str(target), only=only, dry_run=True)
    leftovers = [s for s in again["steps"] if s["remediator"] == name and s["changes"]]
    assert leftovers == [], f"{name}: planning again after the fix is not empty"
    fixed = {(s["rule_id"], s["finding"]) for s in changed}
    still = {(s["rule_id"], s["finding"]) for s in again["steps"]}
    assert not fixed & still, f"{name}: a verified finding is still detected"
