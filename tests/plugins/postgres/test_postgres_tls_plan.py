"""postgresql-conf and pg-hba TLS plans without a server: Mozilla profile
levels, client certificates, and certificates that fall short."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jupiter.plans import GenerateKey, sha256_bytes
from jupiter.plugins.postgres.fix import PgHba, PostgresParams, PostgresqlConf
from jupiter.plugins.postgres.tls import PROFILES
from tests.plugins.postgres.test_postgres_conf import HBA, MAIN, PARAMS, apply, small_host


def test_tls_profile_is_detected_and_fixed_to_the_level_asked(tmp_path: Path) -> None:
    target = small_host(tmp_path, "ssl = on\nssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'\n")
    conf = PostgresqlConf()
    [finding] = [f for f in conf.detect(target, PARAMS) if f.rule_id == "PG-TLS-PROFILE"]
    assert "ssl_ciphers" in finding.evidence and "outside Mozilla intermediate" in finding.evidence
    apply(target, conf.plan(finding, target, PARAMS))
    text = target.read_bytes(MAIN).decode()
    assert f"ssl_ciphers = '{PROFILES['intermediate'].ciphers}'" in text
    assert "ssl_min_protocol_version = 'TLSv1.2'" in text
    assert "ssl_prefer_server_ciphers = 'off'" in text and "ssl_ecdh_curve = 'prime256v1'" in text
    assert [f.rule_id for f in conf.detect(target, PARAMS) if f.rule_id == "PG-TLS-PROFILE"] == []
    # modern asks for more: TLS 1.3 only
    modern = PostgresParams(tls_profile="modern")
    [finding] = [f for f in conf.detect(target, modern) if f.rule_id == "PG-TLS-PROFILE"]
    assert "not TLSv1.3" in finding.evidence
    apply(target, conf.plan(finding, target, modern))
    assert "ssl_min_protocol_version = 'TLSv1.3'" in target.read_bytes(MAIN).decode()
    assert conf.plan(finding, target, modern).empty


def test_client_certificates_make_remote_records_demand_verify_full(tmp_path: Path) -> None:
    hba = "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n"
    hba += "host all all 10.0.0.0/8 scram-sha-256  # app servers\n"
    target = small_host(tmp_path, "ssl = on\n", hba)
    assert [f for f in PgHba().detect(target, PARAMS) if "CLIENTCERT" in f.rule_id] == []
    certs = PostgresParams(client_certificates=True)
    [finding] = [f for f in PgHba().detect(target, certs) if f.rule_id == "PG-HBA-NO-CLIENTCERT"]
    assert finding.location.start_line == 3  # loopback is left alone
    plan = PgHba().plan(finding, target, certs)
    assert any("ssl_ca_file is not set" in w for w in plan.risk.warnings)
    apply(target, plan)
    lines = target.read_bytes(HBA).decode().splitlines()
    assert lines[2].split()[:6] == [
        "hostssl",
        "all",
        "all",
        "10.0.0.0/8",
        "scram-sha-256",
        "clientcert=verify-full",
    ]
    assert lines[2].endswith("# app servers") and lines[1].startswith("host ")
    assert PgHba().plan(finding, target, certs).empty


def _old_cert(days: int = 825) -> tuple[bytes, bytes]:
    """A certificate as Jupiter used to make them: 825 days, no key identifiers."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "db")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("db")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem


def test_weak_certificate_is_reissued_when_jupiter_made_it(tmp_path: Path) -> None:
    conf = "ssl = on\nssl_cert_file = 'jupiter-server.crt'\nssl_key_file = 'jupiter-server.key'\n"
    target = small_host(tmp_path, conf)
    cert, key = _old_cert()
    target.write_bytes("etc/postgresql/15/main/jupiter-server.crt", cert, 0o644)
    target.write_bytes("etc/postgresql/15/main/jupiter-server.key", key, 0o600)
    [finding] = [f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-TLS-CERT"]
    assert "valid 825 days" in finding.evidence and "authority key identifier" in finding.evidence
    plan = PostgresqlConf().plan(finding, target, PARAMS)
    [new_key] = [c for c in plan.changes if isinstance(c, GenerateKey)]
    assert new_key.before_sha256 == sha256_bytes(key)  # replaces the old key, by hash
    apply(target, plan)
    assert target.read_bytes(new_key.path) != key
    assert [f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-TLS-CERT"] == []
    assert PostgresqlConf().plan(finding, target, PARAMS).empty


def test_weak_operator_certificate_needs_a_human(tmp_path: Path) -> None:
    conf = "ssl = on\nssl_cert_file = '/etc/ssl/db.crt'\nssl_key_file = '/etc/ssl/db.key'\n"
    target = small_host(tmp_path, conf)
    cert, key = _old_cert(days=5)  # expired five days ago
    target.write_bytes("etc/ssl/db.crt", cert, 0o644)
    target.write_bytes("etc/ssl/db.key", key, 0o600)
    [finding] = [f for f in PostgresqlConf().detect(target) if f.rule_id == "PG-TLS-CERT"]
    assert "expired" in finding.evidence
    plan = PostgresqlConf().plan(finding, target, PARAMS)
    assert plan.empty and plan.needs_manual and "ca_cert=" in plan.needs_manual
