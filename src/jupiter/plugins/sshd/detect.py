"""Built-in OpenSSH server hardening checks.

Rule ids are ``SSHD-<SUBJECT>`` (stable; one subject per rule). Each rule
names the level from which it is required; levels are cumulative:

============================  =========  ====================================
rule                          from       requires
============================  =========  ====================================
SSHD-ROOT-LOGIN               baseline   ``PermitRootLogin no``
SSHD-EMPTY-PASSWORDS          baseline   ``PermitEmptyPasswords no``
SSHD-X11-FORWARDING           baseline   ``X11Forwarding no``
SSHD-MAX-AUTH-TRIES           baseline   ``MaxAuthTries`` 1..4
SSHD-LOGIN-GRACE-TIME         baseline   ``LoginGraceTime`` 1s..60s
SSHD-CLIENT-ALIVE             baseline   ``ClientAliveInterval`` 1s..300s and
                                         ``ClientAliveCountMax`` 1..3
SSHD-WEAK-CIPHERS             baseline   no weak cipher (maximum: strongest only)
SSHD-WEAK-MACS                baseline   no weak MAC (maximum: strongest only)
SSHD-WEAK-KEX                 baseline   no weak key exchange (maximum: post-quantum)
SSHD-WEAK-HOSTKEY-ALGORITHMS  baseline   no SHA-1, DSA or NIST-curve host key signatures
SSHD-WEAK-PUBKEY-ALGORITHMS   strict     the same for users' keys (``PubkeyAccepted…``)
SSHD-WEAK-HOST-KEY            baseline   no DSA or RSA < 2048 host key (strict: no
                                         ECDSA; maximum: RSA >= 3072); manual
SSHD-RSA-KEY-SIZE             strict     ``RequiredRSASize`` >= 2048 (maximum: 3072;
                                         OpenSSH >= 9.1 only)
SSHD-DH-MODULI                strict     ``/etc/ssh/moduli`` has no group < 3072 bits
SSHD-PASSWORD-AUTH            strict     ``PasswordAuthentication no``
SSHD-KBD-INTERACTIVE          strict     ``KbdInteractiveAuthentication no``
                                         (alias ``ChallengeResponseAuthentication``)
SSHD-PUBKEY-AUTH              strict     ``PubkeyAuthentication yes``
SSHD-AGENT-FORWARDING         maximum    ``AllowAgentForwarding no``
SSHD-TCP-FORWARDING           maximum    ``AllowTcpForwarding no``
SSHD-MATCH-OVERRIDE           baseline   no ``Match`` block undoes one of the above
============================  =========  ====================================

**Algorithms** are judged against the target's OpenSSH release (see
:mod:`jupiter.plugins.sshd.openssh` and :mod:`jupiter.plugins.sshd.algorithms`):
an unset list counts with that release's defaults. ``baseline`` and
``strict`` leave nothing ssh-audit fails, ``maximum`` nothing it warns about.

**Levels and verification.** :func:`check` takes the level; the remediator's
``detect(view)`` uses ``strict`` (the default level) and ``detect(view,
params)`` the level in ``params``. Verify a fix at the level it was planned
at, so a ``baseline`` fix is not reported as unfixed for strict-only rules.
Every finding records its level and the rule's minimum level in ``extra``.

A setting's location is the file and line of its *effective* value (the
first one sshd obtains); an insecure OpenSSH default that nobody set is
reported on the main file with no line.

**Repositories.** A target without ``etc/ssh/sshd_config`` is a repository:
every sshd configuration in it is checked (:mod:`jupiter.plugins.sshd.sources`
says which files are taken and why); each finding's ``extra`` names the main
file (``config``) and why it was taken (``config_file.evidence``). Host keys
and ``moduli`` are host files and are not judged there. A Dockerfile ``RUN``
that writes sshd's configuration inline (``echo ... >> /etc/ssh/sshd_config``,
``sed -i``) is ``SSHD-INLINE-CONFIG``: Jupiter does not rewrite shell commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.configs import InlineWrite, TakenFile
from jupiter.plugins.sshd import algorithms as algos
from jupiter.plugins.sshd import keyfiles, sources
from jupiter.plugins.sshd.openssh import OpenSSH, for_target
from jupiter.plugins.sshd.parse import Directive, SshdConfig, parse
from jupiter.targets.base import TargetView

Level = algos.Level
LEVELS: tuple[Level, ...] = ("baseline", "strict", "maximum")
DEFAULT_LEVEL: Level = "strict"
SCANNER = "jupiter-sshd"
MATCH_OVERRIDE = "SSHD-MATCH-OVERRIDE"

MAX_AUTH_TRIES = 4
LOGIN_GRACE_SECONDS = 60
CLIENT_ALIVE_SECONDS = 300
CLIENT_ALIVE_COUNT = 3
_TIME = re.compile(r"(?:\d+[smhdw]?)+")
_TIME_PART = re.compile(r"(\d+)([smhdw]?)")


def level_rank(level: Level) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Context:
    """What a value is judged against: the level, the target's OpenSSH, and
    the reason its clients need legacy algorithms (``None``: they do not)."""

    level: Level
    openssh: OpenSSH
    legacy_reason: str | None = None

    @property
    def legacy(self) -> bool:
        return self.legacy_reason is not None

    def applies(self, rule: Rule) -> bool:
        if level_rank(rule.since) > level_rank(self.level):
            return False
        return rule.rule_id != "SSHD-RSA-KEY-SIZE" or self.openssh.has_required_rsa_size


_ALGO_KINDS: dict[str, algos.AlgoKind] = {k: k for k in algos.KINDS}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    severity: Severity
    fixed: str  # the value that satisfies the level
    refused: tuple[str, ...] = ()  # algorithms the level does not accept


@dataclass(frozen=True)
class Setting:
    keyword: str  # the spelling written when the setting is inserted
    default: str | None  # OpenSSH's compiled-in default, as text
    kind: str  # how the value is judged, see judge()
    want: str = ""
    severity: Severity = Severity.MEDIUM
    in_match: bool = True  # whether sshd accepts it inside a Match block


@dataclass(frozen=True)
class Rule:
    rule_id: str
    title: str
    since: Level
    settings: tuple[Setting, ...]
    cwe: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    manual_steps: tuple[str, ...] = ()
    disruption: bool = False


_KEYS_STEP = (
    "ensure SSH keys are deployed for every user who logs in over SSH (and that "
    "you can still log in with a key) before reloading sshd"
)
_LOCKOUT = "users who log in with a password will be locked out of SSH after the reload"

RULES: tuple[Rule, ...] = (
    Rule(
        "SSHD-ROOT-LOGIN",
        "sshd allows direct root login",
        "baseline",
        (Setting("PermitRootLogin", "prohibit-password", "root"),),
        ("CWE-250",),
        warnings=("root can no longer log in over SSH directly",),
        manual_steps=(
            "ensure an unprivileged administrator account with sudo can log in "
            "before reloading sshd",
        ),
        disruption=True,
    ),
    Rule(
        "SSHD-EMPTY-PASSWORDS",
        "sshd accepts empty passwords",
        "baseline",
        (Setting("PermitEmptyPasswords", "no", "flag", "no", Severity.HIGH),),
        ("CWE-258",),
    ),
    Rule(
        "SSHD-X11-FORWARDING",
        "sshd allows X11 forwarding",
        "baseline",
        (Setting("X11Forwarding", "no", "flag", "no", Severity.LOW),),
        ("CWE-668",),
    ),
    Rule(
        "SSHD-MAX-AUTH-TRIES",
        "sshd allows too many authentication attempts",
        "baseline",
        (Setting("MaxAuthTries", "6", "max_tries", severity=Severity.LOW),),
        ("CWE-307",),
    ),
    Rule(
        "SSHD-LOGIN-GRACE-TIME",
        "sshd login grace time is too long",
        "baseline",
        (Setting("LoginGraceTime", "120", "grace", severity=Severity.LOW, in_match=False),),
        ("CWE-400",),
    ),
    Rule(
        "SSHD-CLIENT-ALIVE",
        "sshd does not end dead or idle sessions",
        "baseline",
        (
            Setting("ClientAliveInterval", "0", "alive_interval", severity=Severity.LOW),
            Setting("ClientAliveCountMax", "3", "alive_count", severity=Severity.LOW),
        ),
        ("CWE-613",),
    ),
    Rule(
        "SSHD-WEAK-CIPHERS",
        "sshd offers weak ciphers",
        "baseline",
        (Setting("Ciphers", None, "ciphers", in_match=False),),
        ("CWE-327",),
        warnings=("clients that only support the removed algorithms cannot connect",),
    ),
    Rule(
        "SSHD-WEAK-MACS",
        "sshd offers weak MACs",
        "baseline",
        (Setting("MACs", None, "macs", in_match=False),),
        ("CWE-327",),
        warnings=("clients that only support the removed algorithms cannot connect",),
    ),
    Rule(
        "SSHD-WEAK-KEX",
        "sshd offers weak key exchange algorithms",
        "baseline",
        (Setting("KexAlgorithms", None, "kexalgorithms", in_match=False),),
        ("CWE-327",),
        warnings=("clients that only support the removed algorithms cannot connect",),
    ),
    Rule(
        "SSHD-WEAK-HOSTKEY-ALGORITHMS",
        "sshd signs with weak host key algorithms",
        "baseline",
        (Setting("HostKeyAlgorithms", None, "hostkeyalgorithms", in_match=False),),
        ("CWE-327",),
        warnings=(
            "clients that only know the removed host key types cannot connect, and clients "
            "that pinned such a key see a new host key",
        ),
        manual_steps=(
            "publish the remaining host keys' fingerprints (ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub) so users can update known_hosts",
        ),
        disruption=True,
    ),
    Rule(
        "SSHD-WEAK-PUBKEY-ALGORITHMS",
        "sshd accepts weak user key algorithms",
        "strict",
        (Setting("PubkeyAcceptedAlgorithms", None, "pubkeyalgorithms"),),
        ("CWE-327",),
        warnings=("users whose only key is DSA, ECDSA or SHA-1 RSA can no longer log in",),
        manual_steps=("make sure every user has an Ed25519 or RSA key before reloading sshd",),
        disruption=True,
    ),
    Rule(
        "SSHD-PASSWORD-AUTH",
        "sshd allows password authentication",
        "strict",
        (Setting("PasswordAuthentication", "yes", "flag", "no"),),
        ("CWE-307",),
        warnings=(_LOCKOUT,),
        manual_steps=(_KEYS_STEP,),
        disruption=True,
    ),
    Rule(
        "SSHD-KBD-INTERACTIVE",
        "sshd allows keyboard-interactive authentication",
        "strict",
        (Setting("KbdInteractiveAuthentication", "yes", "flag", "no"),),
        ("CWE-307",),
        warnings=(_LOCKOUT,),
        manual_steps=(_KEYS_STEP,),
        disruption=True,
    ),
    Rule(
        "SSHD-PUBKEY-AUTH",
        "sshd disables public key authentication",
        "strict",
        (Setting("PubkeyAuthentication", "yes", "flag", "yes", Severity.LOW),),
        ("CWE-308",),
    ),
    Rule(
        "SSHD-RSA-KEY-SIZE",
        "sshd accepts short RSA user keys",
        "strict",
        (Setting("RequiredRSASize", "1024", "rsa_size", severity=Severity.LOW),),
        ("CWE-326",),
        warnings=("users whose RSA key is shorter than the minimum can no longer log in",),
        manual_steps=("replace short RSA user keys (ssh-keygen -t ed25519) before reloading sshd",),
        disruption=True,
    ),
    Rule(
        "SSHD-AGENT-FORWARDING",
        "sshd allows agent forwarding",
        "maximum",
        (Setting("AllowAgentForwarding", "yes", "flag", "no", Severity.LOW),),
        ("CWE-668",),
        warnings=("users can no longer forward their SSH agent through this host",),
        disruption=True,
    ),
    Rule(
        "SSHD-TCP-FORWARDING",
        "sshd allows TCP forwarding",
        "maximum",
        (Setting("AllowTcpForwarding", "yes", "flag", "no", Severity.LOW),),
        ("CWE-668",),
        warnings=("SSH tunnels (ssh -L/-R/-D) through this host stop working",),
        disruption=True,
    ),
)
RULES_BY_ID = {r.rule_id: r for r in RULES}
INLINE_CONFIG = sources.INLINE_RULE
RULE_IDS = frozenset(
    [*RULES_BY_ID, MATCH_OVERRIDE, keyfiles.HOST_KEY, keyfiles.MODULI, INLINE_CONFIG]
)


def rules_for(level: Level) -> list[Rule]:
    return [r for r in RULES if level_rank(r.since) <= level_rank(level)]


def parse_seconds(text: str) -> int | None:
    """sshd's time format (``90``, ``1m30s``, ``2h``); ``None`` if invalid."""
    low = text.strip().lower()
    if not _TIME.fullmatch(low):
        return None
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(int(n) * units[u] for n, u in _TIME_PART.findall(low))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


