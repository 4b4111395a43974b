"""From planned changes to SARIF replacements: minimal line regions, exact
bytes (CRLF, no final newline, new files, non-ASCII), chains of plans on one
file, and the fixes SARIF must not carry (mode changes, generated keys,
secrets, files that are not UTF-8)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from jupiter.export.sarif import (
    ExportFinding,
    FixOutcome,
    Replacement,
    StepInput,
    apply_replacements,
    attribute_chain,
    build_log,
    line_replacements,
    region,
    split_lines,
)
from jupiter.plans import GenerateKey, Plan, SetMode, WriteFile
from tests.export.sarif_apply import apply_change, validate


def _reps(lines: list[str], replacements: list[Replacement]) -> list[dict[str, Any]]:
    return [
        {"deletedRegion": region(lines, r.start, r.end), "insertedContent": {"text": r.text}}
        for r in replacements
    ]


def _through_sarif(before: str | None, after: str) -> bytes:
    """``before`` → ``after`` as SARIF replacements, applied by the test consumer."""
    base = before or ""
    reps = line_replacements(base, after)
    original = None if before is None else before.encode()
    return apply_change(original, _reps(split_lines(base), reps))


CASES = [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc\n", "a\nb\nc\nd\n"),  # append after the final newline
    ("a\nb\nc", "a\nb\nc\nd"),  # no final newline on either side
    ("a\nb\nc", "a\nb\nc\n"),  # a final newline added
    ("a\nb\nc\n", "a\nb\nc"),  # and removed
    ("a\r\nb\r\nc\r\n", "a\r\nX\r\nc\r\n"),  # CRLF kept
    ("a\rb\r", "a\rc\rb\r"),  # old Mac line ends
    ("x\n", "new\nx\n"),  # insert before the first line
    ("one\ntwo\n", ""),  # everything deleted
    ("", "created\n"),  # an empty file filled
    ("héllo wörld\n€\n", "héllo wörld\n€ 😀\n"),  # columns count code points
    ("a\n\n\nb\n", "a\n\nb\n"),
]


@pytest.mark.parametrize(("before", "after"), CASES)
def test_replacements_applied_by_a_sarif_consumer_give_the_exact_bytes(
    before: str, after: str
) -> None:
    assert _through_sarif(before, after) == after.encode()
    assert apply_replacements(before, line_replacements(before, after)) == after


def test_a_new_file_is_an_insertion_into_nothing() -> None:
    assert _through_sarif(None, "PermitRootLogin no\n") == b"PermitRootLogin no\n"
    reg = region([], 0, 0)
    assert (reg["startLine"], reg["startColumn"], reg["endLine"], reg["endColumn"]) == (1, 1, 1, 1)


def test_replacements_are_minimal_line_regions() -> None:
    before = "".join(f"line {i}\n" for i in range(100))
    after = before.replace("line 10\n", "line ten\n").replace("line 90\n", "")
    reps = line_replacements(before, after)
    assert reps == [Replacement(10, 11, "line ten\n"), Replacement(90, 91, "")]


def test_random_edits_round_trip() -> None:
    rng = random.Random(2026)
    words = ["alpha", "beta", "", "gamma  ", "δ", "# comment"]
    ends = ["\n", "\r\n", "\n", "\n"]
    for _ in range(300):
        lines = [rng.choice(words) + rng.choice(ends) for _ in range(rng.randint(0, 12))]
        before = "".join(lines)
        if rng.random() < 0.3:
            before = before.rstrip("\r\n")
        edited = split_lines(before)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(edited))
            op = rng.choice(["ins", "del", "rep"])
            if op == "ins" or not edited:
                edited.insert(at, rng.choice(words) + rng.choice(ends))
            elif op == "del":
                edited.pop(min(at, len(edited) - 1))
            else:
                edited[min(at, len(edited) - 1)] = rng.choice(words) + "\n"
        after = "".join(edited)
        assert _through_sarif(before, after) == after.encode(), (before, after)


# -- chains of plans ----------------------------------------------------------------
def _write(path: str, content: str, before: str | None = "x") -> WriteFile:
    return WriteFile(path=path, content=content, before_sha256=before)


def _plan(*changes: Any, title: str = "t", manual: str | None = None) -> Plan:
    return Plan(
        remediator="r", rule_id="R", title=title, changes=list(changes), needs_manual=manual
    )


def _apply_all(originals: dict[str, bytes | None], out: dict[int, FixOutcome]) -> dict[str, str]:
    files = {p: (b or b"").decode() for p, b in originals.items()}
    per_file: dict[str, list[Replacement]] = {}
    for outcome in out.values():
        for path, reps in outcome.changes.items():
            per_file.setdefault(path, []).extend(reps)
    return {p: apply_replacements(files[p], per_file.get(p, [])) for p in files}


CONF = "".join(f"Option{i} old\n" for i in range(20))


def test_plans_on_separate_lines_of_one_file_each_own_their_fix() -> None:
    one = CONF.replace("Option2 old", "Option2 new")
    two = one.replace("Option15 old", "Option15 new") + "Added yes\n"
    steps = [StepInput(1, _plan(_write("c", one))), StepInput(2, _plan(_write("c", two)))]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert out[1].changes == {"c": [Replacement(2, 3, "Option2 new\n")]}
    assert out[2].changes == {
        "c": [Replacement(15, 16, "Option15 new\n"), Replacement(20, 20, "Added yes\n")]
    }
    assert _apply_all({"c": CONF.encode()}, out)["c"] == two


def test_plans_editing_the_same_lines_share_one_fix_on_the_first() -> None:
    one = CONF.replace("Option3 old", "Option3 first")
    two = one.replace("Option3 first", "Option3 second")
    three = two.replace("Option9 old", "Option9 new")
    steps = [
        StepInput(7, _plan(_write("c", one), title="first")),
        StepInput(8, _plan(_write("c", two), title="second")),
        StepInput(9, _plan(_write("c", three))),
    ]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert out[7].changes == {"c": [Replacement(3, 4, "Option3 second\n")]}
    assert (
        out[7].members == [7, 8] and "first (finding 7); second (finding 8)" in out[7].description
    )
    assert out[8].part_of == 7 and not out[8].changes and "finding 7" in (out[8].note or "")
    assert out[9].changes == {"c": [Replacement(9, 10, "Option9 new\n")]}
    assert _apply_all({"c": CONF.encode()}, out)["c"] == three


def test_a_shared_fix_goes_to_the_first_finding_the_export_shows() -> None:
    one = CONF.replace("Option3 old", "Option3 first")
    two = one.replace("Option3 first", "Option3 second")
    steps = [StepInput(7, _plan(_write("c", one))), StepInput(8, _plan(_write("c", two)))]
    out = attribute_chain({"c": CONF.encode()}, steps, exported={8})
    assert out[8].changes == {"c": [Replacement(3, 4, "Option3 second\n")]}
    assert not out[7].changes
    hidden = attribute_chain({"c": CONF.encode()}, steps, exported=set())
    assert not hidden[7].changes and not hidden[8].changes
    assert "leaves out" in (hidden[8].note or "")


def test_adjacent_edits_by_two_plans_are_one_region_and_one_fix() -> None:
    one = CONF.replace("Option4 old\n", "Option4 old\nInserted a\n")
    two = one.replace("Option5 old", "Option5 new")
    steps = [StepInput(1, _plan(_write("c", one))), StepInput(2, _plan(_write("c", two)))]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert out[1].changes == {"c": [Replacement(5, 6, "Inserted a\nOption5 new\n")]}
    assert out[2].part_of == 1
    assert _apply_all({"c": CONF.encode()}, out)["c"] == two


def test_a_line_changed_and_changed_back_is_no_change() -> None:
    one = CONF.replace("Option1 old", "Option1 tmp")
    steps = [StepInput(1, _plan(_write("c", one))), StepInput(2, _plan(_write("c", CONF)))]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert not out[1].changes and not out[2].changes


def test_a_line_restored_by_a_later_plan_is_trimmed_from_the_region() -> None:
    one = CONF.replace("Option3 old\n", "tmp\n")
    two = one.replace("tmp\n", "Option3 old\nAdded\n")
    steps = [StepInput(1, _plan(_write("c", one))), StepInput(2, _plan(_write("c", two)))]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert out[1].changes == {"c": [Replacement(4, 4, "Added\n")]}
    assert _apply_all({"c": CONF.encode()}, out)["c"] == two


def test_manual_empty_and_unplannable_steps_say_why() -> None:
    steps = [
        StepInput(1, _plan(manual="decide which interface password=hunter2 serves")),
        StepInput(2, _plan()),
        StepInput(3, None, "boom"),
    ]
    out = attribute_chain({}, steps)
    assert out[1].note is not None and out[1].note.startswith("no automatic fix:")
    assert "hunter2" not in out[1].note  # redacted
    assert out[2].note is not None and "nothing to change" in out[2].note
    assert out[3].note == "no fix: boom"


def test_a_plan_sarif_cannot_carry_gets_a_note_and_so_does_its_file() -> None:
    key = GenerateKey(path="k.pem", before_sha256=None)
    conf_ssl = CONF.replace("Option0 old", "ssl on")
    conf_log = conf_ssl.replace("Option19 old", "log on")
    steps = [
        StepInput(1, _plan(key, _write("c", conf_ssl))),
        StepInput(2, _plan(_write("c", conf_log))),
        StepInput(3, _plan(_write("other", "fine\n"))),
        StepInput(4, _plan(SetMode(path="other", mode=0o600))),
    ]
    originals: dict[str, bytes | None] = {"c": CONF.encode(), "k.pem": None, "other": b"old\n"}
    out = attribute_chain(originals, steps)
    assert not out[1].changes and "generates a private key at k.pem" in (out[1].note or "")
    # Finding 2's lines are its own, but the file also needs finding 1's edit.
    assert not out[2].changes and "finding 1" in (out[2].note or "")
    # A mode change alone: no fix for it, the content fix of the file stands.
    assert out[3].changes == {"other": [Replacement(0, 1, "fine\n")]}
    assert not out[4].changes and "changes the mode of other" in (out[4].note or "")


def test_a_fix_that_writes_a_secret_is_left_out() -> None:
    secret = CONF.replace("Option7 old", "password = S3cr3t-Value-99")
    steps = [StepInput(1, _plan(_write("c", secret)))]
    out = attribute_chain({"c": CONF.encode()}, steps)
    assert not out[1].changes
    assert out[1].note is not None and "looks like a secret" in out[1].note
    assert "S3cr3t" not in out[1].note


def test_a_fix_of_a_file_whose_name_looks_like_a_secret_is_left_out() -> None:
    name = "conf/token=ghp_" + "b" * 36
    steps = [StepInput(1, _plan(_write(name, "x = 1\n", before=None)))]
    out = attribute_chain({name: None}, steps)
    assert not out[1].changes and "looks like a secret" in (out[1].note or "")


def test_a_file_that_is_not_utf8_gets_no_fix() -> None:
    steps = [StepInput(1, _plan(_write("latin", "caf\u00e9\n")))]
    out = attribute_chain({"latin": "café\n".encode("latin-1")}, steps)
    assert not out[1].changes and "not UTF-8" in (out[1].note or "")


def test_built_log_is_valid_sarif_and_its_fix_reproduces_the_plan() -> None:
    after = CONF.replace("Option2 old", "Option2 new")
    out = attribute_chain(
        {"etc/c.conf": CONF.encode()}, [StepInput(5, _plan(_write("etc/c.conf", after)))]
    )
    finding = {
        "id": 5,
        "fingerprint": "f" * 64,
        "asset": "host-1",
        "rule_id": "R-1",
        "category": "config.ssh",
        "title": "Option2 is old (token=ghp_" + "a" * 36 + ")",
        "severity": "high",
        "cvss_score": 7.5,
        "cvss_vector": None,
        "aliases": [],
        "cwe": ["CWE-16"],
        "fixed_versions": [],
        "location": {
            "path": "etc/c.conf",
            "start_line": 3,
            "end_line": 3,
            "package": None,
            "version": None,
        },
        "evidence": None,
        "status": "open",
        "priority": 9.0,
        "sources": [{"scanner": "jupiter-x", "rule_id": "R-1", "first_seen": "2026-01-01"}],
    }
    log = build_log(
        [ExportFinding(finding, "file:///srv/host-1/")],
        out,
        {("host-1", "etc/c.conf"): split_lines(CONF)},
        "0.1.0",
    )
    validate(log)
    [run] = log["runs"]
    assert run["originalUriBaseIds"] == {"host-1": {"uri": "file:///srv/host-1/"}}
    [result] = run["results"]
    [change] = result["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "etc/c.conf", "uriBaseId": "host-1"}
    assert apply_change(CONF.encode(), change["replacements"]) == after.encode()
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "7.5"
