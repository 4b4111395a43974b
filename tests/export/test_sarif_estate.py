"""SARIF export of the example estate (examples/: the bastion host, the web
app with the team's scanner reports, the shop), proved against what
``jupiter fix`` really writes.

One module-scoped estate: ingest and scan as scripts/demo.sh does, export,
then let ``Engine.fix`` (what ``jupiter fix --yes`` runs) fix every asset.
The SARIF fixes, applied by an independent consumer (tests/export/sarif_apply.py)
to pristine copies of the original files, must give byte for byte what the
fix wrote; every finding the fix handled must be accounted for in the SARIF.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.export.sarif import FINGERPRINT_KEY, JUPITER_TOOL
from jupiter.store.tables import RunStepRow
from jupiter.workspace import Workspace
from tests.conftest import ROOT
from tests.export.sarif_apply import apply_log, validate

EXAMPLES = ROOT / "examples"
ESTATE = {"bastion-01": "host", "web-app-01": "webapp", "shop": "shop"}
IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache")


@dataclass
class Estate:
    engine: Engine
    original: Path  # pristine copies, never touched
    live: Path  # what jupiter fix changed
    sarif: Path  # the pristine copies with the SARIF fixes applied
    log: dict[str, Any]
    again: dict[str, Any]  # a second export, before the fix
    fixes: dict[str, dict[str, Any]]
    written: list[tuple[str, str]]


def _setup(base: Path) -> Engine:
    live = base / "live"
    for name in ESTATE.values():
        shutil.copytree(EXAMPLES / name, live / name, ignore=IGNORE, symlinks=True)
        shutil.copytree(EXAMPLES / name, base / "original" / name, ignore=IGNORE, symlinks=True)
    assets = (EXAMPLES / "assets.yaml").read_text().replace("local:examples/", f"local:{live}/")
    (base / "assets.yaml").write_text(assets)
    home = base / "home"
    engine = Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="tester")
    engine.init()
    engine.import_assets(base / "assets.yaml")
    reports = sorted((EXAMPLES / "reports").glob("*.sarif"))
    reports += sorted((EXAMPLES / "reports").glob("*.json"))
    engine.ingest(reports, asset="web-app-01")
    engine.import_advisories(EXAMPLES / "advisories")
    for asset, name in ESTATE.items():
        engine.scan(str(live / name), asset)
    return engine


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    base = tmp_path_factory.mktemp("sarif_estate")
    engine = _setup(base)
    try:
        log = engine.export_sarif()
        again = engine.export_sarif()
        fixes = {a: engine.fix(str(base / "live" / n), asset=a) for a, n in ESTATE.items()}
        shutil.copytree(base / "original", base / "sarif", symlinks=True)
        roots = {a: base / "sarif" / n for a, n in ESTATE.items()}
        written = apply_log(log, roots)
        yield Estate(
            engine, base / "original", base / "live", base / "sarif", log, again, fixes, written
        )
    finally:
        engine.close()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _results(log: dict[str, Any]) -> dict[int, tuple[str, dict[str, Any]]]:
    return {
        r["properties"]["jupiterFindingId"]: (run["tool"]["driver"]["name"], r)
        for run in log["runs"]
        for r in run["results"]
    }


def test_the_export_is_valid_sarif_2_1_0(estate: Estate) -> None:
    validate(estate.log)
    assert estate.log["version"] == "2.1.0"


def test_one_run_per_tool_and_one_for_jupiter(estate: Estate) -> None:
    tools = [run["tool"]["driver"]["name"] for run in estate.log["runs"]]
    # The reports in examples/reports, by the scanners that wrote them.
    assert {"bandit", "checkov", "semgrep", "trivy", "pip-audit"} <= set(tools)
    assert tools[-1] == JUPITER_TOOL and tools.count(JUPITER_TOOL) == 1
    assert len(tools) == len(set(tools))
    drivers = {run["tool"]["driver"]["name"]: run["tool"]["driver"] for run in estate.log["runs"]}
    assert drivers[JUPITER_TOOL]["version"]
    # The version each SARIF report named (Semgrep's only as semanticVersion);
    # Trivy's JSON report names none.
    assert drivers["checkov"]["version"] == "3.3.30"
    assert drivers["bandit"]["version"] == "1.9.4"
    assert drivers["semgrep"]["version"] == "1.182.0"
    assert "version" not in drivers["trivy"]
    for run in estate.log["runs"]:
        rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
        assert len(rule_ids) == len(set(rule_ids))
        for result in run["results"]:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    # Every stored finding is one result, in one run.
    stored = {f["id"] for f in estate.engine.list_findings()}
    ids = [
        r["properties"]["jupiterFindingId"] for run in estate.log["runs"] for r in run["results"]
    ]
    assert sorted(ids) == sorted(stored)


def test_a_finding_lands_in_the_run_of_the_scanner_whose_rule_it_carries(estate: Estate) -> None:
    results = _results(estate.log)
    for f in estate.engine.list_findings():
        tool, result = results[f["id"]]
        scanners = {s["scanner"] for s in f["sources"] if s["rule_id"] == f["rule_id"]}
        if tool == JUPITER_TOOL:
            assert any(s.startswith("jupiter") for s in scanners) or not scanners
        else:
            assert tool in scanners
        assert result["ruleId"] == f["rule_id"]


def test_fingerprints_are_stable_and_distinct(estate: Estate) -> None:
    first = {i: r["partialFingerprints"] for i, (_, r) in _results(estate.log).items()}
    second = {i: r["partialFingerprints"] for i, (_, r) in _results(estate.again).items()}
    assert first == second
    values = [fp[FINGERPRINT_KEY] for fp in first.values()]
    assert len(values) == len(set(values))


def test_the_sarif_fixes_give_byte_for_byte_what_jupiter_fix_wrote(estate: Estate) -> None:
    assert len(estate.written) >= 15, estate.written
    live, sarif = {}, {}
    for asset, name in ESTATE.items():
        live.update({(asset, p): b for p, b in _files(estate.live / name).items()})
        sarif.update({(asset, p): b for p, b in _files(estate.sarif / name).items()})
    for key in estate.written:
        assert sarif[key] == live[key], f"{key}: the SARIF fixes differ from what jupiter fix wrote"


def _run_steps(estate: Estate) -> list[RunStepRow]:
    runs = [f["run"] for f in estate.fixes.values() if f["run"] is not None]
    with estate.engine.db.reading() as s:
        return list(s.scalars(select(RunStepRow).where(RunStepRow.run_id.in_(runs))))


def test_every_file_jupiter_fix_changed_is_carried_or_explained(estate: Estate) -> None:
    results = _results(estate.log)
    steps = _run_steps(estate)
    touched: dict[tuple[str, str], set[int]] = {}
    run_asset = {f["run"]: a for a, f in estate.fixes.items()}
    for st in steps:
        for change in (st.plan or {}).get("changes", []):
            if "path" in change and st.finding_id is not None:
                touched.setdefault((run_asset[st.run_id], change["path"]), set()).add(st.finding_id)
    original = {}
    live = {}
    for asset, name in ESTATE.items():
        original.update({(asset, p): b for p, b in _files(estate.original / name).items()})
        live.update({(asset, p): b for p, b in _files(estate.live / name).items()})
    changed = {k for k in live if original.get(k) != live[k]}
    assert changed, "jupiter fix changed nothing in the example estate"
    uncarried = changed - set(estate.written)
    for key in uncarried:
        # Every finding whose plan wrote it says why SARIF carries no fix for it.
        assert key in touched, f"{key} changed, but no step of the runs wrote it"
        for fid in touched[key]:
            note = results[fid][1]["properties"].get("fixNote", "")
            assert note.startswith("no fix:"), (key, fid, note)
            assert "fixes" not in results[fid][1]


def test_every_finding_jupiter_fix_verified_is_accounted_for(estate: Estate) -> None:
    results = _results(estate.log)
    verified = [
        s["finding"] for f in estate.fixes.values() for s in f["steps"] if s["status"] == "verified"
    ]
    assert len(verified) >= 25
    with_fix = part_of = explained = 0
    for fid in verified:
        _, result = results[fid]
        props = result["properties"]
        if result.get("fixes"):
            with_fix += 1
        elif props.get("fixedByFixOf") is not None:
            owner = results[props["fixedByFixOf"]][1]
            assert owner.get("fixes"), (fid, props)
            part_of += 1
        else:
            assert props.get("fixNote"), (fid, props)
            explained += 1
    assert with_fix >= 15 and part_of >= 1


def test_fixes_carry_exact_replacements_and_a_description(estate: Estate) -> None:
    for run in estate.log["runs"]:
        for result in run["results"]:
            for fix in result.get("fixes", []):
                assert fix["description"]["text"]
                for change in fix["artifactChanges"]:
                    assert change["artifactLocation"]["uriBaseId"] in run["originalUriBaseIds"]
                    for rep in change["replacements"]:
                        region = rep["deletedRegion"]
                        assert region["startLine"] >= 1 and region["endLine"] >= region["startLine"]
                        assert "text" in rep["insertedContent"]


def test_every_open_finding_has_a_fix_or_says_why_not(estate: Estate) -> None:
    open_results = [
        r
        for _, r in _results(estate.log).values()
        if r["properties"]["status"] in ("open", "failed")
    ]
    assert len(open_results) > 100
    for r in open_results:
        assert r.get("fixes") or r["properties"].get("fixNote"), r["properties"]
    notes = [r["properties"].get("fixNote", "") for r in open_results]
    assert any("no remediator handles" in n for n in notes)  # a scanner rule with no fix
