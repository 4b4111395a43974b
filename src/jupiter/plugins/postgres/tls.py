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
* a generated certificate: ECDSA P-256, SHA-256, valid at most the profile's
  lifespan (365 days intermediate, 90 modern), with SAN, subject and
  authority key identifiers and ``CA:FALSE``. It is described in the plan
  (:class:`~jupiter.plans.GenerateKey`, :class:`~jupiter.plans.IssueCertificate`)
  and made on the host at apply time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
