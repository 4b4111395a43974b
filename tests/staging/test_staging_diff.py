"""dry_run_matches: previewed diffs against diffs rebuilt from snapshots."""

from __future__ import annotations

import hashlib

from jupiter.plans import unified_diff
from jupiter.snapshots import ManifestEntry
from jupiter.workflows.staging_diff import compare, compare_declared, split_sections

SQL_BEFORE = "-- keep\n-- drop me\nselect 1;\n"
SQL_AFTER = "-- keep\nselect 1;\n"
CONF_BEFORE = "a\nb\n"
CONF_AFTER = "a\nc\n"


def _blobs(*texts: str) -> dict[str, bytes]:
    return {hashlib.sha256(t.encode()).hexdigest(): t.encode() for t in texts}


def _entry(path: str, text: str | None, mode: int = 0o644) -> ManifestEntry:
    if text is None:
        return ManifestEntry(path=path, existed=False, kind="absent")
    sha = hashlib.sha256(text.encode()).hexdigest()
    return ManifestEntry(path, True, "file", mode, 0, 0, len(text), sha)


def test_a_removed_line_starting_with_dashes_is_not_taken_for_a_header() -> None:
    diff = unified_diff("db.sql", SQL_BEFORE, SQL_AFTER) + unified_diff(
        "app.conf", CONF_BEFORE, CONF_AFTER
    )
    assert "--- drop me" in diff
    sections = split_sections(diff, ["db.sql", "app.conf"])
    assert set(sections) == {"db.sql", "app.conf"}
    assert sections["db.sql"] == unified_diff("db.sql", SQL_BEFORE, SQL_AFTER)


def test_the_applied_change_is_compared_file_by_file() -> None:
    blobs = _blobs(SQL_BEFORE, SQL_AFTER, CONF_BEFORE, CONF_AFTER, "new\n")
    before = [_entry("db.sql", SQL_BEFORE), _entry("app.conf", CONF_BEFORE), _entry("n", None)]
    after = [_entry("db.sql", SQL_AFTER), _entry("app.conf", CONF_AFTER), _entry("n", "new\n")]
    shown = (
        unified_diff("db.sql", SQL_BEFORE, SQL_AFTER)
        + unified_diff("app.conf", CONF_BEFORE, CONF_AFTER)
        + unified_diff("n", None, "new\n")
    )
    ok = compare(shown, before, after, blobs.__getitem__)
    assert ok.ok and sorted(ok.matched) == ["app.conf", "db.sql", "n"]

    # The apply wrote something else into app.conf than the preview showed.
    other = [_entry("db.sql", SQL_AFTER), _entry("app.conf", "a\nX\n"), _entry("n", "new\n")]
    blobs.update(_blobs("a\nX\n"))
    bad = compare(shown, before, other, blobs.__getitem__)
    assert list(bad.mismatched) == ["app.conf"]
    assert "+X" in bad.mismatched["app.conf"]["applied"]


def test_a_mode_change_and_a_generated_key() -> None:
    blobs = _blobs("k1\n", "k2\n", "x\n")
    before = [_entry("secret", "x\n", 0o644), _entry("key.pem", None)]
    after = [_entry("secret", "x\n", 0o600), _entry("key.pem", "k2\n")]
    shown = "--- a/secret mode 0644\n+++ b/secret mode 0600\n"
    result = compare(shown, before, after, blobs.__getitem__, generated=["key.pem"])
    assert result.ok and result.matched == ["secret"] and result.generated == ["key.pem"]
    # An unannounced change is a mismatch too.
    assert not compare("", before, after, blobs.__getitem__, generated=["key.pem"]).ok


def test_a_command_is_held_to_the_paths_it_declared() -> None:
    blobs = _blobs("a\n", "b\n", "keep\n")
    # A whole-tree snapshot: the script may change app.conf only.
    before = [_entry("app.conf", "a\n"), _entry("other", "keep\n")]
    after = [_entry("app.conf", "b\n")]
    ok = compare_declared(["app.conf"], before, after, blobs.__getitem__)
    assert ok.ok and ok.matched == ["app.conf"]
    # It also created a file it did not declare.
    grown_before = [*before, _entry("new", None)]
    grown_after = [*after, _entry("new", "b\n")]
    sneaky = compare_declared(["app.conf"], grown_before, grown_after, blobs.__getitem__)
    assert list(sneaky.mismatched) == ["new"]


def test_a_plan_without_a_diff_is_held_to_the_content_it_writes() -> None:
    blobs = _blobs("a\n", "b\n", "c\n")
    before, after = [_entry("f", "a\n")], [_entry("f", "b\n")]
    planned = {"f": hashlib.sha256(b"b\n").hexdigest()}
    assert compare("", before, after, blobs.__getitem__, written=planned).ok
    other = {"f": hashlib.sha256(b"c\n").hexdigest()}
    assert not compare("", before, after, blobs.__getitem__, written=other).ok
