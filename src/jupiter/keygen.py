"""Private keys and certificates made where they are used, at apply time.

A plan that needs a key carries a :class:`~jupiter.plans.GenerateKey` (and
usually an :class:`~jupiter.plans.IssueCertificate`): a description, never the
bytes. This module turns that description into bytes at the last moment:

* :func:`materialise` — the engine calls it right before the write; the key
  exists only in this process's memory and in the target's file;
* :func:`with_throwaway_material` — a candidate view for validators, with a
  throw-away key and certificate made to the same spec (the validator sees
  files of the right kind; the real key is made later, on apply);
* :func:`openssl_recipe` — the same spec as ``openssl`` argument vectors and
  an extensions file, for exported scripts that make the key on the host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jupiter.errors import InputError, TargetError
from jupiter.plans import GenerateKey, IssueCertificate, Plan, WriteFile, sha256_bytes
from jupiter.targets.base import TargetView
from jupiter.targets.overlay import OverlayView

#: Started this long before "now", so a host whose clock lags a little
#: accepts the certificate at once.
BACKDATE = dt.timedelta(minutes=5)


def new_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise InputError(f"key type {key_type!r} is unknown; use ec-p256, ec-p384 or rsa-3072")


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM (what PostgreSQL, nginx... read without a passphrase)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Issuer:
    """An organisation's CA, checked: a CA certificate, its own key, not expired."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


def load_issuer(cert_pem: bytes, key_pem_bytes: bytes, where: str) -> Issuer:
    """The CA in ``cert_pem``/``key_pem_bytes``; one InputError sentence when it
    cannot issue (not a certificate, not a CA, expired, key not its own)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise InputError(f"{where}: the CA certificate is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem_bytes, password=None)
    except (ValueError, TypeError):
        raise InputError(
            f"{where}: the CA key is not an unencrypted PEM private key (decrypt it into a "
            "0600 file for the run, or issue the certificate yourself)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InputError(f"{where}: the CA key must be an EC or RSA key")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise InputError(f"{where}: the CA key does not match the CA certificate")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InputError(f"{where}: the CA certificate is not a CA (basicConstraints CA:FALSE)")
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc <= now + dt.timedelta(days=1):
        raise InputError(
            f"{where}: the CA certificate expires {cert.not_valid_after_utc:%Y-%m-%d}, before "
            "a certificate it issues could be used; renew the CA first"
        )
    return Issuer(cert, key)


def issue(
    spec: IssueCertificate,
    subject_key: CertificateIssuerPrivateKeyTypes,
    issuer: Issuer | None,
    now: dt.datetime | None = None,
) -> bytes:
    """The certificate PEM for ``subject_key`` as ``spec`` describes it,
    never outliving its issuer."""
    start = (now or dt.datetime.now(dt.UTC)) - BACKDATE
    end = start + dt.timedelta(days=spec.valid_days)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)])
    public = subject_key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    if issuer is None:
        signer, issuer_name = subject_key, name
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        signer, issuer_name = issuer.key, issuer.cert.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        end = min(end, issuer.cert.not_valid_after_utc)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.ip_addresses]
    is_rsa = isinstance(subject_key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _read(view: TargetView, path: str, what: str) -> bytes:
    try:
        return view.read_bytes(path)
    except FileNotFoundError:
        raise TargetError(f"{what} {path} does not exist on {view.describe()}") from None


def issuer_for(view: TargetView, spec: IssueCertificate) -> Issuer | None:
    """The CA a certificate spec names, read from ``view`` and checked."""
    if spec.ca_cert_path is None or spec.ca_key_path is None:
        return None
    cert_pem = _read(view, spec.ca_cert_path, "the CA certificate")
    if spec.ca_cert_sha256 is not None and sha256_bytes(cert_pem) != spec.ca_cert_sha256:
        raise TargetError(
            f"the CA certificate {spec.ca_cert_path} changed since the plan was made; plan again"
        )
    key_bytes = _read(view, spec.ca_key_path, "the CA key")
    return load_issuer(cert_pem, key_bytes, spec.ca_cert_path)


def materialise(view: TargetView, change: GenerateKey | IssueCertificate) -> WriteFile:
    """The file write ``change`` stands for, made now. A certificate is made
    for the key already at ``change.key_path`` in ``view``."""
    if isinstance(change, GenerateKey):
        data = key_pem(new_key(change.key_type))
    else:
        raw = _read(view, change.key_path, "the key for the certificate")
        try:
            subject = serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError):
            raise TargetError(f"{change.key_path} is not an unencrypted PEM private key") from None
        if not isinstance(subject, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TargetError(f"{change.key_path} must hold an EC or RSA key")
        data = issue(change, subject, issuer_for(view, change))
    return WriteFile(
        path=change.path,
        content=data.decode("ascii"),
        before_sha256=change.before_sha256,
        mode=change.mode,
    )


def with_throwaway_material(view: TargetView, plan: Plan) -> TargetView:
    """``view`` plus the plan's generated files, made with throw-away keys to
    the plan's spec, for validators; ``view`` itself when there are none."""
    current = view
    for change in plan.changes:
        if isinstance(change, GenerateKey | IssueCertificate):
            write = materialise(current, change)
            current = OverlayView(
                current, Plan(remediator="keygen", rule_id="-", title="-", changes=[write])
            )
    return current


# -- exported scripts -------------------------------------------------------
_OPENSSL_KEY = {
    "ec-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ec-p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "rsa-3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
}
#: Placeholders an exported script replaces with its own paths at run time.
OUT, KEY, CSR, CNF, SERIAL, CA_CERT, CA_KEY = (
    "@OUT@",
    "@KEY@",
    "@CSR@",
    "@CNF@",
    "@SERIAL@",
    "@CA_CERT@",
    "@CA_KEY@",
)


@dataclass(frozen=True)
class Recipe:
    """``openssl`` argument vectors (with the placeholders above) and the
    extensions file they read. OpenSSL 1.1.1 and 3.x both run them."""

    commands: tuple[tuple[str, ...], ...]
    extensions: str = ""


def openssl_recipe(change: GenerateKey | IssueCertificate) -> Recipe:
    if isinstance(change, GenerateKey):
        return Recipe((("openssl", "genpkey", *_OPENSSL_KEY[change.key_type], "-out", OUT),))
    alt = [f"DNS:{n}" for n in change.dns_names] + [f"IP:{a}" for a in change.ip_addresses]
    lines = [
        "[jupiter_server]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature"
        + (", keyEncipherment" if change.key_type.startswith("rsa") else ""),
        "extendedKeyUsage = serverAuth",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid:always",
    ]
    if alt:
        lines.append("subjectAltName = " + ", ".join(alt))
    sign = ["-CA", CA_CERT, "-CAkey", CA_KEY] if change.ca_cert_path else ["-signkey", KEY]
    return Recipe(
        (
            (
                "openssl",
                "req",
                "-new",
                "-key",
                KEY,
                "-subj",
                f"/CN={change.common_name}",
                "-out",
                CSR,
            ),
            (
                "openssl",
                "x509",
                "-req",
                "-in",
                CSR,
                *sign,
                "-days",
                str(change.valid_days),
                "-sha256",
                "-set_serial",
                SERIAL,
                "-extfile",
                CNF,
                "-extensions",
                "jupiter_server",
                "-out",
                OUT,
            ),
        ),
        "\n".join(lines) + "\n",
    )