RSA_SIZE: dict[Level, int] = {"baseline": 1024, "strict": 2048, "maximum": 3072}


def judge(setting: Setting, args: tuple[str, ...] | None, ctx: Context) -> Verdict:
    """Whether a value (``None`` = unset) satisfies ``ctx.level``, and the fix."""
    level = ctx.level
    value = " ".join(args) if args else (setting.default or "")
    low = value.lower()
    kind = setting.kind
    if kind == "flag":
        return Verdict(low == setting.want, setting.severity, setting.want)
    if kind == "root":
        sev = {"yes": Severity.HIGH, "forced-commands-only": Severity.LOW}.get(low, Severity.MEDIUM)
        return Verdict(low == "no", sev, "no")
    if kind == "max_tries":
        n = _int(low)
        return Verdict(
            n is not None and 1 <= n <= MAX_AUTH_TRIES, setting.severity, str(MAX_AUTH_TRIES)
        )
    if kind in ("grace", "alive_interval"):
        limit = LOGIN_GRACE_SECONDS if kind == "grace" else CLIENT_ALIVE_SECONDS
        secs = parse_seconds(low)
        return Verdict(secs is not None and 0 < secs <= limit, setting.severity, str(limit))
    if kind == "alive_count":
        n = _int(low)
        return Verdict(
            n is not None and 1 <= n <= CLIENT_ALIVE_COUNT,
            setting.severity,
            str(CLIENT_ALIVE_COUNT),
        )
    if kind == "rsa_size":
        n = _int(low)
        want = RSA_SIZE[level]
        return Verdict(n is not None and n >= want, setting.severity, str(want))
    algo_kind = _ALGO_KINDS[kind]
    raw = ",".join(args) if args else None
    ssh = ctx.openssh
    names = algos.resolve(algo_kind, raw, ssh)
    bad = algos.not_allowed(algo_kind, names, level, ssh, legacy=ctx.legacy)
    broken = [n for n in bad if algos.is_broken(algo_kind, n)]
    return Verdict(
        not bad,
        Severity.MEDIUM if broken else Severity.LOW,
        algos.fixed_list(algo_kind, raw, level, ssh, legacy=ctx.legacy),
        tuple(bad),
    )


