"""Plugin discovery: a real third-party package, installed with pip, is used;
a broken one is reported by name without breaking the others. Every
registered remediator honours the contract."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from jupiter.plugins.base import Remediator
from jupiter.plugins.registry import load_registry
from tests.conftest import run_cli

PLUGIN = '''
import re
from jupiter import (Domain, FindingRecord, Location, NoParams, Plan, Remediator, Severity,
                     WriteFile, sha256_bytes, unified_diff)

# Only the public API: a new domain with its own category, no edit in Jupiter.
DOMAIN = Domain(name="acme-motd", categories=("config.motd",), order=5,
                rule_ids=frozenset({"ACME-MOTD"}), text=re.compile(r"legal banner", re.I))

class MotdBanner(Remediator[NoParams]):
    """Adds the legal banner to etc/motd."""
    name = "acme-motd-banner"
    summary = "ACME: the legal banner in /etc/motd"
    categories = frozenset({"config.motd"})
    rule_ids = frozenset({"ACME-MOTD"})
    BANNER = "Authorised use only.\\n"

    def detect(self, view, params=None):
        try:
            text = view.read_bytes("etc/motd").decode()
        except FileNotFoundError:
            text = ""
        if self.BANNER in text:
            return []
        return [FindingRecord(scanner="acme", rule_id="ACME-MOTD", title="no legal banner",
                              category="config.motd",
                              severity=Severity.LOW, location=Location(path="etc/motd"),
                              identity="banner")]

    def plan(self, finding, view, params):
        if not self.detect(view):
            return Plan(remediator=self.name, rule_id="ACME-MOTD", title="banner present")
        try:
            before = view.read_bytes("etc/motd")
        except FileNotFoundError:
            before = None
        old = before.decode() if before is not None else ""
        new = self.BANNER + old
        sha = sha256_bytes(before) if before is not None else None
        return Plan(remediator=self.name, rule_id="ACME-MOTD", title="add the legal banner",
                    changes=[WriteFile(path="etc/motd", content=new, before_sha256=sha)],
                    diff=unified_diff("etc/motd", old if before is not None else None, new))
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("acme-src")
    (src / "acme_jupiter").mkdir()
    (src / "acme_jupiter" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (src / "acme_jupiter" / "broken.py").write_text("raise ImportError('acme is half-installed')\n")
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "acme-jupiter"
            version = "1.0"
            [project.entry-points."jupiter.remediators"]
            acme-motd-banner = "acme_jupiter:MotdBanner"
            acme-broken = "acme_jupiter.broken:Nothing"
            [project.entry-points."jupiter.domains"]
            acme-motd = "acme_jupiter:DOMAIN"
            """
        )
    )
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return site


def test_third_party_plugin_is_listed_and_used(plugin_site: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(plugin_site)}
    listed = json.loads(
        run_cli("remediators", "list", "--json", home=tmp_path / "ws", env=env).stdout
    )
    names = {p["name"]: p for p in listed["remediators"]}
    assert names["acme-motd-banner"]["source"] == "acme-jupiter"
    assert "sshd-hardening" in names
    (broken,) = listed["failed_to_load"]
    assert broken["name"] == "acme-broken" and "half-installed" in broken["error"]

    target = tmp_path / "t"
    (target / "etc").mkdir(parents=True)
    (target / "etc/motd").write_text("Welcome\n")
    r = run_cli(
        "fix", str(target), "--only", "ACME-MOTD", "--yes", "--json", home=tmp_path / "ws", env=env
    )
    assert r.returncode == 0, r.stderr
    (step,) = json.loads(r.stdout)["steps"]
    assert step["remediator"] == "acme-motd-banner" and step["status"] == "verified"
    assert (target / "etc/motd").read_text() == "Authorised use only.\nWelcome\n"


def test_third_party_domain_classifies_scanner_findings(plugin_site: Path, tmp_path: Path) -> None:
    """A report's rule that only the plugin's domain knows gets the domain's
    category at ingest, and the category is a valid filter."""
    env = {"PYTHONPATH": str(plugin_site)}
    report = tmp_path / "acme.sarif"
    result = {
        "ruleId": "ACME-MOTD",
        "message": {"text": "no legal banner"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "etc/motd"}}}],
    }
    run = {"tool": {"driver": {"name": "acme-scan", "rules": []}}, "results": [result]}
    report.write_text(json.dumps({"version": "2.1.0", "runs": [run]}))
    home = tmp_path / "ws"
    r = run_cli("ingest", str(report), "--asset", "web-1", home=home, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("findings", "list", "--category", "config.motd", "--json", home=home, env=env)
    assert r.returncode == 0, r.stderr
    (finding,) = json.loads(r.stdout)
    assert finding["rule_id"] == "ACME-MOTD" and finding["category"] == "config.motd"
    # without the plugin installed, the category is unknown: one clear sentence
    r = run_cli("findings", "list", "--category", "config.motd", home=home)
    assert r.returncode == 2 and "unknown category 'config.motd'" in r.stderr


def _plugins() -> list[Remediator]:
    return list(load_registry())


@pytest.mark.parametrize("plugin", _plugins(), ids=lambda p: p.name)
def test_every_builtin_remediator_honours_the_contract(plugin: Remediator) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs/remediators.md").read_text()
    assert plugin.summary, f"{plugin.name} has no summary"
    assert f"`{plugin.name}`" in docs, f"{plugin.name} is not documented in docs/remediators.md"
    assert issubclass(plugin.params_model, BaseModel)
    plugin.params_model.model_json_schema()
    assert plugin.categories, f"{plugin.name} declares no categories"


def test_no_builtin_fails_to_load() -> None:
    assert load_registry().errors == {}
