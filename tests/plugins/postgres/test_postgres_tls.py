"""PostgreSQL after ``jupiter fix``, judged by the field's own auditor.

A real server is started with the fixed configuration and sslyze (its own
venv, ``scripts/tools.sh``) checks it against Mozilla's ``intermediate``
profile: compliant except certificate trust with a self-signed certificate,
fully compliant with the organisation's CA; and a client connects with
``sslmode=verify-full`` and a client certificate, as ``clientcert=verify-full``
demands.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jupiter.engine import Engine
from jupiter.plugins.postgres.server import Cluster, give_to, running_server
from jupiter.workspace import Workspace
from tests.export.helpers import run
from tests.plugins.postgres.test_postgres_server import (  # noqa: F401 - fixtures
    _free_port,
    _need_postgres_binary,
    _psql,
    host_dir,
    sandbox,
)
from tests.tools import tool

CONF_DIR = "etc/postgresql/15/main"
CA_DIR = "etc/ssl/org-ca"


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=300 if issuer else 3650))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def small_host(root: Path, with_ca: bool) -> tuple[Path, Path | None]:
    """A cluster whose only TCP rule admits any address (so loopback clients
    hit it) with SCRAM; returns its postgresql.conf and the CA file."""
    conf_dir = root / CONF_DIR
    conf_dir.mkdir(parents=True)
    conf = conf_dir / "postgresql.conf"
    conf.write_text(
        f"hba_file = '{conf_dir}/pg_hba.conf'\n"
        "#ssl = off\n#ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'\n"
        "password_encryption = scram-sha-256\nlog_connections = on\nlog_disconnections = on\n"
    )
    (conf_dir / "pg_hba.conf").write_text(
        "local   all   all                 peer\nhost    all   all   0.0.0.0/0     scram-sha-256\n"
    )
    ca_file = None
    if with_ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        (root / CA_DIR).mkdir(parents=True)
        ca_file = root / CA_DIR / "ca.crt"
        ca_file.write_bytes(
            _cert("Example Org CA", ca_key, None).public_bytes(serialization.Encoding.PEM)
        )
        (root / CA_DIR / "ca.key").write_bytes(_pem(ca_key))
        (root / CA_DIR / "ca.key").chmod(0o600)
    return conf, ca_file


def client_credentials(root: Path, ca_file: Path, role: str, into: Path) -> tuple[Path, Path]:
    ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(
        (root / CA_DIR / "ca.key").read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert_path, key_path = into / "client.crt", into / "client.key"
    cert_path.write_bytes(
        _cert(role, key, (ca_cert, ca_key)).public_bytes(serialization.Encoding.PEM)
    )
    key_path.write_bytes(_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def fix(root: Path, tmp_path: Path, params: list[str]) -> None:
    engine = Engine(Workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws/j.db'}"), "dba")
    try:
        result = engine.fix(
            str(root),
            only=["config.database"],
            raw_params=[
                f"postgresql-conf.server_root={root}",
                f"pg-hba.server_root={root}",
                *params,
            ],
        )
    finally:
        engine.close()
    assert {s["status"] for s in result["steps"]} <= {"verified", "already_fixed"}, result["steps"]


def sslyze(port: int, ca_file: Path | None, out: Path) -> tuple[int, str, dict[str, object]]:
    python = tool("sslyze", "python")
    argv: list[str | Path] = [
        python,
        "-m",
        "sslyze",
        "--starttls",
        "postgres",
        "--mozilla_config",
        "intermediate",
        "--json_out",
        out,
        f"127.0.0.1:{port}",
    ]
    if ca_file is not None:
        argv[-1:-1] = ["--certinfo_ca_file", ca_file]
    done = run(argv)
    return done.returncode, done.stdout + done.stderr, json.loads(out.read_text())


@pytest.mark.slow  # a validated fix, a real server and an sslyze scan: ~20 s
@pytest.mark.parametrize("with_ca", [False, True], ids=["self-signed", "org-ca"])
def test_fixed_server_meets_mozilla_intermediate(
    sandbox: Cluster,  # noqa: F811
    host_dir: Path,  # noqa: F811
    tmp_path: Path,
    with_ca: bool,
) -> None:
    tool("sslyze", "python")
    root = host_dir / "host"
    conf, ca_file = small_host(root, with_ca)
    give_to(root / "etc/postgresql", sandbox.who)
    params = ["postgresql-conf.host_names=localhost"]
    if with_ca:
        params += [
            f"postgresql-conf.ca_cert={CA_DIR}/ca.crt",
            f"postgresql-conf.ca_key={CA_DIR}/ca.key",
            "postgresql-conf.client_certificates=true",
            "pg-hba.client_certificates=true",
        ]
    fix(root, tmp_path, params)
    hba = (root / CONF_DIR / "pg_hba.conf").read_text()
    assert ("clientcert=verify-full" in hba) == with_ca and "hostssl" in hba

    port, work = _free_port(), sandbox.workdir()
    role = f"tls_{'ca' if with_ca else 'self'}"  # the module's cluster serves both cases
    try:
        with running_server(
            sandbox, conf, {"listen_addresses": "127.0.0.1"}, work, port=port
        ) as server:
            code, output, report = sslyze(port, ca_file, tmp_path / "sslyze.json")
            _psql(
                sandbox.who,
                server.socket_dir,
                port,
                f"CREATE ROLE {role} LOGIN PASSWORD 'Corr3ct-horse'",
            )
            if ca_file is not None:
                cert, key = client_credentials(root, ca_file, role, tmp_path)
                dsn = dict(
                    host="localhost",
                    port=port,
                    user=role,
                    dbname="postgres",
                    password="Corr3ct-horse",
                    connect_timeout=10,
                    sslmode="verify-full",
                    sslrootcert=str(ca_file),
                )
                with psycopg.connect(**dsn, sslcert=str(cert), sslkey=str(key)) as conn:
                    row = conn.execute(
                        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                    ).fetchone()
                    assert row is not None and row[0] is True and row[1] in ("TLSv1.2", "TLSv1.3")
                with pytest.raises(psycopg.OperationalError, match="certificate"):
                    psycopg.connect(**dsn).close()  # no client certificate: refused
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if with_ca:
        assert code == 0 and "OK - Compliant" in output, output
    else:
        # Only trust fails: nobody trusts a self-signed certificate by default.
        assert code != 0, output
        assert "certificate_path_validation" in output, output
        verdict = output.split("COMPLIANCE AGAINST TLS CONFIGURATION")[1]
        problems = [line for line in verdict.splitlines() if line.strip().startswith("*")]
        assert problems and all("certificate_path_validation" in p for p in problems), output
    assert report["server_scan_results"]
