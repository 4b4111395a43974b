"""Apply exactly what was confirmed: a confirmation is bound to the plans
shown; a change before the answer shows the new plan and asks again, and a
change after it never makes a step apply an edit nobody reviewed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from jupiter.engine import Engine
from tests.conftest import ROOT

SSHD = "etc/ssh/sshd_config"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    dst = tmp_path / "host"
    shutil.copytree(ROOT / "examples/host", dst, symlinks=True)
    return dst


def _hashes(preview: list[dict[str, Any]]) -> dict[int, str]:
    return {s["finding"]: s["plan_hash"] for s in preview if s["changes"]}


def test_an_edit_before_the_answer_shows_the_new_plan(engine: Engine, host: Path) -> None:
    seen: list[list[dict[str, Any]]] = []

    def confirm(preview: list[dict[str, Any]]) -> bool:
        seen.append(preview)
        if len(seen) == 1:  # the admin edits the file while the user reads the plan
            with (host / SSHD).open("a") as fh:
                fh.write("# admin was here\n")
        return True

    result = engine.fix(str(host), only=["config.ssh"], confirm=confirm)
    assert len(seen) == 2, "the changed target must be shown and asked again"
    assert not any(s.get("replanned") for s in seen[0])
    assert all(s.get("replanned") for s in seen[1])
    shown_first, shown_again = _hashes(seen[0]), _hashes(seen[1])
    assert shown_first.keys() == shown_again.keys()
    root_login = next(s["finding"] for s in seen[0] if s["rule_id"] == "SSHD-ROOT-LOGIN")
    # Its plan edits the file the admin changed: new precondition, new hash.
    assert shown_first[root_login] != shown_again[root_login]
    ran = {s["finding"]: s["plan_hash"] for s in engine.show_run(result["run"])["steps"]}
    assert {f: ran[f] for f in shown_again} == shown_again, "applied what was shown last"
    text = (host / SSHD).read_text()
    assert "# admin was here\n" in text and "PermitRootLogin no" in text


def test_declining_the_new_plan_changes_nothing(engine: Engine, host: Path) -> None:
    answers = iter([True, False])

    def confirm(preview: list[dict[str, Any]]) -> bool:
        if not any(s.get("replanned") for s in preview):
            with (host / SSHD).open("a") as fh:
                fh.write("# admin was here\n")
        return next(answers)

    before = (host / SSHD).read_bytes()
    result = engine.fix(str(host), only=["config.ssh"], confirm=confirm)
    assert result["status"] == "declined" and result["run"] is None
    assert (host / SSHD).read_bytes() == before + b"# admin was here\n"


def test_an_unchanged_target_is_asked_once(engine: Engine, host: Path) -> None:
    calls: list[int] = []

    def confirm(preview: list[dict[str, Any]]) -> bool:
        calls.append(len(preview))
        return True

    assert engine.fix(str(host), only=["config.ssh"], confirm=confirm)["status"] == "succeeded"
    assert len(calls) == 1


def test_a_change_after_the_answer_that_alters_a_fix_stops_that_step(
    engine: Engine, host: Path
) -> None:
    """With --yes (or after the answer), a step whose edit would now differ
    from the planned one is not applied: it stops as a conflict."""
    touched: list[str] = []

    def on_step(step: Any) -> None:
        if not touched:
            text = (host / SSHD).read_text()
            (host / SSHD).write_text(text.replace("X11Forwarding yes", "X11Forwarding yes # ops"))
            touched.append(step.rule_id)

    result = engine.fix(str(host), only=["config.ssh"], on_step=on_step)
    statuses = {s["rule_id"]: s for s in result["steps"]}
    assert touched and touched[0] != "SSHD-X11-FORWARDING"  # the edit came before its step
    x11 = statuses["SSHD-X11-FORWARDING"]
    assert x11["status"] == "conflict", x11
    assert "would now differ from the reviewed one" in x11["detail"]
    assert "X11Forwarding yes # ops" in (host / SSHD).read_text()
    # Steps whose edit is unaffected re-plan on top of the change and land.
    assert statuses["SSHD-MAX-AUTH-TRIES"]["status"] == "verified"
