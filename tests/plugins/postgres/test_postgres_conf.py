"""postgresql-conf and pg-hba: parsing, detection, plans, apply, re-plan (no server)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from jupiter.errors import ConflictError, InputError
from jupiter.keygen import materialise
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plans import (
    GENERATED_KEY,
    GenerateKey,
    IssueCertificate,
    Plan,
    SetMode,
    WriteFile,
    sha256_bytes,
)
from jupiter.plugins.postgres import detect as checks
from jupiter.plugins.postgres.edit import replace_fields
from jupiter.plugins.postgres.fix import PgHba, PostgresParams, PostgresqlConf
from jupiter.plugins.postgres.parse_conf import parse_conf, parse_conf_line
from jupiter.plugins.postgres.parse_hba import parse_hba
from jupiter.plugins.postgres.tls import PROFILES
from jupiter.targets.local import LocalTarget

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "postgres"
MAIN = "etc/postgresql/15/main/postgresql.conf"
HBA = "etc/postgresql/15/main/pg_hba.conf"
LEGACY = "etc/postgresql/15/main/conf.d/50-legacy-app.conf"
PARAMS = PostgresParams()


def host(tmp_path: Path) -> LocalTarget:
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, root)
    return LocalTarget(root)


def small_host(tmp_path: Path, conf: str, hba: str = "", version: str = "15") -> LocalTarget:
    root = tmp_path / "small"
    main = root / f"etc/postgresql/{version}/main"
    main.mkdir(parents=True)
    (main / "postgresql.conf").write_text(conf)
    (main / "pg_hba.conf").write_text(hba)
    return LocalTarget(root)


def apply(target: LocalTarget, plan: Plan) -> None:
    """Apply a plan as the engine does (checking each precondition)."""
    for change in plan.changes:
        if isinstance(change, GenerateKey | IssueCertificate):
            change = materialise(target, change)  # as the engine does, right before the write
        if isinstance(change, WriteFile):
            now = sha256_bytes(target.read_bytes(change.path)) if target.stat(change.path) else None
            assert now == change.before_sha256
            target.write_bytes(change.path, change.content.encode(), change.mode)
        elif isinstance(change, SetMode):
            target.set_mode(change.path, change.mode)
            if change.uid is not None and change.gid is not None:
                target.set_owner(change.path, change.uid, change.gid)
        else:
            raise AssertionError(f"unexpected change {change!r}")


def located(findings: list[FindingRecord]) -> set[tuple[str, str | None, int | None]]:
    return {(f.rule_id, f.location.path, f.location.start_line) for f in findings}


def detect_all(target: LocalTarget) -> list[FindingRecord]:
    return PostgresqlConf().detect(target, PARAMS) + PgHba().detect(target, PARAMS)


# ------------------------------------------------------------------ detection


def test_fixture_findings_point_at_the_effective_lines(tmp_path: Path) -> None:
    findings = detect_all(host(tmp_path))
    assert located(findings) == {
        ("PG-SSL-OFF", MAIN, 822),  # "ssl off" after the include_dir wins over "ssl = 'on'"
        ("PG-PASSWORD-ENCRYPTION", LEGACY, 2),
        ("PG-LOG-CONNECTIONS", LEGACY, 3),  # conf.d's "no" is read after the main file's "on"
        ("PG-LOG-DISCONNECTIONS", MAIN, 556),  # unset: its commented-out template line
        ("PG-LISTEN-ALL", MAIN, 60),
        ("PG-HBA-TRUST", HBA, 19),
        ("PG-HBA-WEAK-AUTH", HBA, 23),
        ("PG-HBA-WEAK-AUTH", HBA, 30),
        ("PG-HBA-WEAK-AUTH", HBA, 31),
        ("PG-HBA-WEAK-AUTH", HBA, 33),
        ("PG-HBA-NO-SSL", HBA, 33),
        ("PG-HBA-TRUST", HBA, 34),
        ("PG-HBA-NO-SSL", HBA, 34),
    }
    assert all(f.category is Category.CONFIG_DATABASE for f in findings)
    by_key = {(f.rule_id, f.location.start_line): f for f in findings}
    assert by_key[("PG-HBA-TRUST", 34)].severity is Severity.CRITICAL  # trust from ::/0
    assert by_key[("PG-HBA-WEAK-AUTH", 30)].severity is Severity.HIGH  # cleartext password
    assert by_key[("PG-HBA-WEAK-AUTH", 31)].severity is Severity.MEDIUM
    assert by_key[("PG-SSL-OFF", 822)].evidence == "ssl     off\t\t\t# was: on"
    # The hidden conf.d/.ssl-on.conf is not read: include_dir skips dot files.
    assert (
        "etc/postgresql/15/main/conf.d/.ssl-on.conf"
        not in checks.load_cluster(host(tmp_path / "again"), MAIN).config.files
    )


def test_conf_line_syntax() -> None:
    s = parse_conf_line("f", 1, "  Log_Connections   yes   # trailing")
    assert s is not None and (s.name, s.value, s.quoted) == ("log_connections", "yes", False)
    with pytest.raises(InputError):  # a list must be one quoted token
        parse_conf_line("f", 2, "search_path = 'a', 'b'")
    assert parse_conf_line("f", 3, "# only a comment") is None
    assert parse_conf_line("f", 4, "   ") is None
    s = parse_conf_line("f", 5, r"x.y='it''s a \'q\' \n'#c")
    assert s is not None and s.name == "x.y" and s.value == "it's a 'q' \n" and s.quoted
    s = parse_conf_line("f", 6, "shared_buffers=128MB")
    assert s is not None and s.value == "128MB" and s.span == (15, 20)
    s = parse_conf_line("f", 7, "ssl_min_protocol_version = TLSv1.2")
    assert s is not None and s.value == "TLSv1.2"


def test_conf_line_errors_name_file_and_line() -> None:
    with pytest.raises(InputError, match=r"^f\.conf line 9: .*after the value"):
        parse_conf_line("f.conf", 9, "ssl = on off")
    with pytest.raises(InputError, match="line 3: a value for 'ssl'"):
        parse_conf_line("f.conf", 3, "ssl =")
    with pytest.raises(InputError, match="line 4: a setting name"):
        parse_conf_line("f.conf", 4, "= on")
    with pytest.raises(InputError, match="line 5"):
        parse_conf_line("f.conf", 5, "ssl = 'unterminated")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True),
        ("ON", True),
        ("t", True),
        ("tru", True),
        ("yes", True),
        ("y", True),
        ("1", True),
        ("off", False),
        ("of", False),
        ("f", False),
        ("No", False),
        ("0", False),
        ("o", None),
        ("2", None),
        ("yess", None),
        ("", None),
    ],
)
def test_booleans_follow_postgresql(value: str, expected: bool | None) -> None:
    assert checks.parse_bool(value) is expected


def test_includes_last_value_wins_and_errors(tmp_path: Path) -> None:
    target = small_host(
        tmp_path,
        (
            "ssl = on\n"
            "include 'extra/a.conf'\n"
            "include_if_exists '/etc/postgresql/15/main/absent.conf'\n"
            "include_dir '/etc/postgresql/15/main/d'\n"
        ),
    )
    root = tmp_path / "small/etc/postgresql/15/main"
    (root / "extra").mkdir()
    (root / "extra/a.conf").write_text("ssl = off\nwork_mem = 1MB\n")
    (root / "d").mkdir()
    (root / "d/20-b.conf").write_text("work_mem = 3MB\n")
    (root / "d/10-a.conf").write_text("work_mem = 2MB\nssl = true\n")
    (root / "d/.99-hidden.conf").write_text("work_mem = 9MB\n")
    config = parse_conf(target, MAIN)
    assert config.value("work_mem") == "3MB"
    assert config.get("ssl") is not None and config.get("ssl").line == 2  # type: ignore[union-attr]
    assert list(config.files) == [
        MAIN,
        "etc/postgresql/15/main/extra/a.conf",
        "etc/postgresql/15/main/d/10-a.conf",
        "etc/postgresql/15/main/d/20-b.conf",
    ]
    (root / "d/10-a.conf").write_text("include '../postgresql.conf'\n")
    with pytest.raises(InputError, match="loops back"):
        parse_conf(target, MAIN)
    (root / "d/10-a.conf").write_text("include 'missing.conf'\n")
    with pytest.raises(InputError, match=r"d/10-a\.conf line 1: included file 'missing\.conf'"):
        parse_conf(target, MAIN)


def test_auto_conf_is_read_last(tmp_path: Path) -> None:
    target = small_host(tmp_path, "data_directory = '/var/lib/postgresql/15/main'\nssl = on\n")
    data = tmp_path / "small/var/lib/postgresql/15/main"
    data.mkdir(parents=True)
    (data / "postgresql.auto.conf").write_text("# Do not edit this file manually!\nssl = 'off'\n")
    [finding] = [f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-SSL-OFF"]
    assert finding.location.path == "var/lib/postgresql/15/main/postgresql.auto.conf"
    assert finding.location.start_line == 2


def test_password_encryption_default_depends_on_version(tmp_path: Path) -> None:
    rules = {f.rule_id for f in PostgresqlConf().detect(small_host(tmp_path / "a", ""))}
    assert "PG-PASSWORD-ENCRYPTION" not in rules  # scram-sha-256 by default since 14
    old = small_host(tmp_path / "b", "", version="13")
    assert "PG-PASSWORD-ENCRYPTION" in {f.rule_id for f in PostgresqlConf().detect(old)}
    bad = small_host(tmp_path / "c", "password_encryption = on\n")
    assert "PG-PASSWORD-ENCRYPTION" in {f.rule_id for f in PostgresqlConf().detect(bad)}


def test_invalid_boolean_is_an_input_error(tmp_path: Path) -> None:
    target = small_host(tmp_path, "\nlog_connections = maybe\n")
    with pytest.raises(InputError, match=r"postgresql\.conf line 2: log_connections = 'maybe'"):
        PostgresqlConf().detect(target)


# ------------------------------------------------------------------ pg_hba


def test_hba_parser_fields_masks_options_and_pg16_includes() -> None:
    text = (
        'host  "my db",other  app, "report user"  192.168.1.0 255.255.255.0  ldap '
        'ldapserver=ldap.example.com ldapprefix="cn=" # c\n'
        "include_dir hba.d\n"
        "hostssl all all .example.com scram-sha-256\n"
        "host all all fe80::/10 md5\n"
    )
    hba = parse_hba("hba", text)
    first, named, v6 = hba.records
    assert [f.text for f in first.fields][1:5] == [
        '"my db",other',
        'app, "report user"',
        "192.168.1.0",
        "255.255.255.0",
    ]
    assert first.method == "ldap" and str(first.network) == "192.168.1.0/24"
    assert first.options == ("ldapserver=ldap.example.com", 'ldapprefix="cn="')
    assert hba.includes == [2]
    assert named.network is None and named.address == ".example.com"
    assert str(v6.network) == "fe80::/10"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("host all", "the user field is missing"),
        ("host all all", "the address field is missing"),
        ("host all all 10.0.0.0/8", "the authentication method is missing"),
        ("host all all 10.0.0.1 md5", "needs a /prefix or a netmask"),
        ("local all all trusted", "unknown authentication method 'trusted'"),
        ("hots all all all md5", "unknown connection type 'hots'"),
        ("host all all 10.0.0.0/8 ldap ldapserver", "not of the form name=value"),
    ],
)
def test_hba_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(InputError, match=rf"^pg_hba\.conf line 2: .*{message}"):
        parse_hba("pg_hba.conf", f"local all all peer\n{line}\n")


def test_replace_fields_keeps_columns() -> None:
    line = "host    all    all    0.0.0.0/0    md5    # vpn"
    fields = parse_hba("f", line).records[0].fields
    assert replace_fields(line, fields, {0: "hostssl", 4: "scram-sha-256"}) == (
        "hostssl all    all    0.0.0.0/0    scram-sha-256 # vpn"
    )
    assert replace_fields(line, fields, {4: "peer"}) == (
        "host    all    all    0.0.0.0/0    peer   # vpn"
    )


# ------------------------------------------------------------------ plans


def fix_everything(target: LocalTarget) -> list[Plan]:
    """Plan and apply one finding at a time until only manual ones remain."""
    plans = []
    for _ in range(40):
        actionable = []
        for remediator in (PostgresqlConf(), PgHba()):
            for finding in remediator.detect(target, PARAMS):
                plan = remediator.plan(finding, target, PARAMS)
                if not plan.needs_manual:
                    actionable.append(plan)
        if not actionable:
            return plans
        apply(target, actionable[0])
        plans.append(actionable[0])
    raise AssertionError("fixing does not converge")


def test_fix_all_keeps_layout_then_detect_clean_and_replan_empty(tmp_path: Path) -> None:
    target = host(tmp_path)
    before = {p: target.read_bytes(p).decode() for p in (MAIN, HBA, LEGACY)}
    original = detect_all(target)
    plans = fix_everything(target)
    assert {p.rule_id for p in plans} >= {
        "PG-SSL-OFF",
        "PG-PASSWORD-ENCRYPTION",
        "PG-LOG-CONNECTIONS",
        "PG-LOG-DISCONNECTIONS",
        "PG-HBA-TRUST",
        "PG-HBA-WEAK-AUTH",
    }
    assert [f.rule_id for f in detect_all(target)] == ["PG-LISTEN-ALL"]
    for finding in original:
        remediator = PgHba() if finding.rule_id.startswith("PG-HBA") else PostgresqlConf()
        replan = remediator.plan(finding, target, PARAMS)
        assert replan.empty, finding.rule_id
        assert (replan.needs_manual is not None) == (finding.rule_id == "PG-LISTEN-ALL")

    after = {p: target.read_bytes(p).decode() for p in (MAIN, HBA, LEGACY)}
    changed = {p: _changed_lines(before[p], after[p]) for p in before}
    assert changed[LEGACY] == {
        2: "password_encryption = scram-sha-256\t# the old driver cannot do SCRAM",
        3: "log_connections = on\t\t# too noisy, fills /var/log (OPS-640)",
    }
    mozilla = "# set by jupiter (PG-SSL-OFF), Mozilla intermediate"
    assert changed[MAIN] == {
        108: "ssl_cert_file = '/etc/postgresql/15/main/jupiter-server.crt'",
        111: "ssl_key_file = '/etc/postgresql/15/main/jupiter-server.key'",
        # Mozilla intermediate, under each setting's commented-out template
        113: f"ssl_ciphers = '{PROFILES['intermediate'].ciphers}'\t{mozilla}",
        115: f"ssl_prefer_server_ciphers = 'off'\t{mozilla}",
        117: f"ssl_ecdh_curve = 'prime256v1'\t\t{mozilla}",
        560: "log_disconnections = on\t\t\t# set by jupiter (PG-LOG-DISCONNECTIONS)",
        826: "ssl     on\t\t\t# was: on",
    }
    assert changed[HBA] == {
        19: "local   all             all                                     peer",
        23: "host    all             all             ::1/128                 scram-sha-256",
        30: 'hostssl appdb           app,"report user"       10.20.0.0/16    scram-sha-256',
        31: "hostssl appdb           app             192.168.10.0 255.255.255.0      scram-sha-256",
        33: "hostssl all             all             0.0.0.0/0               scram-sha-256",
        34: "hostssl all             +dba            ::/0                    scram-sha-256 "
        "# TODO remove after the audit",
    }
    key = tmp_path / "host/etc/postgresql/15/main/jupiter-server.key"
    cert = x509.load_pem_x509_certificate(key.with_suffix(".crt").read_bytes())
    private = load_pem_private_key(key.read_bytes(), password=None)
    assert cert.public_key() == private.public_key()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def _changed_lines(before: str, after: str) -> dict[int, str]:
    """Lines of ``after`` that are not in ``before`` at the same place (one insert
    allowed: later lines shift by one)."""
    a, b = before.splitlines(), after.splitlines()
    out, i, j = {}, 0, 0
    while j < len(b):
        if i < len(a) and a[i] == b[j]:
            i, j = i + 1, j + 1
        elif i < len(a) and j + 1 < len(b) and a[i] == b[j + 1]:
            out[j + 1] = b[j]  # inserted line
            j += 1
        else:
            out[j + 1] = b[j]
            i, j = i + 1, j + 1
    assert i == len(a), "lines were removed"
    return out


def test_ssl_plan_describes_key_and_cert_and_names_them_under_server_root(
    tmp_path: Path,
) -> None:
    target = host(tmp_path)
    ssl = next(f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-SSL-OFF")
    plan = PostgresqlConf().plan(ssl, target, PostgresParams(server_root="/srv/chroot"))
    key_path = "etc/postgresql/15/main/jupiter-server.key"
    cert_path = "etc/postgresql/15/main/jupiter-server.crt"
    [key] = [c for c in plan.changes if isinstance(c, GenerateKey)]
    [cert] = [c for c in plan.changes if isinstance(c, IssueCertificate)]
    assert (key.path, key.mode, key.key_type) == (key_path, 0o600, "ec-p256")
    assert (cert.path, cert.key_path, cert.valid_days) == (cert_path, key_path, 365)
    assert cert.ca_cert_path is None and "127.0.0.1" in cert.ip_addresses
    # the plan holds a description, never a key: not in its data, not in its diff
    body = json.dumps(plan.to_json())
    assert "PRIVATE KEY" not in body and "BEGIN" not in body
    assert f"+{GENERATED_KEY}" in plan.diff
    writes = {c.path: c for c in plan.changes if isinstance(c, WriteFile)}
    assert "ssl_key_file = '/srv/chroot/etc/postgresql/15/main/jupiter-server.key'" in (
        writes[MAIN].content
    )
    # key and certificate are made before the configuration that names them is written
    assert [c.path for c in plan.changes][-1] == MAIN
    assert any("self-signed" in w for w in plan.risk.warnings)
    assert plan.risk.services_to_reload == ["postgresql"]
    # the hash covers the spec: another validity is another plan
    longer = plan.model_copy(
        update={
            "changes": [
                c.model_copy(update={"valid_days": 30}) if c is cert else c for c in plan.changes
            ]
        }
    )
    assert longer.plan_hash() != plan.plan_hash()
    # re-planning the same state gives the same plan (nothing random is in it)
    assert PostgresqlConf().plan(ssl, target, PostgresParams(server_root="/srv/chroot")) == plan


def test_ssl_plan_uses_configured_files_when_present(tmp_path: Path) -> None:
    target = host(tmp_path)
    for name in ("etc/ssl/certs/ssl-cert-snakeoil.pem", "etc/ssl/private/ssl-cert-snakeoil.key"):
        path = tmp_path / "host" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    ssl = next(f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-SSL-OFF")
    plan = PostgresqlConf().plan(ssl, target, PARAMS)
    assert [c.path for c in plan.changes] == [MAIN]
    assert plan.diff.count("\n-") == 1 and "+ssl     on\t\t\t# was: on" in plan.diff
    assert plan.risk.warnings == []


def test_unset_setting_is_appended_without_template(tmp_path: Path) -> None:
    target = small_host(tmp_path, "# tuned\nwork_mem = 4MB")  # no final newline
    finding = next(f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-LOG-CONNECTIONS")
    assert finding.location.start_line is None
    plan = PostgresqlConf().plan(finding, target, PARAMS)
    apply(target, plan)
    assert target.read_bytes(MAIN).decode() == (
        "# tuned\nwork_mem = 4MB\nlog_connections = on\t\t\t# set by jupiter (PG-LOG-CONNECTIONS)\n"
    )
    assert PostgresqlConf().plan(finding, target, PARAMS).empty


def test_password_encryption_declares_the_reset_step(tmp_path: Path) -> None:
    target = host(tmp_path)
    finding = next(
        f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-PASSWORD-ENCRYPTION"
    )
    plan = PostgresqlConf().plan(finding, target, PARAMS)
    assert [c.path for c in plan.changes] == [LEGACY]
    assert any("ALTER ROLE" in step and "md5" in step for step in plan.risk.manual_steps)


def test_listen_all_needs_a_human(tmp_path: Path) -> None:
    target = host(tmp_path)
    finding = next(f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-LISTEN-ALL")
    plan = PostgresqlConf().plan(finding, target, PARAMS)
    assert plan.empty and plan.needs_manual is not None
    assert "line 60" in plan.needs_manual and "restart" in plan.needs_manual
    assert plan.risk.disruption


def test_hba_plan_fixes_the_whole_line_and_warns_when_ssl_is_off(tmp_path: Path) -> None:
    target = host(tmp_path)
    no_ssl = next(
        f
        for f in PgHba().detect(target)
        if f.rule_id == "PG-HBA-NO-SSL" and f.location.start_line == 34
    )
    plan = PgHba().plan(no_ssl, target, PARAMS)
    assert plan.related_findings == [f"PG-HBA-TRUST@{HBA}:34"]
    assert "+hostssl all             +dba            ::/0                    scram-sha-256" in (
        plan.diff
    )
    assert any("ssl is off" in w for w in plan.risk.warnings) and plan.risk.disruption
    assert any("need a password" in s for s in plan.risk.manual_steps)
    apply(target, plan)
    # the other finding of the same record is gone too
    trust = next(
        f
        for f in detect_all(host(tmp_path / "fresh"))
        if f.rule_id == "PG-HBA-TRUST" and f.location.start_line == 34
    )
    assert PgHba().plan(trust, target, PARAMS).empty


def test_loopback_md5_keeps_host_type(tmp_path: Path) -> None:
    target = small_host(tmp_path, "ssl = on\n", "host all all 127.0.0.1/32 md5\n")
    [finding] = PgHba().detect(target)
    plan = PgHba().plan(finding, target, PARAMS)
    assert plan.changes[0].content == "host all all 127.0.0.1/32 scram-sha-256\n"  # type: ignore[union-attr]
    assert plan.risk.warnings == []


def test_half_written_hba_line_is_an_input_error_and_nothing_is_planned(tmp_path: Path) -> None:
    target = host(tmp_path)
    finding = next(f for f in PgHba().detect(target) if f.rule_id == "PG-HBA-TRUST")
    hba = tmp_path / "host" / HBA
    hba.write_text(hba.read_text() + "host all\n")
    with pytest.raises(InputError, match=rf"^{HBA} line 37: the user field is missing"):
        PgHba().detect(target)
    with pytest.raises(InputError, match=rf"^{HBA} line 37"):
        PgHba().plan(finding, target, PARAMS)
    # postgresql.conf is another file: its findings still plan
    ssl = next(f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-SSL-OFF")
    assert HBA not in PostgresqlConf().plan(ssl, target, PARAMS).touched_paths()


def test_plan_refuses_foreign_rules_and_vanished_clusters(tmp_path: Path) -> None:
    target = host(tmp_path)
    foreign = FindingRecord(
        scanner="x",
        rule_id="SSHD-001",
        title="t",
        severity=Severity.LOW,
        location=Location(path=MAIN, start_line=1),
    )
    with pytest.raises(InputError, match="postgresql-conf cannot plan rule 'SSHD-001'"):
        PostgresqlConf().plan(foreign, target, PARAMS)
    gone = FindingRecord(
        scanner="x",
        rule_id="PG-SSL-OFF",
        title="t",
        severity=Severity.LOW,
        location=Location(path="etc/postgresql/9.6/main/postgresql.conf"),
    )
    with pytest.raises(ConflictError, match="run detect again"):
        PostgresqlConf().plan(gone, target, PARAMS)


def test_crlf_and_form_feeds_keep_lines_and_endings(tmp_path: Path) -> None:
    conf = "# ops\x0c notes\r\nssl = on\r\nlog_connections = off\r\nlog_disconnections = 1\r\n"
    target = small_host(tmp_path, conf)
    [finding] = [f for f in PostgresqlConf().detect(target) if f.rule_id != "PG-TLS-PROFILE"]
    assert (finding.rule_id, finding.location.start_line) == ("PG-LOG-CONNECTIONS", 3)
    apply(target, PostgresqlConf().plan(finding, target, PARAMS))
    assert target.read_bytes(MAIN) == conf.replace("= off", "= on").encode()


def test_example_host_shows_every_rule() -> None:
    example = LocalTarget(FIXTURE.parent.parent.parent / "examples" / "host")
    rules = {f.rule_id for f in PostgresqlConf().detect(example) + PgHba().detect(example)}
    # PG-TLS-PROFILE and PG-TLS-CERT need ssl on, and the example has it off
    # (PG-SSL-OFF); PG-HBA-NO-CLIENTCERT only applies where clients present
    # certificates
    # PG-INLINE-CONFIG is about Dockerfiles in a repository, not hosts
    optional = {"PG-TLS-PROFILE", "PG-TLS-CERT", "PG-HBA-NO-CLIENTCERT", "PG-INLINE-CONFIG"}
    assert rules == (PostgresqlConf.rule_ids | PgHba.rule_ids) - optional


def test_params_and_names() -> None:
    assert PostgresqlConf.name == "postgresql-conf" and PgHba.name == "pg-hba"
    with pytest.raises(ValueError, match="absolute"):
        PostgresParams(server_root="relative/path")
    assert PostgresParams(server_root="/srv/x/").server_root == "/srv/x"
    assert PostgresqlConf.rule_ids.isdisjoint(PgHba.rule_ids)
