"""``sshd-hardening``: fix OpenSSH server settings in place.

One finding, one plan, and a plan only touches the setting(s) of its own
rule, so the status of every finding stays honest. Edits keep comments,
order and layout:

* a setting whose effective (first) value sits in the global section of the
  main file or of an Include'd file gets that value replaced on that line
  (indentation, keyword spelling and a trailing comment are kept);
* an unset setting is inserted into the main file's global section, after
  its last global line before the first ``Match`` (never inside a Match
  block); since nothing sets it earlier, the inserted line is the one sshd
  uses;
* ``Match`` blocks are never edited: a Match block that undoes a hardened
  setting is its own finding (``SSHD-MATCH-OVERRIDE``) whose plan is
  ``needs_manual``, because only a human knows whether the exception is
  still wanted.

Parameters (:class:`SshdParams`): ``level`` — ``baseline``, ``strict``
(default) or ``maximum``; see :mod:`jupiter.plugins.sshd.detect` for what each level
requires. Detect and verify with the same params the plan was made with.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, file_edits
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.sshd import detect as checks
from jupiter.plugins.sshd.parse import MAIN_CONFIG, SshdConfig, parse, tokenize
from jupiter.plugins.sshd.validate import sshd_syntax_check
from jupiter.targets.base import TargetView


class SshdParams(BaseModel):
    """Parameters of ``sshd-hardening``."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["baseline", "strict", "maximum"] = "strict"


class SshdHardening(Remediator[SshdParams]):
    name: ClassVar[str] = "sshd-hardening"
    summary: ClassVar[str] = (
        "Harden the OpenSSH server configuration (root login, passwords, forwarding, "
        "algorithms, timeouts) in place, at level baseline, strict or maximum."
    )
    categories: ClassVar[frozenset[Category]] = frozenset({Category.CONFIG_SSH})
    rule_ids: ClassVar[frozenset[str]] = checks.RULE_IDS
    params_model: ClassVar[type[BaseModel]] = SshdParams

    def detect(self, view: TargetView, params: SshdParams | None = None) -> list[FindingRecord]:
        """Findings at the level of ``params`` (``strict`` when omitted)."""
        return checks.check(view, _level(params))

    def plan(self, finding: FindingRecord, view: TargetView, params: SshdParams) -> Plan:
        level = _level(params)
        if finding.rule_id not in checks.RULE_IDS:
            raise InputError(
                f"sshd-hardening cannot plan rule {finding.rule_id!r}; it handles "
                f"{', '.join(sorted(checks.RULE_IDS))}"
            )
        path = finding.location.path or MAIN_CONFIG
        if view.stat(path) is None:
            raise ConflictError(
                f"{path} named by finding {finding.rule_id} no longer exists on "
                f"{view.describe()}; run detect again and plan the new findings"
            )
        config = parse(view)
        if config is None:
            raise ConflictError(
                f"{MAIN_CONFIG} no longer exists on {view.describe()}; "
                "run detect again and plan the new findings"
            )
        if finding.rule_id == checks.MATCH_OVERRIDE:
            return self._plan_override(finding, config, level)
        rule = checks.RULES_BY_ID[finding.rule_id]
        base = Plan(
            remediator=self.name,
            rule_id=rule.rule_id,
            title=finding.title,
            severity=finding.severity,
        )
        if checks.level_rank(level) < checks.level_rank(rule.since):
            note = (
                f"{rule.rule_id} is required from level {rule.since!r}; at level "
                f"{level!r} nothing is changed"
            )
            return base.model_copy(update={"risk": Risk(warnings=[note])})
        failing = [s for s in checks.evaluate(rule, config, level) if not s.verdict.ok]
        if not failing:
            return base
        if rule.rule_id in _NEEDS_PUBKEY:
            pubkey = checks.RULES_BY_ID["SSHD-PUBKEY-AUTH"]
            if not checks.evaluate(pubkey, config, level)[0].verdict.ok:
                return base.model_copy(
                    update={
                        "needs_manual": (
                            f"PubkeyAuthentication is off, so turning off "
                            f"{rule.settings[0].keyword} "
                            "would lock every user out; fix SSHD-PUBKEY-AUTH and deploy keys first"
                        )
                    }
                )
        edits = _Edits(config)
        for state in failing:
            d = state.directive
            if d is not None and d.match is None:
                edits.replace(d.path, d.line, d.value_span, state.verdict.fixed)
            else:
                edits.insert(f"{state.setting.keyword} {state.verdict.fixed}")
            if state.setting.keyword == "KbdInteractiveAuthentication":
                # Before OpenSSH 8.7 ChallengeResponseAuthentication was a
                # separate switch: turn every global "yes" of either name off.
                for other in config.global_occurrences(state.setting.keyword):
                    if other is not d and other.value.lower() != "no":
                        edits.replace(other.path, other.line, other.value_span, "no")
        changes, diff = edits.build(view)
        risk = Risk(
            change_kind="config",
            services_to_reload=["sshd"],
            warnings=list(rule.warnings),
            manual_steps=list(rule.manual_steps),
            disruption=rule.disruption,
        )
        return base.model_copy(update={"changes": changes, "diff": diff, "risk": risk})

    def _plan_override(
        self, finding: FindingRecord, config: SshdConfig, level: checks.Level
    ) -> Plan:
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            title=finding.title,
            severity=finding.severity,
        )
        keyword = finding.extra.get("keyword")
        criteria = finding.extra.get("match")
        if not isinstance(keyword, str) or not isinstance(criteria, str):
            return base.model_copy(
                update={
                    "needs_manual": (
                        f"the finding does not say which Match block and setting it means; review "
                        f"the Match blocks of {finding.location.path or MAIN_CONFIG} by hand"
                    )
                }
            )
        for o in checks.match_overrides(config, level):
            d = o.directive
            assert d.match is not None
            if (
                d.path == finding.location.path
                and d.keyword == keyword
                and d.match.criteria == criteria
            ):
                reason = (
                    f"{d.path} line {d.line}: 'Match {d.match.criteria}' sets "
                    f"'{d.text.strip()}', which undoes {o.rule.rule_id} for the connections "
                    "it matches; decide whether this exception is still needed, then change "
                    "or remove the line by hand"
                )
                return base.model_copy(update={"needs_manual": reason})
        return base

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """``sshd -t`` on the candidate configuration (with its Includes)."""
        return [sshd_syntax_check(candidate)]


