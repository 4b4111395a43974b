"""Validate a remediation now, from evidence gathered now:

* **re-detection** — the built-in detectors scan every production target
  again (``Engine.scan``); each finding the remediation planned must be gone;
* **external scanner** — Bandit re-run on the files the remediation changed
  (for the categories it covers), the finding's test id must be absent;
* **health** — every production target's probes (``probes:`` in
  assets.yaml) sampled once, each must answer healthy.

``confidence`` is the weighted share of evidence that passed, over all the
evidence there could have been: a skipped source lowers it, it is never a
constant. ``status`` is ``fixed`` (re-detection passed, nothing failed but
perhaps health), ``not_fixed`` (a detector or the scanner still sees it) or
``pending`` (nothing deployed yet)."""

from __future__ import annotations

import subprocess
from contextlib import closing
from typing import Any

from jupiter.copilot.model import Response
from jupiter.copilot.turn import Refusal, Turn
from jupiter.copilot.workflow import _summary

WEIGHTS = {"re_detection": 60, "external_scanner": 25, "health": 15}
#: Bandit test ids that report each category.
BANDIT_TESTS: dict[str, frozenset[str]] = {"code.sql_injection": frozenset({"B608"})}
_DEPLOYED = ("deployed",)


def _evidence(name: str, outcome: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "outcome": outcome, "detail": detail, "weight": WEIGHTS[name], **extra}


def validate(turn: Turn) -> Response:
    rem = turn.remediation()
    info = turn.engine.remediations.show(rem, timeline=False)
    targets = [t for t in info.targets if t.role == "production" and t.status in _DEPLOYED]
    if not targets:
        data = {
            "status": "pending",
            "confidence": 0,
            "evidence": [],
            "remediation": _summary(info),
        }
        return turn.ok(f"{rem} is {info.status}: nothing is deployed to validate yet", data)
    wanted = turn.first("vulnerability_id", "finding_id")
    finding_ids = {int(s["finding"]) for t in targets for s in t.steps if s.get("finding")}
    if wanted is not None:
        fid = int(str(wanted).upper().removeprefix("VULN-").removeprefix("F-"))
        if fid not in finding_ids and fid not in {int(f) for f in info.findings}:
            raise Refusal(
                f"{rem} did not remediate finding {wanted}; its findings: {info.findings}"
            )
    findings = {f: turn.engine.get_finding(str(f)) for f in sorted(finding_ids)}
    evidence = [
        _redetect(turn, targets, findings),
        _external(turn, targets, findings),
        _health(turn, targets),
    ]
    total = sum(WEIGHTS.values())
    passed = sum(e["weight"] for e in evidence if e["outcome"] == "passed")
    confidence = round(100 * passed / total)
    failed = {e["name"] for e in evidence if e["outcome"] == "failed"}
    if evidence[0]["outcome"] == "passed" and "external_scanner" not in failed:
        status = "fixed"
    elif failed & {"re_detection", "external_scanner"}:
        status = "not_fixed"
    else:
        status = "pending"
    data = {
        "status": status,
        "confidence": confidence,
        "evidence": evidence,
        "findings": sorted(findings),
        "remediation": _summary(info),
    }
    said = ", ".join(f"{e['name']} {e['outcome']}" for e in evidence)
    return turn.ok(f"{rem}: {status} ({confidence}% confidence; {said})", data)


def _redetect(turn: Turn, targets: list[Any], findings: dict[int, Any]) -> dict[str, Any]:
    still: list[str] = []
    scanned: list[str] = []
    for t in targets:
        report = turn.engine.scan(_connection(turn, t.asset), asset=t.asset)
        scanned.append(t.asset)
        now = set(report.fingerprints)
        still += [
            f"{f['rule_id']} in {f['location'].get('path')} on {t.asset}"
            for f in findings.values()
            if f["asset"] == t.asset and f["fingerprint"] in now
        ]
    if still:
        return _evidence("re_detection", "failed", "still detected: " + "; ".join(still))
    return _evidence(
        "re_detection",
        "passed",
        f"{len(findings)} finding(s) no longer detected on {', '.join(scanned)}",
        targets=scanned,
    )


def _connection(turn: Turn, asset: str) -> str:
    from jupiter.store.tables import AssetRow

    with turn.engine.db.reading() as s:
        row = s.get(AssetRow, asset)
        conn = row.connection if row is not None else None
    if not conn:
        raise Refusal(f"asset {asset!r} has no connection to validate through")
    return conn


def _external(turn: Turn, targets: list[Any], findings: dict[int, Any]) -> dict[str, Any]:
    from jupiter.plugins.python_security.validate import _bandit, bandit_binary
    from jupiter.targets.factory import open_target

    categories = {f["category"] for f in findings.values()}
    tests = frozenset().union(*(BANDIT_TESTS.get(c, frozenset()) for c in categories))
    if not tests:
        return _evidence(
            "external_scanner", "skipped", f"no external scanner covers {', '.join(categories)}"
        )
    binary = bandit_binary()
    if binary is None:
        return _evidence("external_scanner", "skipped", "bandit is not installed")
    flagged: list[str] = []
    files = 0
    for t in targets:
        paths = sorted({p for s in t.steps for p in s.get("paths", []) if p.endswith(".py")})
        with closing(open_target(_connection(turn, t.asset))) as target:
            for path in paths:
                try:
                    counts = _bandit(binary, target.read_bytes(path).decode("utf-8"))
                except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
                    return _evidence("external_scanner", "failed", f"bandit did not run: {exc}")
                files += 1
                flagged += [f"{tid} in {path} on {t.asset}" for tid in sorted(tests & set(counts))]
    if flagged:
        return _evidence("external_scanner", "failed", "bandit still reports " + "; ".join(flagged))
    if not files:
        return _evidence("external_scanner", "skipped", "no changed file bandit can read")
    return _evidence(
        "external_scanner",
        "passed",
        f"bandit: no {', '.join(sorted(tests))} in {files} changed file(s)",
    )


def _health(turn: Turn, targets: list[Any]) -> dict[str, Any]:
    from jupiter.health.probes import sample_all
    from jupiter.store.assets import asset_spec
    from jupiter.store.tables import AssetRow
    from jupiter.targets.factory import normalise_connection

    samples: list[dict[str, Any]] = []
    for t in targets:
        with turn.engine.db.reading() as s:
            row = s.get(AssetRow, t.asset)
            probes = asset_spec(row).probes if row is not None else []
            conn = row.connection if row is not None else ""
        if not probes:
            continue
        root = normalise_connection(conn or "").partition(":")[2]
        for got in sample_all(probes, asset=t.asset, root=root):
            samples.append({"asset": t.asset, **got.to_json()})
    if not samples:
        return _evidence("health", "skipped", "no production target declares health probes")
    bad = [
        f"{s['probe']} on {s['asset']}: {s.get('error') or s.get('status')}"
        for s in samples
        if not s["ok"]
    ]
    if bad:
        return _evidence("health", "failed", "; ".join(bad), samples=samples)
    return _evidence(
        "health", "passed", f"{len(samples)} probe reading(s) healthy", samples=samples
    )
