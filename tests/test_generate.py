"""``jupiter generate``: every variant renders a configuration that passes the
same checks as a fixed one (the remediator's detect) and the daemon's own
validator (sshd -t, nft -c, a real postgres start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.generate import GeneratedConfig, generate, known_parameters, write_generated
from jupiter.models import FindingRecord
from jupiter.plans import Plan, WriteFile
from jupiter.plugins.nftables.fix import NftablesFirewall, parse_firewall_params
from jupiter.plugins.postgres.fix import PgHba, PostgresqlConf
from jupiter.plugins.postgres.server import find_postgres, server_account
from jupiter.plugins.postgres.tls import self_signed
from jupiter.plugins.sshd import detect as sshd_checks
from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import need_service


def materialise(tmp_path: Path, generated: GeneratedConfig) -> tuple[LocalTarget, Plan]:
    """Write the generated files into an empty target; also return them as a
    plan (what the validators are given)."""
    target = LocalTarget(tmp_path)
    changes = []
    for path, content in generated.files.items():
        target.write_bytes(path, content.encode(), generated.modes.get(path))
        changes.append(WriteFile(path=path, content=content, before_sha256=None))
    plan = Plan(remediator="generate", rule_id=generated.kind, title="generated", changes=changes)
    return target, plan


def passed(result_status: str, detail: str, tool: str) -> None:
    need_service(result_status != "skipped", f"{tool} unavailable: {detail}")
    assert result_status == "passed", detail


# ------------------------------------------------------------------ ssh


@pytest.mark.parametrize("level", list(sshd_checks.LEVELS))
def test_ssh_every_level_passes_the_sshd_checks_and_sshd_t(tmp_path: Path, level: str) -> None:
    generated = generate(
        "ssh",
        {
            "level": level,
            "port": 2222,
            "allow_groups": "ssh-users",
            "listen_address": ["127.0.0.1", "::1"],
        },
    )
    target, plan = materialise(tmp_path, generated)
    remediator = SshdHardening()
    assert remediator.detect(target, SshdParams(level=level)) == []
    [result] = remediator.validate(plan, OverlayView(target, plan))
    passed(result.status, result.detail, "sshd -t")
    text = generated.files["etc/ssh/sshd_config"]
    assert "Port 2222\n" in text and "AllowGroups ssh-users\n" in text
    assert "ListenAddress ::1\n" in text and "\nInclude" not in text


def test_ssh_writes_every_setting_the_checks_judge(tmp_path: Path) -> None:
    text = generate("ssh", {"level": "baseline"}).files["etc/ssh/sshd_config"]
    keywords = {line.split()[0] for line in text.splitlines() if line and line[0] != "#"}
    for rule in sshd_checks.RULES:
        for setting in rule.settings:
            assert setting.keyword in keywords, setting.keyword
    # Below its level a rule keeps OpenSSH's default, and says so.
    assert "PasswordAuthentication yes\n" in text
    assert "# SSHD-PASSWORD-AUTH is required from level strict" in text
    # A baseline file is not clean at strict: the levels are real.
    strict = {f.rule_id for f in detect_at(tmp_path, text, "strict")}
    assert strict == {
        "SSHD-PASSWORD-AUTH",
        "SSHD-KBD-INTERACTIVE",
        "SSHD-RSA-KEY-SIZE",
        "SSHD-WEAK-PUBKEY-ALGORITHMS",
    }


def detect_at(tmp_path: Path, text: str, level: sshd_checks.Level) -> list[FindingRecord]:
    target = LocalTarget(tmp_path)
    target.write_bytes("etc/ssh/sshd_config", text.encode())
    return sshd_checks.check(target, level)


def test_ssh_validator_catches_a_broken_rendering(tmp_path: Path) -> None:
    # The validator used above can fail: feed it the generated file with an
    # algorithm sshd does not know.
    generated = generate("ssh", {})
    text = generated.files["etc/ssh/sshd_config"].replace("MACs ", "MACs hmac-nonsense,")
    broken = GeneratedConfig("ssh", {"etc/ssh/sshd_config": text})
    target, plan = materialise(tmp_path, broken)
    [result] = SshdHardening().validate(plan, OverlayView(target, plan))
    need_service(result.status != "skipped", result.detail)
    assert result.status == "failed" and "hmac-nonsense" in result.detail


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"colour": "red"}, "unknown parameter 'colour'; known: level, openssh_version,"),
        ({"level": "paranoid"}, "generate ssh: parameter 'level'"),
        ({"port": 0}, "generate ssh: parameter 'port'"),
        ({"allow_users": ["alice", "bob\nPermitRootLogin yes"]}, "not a user or group pattern"),
        ({"listen_address": "example.org"}, "'example.org' is not an IPv4 or IPv6 address"),
    ],
)
def test_ssh_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=r"^generate ssh: ") as info:
        generate("ssh", params)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ firewall


@pytest.mark.parametrize("asset_type", ["web_server", "database", "bastion", "generic"])
def test_firewall_every_asset_type_is_clean_and_nft_accepts_it(
    tmp_path: Path, asset_type: str
) -> None:
    params = {"asset_type": asset_type, "allow": "8443", "admin_cidr": "10.1.0.0/16"}
    generated = generate("firewall", params)
    target, plan = materialise(tmp_path, generated)
    declared = parse_firewall_params(
        {"asset_type": asset_type, "allow_ports": [8443], "admin_cidr": "10.1.0.0/16"}
    )
    remediator = NftablesFirewall()
    assert remediator.detect(target, declared) == []
    assert target.stat("etc/nftables.conf").mode == 0o755  # type: ignore[union-attr]
    [result] = remediator.validate(plan, OverlayView(target, plan))
    passed(result.status, result.detail, "nft -c")
    text = generated.files["etc/nftables.conf"]
    assert "ip saddr 10.1.0.0/16 tcp dport { 22 } accept" in text
    assert ("80, 443, 8443" in text) == (asset_type == "web_server")


def test_firewall_rejects_ports_that_are_not_ports() -> None:
    with pytest.raises(
        InputError,
        match=r"^generate firewall: parameter 'allow': 'http' is not "
        r"a port number",
    ):
        generate("firewall", {"allow": "80,http"})
    with pytest.raises(InputError, match="70000"):
        generate("firewall", {"allow": [443, 70000]})
    with pytest.raises(InputError, match="'admin_cidr'"):
        generate("firewall", {"admin_cidr": "10.0.0.1/8"})


# ------------------------------------------------------------------ postgresql


@pytest.mark.parametrize("environment", ["production", "staging", "development"])
def test_postgresql_every_environment_passes_the_pg_checks_and_starts(
    tmp_path: Path, environment: str
) -> None:
    generated = generate(
        "postgresql",
        {
            "environment": environment,
            "allowed_cidrs": "10.20.0.0/16, fd00::/8",
            "listen_addresses": "localhost,10.20.0.5",
            "max_connections": 150,
        },
    )
    target, plan = materialise(tmp_path, generated)
    assert PostgresqlConf().detect(target) == []
    assert PgHba().detect(target) == []
    conf = generated.files["etc/postgresql/15/main/postgresql.conf"]
    assert ("log_statement = 'ddl'" in conf) == (environment != "development")
    assert "max_connections = 150\n" in conf
    hba = generated.files["etc/postgresql/15/main/pg_hba.conf"]
    tcp = [line.split() for line in hba.splitlines() if line.startswith("host")]
    assert all((f[0] == "hostssl" and f[-1] == "scram-sha-256") or f[-1] == "reject" for f in tcp)
    assert any(f[3] == "fd00::/8" for f in tcp)
    assert any("Provision the TLS certificate" in n for n in generated.notes)

    binary, account = find_postgres(), server_account()
    need_service(
        binary is not None and not isinstance(account, str),
        f"no PostgreSQL server to start here ({account})",
    )
    # The note says to provision the certificate: do so, then start the server.
    cert, key = self_signed("db.example.test")
    target.write_bytes("etc/ssl/certs/postgresql-server.crt", cert.encode(), 0o644)
    target.write_bytes("etc/ssl/private/postgresql-server.key", key.encode(), 0o600)
    [result] = PostgresqlConf().validate(plan, OverlayView(target, plan))
    assert result.status == "passed", result.detail


def test_postgresql_without_the_certificate_does_not_start(tmp_path: Path) -> None:
    target, plan = materialise(tmp_path, generate("postgresql", {}))
    binary, account = find_postgres(), server_account()
    need_service(binary is not None and not isinstance(account, str), "no PostgreSQL server")
    [result] = PostgresqlConf().validate(plan, OverlayView(target, plan))
    assert result.status == "failed" and "certificate" in result.detail


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"listen_addresses": "*"}, "listens on every interface"),
        ({"allowed_cidrs": "0.0.0.0/0"}, "admits the whole internet"),
        ({"allowed_cidrs": "10.0.0.1/8"}, "not a network"),
        ({"statement_timeout": "1 hour"}, "not a PostgreSQL duration"),
        ({"ssl_key_file": "relative.key"}, "not an absolute path"),
        ({"environment": "prod"}, "parameter 'environment'"),
        ({"ssl": "off"}, "unknown parameter 'ssl'; known: environment, version,"),
    ],
)
def test_postgresql_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=r"^generate postgresql: ") as info:
        generate("postgresql", params)
    assert message in str(info.value)


def test_unknown_kind_and_known_parameters() -> None:
    with pytest.raises(InputError, match="unknown kind 'apache'; choose one of ssh, firewall"):
        generate("apache", {})  # type: ignore[arg-type]
    assert known_parameters("firewall")[:2] == ["asset_type", "allow"]


def test_write_generated_writes_modes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    config = generate("firewall", {"asset_type": "database"})
    [written] = write_generated(config, tmp_path / "out")
    assert written == tmp_path / "out/etc/nftables.conf"
    assert written.read_text() == config.files["etc/nftables.conf"]
    assert written.stat().st_mode & 0o777 == 0o755
    written.write_text("mine\n")
    with pytest.raises(InputError, match=r"nftables.conf already exists; .* --force"):
        write_generated(config, tmp_path / "out")
    assert written.read_text() == "mine\n"
    write_generated(config, tmp_path / "out", force=True)
    assert written.read_text() == config.files["etc/nftables.conf"]