@dataclass(frozen=True)
class SettingState:
    """One setting of a rule: where its effective value is and its verdict."""

    setting: Setting
    directive: Directive | None  # None: unset, OpenSSH's default applies
    verdict: Verdict


def evaluate(rule: Rule, config: SshdConfig, ctx: Context) -> list[SettingState]:
    states = []
    for setting in rule.settings:
        d = config.effective(setting.keyword)
        states.append(SettingState(setting, d, judge(setting, d.args if d else None, ctx)))
    return states


@dataclass(frozen=True)
class Override:
    """A Match block line that undoes a hardened setting."""

    rule: Rule
    directive: Directive
    verdict: Verdict


def match_overrides(config: SshdConfig, ctx: Context) -> list[Override]:
    found: list[Override] = []
    for rule in rules_for(ctx.level):
        if not ctx.applies(rule):
            continue
        for setting in rule.settings:
            if not setting.in_match:
                continue
            effective = config.effective(setting.keyword)
            seen: set[tuple[str, int]] = set()
            for d in config.in_match_blocks(setting.keyword):
                assert d.match is not None
                block = (d.match.path, d.match.line)
                if d is effective or block in seen:
                    continue
                seen.add(block)  # within a block, too, the first value wins
                verdict = judge(setting, d.args, ctx)
                if not verdict.ok:
                    found.append(Override(rule, d, verdict))
    return found


