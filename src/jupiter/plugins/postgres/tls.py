"""A self-signed TLS certificate and key for a PostgreSQL server.

Used when ``ssl`` must be turned on and the configured certificate files do
not exist: the server refuses to start with ``ssl = on`` and no certificate,
so the fix brings its own. The certificate is a stop-gap that makes the
connection encrypted (clients with ``sslmode=require``); clients that verify
the server (``verify-ca``/``verify-full``) need a certificate from a CA, which
the plan's warning says.

Each call makes a new key: plans that generate one are not byte-identical
when re-planned, but they are idempotent once applied (``ssl`` is then on and
nothing is planned again).
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 825  # the longest lifetime common TLS clients accept for a server cert


def self_signed(hostname: str, now: dt.datetime | None = None) -> tuple[str, str]:
    """(certificate PEM, unencrypted PKCS#8 private key PEM) for ``hostname``.

    ECDSA P-256: fast to generate, accepted by every TLS client PostgreSQL
    supports. The SAN lists the host name, ``localhost`` and the loopback
    addresses.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem
