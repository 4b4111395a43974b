"""The offline OSV advisory database: import (dir, record, zip), validation, range semantics."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from jupiter.advisories import AdvisoryDB, default_advisories_dir
from jupiter.errors import InputError
from jupiter.models import Severity

OSV = Path(__file__).parent / "fixtures" / "osv"


def record(
    record_id: str,
    *ranges: list[dict[str, str]],
    package: str = "demo",
    versions: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    affected: dict[str, Any] = {
        "package": {"ecosystem": "PyPI", "name": package},
        "ranges": [{"type": "ECOSYSTEM", "events": events} for events in ranges],
    }
    if versions is not None:
        affected["versions"] = versions
    return {
        "schema_version": "1.6.0",
        "id": record_id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [affected],
        **fields,
    }


def write(directory: Path, *records: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (directory / f"{rec['id']}.json").write_text(json.dumps(rec), encoding="utf-8")
    return directory


def ids(db: AdvisoryDB, package: str, version: str) -> list[str]:
    return sorted(a.id for a in db.query("PyPI", package, version))


def test_import_directory_of_fixture_records(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    report = db.import_path(OSV)
    assert report.records == 20
    assert report.withdrawn == 1
    assert report.ecosystems == {"PyPI": 20}
    assert not db.is_empty()
    # PEP 503: the record says "PyYAML", queries may say anything equivalent
    assert ids(db, "pyyaml", "5.3.1") == ["GHSA-8q59-q68h-6hv4"]
    assert ids(db, "PyYaml", "5.4") == []
    django = db.query("PyPI", "Django", "3.2.0")
    assert sorted(a.canonical_id for a in django) == [
        "CVE-2021-28658",
        "CVE-2021-33203",
        "CVE-2021-35042",
    ]


def test_import_single_record_and_reimport_replaces_it(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(OSV / "GHSA-m2qf-hxjv-5gpq.json")
    assert ids(db, "flask", "2.2.2") == ["GHSA-m2qf-hxjv-5gpq"]
    assert ids(db, "jinja2", "3.1.2") == []
    # a later import adds records and keeps earlier ones
    db.import_path(OSV / "GHSA-h5c8-rqwp-cp95.json")
    assert ids(db, "flask", "2.2.2") == ["GHSA-m2qf-hxjv-5gpq"]
    assert ids(db, "jinja2", "3.1.2") == ["GHSA-h5c8-rqwp-cp95"]
    # the same id again, now withdrawn: it disappears from queries
    data = json.loads((OSV / "GHSA-m2qf-hxjv-5gpq.json").read_text())
    data["withdrawn"] = "2024-02-01T00:00:00Z"
    write(tmp_path / "again", data)
    db.import_path(tmp_path / "again")
    assert ids(db, "flask", "2.2.2") == []
    # a second instance (another process) sees the same state
    assert ids(AdvisoryDB(tmp_path / "adv"), "jinja2", "3.1.2") == ["GHSA-h5c8-rqwp-cp95"]


def test_import_osv_zip(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(OSV.glob("*.json")):
            zf.write(file, arcname=file.name)
    db = AdvisoryDB(tmp_path / "adv")
    report = db.import_path(archive)
    assert report.records == 20
    assert ids(db, "urllib3", "1.26.5") == [
        "GHSA-34jh-p97f-mpxf",
        "GHSA-g4mx-q9vg-27p4",
        "GHSA-v845-jxx5-vc9f",
    ]


def test_withdrawn_record_is_never_returned(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(OSV)
    assert "GHSA-0000-withdrawn-req" not in ids(db, "requests", "2.98.0")
    assert ids(db, "requests", "2.98.0") == []


def test_bad_range_in_zip_names_member_and_field_and_imports_nothing(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(OSV / "GHSA-m2qf-hxjv-5gpq.json")
    before = sorted(p.name for p in (tmp_path / "adv").iterdir())
    good = record("PYSEC-2024-1", [{"introduced": "0"}, {"fixed": "1.0"}])
    bad = record(
        "PYSEC-2024-2",
        [{"introduced": "0"}, {"fixed": "1.0"}],
        [{"introduced": "2.0"}, {"fixed": "1.5"}],
    )
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PYSEC-2024-1.json", json.dumps(good))
        zf.writestr("PYSEC-2024-2.json", json.dumps(bad))
    with pytest.raises(InputError) as info:
        db.import_path(archive)
    message = str(info.value)
    assert "member PYSEC-2024-2.json" in message
    assert "affected[0].ranges[1].events[1].fixed" in message
    assert "nothing was imported" in message
    # all or nothing: the good record of the same import is not there either
    assert ids(db, "demo", "0.5") == []
    assert ids(db, "flask", "2.2.2") == ["GHSA-m2qf-hxjv-5gpq"]
    assert sorted(p.name for p in (tmp_path / "adv").iterdir()) == before


@pytest.mark.parametrize(
    ("events", "field", "words"),
    [
        (
            [{"introduced": "0"}, {"fixed": "not a version!"}],
            "events[1].fixed",
            "not a valid PEP 440",
        ),
        ([{"fixed": "1.0"}], "ranges[0].events", "no introduced"),
        ([{"introduced": "1.0"}, {"fixed": "1.0"}], "events[1].fixed", "same version"),
        (
            [{"introduced": "0"}, {"fixed": "1.0"}, {"last_affected": "2.0"}],
            "ranges[0].events",
            "mixes fixed and last_affected",
        ),
        ([{"introduced": "0", "fixed": "1.0"}], "events[0]", "exactly one"),
        ([], "ranges[0].events", "missing or empty"),
    ],
)
def test_invalid_ranges_are_rejected(
    tmp_path: Path, events: list[dict[str, str]], field: str, words: str
) -> None:
    source = write(tmp_path / "src", record("PYSEC-2024-9", events))
    db = AdvisoryDB(tmp_path / "adv")
    with pytest.raises(InputError) as info:
        db.import_path(source)
    assert field in str(info.value)
    assert words in str(info.value)
    assert "PYSEC-2024-9.json" in str(info.value)
    assert db.is_empty()


def test_missing_id_or_affected_and_bad_json_are_input_errors(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    no_id = record("", [{"introduced": "0"}])
    with pytest.raises(InputError, match="field id"):
        db.import_path(write(tmp_path / "a", no_id))
    no_affected = {"id": "PYSEC-1", "modified": "2024-01-01T00:00:00Z"}
    with pytest.raises(InputError, match="field affected"):
        db.import_path(write(tmp_path / "b", no_affected))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        db.import_path(broken)
    with pytest.raises(InputError, match="does not exist"):
        db.import_path(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no OSV records"):
        db.import_path(empty)
    assert db.is_empty()


def test_range_semantics(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(
        write(
            tmp_path / "src",
            # two introduced/fixed pairs in one range, events deliberately unsorted
            record(
                "OSV-MULTI",
                [
                    {"fixed": "1.4.2"},
                    {"introduced": "2.0"},
                    {"introduced": "0"},
                    {"fixed": "2.1.1"},
                ],
            ),
            # two ranges, the second with last_affected (inclusive)
            record(
                "OSV-LAST",
                [{"introduced": "3.0"}, {"fixed": "3.0.5"}],
                [{"introduced": "4.0"}, {"last_affected": "4.2"}],
            ),
            # only an explicit versions list, including a legacy non-PEP 440 string
            record("OSV-VERSIONS", versions=["0.9", "1.0.0", "0.1dev-r1234"]),
            # introduced only: every later version affected
            record("OSV-OPEN", [{"introduced": "5.0rc1"}]),
        )
    )
    cases = {
        "0.1": ["OSV-MULTI"],
        "1.4.1": ["OSV-MULTI"],
        "1.4.2": [],
        "1.9": [],
        "2.0": ["OSV-MULTI"],
        "2.1.0": ["OSV-MULTI"],
        "2.1.1": [],
        "2.1.1.post1": [],
        "3.0": ["OSV-LAST"],
        "3.0.4": ["OSV-LAST"],
        "3.0.5": [],
        "3.9": [],
        "4.0": ["OSV-LAST"],
        "4.2": ["OSV-LAST"],
        "4.2.0": ["OSV-LAST"],
        "4.2.1": [],
        "1.0": ["OSV-MULTI", "OSV-VERSIONS"],
        "0.9": ["OSV-MULTI", "OSV-VERSIONS"],
        "0.1dev-r1234": ["OSV-VERSIONS"],
        "4.99": [],
        "5.0b1": [],
        "5.0rc1": ["OSV-OPEN"],
        "5.0": ["OSV-OPEN"],
        "17.3": ["OSV-OPEN"],
    }
    got = {version: ids(db, "demo", version) for version in cases}
    assert got == cases
    multi = db.query("PyPI", "demo", "0.1")[0]
    assert multi.fixed_versions == ("1.4.2", "2.1.1")
    assert db.query("npm", "demo", "0.1") == []


def test_severity_from_github_label_or_cvss(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(OSV)
    by_id = {a.id: a for a in db.query("PyPI", "django", "3.2.0")}
    # database_specific.severity MODERATE wins over the CVSS vector
    assert by_id["GHSA-xgxc-v2qg-chmh"].severity is Severity.MEDIUM
    assert by_id["GHSA-xgxc-v2qg-chmh"].cvss_score == 5.3
    # no GitHub label: computed from the CVSS 3.1 vector
    sql = by_id["PYSEC-2021-111"]
    assert sql.severity is Severity.CRITICAL
    assert sql.cvss_score == 9.8
    assert sql.canonical_id == "CVE-2021-35042"
    assert "GHSA-xpfp-f569-q3p2" in sql.aliases
    jinja = {a.id: a for a in db.query("PyPI", "jinja2", "3.1.2")}
    assert jinja["GHSA-q2x7-8rv6-6q7h"].cvss_vector is not None
    assert jinja["GHSA-q2x7-8rv6-6q7h"].cvss_vector.startswith("CVSS:4.0/")
    assert jinja["GHSA-q2x7-8rv6-6q7h"].cwe_ids == ("CWE-693",)


def test_unreadable_cvss_vector_does_not_block_import(tmp_path: Path) -> None:
    rec = record(
        "PYSEC-2024-7",
        [{"introduced": "0"}, {"fixed": "2.0"}],
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}],
    )
    db = AdvisoryDB(tmp_path / "adv")
    db.import_path(write(tmp_path / "src", rec))
    (advisory,) = db.query("PyPI", "demo", "1.0")
    assert advisory.severity is None
    assert advisory.cvss_vector is None


def test_empty_database_status_and_default_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = AdvisoryDB(tmp_path / "missing")
    assert db.is_empty()
    assert db.query("PyPI", "django", "3.2.0") == []
    assert "no advisories" in db.status()
    assert "import OSV records" in db.status()
    monkeypatch.setenv("JUPITER_HOME", str(tmp_path / "home"))
    assert default_advisories_dir() == tmp_path / "home" / "advisories"
    monkeypatch.delenv("JUPITER_HOME")
    assert default_advisories_dir() == Path(".jupiter") / "advisories"


def test_old_generations_are_pruned(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "adv")
    for name in (
        "GHSA-m2qf-hxjv-5gpq.json",
        "GHSA-h5c8-rqwp-cp95.json",
        "GHSA-xg9f-g7g7-2323.json",
    ):
        db.import_path(OSV / name)
    gens = sorted(p.name for p in (tmp_path / "adv").iterdir() if p.name.startswith("gen-"))
    assert gens == ["gen-000002", "gen-000003"]
    assert db.current_generation() == "gen-000003"
    assert not [p for p in (tmp_path / "adv").iterdir() if p.name.startswith(".import-")]
    shutil.rmtree(tmp_path / "adv" / "gen-000002")
    assert ids(db, "flask", "2.2.2") == ["GHSA-m2qf-hxjv-5gpq"]