def context(
    view: TargetView,
    level: Level = DEFAULT_LEVEL,
    *,
    openssh_version: str | None = None,
    legacy_reason: str | None = None,
) -> Context:
    """The judging context for ``view``: its OpenSSH is probed (or taken from
    ``openssh_version``) as :func:`jupiter.plugins.sshd.openssh.for_target` says."""
    return Context(level, for_target(view, openssh_version), legacy_reason)


def check(
    view: TargetView, level: Level = DEFAULT_LEVEL, ctx: Context | None = None
) -> list[FindingRecord]:
    """Findings for ``etc/ssh/sshd_config`` (and its Includes) at ``level``
    (or at ``ctx``), or for every sshd configuration of a repository; empty
    when the target has none."""
    return scan(view, level, ctx)[0]


def scan(
    view: TargetView, level: Level = DEFAULT_LEVEL, ctx: Context | None = None
) -> tuple[list[FindingRecord], list[str], list[TakenFile]]:
    """:func:`check` plus what could not be read (one sentence per file) and
    the files a repository's configurations were taken from."""
    found = sources.survey(view)
    problems = list(found.problems)
    findings: list[FindingRecord] = []
    for source in found.sources:
        try:
            config = parse(view, source.main, host=source.host)
        except InputError as exc:
            if source.host:
                raise
            problems.append(str(exc))
            continue
        if config is None:
            continue
        ctx = ctx or context(view, level)
        findings.extend(check_config(view, config, ctx, source))
        if not source.host:
            problems.extend(config.problems)
    for write in found.inline:
        findings.append(_inline_finding(write, ctx.level if ctx else level))
    return findings, problems, found.files


