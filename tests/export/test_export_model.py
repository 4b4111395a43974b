"""How plans are reduced to tracked files and steps, and what the export refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.export import FORMATS, PlanForExport, build_script_model, export_script
from jupiter.plans import Plan, RemoveFile, SetMode, WriteFile, sha256_bytes
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget
from tests.export.helpers import EXAMPLE_HOST, item, sshd_and_permission_plans

A, B, C = "a\n", "b\n", "c\n"


def plan(*changes: object, rule: str = "T-1", manual: str | None = None) -> Plan:
    return Plan(
        remediator="test", rule_id=rule, title="t", changes=list(changes), needs_manual=manual
    )


def wrap(*plans: Plan) -> list[PlanForExport]:
    return [
        PlanForExport(
            plan=p, finding_id=f"F-{n}", rule_id=p.rule_id, title=p.title, target="local:/srv"
        )
        for n, p in enumerate(plans)
    ]


def sha(text: str) -> str:
    return sha256_bytes(text.encode())


def test_a_file_written_by_several_plans_is_written_once_with_its_final_content() -> None:
    model = build_script_model(
        wrap(
            plan(WriteFile(path="etc/x.conf", content=B, before_sha256=sha(A))),
            plan(SetMode(path="etc/x.conf", mode=0o600)),
            plan(WriteFile(path="etc/x.conf", content=C, before_sha256=sha(B))),
            plan(RemoveFile(path="etc/old.conf", before_sha256=sha(A))),
        )
    )
    [x, old] = model.paths
    assert (x.before, x.after, x.after_mode) == (f"sha256:{sha(A)}", f"sha256:{sha(C)}", 0o600)
    assert (old.before, old.after) == (f"sha256:{sha(A)}", "absent")
    assert [(s.kind, s.plan) for s in model.steps] == [("chmod", 1), ("write", 2), ("remove", 3)]
    assert model.steps[1].sha256 == sha(C) and model.steps[1].mode == 0o600


def test_a_mode_only_path_learns_its_content_from_a_later_write() -> None:
    model = build_script_model(
        wrap(
            plan(SetMode(path="srv/app", mode=0o640)),
            plan(WriteFile(path="srv/app", content=B, before_sha256=sha(A))),
        )
    )
    assert model.paths[0].before == f"sha256:{sha(A)}"
    only_mode = build_script_model(wrap(plan(SetMode(path="srv/app", mode=0o640))))
    assert (only_mode.paths[0].before, only_mode.paths[0].after) == ("exists", "exists")


def test_plans_that_do_not_chain_are_refused(tmp_path: Path) -> None:
    # Two sshd plans made on the same original state both expect it: the
    # second would overwrite the first fix.
    shutil.copytree(EXAMPLE_HOST, tmp_path / "host")
    target = LocalTarget(tmp_path / "host")
    params = SshdParams(level="strict")
    findings = [
        f
        for f in SshdHardening().detect(target, params)
        if f.location.path == "etc/ssh/sshd_config"
    ][:2]
    plans = [SshdHardening().plan(f, target, params) for f in findings]
    with pytest.raises(
        InputError,
        match=r"^plan 2 \(SSHD-[A-Z0-9-]+, finding F-1\): expects "
        r"etc/ssh/sshd_config as sha256:[0-9a-f]{64}, but the "
        r"plans before it leave it as sha256:",
    ):
        export_script([item(p, target, f"F-{n}") for n, p in enumerate(plans)], "bash")
    with pytest.raises(InputError, match="which an earlier plan removes"):
        build_script_model(
            wrap(
                plan(RemoveFile(path="a", before_sha256=None)), plan(SetMode(path="a", mode=0o600))
            )
        )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../etc/passwd", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("etc/{{ lookup('pipe', 'id') }}", "has characters an exported script will not carry"),
        ("etc/x\ny", "has characters"),
    ],
)
def test_paths_a_script_cannot_carry_are_refused(path: str, message: str) -> None:
    with pytest.raises(InputError, match=r"^plan 1 \(T-1, finding F-0\): ") as info:
        build_script_model(wrap(plan(WriteFile(path=path, content=A, before_sha256=None))))
    assert message in str(info.value)


def test_bad_requests() -> None:
    with pytest.raises(InputError, match="give at least one plan"):
        export_script([], "bash")
    with pytest.raises(InputError, match="format 'powershell' is unknown; choose bash"):
        export_script(wrap(plan()), "powershell")  # type: ignore[arg-type]


def test_manual_and_empty_plans_are_reported_not_run(tmp_path: Path) -> None:
    items = wrap(
        plan(rule="SSHD-MATCH-OVERRIDE", manual="Match Address 192.0.2.0/24 re-enables passwords"),
        plan(rule="T-DONE"),
        plan(WriteFile(path="etc/x", content=B, before_sha256=sha(A)), rule="T-WRITE"),
    )
    model = build_script_model(items)
    assert [s.kind for s in model.steps] == ["write"]
    for fmt in FORMATS:
        text = export_script(items, fmt)  # type: ignore[arg-type]
        assert "NOT CHANGED BY THIS SCRIPT (needs a human): Match Address 192.0.2.0/24" in text
        assert "already fixed when planned" in text


def test_export_is_deterministic_and_the_header_shows_the_diff(tmp_path: Path) -> None:
    exported = sshd_and_permission_plans(tmp_path, sshd_limit=1)
    first = export_script(exported.items, "bash")
    assert first == export_script(exported.items, "bash")
    assert "#       -PermitRootLogin yes\n#       +PermitRootLogin no\n" in first
    assert "#     manual step first: ensure an unprivileged administrator" in first
    model = build_script_model(exported.items)
    assert f"Jupiter fix script {model.script_id}" in first
    # A different plan set gets a different backup directory.
    assert build_script_model(exported.items[:1]).script_id != model.script_id
