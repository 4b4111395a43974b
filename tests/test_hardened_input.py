"""Hostile or broken input ends in one short sentence and exit 2 (exit 1 for
`audit verify`), never in an internal error or a megabyte-long message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.limits import MAX_NESTING, nesting_depth, quote, shorten_message
from jupiter.yamlfile import read_yaml
from tests.conftest import FIXTURES, run_cli

SHORT = 600  # characters: one sentence, whatever the input


def _fails_short(done: object, *words: str, code: int = 2) -> str:
    err = done.stderr  # type: ignore[attr-defined]
    assert done.returncode == code, err  # type: ignore[attr-defined]
    assert "internal error" not in err and "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert len(err) < SHORT, f"{len(err)} characters: {err[:300]}"
    for word in words:
        assert word in err, err
    return str(err)


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------- YAML


@pytest.mark.parametrize(
    "text",
    [
        f"assets:\n- id: a\n  tags: {_nested_list(500)}\n",  # flow style
        "".join("  " * i + "k:\n" for i in range(500)) + "  " * 500 + "v\n",  # block style
    ],
    ids=["flow", "block"],
)
def test_deeply_nested_assets_yaml_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text(text)
    done = run_cli("assets", "import", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), f"deeper than {MAX_NESTING} levels")


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("assets: *a8")
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines) + "\n")
    done = run_cli("assets", "import", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), "aliases", "1000000 values")


def test_oversized_yaml_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jupiter.yamlfile.MAX_YAML_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text("assets:\n" + "- id: a\n" * 200)
    with pytest.raises(InputError, match=r"over Jupiter's limit of 1000 bytes"):
        read_yaml(path, "", "import again")


def test_yaml_syntax_error_quotes_little(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("assets:\n- id: a\n  name: [" + "x" * 1_000_000 + "\n")
    done = run_cli("assets", "import", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), "not valid YAML")


def test_deep_script_manifest_is_refused(tmp_path: Path) -> None:
    from jupiter.custom.manifest import load_manifest

    path = tmp_path / "manifest.yaml"
    path.write_text(f"name: x\nparams: {_nested_list(500)}\n")
    with pytest.raises(InputError, match=f"deeper than {MAX_NESTING} levels") as info:
        load_manifest(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- JSON


def _seed(path: Path, extra: str) -> Path:
    path.write_text(
        '[{"vulnerability_id": "V-1", "type": "sql_injection", "severity": "high", '
        f'"affected_asset": "web", "notes": {extra}}}]'
    )
    return path


def test_deeply_nested_value_in_a_seed_report(tmp_path: Path) -> None:
    path = _seed(tmp_path / "deep.json", _nested_list(500))
    done = run_cli("ingest", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), f"deeper than {MAX_NESTING} levels")
    listed = run_cli("findings", "list", "--json", home=tmp_path / "ws")
    assert json.loads(listed.stdout) == []  # nothing partially written


def test_deeply_nested_value_in_a_sarif_report(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "scanners" / "bandit.sarif").read_text())
    result = doc["runs"][0]["results"][0]
    result.setdefault("properties", {})["issue_confidence"] = "@"
    path = tmp_path / "deep.sarif"
    path.write_text(json.dumps(doc).replace('"@"', _nested_list(500)))
    done = run_cli("ingest", "--asset", "web", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), f"deeper than {MAX_NESTING} levels")


def test_json_deeper_than_the_parser_allows(tmp_path: Path) -> None:
    path = _seed(tmp_path / "deeper.json", _nested_list(5000))
    done = run_cli("ingest", "--format", "seed", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), "1024 levels")


def test_megabyte_string_gives_a_short_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text(
        json.dumps(
            [
                {
                    "vulnerability_id": "V-1",
                    "type": "sql_injection",
                    "severity": "x" * 1_000_000,
                    "affected_asset": "web",
                }
            ]
        )
    )
    err = _fails_short(run_cli("ingest", str(path), home=tmp_path / "ws"), "severity", "…")
    assert "x" * 201 not in err


def test_deep_osv_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "osv.json"
    path.write_text('{"id": "OSV-1", "affected": ' + _nested_list(500) + "}")
    done = run_cli("advisories", "import", str(path), home=tmp_path / "ws")
    _fails_short(done, str(path), f"deeper than {MAX_NESTING} levels")


def test_quote_and_shorten_bound_what_a_message_repeats() -> None:
    assert quote("abc") == "'abc'"
    long = quote("y" * 5000)
    assert long.startswith("'" + "y" * 200 + "'…") and "(5000 characters)" in long
    assert len(quote(list(range(10_000)))) < 260
    message = "head " + "z" * 10_000 + " do this"
    short = shorten_message(message)
    assert len(short) < 1100 and short.startswith("head ") and short.endswith(" do this")
    assert nesting_depth({"a": [[1]]}) == 3 and nesting_depth("s") == 0


# ------------------------------------------------------- damaged database


def _workspace(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    report = FIXTURES / "scanners" / "bandit.sarif"
    assert run_cli("ingest", "--asset", "web", str(report), home=home).returncode == 0
    return home


def _damage(db: Path, how: str) -> None:
    data = db.read_bytes()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    if how == "truncated":
        db.write_bytes(data[: len(data) // 2])
    elif how == "zeroed":
        db.write_bytes(b"\0" * len(data))
    else:  # every page after the first overwritten: header intact, tables not
        db.write_bytes(data[:4096] + b"\xa5" * (len(data) - 4096))


@pytest.mark.parametrize("how", ["truncated", "zeroed", "pages-overwritten"])
def test_damaged_database_is_one_sentence(tmp_path: Path, how: str) -> None:
    home = _workspace(tmp_path)
    db = home / "jupiter.db"
    _damage(db, how)
    before = db.read_bytes()
    for args in (
        ["findings", "list"],
        ["ingest", "--asset", "web", str(FIXTURES / "scanners" / "bandit.sarif")],
    ):
        err = _fails_short(
            run_cli(*args, home=home),
            f"the workspace database at {db} is damaged: ",
            "; restore it from a backup",
        )
        assert "internal error" not in err
    assert db.read_bytes() == before  # nothing written into the damaged file
    verify = run_cli("audit", "verify", home=home)
    assert verify.returncode == 1, verify.stderr
    assert "the audit chain cannot be read" in verify.stderr
    assert "is damaged" in verify.stderr
    as_json = run_cli("audit", "verify", "--json", home=home)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["ok"] is False


def test_a_copy_of_a_healthy_database_still_opens(tmp_path: Path) -> None:
    """The header check accepts a real database copied without its WAL."""
    home = _workspace(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(home / "jupiter.db", copy / "jupiter.db")
    done = run_cli("findings", "list", "--json", home=copy)
    assert done.returncode == 0, done.stderr


@pytest.mark.soak
def test_huge_and_deep_inputs_soak(tmp_path: Path) -> None:
    path = _seed(tmp_path / "deep.json", _nested_list(1000))
    _fails_short(run_cli("ingest", str(path), home=tmp_path / "ws"), "levels")
    yaml_path = tmp_path / "assets.yaml"
    yaml_path.write_text(f"assets:\n- id: a\n  tags: {_nested_list(100_000)}\n")
    _fails_short(run_cli("assets", "import", str(yaml_path), home=tmp_path / "ws"), "levels")
    huge = tmp_path / "huge.json"
    huge.write_text(
        json.dumps([{"vulnerability_id": "V", "type": "x", "severity": "y" * 50_000_000}])
    )
    _fails_short(run_cli("ingest", "--format", "seed", str(huge), home=tmp_path / "ws"), "…")
