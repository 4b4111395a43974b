"""jupiter.keygen: keys and certificates made at apply time, to a plan's spec,
and a CA that cannot issue refused in one sentence with nothing written."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jupiter.errors import InputError, JupiterError
from jupiter.keygen import load_issuer, materialise
from jupiter.plans import GenerateKey, IssueCertificate, Plan
from jupiter.plugins.postgres.fix import PostgresParams, PostgresqlConf
from jupiter.runs import apply_plan
from jupiter.targets.local import LocalTarget
from tests.export.test_export_generated import CA_CERT, CA_KEY, FIXTURE, make_ca


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(days: int, ca: bool = True) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


def test_a_ca_that_cannot_issue_is_refused_in_one_sentence() -> None:
    cert, key = _ca(100)
    assert load_issuer(cert, key, "ca.crt").cert.subject.rfc4514_string() == "CN=CA"
    other_key = _pem(ec.generate_private_key(ec.SECP256R1()))
    cases = {
        "does not match": (cert, other_key),
        "expires": _ca(-1),
        "is not a CA": _ca(100, ca=False),
        "not a PEM certificate": (b"junk", key),
        "not an unencrypted PEM private key": (cert, b"junk"),
    }
    for words, (c, k) in cases.items():
        with pytest.raises(InputError, match=words) as caught:
            load_issuer(c, k, "etc/ssl/ca.crt")
        assert str(caught.value).startswith("etc/ssl/ca.crt: ") and "\n" not in str(caught.value)


def test_plan_refuses_a_mismatched_ca_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, root)
    make_ca(root)
    (root / CA_KEY).write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    before = sorted(p.name for p in root.rglob("*"))
    target = LocalTarget(root)
    conf = PostgresqlConf()
    params = PostgresParams(ca_cert=CA_CERT, ca_key=CA_KEY)
    finding = next(f for f in conf.detect(target, params) if f.rule_id == "PG-SSL-OFF")
    with pytest.raises(InputError, match="the CA key does not match the CA certificate"):
        conf.plan(finding, target, params)
    assert sorted(p.name for p in root.rglob("*")) == before
    with pytest.raises(ValueError, match="ca_cert and ca_key go together"):
        PostgresParams(ca_cert=CA_CERT)


def test_apply_makes_a_new_key_each_time_and_refuses_a_changed_ca(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    ca = make_ca(tmp_path)
    spec = [
        GenerateKey(path="tls/a.key", before_sha256=None, key_type="ec-p384"),
        IssueCertificate(
            path="tls/a.crt",
            before_sha256=None,
            key_path="tls/a.key",
            key_type="ec-p384",
            common_name="db.example.org",
            dns_names=["db.example.org"],
            valid_days=90,
            ca_cert_path=CA_CERT,
            ca_key_path=CA_KEY,
        ),
    ]
    plan = Plan(remediator="t", rule_id="T", title="t", changes=spec)
    apply_plan(target, plan)
    first = (tmp_path / "tls/a.key").read_bytes()
    cert = x509.load_pem_x509_certificate((tmp_path / "tls/a.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert materialise(target, spec[0]).content.encode() != first
    stale = spec[1].model_copy(update={"ca_cert_sha256": "0" * 64})
    with pytest.raises(JupiterError, match="changed since the plan was made"):
        materialise(target, stale)


def test_a_certificate_spec_rejects_names_that_could_inject() -> None:
    for bad in ("a b", "x\nsubjectAltName=DNS:evil", "/CN=x", "a,DNS:b"):
        with pytest.raises(ValueError):
            IssueCertificate(path="c", before_sha256=None, key_path="k", common_name=bad)
        with pytest.raises(ValueError):
            PostgresParams(host_names=[bad])
    with pytest.raises(ValueError):
        IssueCertificate(
            path="c", before_sha256=None, key_path="k", common_name="ok", valid_days=400
        )
