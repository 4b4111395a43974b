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

In a repository (:mod:`jupiter.plugins.sshd.sources`) the same edits apply
to the configuration the finding names (``extra.config``); a drop-in that no
``sshd_config`` includes only gets the settings it sets fixed. In a Jinja
template (Ansible role) literal values are fixed in place; a value that is a
variable (``{{ ssh_permit_root }}``) is ``needs_manual`` naming the variable
and the ``defaults/main.yml`` line that sets it. A Dockerfile ``RUN`` that
writes the configuration inline is ``needs_manual`` naming the line.

Host keys and the DH ``moduli`` file are handled as
:mod:`jupiter.plugins.sshd.keyfiles` says (keys: ``needs_manual`` with the
commands; moduli: the small groups are removed).

Parameters (:class:`SshdParams`): ``level`` — ``baseline``, ``strict``
(default) or ``maximum``; see :mod:`jupiter.plugins.sshd.detect` for what each level
requires. ``openssh_version`` — the release the target runs (default: read
from the target, see :mod:`jupiter.plugins.sshd.openssh`); ``ssh_clients`` —
``modern`` (default) or ``legacy`` with ``ssh_clients_reason``: at
``baseline`` the algorithms old clients need are kept. Detect and verify
with the same params the plan was made with.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, file_edits
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.sshd import algorithms as algos
from jupiter.plugins.sshd import detect as checks
from jupiter.plugins.sshd import keyfiles, sources
from jupiter.plugins.sshd.parse import MAIN_CONFIG, SshdConfig, parse, tokenize
from jupiter.plugins.sshd.validate import sshd_syntax_check
from jupiter.targets.base import TargetView


