"""Exported scripts make a planned private key on the host when they run:
no script holds one, and the key and certificate they make are real (key
0600, certificate for that key, the profile's extensions, CA-issued when a
CA was given); re-running changes nothing and undo restores the original."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jupiter.export import PlanForExport, export_script
from jupiter.plugins.postgres.fix import PostgresParams, PostgresqlConf
from jupiter.targets.local import LocalTarget
from tests.conftest import need_service
from tests.export.helpers import copy_tree, item, run, snapshot
from tests.export.test_export_ansible import play
from tests.tools import tool

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "postgres"
CONF_DIR = "etc/postgresql/15/main"
CA_CERT, CA_KEY = "etc/ssl/org-ca/ca.crt", "etc/ssl/org-ca/ca.key"


def make_ca(root: Path) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Org CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    (root / CA_CERT).parent.mkdir(parents=True)
    (root / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / CA_KEY).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (root / CA_KEY).chmod(0o600)
    return cert


def tls_items(root: Path, params: PostgresParams) -> list[PlanForExport]:
    target = LocalTarget(root)
    conf = PostgresqlConf()
    finding = next(f for f in conf.detect(target, params) if f.rule_id == "PG-SSL-OFF")
    return [item(conf.plan(finding, target, params), target, "F-ssl")]


def check_material(root: Path, ca: x509.Certificate | None) -> bytes:
    """The key and certificate the script made; returns the key's bytes."""
    key_file = root / CONF_DIR / "jupiter-server.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((root / CONF_DIR / "jupiter-server.crt").read_bytes())
    assert cert.public_key() == key.public_key()
    lifespan = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifespan <= dt.timedelta(days=365), lifespan
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert "localhost" in ext.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    if ca is None:
        assert aki.key_identifier == ski.digest and cert.issuer == cert.subject
    else:
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca.public_key())  # type: ignore[arg-type]
        assert aki.key_identifier == ca_ski.digest and cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    return key_file.read_bytes()


def script_argv(tmp_path: Path, fmt: str, items: list[PlanForExport]) -> list[str]:
    text = export_script(items, fmt)  # type: ignore[arg-type]
    assert "PRIVATE KEY" not in text and "BEGIN" not in text  # no key, no certificate
    path = tmp_path / f"fix.{fmt}"
    path.write_text(text)
    return ["bash", str(path)] if fmt == "bash" else [sys.executable, str(path)]


@pytest.mark.parametrize("fmt", ["bash", "python"])
@pytest.mark.parametrize("with_ca", [False, True], ids=["self-signed", "ca"])
def test_script_makes_the_key_on_the_host(tmp_path: Path, fmt: str, with_ca: bool) -> None:
    original = copy_tree(FIXTURE, tmp_path / "original")
    ca = make_ca(original) if with_ca else None
    params = PostgresParams(ca_cert=CA_CERT, ca_key=CA_KEY) if with_ca else PostgresParams()
    argv = script_argv(tmp_path, fmt, tls_items(original, params))
    backup = tmp_path / "backup"
    targets = [copy_tree(original, tmp_path / f"target{n}") for n in (1, 2)]
    before = snapshot(targets[0])

    checked = run([*argv, targets[0], "--check", "--backup-dir", backup])
    assert checked.returncode == 0, checked.stderr
    assert "would make on this host" in checked.stderr and snapshot(targets[0]) == before

    keys = []
    for number, target in enumerate(targets):
        applied = run([*argv, target, "--backup-dir", tmp_path / f"backup{number}"])
        assert applied.returncode == 0, applied.stderr
        keys.append(check_material(target, ca))
    assert keys[0] != keys[1]  # made on each host, not carried by the script
    conf = (targets[0] / CONF_DIR / "postgresql.conf").read_text()
    assert "ssl_min_protocol_version = 'TLSv1.2'" in conf

    again = run([*argv, targets[0], "--backup-dir", tmp_path / "backup0"])
    assert again.returncode == 0 and "already applied" in again.stderr
    assert (targets[0] / CONF_DIR / "jupiter-server.key").read_bytes() == keys[0]

    undone = run([*argv, targets[0], "--undo", "--backup-dir", tmp_path / "backup0"])
    assert undone.returncode == 0, undone.stderr
    assert snapshot(targets[0]) == before


def test_script_fails_cleanly_when_the_ca_key_is_gone(tmp_path: Path) -> None:
    original = copy_tree(FIXTURE, tmp_path / "original")
    make_ca(original)
    argv = script_argv(
        tmp_path, "bash", tls_items(original, PostgresParams(ca_cert=CA_CERT, ca_key=CA_KEY))
    )
    target = copy_tree(original, tmp_path / "target")
    (target / CA_KEY).unlink()
    before = snapshot(target)
    failed = run([*argv, target, "--backup-dir", tmp_path / "backup"])
    assert failed.returncode == 1 and "rolled back" in failed.stderr, failed.stderr
    assert snapshot(target) == before


def test_playbook_makes_the_key_on_the_host(tmp_path: Path) -> None:
    binary = tool("ansible", "ansible-playbook")
    original = copy_tree(FIXTURE, tmp_path / "original")
    ca = make_ca(original)
    items = tls_items(original, PostgresParams(ca_cert=CA_CERT, ca_key=CA_KEY))
    text = export_script(items, "ansible")
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    playbook = tmp_path / "fix.yml"
    playbook.write_text(text)
    target = copy_tree(original, tmp_path / "target")
    before = snapshot(target)

    code, out, recap = play(binary, playbook, target, tmp_path)
    assert code == 0, out
    key = check_material(target, ca)
    code, out, recap = play(binary, playbook, target, tmp_path)
    assert code == 0 and recap["changed"] == 0, out
    assert (target / CONF_DIR / "jupiter-server.key").read_bytes() == key

    code, out, recap = play(binary, playbook, target, tmp_path, "--tags", "undo")
    assert code == 0, out
    assert snapshot(target) == before
    shutil.rmtree(tmp_path / "ansible-tmp", ignore_errors=True)


def test_bash_script_that_makes_keys_is_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    need_service(shellcheck is not None, "shellcheck is not installed (apt-get install shellcheck)")
    assert shellcheck is not None
    original = copy_tree(FIXTURE, tmp_path / "original")
    make_ca(original)
    items = tls_items(original, PostgresParams(ca_cert=CA_CERT, ca_key=CA_KEY))
    [_, script] = script_argv(tmp_path, "bash", items)
    result = run([shellcheck, "--severity=info", script])
    assert result.returncode == 0, result.stdout