_NEEDS_PUBKEY = frozenset({"SSHD-PASSWORD-AUTH", "SSHD-KBD-INTERACTIVE"})


def _level(params: SshdParams | None) -> checks.Level:
    return checks.DEFAULT_LEVEL if params is None else params.level


class _Edits:
    """Line edits on the files of one parsed configuration."""

    def __init__(self, config: SshdConfig) -> None:
        self._config = config
        self._lines: dict[str, list[str]] = {}
        self._inserts: list[str] = []

    def _file(self, path: str) -> list[str]:
        if path not in self._lines:
            self._lines[path] = self._config.lines(path)
        return self._lines[path]

    def replace(self, path: str, line: int, span: tuple[int, int], value: str) -> None:
        lines = self._file(path)
        raw = lines[line - 1]
        body = raw.rstrip("\r\n")
        ending = raw[len(body) :]
        start, end = span
        prefix = body[:start]
        if start == end and not prefix.endswith((" ", "\t", "=")):
            prefix += " "
        lines[line - 1] = prefix + value + body[end:] + ending

    def insert(self, text: str) -> None:
        self._inserts.append(text)

    def build(self, view: TargetView) -> tuple[list[WriteFile], str]:
        if self._inserts:
            self._apply_inserts()
        return file_edits(
            view,
            (
                (path, self._config.texts[path], "".join(lines))
                for path, lines in self._lines.items()
            ),
        )

    def _apply_inserts(self) -> None:
        main = self._config.main
        lines = self._file(main)
        newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        at = _insert_index(lines)
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += newline
        lines[at:at] = [t + newline for t in self._inserts]


def _insert_index(lines: list[str]) -> int:
    """Right after the last global directive before the first Match (or the
    end of the file): comments right above a Match describe it, and trailing
    comments are often a commented-out example block."""
    at = len(lines)
    for i, raw in enumerate(lines):
        keyword = _keyword(raw)
        if keyword is not None and keyword.lower() == "match":
            at = i
            break
    while at > 0 and (lines[at - 1].strip() == "" or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    return at


def _keyword(raw: str) -> str | None:
    try:
        parts = tokenize(raw)
    except ValueError:
        return None
    return parts[0] if parts else None