class SshdParams(BaseModel):
    """Parameters of ``sshd-hardening``."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["baseline", "strict", "maximum"] = "strict"
    openssh_version: str | None = Field(default=None, pattern=r"^\d+\.\d+(p\d+)?$")
    ssh_clients: Literal["modern", "legacy"] = "modern"
    ssh_clients_reason: str | None = Field(default=None, min_length=3, max_length=300)

    @model_validator(mode="after")
    def _legacy_needs_a_reason(self) -> SshdParams:
        if self.ssh_clients == "legacy" and not self.ssh_clients_reason:
            raise ValueError(
                "ssh_clients=legacy needs ssh_clients_reason: say which clients need the old "
                "algorithms (e.g. 'monitoring appliance, ticket NET-311')"
            )
        return self


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
        return checks.check(view, _level(params), _lazy_context(view, params))

    def survey(
        self, view: TargetView, params: SshdParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        found, problems, _ = checks.scan(view, _level(params), _lazy_context(view, params))
        return found, problems

    def config_files(self, view: TargetView, params: SshdParams | None = None) -> list[TakenFile]:
        return sources.survey(view).files

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
        if finding.rule_id == checks.INLINE_CONFIG:
            return _plan_inline(self.name, finding)
        source = _source_of(view, finding)
        config = parse(view, source.main, host=source.host)
        if config is None:
            raise ConflictError(
                f"{source.main} no longer exists on {view.describe()}; "
                "run detect again and plan the new findings"
            )
        ctx = _context(view, params)
        if finding.rule_id == checks.MATCH_OVERRIDE:
            return self._plan_override(finding, config, ctx)
        if finding.rule_id == keyfiles.HOST_KEY:
            return _plan_host_key(self.name, finding, view, config, level)
        if finding.rule_id == keyfiles.MODULI:
            return _plan_moduli(self.name, finding, view, level)
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
        if not ctx.applies(rule):
            note = (
                f"{ctx.openssh.source} has no {rule.settings[0].keyword}; "
                f"{rule.rule_id} does not apply and nothing is changed"
            )
            return base.model_copy(update={"risk": Risk(warnings=[note])})
        failing = [s for s in checks.evaluate(rule, config, ctx) if not s.verdict.ok]
        if source.fragment:
            failing = [s for s in failing if s.directive is not None]
        if not failing:
            return base
        templated = [s for s in failing if s.directive is not None and s.directive.variable]
        if templated:
            return base.model_copy(update={"needs_manual": _variable_steps(templated)})
        if rule.rule_id in _NEEDS_PUBKEY:
            pubkey = checks.RULES_BY_ID["SSHD-PUBKEY-AUTH"]
            if not checks.evaluate(pubkey, config, ctx)[0].verdict.ok:
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
                keyword = state.setting.keyword
                if keyword == "PubkeyAcceptedAlgorithms":
                    keyword = ctx.openssh.pubkey_keyword
                edits.insert(f"{keyword} {state.verdict.fixed}")
            if state.setting.keyword == "KbdInteractiveAuthentication":
                # Before OpenSSH 8.7 ChallengeResponseAuthentication was a
                # separate switch: turn every global "yes" of either name off.
                for other in config.global_occurrences(state.setting.keyword):
                    if other is not d and other.value.lower() != "no":
                        edits.replace(other.path, other.line, other.value_span, "no")
        changes, diff = edits.build(view)
        warnings, manual = _crypto_notes(rule, failing, ctx, params)
        risk = Risk(
            change_kind="config",
            services_to_reload=["sshd"],
            warnings=[*rule.warnings, *warnings],
            manual_steps=[*rule.manual_steps, *manual],
            disruption=rule.disruption,
        )
        return base.model_copy(update={"changes": changes, "diff": diff, "risk": risk})

    def _plan_override(
        self, finding: FindingRecord, config: SshdConfig, ctx: checks.Context
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
        for o in checks.match_overrides(config, ctx):
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
        """``sshd -t`` on the candidate configuration (with its Includes); in a
        repository on each configuration the plan touches."""
        if candidate.stat(MAIN_CONFIG) is not None:
            return [sshd_syntax_check(candidate)]
        touched = set(plan.touched_paths())
        results = []
        for source in sources.survey(candidate).sources:
            config = parse(candidate, source.main, host=source.host)
            if config is not None and touched & set(config.texts):
                results.append(sshd_syntax_check(candidate, source=source))
        return results


_NEEDS_PUBKEY = frozenset({"SSHD-PASSWORD-AUTH", "SSHD-KBD-INTERACTIVE"})


def _source_of(view: TargetView, finding: FindingRecord) -> sources.Source:
    """The configuration a finding belongs to: the host's, or the repository
    file its ``extra.config`` names."""
    main = finding.extra.get("config")
    if view.stat(MAIN_CONFIG) is not None or not isinstance(main, str):
        return sources.Source(MAIN_CONFIG, "", host=True)
    if view.stat(main) is None:
        raise ConflictError(
            f"{main} named by finding {finding.rule_id} no longer exists on "
            f"{view.describe()}; run detect again and plan the new findings"
        )
    return sources.Source(main, "", fragment=bool(finding.extra.get("fragment")))


def _variable_steps(states: list[checks.SettingState]) -> str:
    parts = []
    for state in states:
        d = state.directive
        assert d is not None and d.variable is not None
        if not d.variable.isidentifier():
            parts.append(
                f"{d.path} line {d.line}: {d.raw_keyword} takes its value from the Jinja "
                f"expression {d.variable}, which Jupiter does not evaluate or rewrite; make it "
                f"render {state.verdict.fixed!r}"
            )
            continue
        where = (
            f"set in {d.variable_source} to {' '.join(d.args)!r}"
            if d.variable_source
            else "which no defaults/main.yml or vars/main.yml of the role sets"
        )
        parts.append(
            f"{d.path} line {d.line}: {d.raw_keyword} takes its value from the Jinja variable "
            f"{d.variable}, {where}; set {d.variable} to {state.verdict.fixed!r} there (and in "
            "any inventory or playbook that overrides it)"
        )
    return "; ".join(parts)


def _plan_inline(name: str, finding: FindingRecord) -> Plan:
    where = f"{finding.location.path} line {finding.location.start_line}"
    return Plan(
        remediator=name,
        rule_id=finding.rule_id,
        title=finding.title,
        severity=finding.severity,
        needs_manual=(
            f"{where} writes {finding.extra.get('dest', 'sshd_config')} inline "
            f"({(finding.evidence or '')[:120]}); Jupiter does not rewrite shell commands: "
            "move these settings into a file the image COPYs to /etc/ssh/sshd_config, which "
            "Jupiter "
            "checks and fixes"
        ),
    )


def _lazy_context(view: TargetView, params: SshdParams | None) -> checks.Context | None:
    """The context, or ``None`` when ``params`` add nothing to the defaults
    (the detector then probes OpenSSH only if there is a configuration)."""
    return None if params is None else _context(view, params)


def _level(params: SshdParams | None) -> checks.Level:
    return checks.DEFAULT_LEVEL if params is None else params.level


def _context(view: TargetView, params: SshdParams | None) -> checks.Context:
    p = params or SshdParams()
    reason = p.ssh_clients_reason if p.ssh_clients == "legacy" else None
    return checks.context(view, p.level, openssh_version=p.openssh_version, legacy_reason=reason)


_ALGORITHM_RULES = frozenset(
    {
        "SSHD-WEAK-CIPHERS",
        "SSHD-WEAK-MACS",
        "SSHD-WEAK-KEX",
        "SSHD-WEAK-HOSTKEY-ALGORITHMS",
        "SSHD-WEAK-PUBKEY-ALGORITHMS",
    }
)


def _crypto_notes(
    rule: checks.Rule,
    failing: list[checks.SettingState],
    ctx: checks.Context,
    params: SshdParams,
) -> tuple[list[str], list[str]]:
    """Plan warnings and manual steps that depend on the target's OpenSSH and
    on the clients the asset declares."""
    if rule.rule_id not in _ALGORITHM_RULES:
        return [], []
    warnings = [f"algorithms chosen for {ctx.openssh.source}"]
    manual: list[str] = []
    if ctx.level == "baseline" and ctx.legacy:
        kept = [
            n for s in failing for n in s.verdict.fixed.split(",") if algos.is_broken(_kind(s), n)
        ]
        if kept:
            warnings.append(
                f"kept for legacy clients ({ctx.legacy_reason}): {', '.join(kept)}; "
                "ssh-audit flags these, so plan the clients' upgrade"
            )
    elif params.ssh_clients == "legacy":
        warnings.append(
            f"the asset declares legacy SSH clients ({params.ssh_clients_reason}), but level "
            f"{ctx.level} removes the algorithms they need; only level baseline keeps them"
        )
    if ctx.level == "maximum" and rule.rule_id == "SSHD-WEAK-KEX":
        manual.extend(algos.missing_for_maximum(ctx.openssh))
    return warnings, manual


def _kind(state: checks.SettingState) -> algos.AlgoKind:
    kind = state.setting.kind
    assert kind in algos.KINDS
    return kind


def _plan_host_key(
    name: str, finding: FindingRecord, view: TargetView, config: SshdConfig, level: checks.Level
) -> Plan:
    base = Plan(
        remediator=name, rule_id=finding.rule_id, title=finding.title, severity=finding.severity
    )
    for key in keyfiles.loaded_host_keys(view, config):
        since = key.refused_from
        if key.path == finding.location.path and since is not None:
            if checks.level_rank(since) > checks.level_rank(level):
                note = f"{key.path} is refused from level {since!r}; nothing to do at {level!r}"
                return base.model_copy(update={"risk": Risk(warnings=[note])})
            return base.model_copy(update={"needs_manual": keyfiles.regeneration_steps(key)})
    return base  # the key is gone or strong now


def _plan_moduli(name: str, finding: FindingRecord, view: TargetView, level: checks.Level) -> Plan:
    base = Plan(
        remediator=name, rule_id=finding.rule_id, title=finding.title, severity=finding.severity
    )
    state = keyfiles.moduli_state(view)
    if state is None or state.small == 0:
        return base
    if checks.level_rank(level) < checks.level_rank("strict"):
        note = f"{keyfiles.MODULI} is required from level 'strict'; at {level!r} nothing changes"
        return base.model_copy(update={"risk": Risk(warnings=[note])})
    if state.left == 0:
        return base.model_copy(update={"needs_manual": keyfiles.moduli_regeneration()})
    changes, diff = file_edits(view, [(keyfiles.MODULI_PATH, state.text, state.kept)])
    risk = Risk(
        change_kind="config",
        services_to_reload=[],
        warnings=[
            f"{state.small} Diffie-Hellman groups under {keyfiles.MIN_DH_BITS} bits are "
            f"removed; {state.left} stay (sshd reads the file for each new connection)"
        ],
    )
    return base.model_copy(update={"changes": changes, "diff": diff, "risk": risk})


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
