"""Renderers behind :func:`jupiter.generate.generate`, one per kind.

Values that a security check judges come from the check itself
(:mod:`jupiter.plugins.sshd.detect`, :mod:`jupiter.plugins.nftables.fix`), so a
generated file and a fixed one pass the same rules by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jupiter.generate.params import FirewallGenParams, PostgresqlParams, SshParams
from jupiter.plugins.nftables.detect import RULESET_PATH
from jupiter.plugins.nftables.fix import NEW_FILE_MODE as RULESET_MODE
from jupiter.plugins.nftables.fix import FirewallParams, render_ruleset
from jupiter.plugins.sshd import algorithms as algos
from jupiter.plugins.sshd import detect as sshd_checks
from jupiter.plugins.sshd.openssh import OpenSSH, this_machine
from jupiter.plugins.sshd.openssh import for_version as for_target_version
from jupiter.plugins.sshd.parse import MAIN_CONFIG
from jupiter.templating import render as render_template


@dataclass(frozen=True)
class GeneratedConfig:
    """What ``generate`` produced.

    ``files`` maps target-relative paths (``etc/ssh/sshd_config``) to their
    complete content; ``modes`` the permission bits each file should get;
    ``notes`` are sentences the operator must read (what to provision, what
    the file replaces).
    """

    kind: str
    files: dict[str, str]
    modes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _render(template: str, **values: object) -> str:
    return render_template(template, **values)


def sshd_values(level: sshd_checks.Level, ssh: OpenSSH) -> tuple[dict[str, str], dict[str, str]]:
    """(keyword → value, keyword → note) for every setting the sshd checks
    judge: the value that satisfies ``level`` on the release ``ssh``, or
    OpenSSH's default with a note for rules required only from a higher level
    (``""`` for a setting that release does not know)."""
    ctx = sshd_checks.Context(level, ssh)
    values: dict[str, str] = {}
    notes: dict[str, str] = {}
    for rule in sshd_checks.RULES:
        applies = sshd_checks.level_rank(rule.since) <= sshd_checks.level_rank(level)
        known = rule.rule_id != "SSHD-RSA-KEY-SIZE" or ssh.has_required_rsa_size
        for setting in rule.settings:
            if not known:
                values[setting.keyword] = ""
                notes[setting.keyword] = f"OpenSSH {ssh.label} has no {setting.keyword}"
            elif applies:
                values[setting.keyword] = sshd_checks.judge(setting, None, ctx).fixed
                notes[setting.keyword] = ""
            else:
                default = setting.default
                if default is None and setting.kind in algos.KINDS:
                    default = ",".join(ssh.defaults[setting.kind])
                values[setting.keyword] = default or ""
                notes[setting.keyword] = (
                    f"{rule.rule_id} is required from level {rule.since}; OpenSSH's default "
                    f"is kept at level {level}"
                )
    return values, notes


def render_ssh(p: SshParams) -> GeneratedConfig:
    version = p.openssh_version
    ssh = this_machine() if version is None else for_target_version(version)
    values, notes = sshd_values(p.level, ssh)
    text = _render(
        "ssh/sshd_config.j2",
        level=p.level,
        openssh=ssh.label,
        pubkey_keyword=ssh.pubkey_keyword,
        port=p.port,
        listen_address=p.listen_address,
        allow_users=p.allow_users,
        allow_groups=p.allow_groups,
        sftp=p.sftp,
        banner=p.banner,
        s=values,
        note=notes,
    )
    out = [
        "sshd reads this file only: check with 'sshd -t -f /etc/ssh/sshd_config' and keep an "
        "open session while reloading, so a mistake cannot lock you out.",
        f"Algorithms are chosen for {ssh.source}; pass openssh_version=X.Y for a host that "
        "runs another release (a list naming an algorithm sshd does not know stops it).",
    ]
    if p.level == "maximum":
        out.append(
            "Level maximum offers only post-quantum key exchange, Ed25519 and RSA-SHA2 host "
            "keys: clients older than OpenSSH 8.5 cannot connect, and the RSA host key must "
            "have 3072 bits or more (ssh-keygen -t rsa -b 4096)."
        )
        out.extend(
            f"Level maximum cannot be met on OpenSSH {ssh.label}: {m}."
            for m in algos.missing_for_maximum(ssh)
        )
    if p.level != "baseline":
        out.append(
            "Password and keyboard-interactive logins are off: deploy SSH keys for "
            "every user before installing this file."
        )
    if not p.allow_users and not p.allow_groups:
        out.append(
            "Every account may log in over SSH; set allow_users or allow_groups to restrict it."
        )
    if p.banner:
        out.append(f"Provision the banner file {p.banner}.")
    return GeneratedConfig("ssh", {MAIN_CONFIG: text}, {MAIN_CONFIG: 0o644}, out)


def render_firewall(p: FirewallGenParams) -> GeneratedConfig:
    fw = FirewallParams(
        asset_type=p.asset_type,
        allow_ports=p.allow,
        allow_udp_ports=p.allow_udp,
        admin_ports=p.admin_ports,
        admin_cidr=p.admin_cidr,
        rate=p.rate,
        burst=p.burst,
    )
    text = render_ruleset(fw)
    out = [
        "The ruleset begins with 'flush ruleset': loading it removes every rule other "
        "software added at run time (Docker, libvirt, fail2ban).",
        "Check it with 'nft -c -f /etc/nftables.conf' and keep console access while loading "
        "it; enable it at boot with 'systemctl enable nftables'.",
    ]
    if fw.admin_cidr is None and fw.admin_ports:
        out.append(
            f"Admin ports {', '.join(map(str, fw.admin_ports))} are open to any "
            "source; set admin_cidr to restrict them."
        )
    return GeneratedConfig("firewall", {RULESET_PATH: text}, {RULESET_PATH: RULESET_MODE}, out)


# Per environment: (statement_timeout, idle_in_transaction, lock_timeout,
# log_statement, log_min_duration_statement). Production logs schema changes
# (ddl) for the audit trail; development logs every statement.
_ENVIRONMENT = {
    "production": ("60s", "5min", "10s", "ddl", "1s"),
    "staging": ("120s", "10min", "30s", "ddl", "500ms"),
    "development": ("300s", "30min", "60s", "all", "250ms"),
}


def render_postgresql(p: PostgresqlParams) -> GeneratedConfig:
    statement, idle, lock, log_statement, slow = _ENVIRONMENT[p.environment]
    conf_dir = f"etc/postgresql/{p.version}/main"
    values = {
        "environment": p.environment,
        "version": p.version,
        "listen_addresses": p.listen_addresses,
        "port": p.port,
        "max_connections": p.max_connections,
        "ssl_cert_file": p.ssl_cert_file,
        "ssl_key_file": p.ssl_key_file,
        "allowed_cidrs": p.allowed_cidrs,
        "statement_timeout": p.statement_timeout or statement,
        "idle_in_transaction_session_timeout": p.idle_in_transaction_session_timeout or idle,
        "lock_timeout": lock,
        "log_statement": log_statement,
        "log_min_duration_statement": slow,
    }
    files = {
        f"{conf_dir}/postgresql.conf": _render("postgresql/postgresql.conf.j2", **values),
        f"{conf_dir}/pg_hba.conf": _render("postgresql/pg_hba.conf.j2", **values),
        f"{conf_dir}/pg_ident.conf": (
            "# pg_ident.conf generated by Jupiter: no user name maps.\n"
            "# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n"
        ),
    }
    modes = {path: 0o640 for path in files}
    modes[f"{conf_dir}/postgresql.conf"] = 0o644
    out = [
        f"Provision the TLS certificate {p.ssl_cert_file} and its private key "
        f"{p.ssl_key_file} (key mode 0600 owned by postgres, or 0640 root:postgres) before "
        "starting the server: with ssl = on it refuses to start without them.",
        "Passwords stored as MD5 keep failing SCRAM authentication: reset them "
        "(\\password in psql) after password_encryption = scram-sha-256 applies.",
        "Clients must connect with TLS (sslmode=require or stricter); plain TCP is rejected.",
    ]
    if not p.allowed_cidrs:
        out.append(
            "Only local clients can connect; set allowed_cidrs to admit application "
            "networks over TLS."
        )
    return GeneratedConfig("postgresql", files, modes, out)