def check_config(
    view: TargetView, config: SshdConfig, ctx: Context, source: sources.Source
) -> list[FindingRecord]:
    """Findings for one parsed configuration (a host's, or one of a repository)."""
    level = ctx.level
    findings = []
    for rule in rules_for(level):
        if not ctx.applies(rule):
            continue
        failing = [s for s in evaluate(rule, config, ctx) if not s.verdict.ok]
        if source.fragment:
            failing = [s for s in failing if s.directive is not None]
        if failing:
            findings.append(_finding(rule, failing, config, ctx))
    findings.extend(_override_finding(o, level) for o in match_overrides(config, ctx))
    if not source.host:
        note = {
            "config": config.main,
            "fragment": source.fragment,
            "config_file": {"path": config.main, "evidence": source.evidence},
        }
        return [f.model_copy(update={"extra": {**f.extra, **note}}) for f in findings]
    findings.extend(keyfiles.host_key_findings(view, config, level, SCANNER))
    if level_rank(level) >= level_rank("strict"):
        findings.extend(keyfiles.moduli_findings(view, level, SCANNER))
    return findings


def _inline_finding(write: InlineWrite, level: Level) -> FindingRecord:
    return FindingRecord(
        scanner=SCANNER,
        rule_id=INLINE_CONFIG,
        category=Category.CONFIG_SSH,
        title=f"{write.dockerfile} writes {write.dest} inline with a RUN command",
        severity=Severity.LOW,
        location=Location(path=write.dockerfile, start_line=write.line, end_line=write.line),
        evidence=write.text[:300],
        # one finding per RUN line, stable when lines above it move
        identity=f"inline {' '.join(write.text.split())[:200]}",
        extra={"level": level, "since": "baseline", "dest": write.dest},
    )


def _finding(
    rule: Rule, failing: list[SettingState], config: SshdConfig, ctx: Context
) -> FindingRecord:
    level = ctx.level
    first = failing[0]
    d = first.directive
    shown = ", ".join(_shown(s) for s in failing)
    if d is not None:
        location = Location(path=d.path, start_line=d.line, end_line=d.line)
        evidence = d.text.strip()
    else:
        location = Location(path=config.main)
        evidence = (
            f"{first.setting.keyword} is not set; the default of {ctx.openssh.source} applies"
        )
    severity = max((s.verdict.severity for s in failing), key=lambda s: s.rank)
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule.rule_id,
        category=Category.CONFIG_SSH,
        title=f"{rule.title} ({shown})",
        severity=severity,
        location=location,
        evidence=evidence,
        cwe=list(rule.cwe),
        # One finding per rule and file: its identity must not move with the
        # line numbers that every edit above it shifts.
        identity="global",
        extra={
            "level": level,
            "since": rule.since,
            "settings": [s.setting.keyword for s in failing],
            "unset": [s.setting.keyword for s in failing if s.directive is None],
            "openssh": ctx.openssh.label,
            "openssh_source": ctx.openssh.source,
        },
    )


def _shown(state: SettingState) -> str:
    d, keyword = state.directive, state.setting.keyword
    refused = state.verdict.refused
    if refused:
        origin = "by default" if d is None else "set"
        return f"{keyword} {origin}: {', '.join(refused)}"
    if d is None:
        return f"{keyword} {state.setting.default or 'default'} by default"
    if d.raw_keyword.lower() != keyword.lower():
        keyword = d.raw_keyword  # an alias such as ChallengeResponseAuthentication
    return f"{keyword} {d.value}"


def _override_finding(o: Override, level: Level) -> FindingRecord:
    d = o.directive
    assert d.match is not None
    return FindingRecord(
        scanner=SCANNER,
        rule_id=MATCH_OVERRIDE,
        category=Category.CONFIG_SSH,
        title=f"Match {d.match.criteria} re-enables what {o.rule.rule_id} hardens "
        f"({d.raw_keyword} {d.value})",
        severity=o.verdict.severity,
        location=Location(path=d.path, start_line=d.line, end_line=d.line),
        evidence=d.text.strip(),
        cwe=list(o.rule.cwe),
        identity=f"Match {d.match.criteria}|{d.keyword}",
        extra={
            "level": level,
            "since": o.rule.since,
            "overrides": o.rule.rule_id,
            "keyword": d.keyword,
            "match": d.match.criteria,
            "match_path": d.match.path,
            "match_line": d.match.line,
        },
    )
