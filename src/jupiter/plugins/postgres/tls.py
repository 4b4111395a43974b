"""PostgreSQL's TLS settings and server certificate, to Mozilla's profiles.

Mozilla's server-side TLS guidelines (version 5.7, the one sslyze checks
against) define ``intermediate`` (TLS 1.2 and 1.3, AEAD ciphers with forward
secrecy; the default) and ``modern`` (TLS 1.3 only). For PostgreSQL that is
four settings plus the certificate:

* ``ssl_min_protocol_version`` — ``TLSv1.2`` / ``TLSv1.3``;
* ``ssl_ciphers`` — the profile's TLS 1.2 suites in OpenSSL spelling
  (TLS 1.3 suites are not configurable in PostgreSQL and OpenSSL's defaults
  are the profile's);
* ``ssl_prefer_server_ciphers`` — ``off``: every offered suite is strong, so
  the client's choice (e.g. ChaCha20 on hardware without AES) wins, as the
  profile says;
* ``ssl_ecdh_curve`` — ``prime256v1``: PostgreSQL before 18 takes one curve
  for ECDHE, and this is the one every client of both profiles supports;
* the certificate in use (:func:`certificate_problems`): not expired, valid
  at most the profile's lifespan, with SAN and key identifiers, a strong key;
* a generated certificate: ECDSA P-256, SHA-256, valid at most the profile's
  lifespan (365 days intermediate, 90 modern), with SAN, subject and
  authority key identifiers and ``CA:FALSE``. It is described in the plan
  (:class:`~jupiter.plans.GenerateKey`, :class:`~jupiter.plans.IssueCertificate`)
  and made on the host at apply time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TlsProfile = Literal["intermediate", "modern"]

_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
_PROTOCOL_RANK = {"": 0, "tlsv1": 1, "tlsv1.1": 2, "tlsv1.2": 3, "tlsv1.3": 4}
ALLOWED_CURVES = frozenset({"prime256v1", "secp384r1"})


@dataclass(frozen=True)
class Profile:
    name: TlsProfile
    min_protocol: str
    ciphers: str
    cert_days: int

    @property
    def settings(self) -> dict[str, str]:
        """postgresql.conf settings, in the order they are written."""
        return {
            "ssl_min_protocol_version": self.min_protocol,
            "ssl_ciphers": self.ciphers,
            "ssl_prefer_server_ciphers": "off",
            "ssl_ecdh_curve": "prime256v1",
        }


PROFILES: dict[str, Profile] = {
    "intermediate": Profile("intermediate", "TLSv1.2", _INTERMEDIATE_CIPHERS, 365),
    # TLS 1.3 only: ssl_ciphers does not apply, but keep the 1.2 list strong
    # in case the minimum is lowered by hand later.
    "modern": Profile("modern", "TLSv1.3", _INTERMEDIATE_CIPHERS, 90),
}


def weaknesses(profile: Profile, value: dict[str, str | None]) -> list[str]:
    """What in the effective TLS settings (``None`` = unset) falls short of
    ``profile``, one phrase each; empty when compliant."""
    out: list[str] = []
    minimum = (value.get("ssl_min_protocol_version") or "TLSv1.2").lower()
    if _PROTOCOL_RANK.get(minimum, 0) < _PROTOCOL_RANK[profile.min_protocol.lower()]:
        out.append(f"ssl_min_protocol_version is {minimum!r}, not {profile.min_protocol}")
    allowed = set(profile.ciphers.split(":"))
    ciphers = value.get("ssl_ciphers") or "HIGH:MEDIUM:+3DES:!aNULL"
    if profile.name == "intermediate" and not set(ciphers.split(":")) <= allowed:
        out.append(f"ssl_ciphers {ciphers!r} allows suites outside Mozilla {profile.name}")
    curve = value.get("ssl_ecdh_curve") or "prime256v1"
    if curve not in ALLOWED_CURVES:
        out.append(f"ssl_ecdh_curve {curve!r} is not one of {', '.join(sorted(ALLOWED_CURVES))}")
    return out


#: Mozilla's maximum certificate lifespan per profile (days).
MAX_LIFESPAN = {"intermediate": 366, "modern": 90}


def certificate_problems(pem: bytes, profile: Profile, now: dt.datetime) -> list[str]:
    """What in a server certificate falls short of ``profile``, one phrase
    each: expired, too long-lived, missing the extensions verifiers need
    (SAN, subject/authority key identifiers), or a weak key."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return ["it is not a PEM certificate"]
    out: list[str] = []
    if cert.not_valid_after_utc <= now:
        out.append(f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    if days > MAX_LIFESPAN[profile.name]:
        out.append(
            f"it is valid {days} days (Mozilla {profile.name}: at most "
            f"{MAX_LIFESPAN[profile.name]})"
        )
    for ext, label in (
        (x509.SubjectAlternativeName, "subject alternative names"),
        (x509.SubjectKeyIdentifier, "a subject key identifier"),
        (x509.AuthorityKeyIdentifier, "an authority key identifier"),
    ):
        try:
            cert.extensions.get_extension_for_class(ext)
        except x509.ExtensionNotFound:
            out.append(f"it has no {label}")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        out.append(f"its RSA key has {key.key_size} bits (at least 2048)")
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in (
        "secp256r1",
        "secp384r1",
    ):
        out.append(f"its key is on curve {key.curve.name} (P-256 or P-384)")
    return out
