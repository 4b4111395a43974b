"""Commit messages for fixes Jupiter delivers through git."""

from __future__ import annotations

import re

SUBJECT_LIMIT = 72
_ADVISORY = re.compile(r"^(CVE|GHSA|PYSEC|OSV|RUSTSEC|GO|DSA|USN|RHSA)-", re.IGNORECASE)


def _one_line(text: str) -> str:
    """Collapse whitespace, so a title cannot add lines or forge trailers."""
    return " ".join(text.split())


def _advisory_order(advisory: str) -> tuple[int, str]:
    prefix = advisory.split("-", 1)[0].upper()
    return ({"CVE": 0, "GHSA": 1}.get(prefix, 2), advisory)


def commit_message(
    finding_id: int | None,
    rule_id: str,
    title: str,
    aliases: list[str],
    remediator: str,
    verification: str,
    plan_hash: str,
    *,
    path: str | None = None,
) -> str:
    """The commit message for one finding's fix.

    Subject (at most 72 characters): ``fix(jupiter): <rule> in <path>``, or
    ``fix(jupiter): <rule>: <title>`` without a path. The body names the
    finding, the advisory ids among ``aliases`` (CVE first, then GHSA, then
    others), the remediator, the verification result and the plan hash; the
    last paragraph holds git trailers (``Jupiter-Finding``, ``Jupiter-Rule``,
    ``Jupiter-Advisory`` per id, ``Jupiter-Plan``) for ``git log
    --format=%(trailers)``. Inputs are collapsed to one line each, so a title
    cannot inject lines or trailers.
    """
    rule = _one_line(rule_id) or "unknown-rule"
    title_line = _one_line(title)
    where = _one_line(path) if path else ""
    subject = f"fix(jupiter): {rule} in {where}" if where else f"fix(jupiter): {rule}"
    if not where and title_line:
        subject = f"{subject}: {title_line}"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 3].rstrip() + "..."
    ids = sorted(
        {_one_line(a) for a in [rule_id, *aliases] if _ADVISORY.match(_one_line(a))},
        key=_advisory_order,
    )
    finding = str(finding_id) if finding_id is not None else "not stored"
    body = [
        f"Finding: {finding}",
        f"Rule: {rule}",
        f"Advisories: {', '.join(ids) if ids else 'none'}",
        f"Remediator: {_one_line(remediator)}",
        f"Verification: {_one_line(verification) or 'not run'}",
        f"Plan: {_one_line(plan_hash)}",
    ]
    trailers = []
    if finding_id is not None:
        trailers.append(f"Jupiter-Finding: {finding_id}")
    trailers.append(f"Jupiter-Rule: {rule}")
    trailers += [f"Jupiter-Advisory: {a}" for a in ids]
    trailers.append(f"Jupiter-Plan: {_one_line(plan_hash)}")
    parts = [subject]
    if title_line:
        parts.append(title_line)
    parts += ["\n".join(body), "\n".join(trailers)]
    return "\n\n".join(parts) + "\n"
