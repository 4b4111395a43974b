"""The server key and certificate a ``postgresql-conf`` plan describes.

The configured ``ssl_cert_file``/``ssl_key_file`` are kept when both exist
(unless they are being replaced); otherwise a :class:`~jupiter.plans.GenerateKey`
and an :class:`~jupiter.plans.IssueCertificate` are planned next to the
configuration, and the two settings point at them. The key is made on the
host at apply time (:mod:`jupiter.keygen`).
"""

from __future__ import annotations

import posixpath

from jupiter.errors import InputError
from jupiter.keygen import load_issuer
from jupiter.plans import (
    GENERATED_KEY,
    Change,
    GenerateKey,
    IssueCertificate,
    SetMode,
    sha256_bytes,
    unified_diff,
)
from jupiter.plugins.postgres import detect as checks
from jupiter.plugins.postgres.edit import ConfEdits
from jupiter.plugins.postgres.params import HOSTNAME, PostgresParams, is_ip
from jupiter.plugins.postgres.parse_conf import server_path
from jupiter.plugins.postgres.tls import PROFILES
from jupiter.targets.base import TargetView

CERT_NAME = "jupiter-server.crt"
KEY_NAME = "jupiter-server.key"


def _owner(view: TargetView, cluster: checks.Cluster) -> tuple[int, int] | None:
    for path in (cluster.data_dir, cluster.main):
        state = view.stat(path) if path else None
        if state is not None:
            return state.uid, state.gid
    return None


def _hostname(view: TargetView) -> str:
    try:
        name = view.read_bytes("etc/hostname").decode(errors="replace").strip().split()[0]
    except (FileNotFoundError, IndexError):
        return "localhost"
    return name if HOSTNAME.match(name) else "localhost"


def plan_tls_files(
    view: TargetView,
    cluster: checks.Cluster,
    params: PostgresParams,
    edits: ConfEdits,
    note: str,
    replace: bool = False,
) -> tuple[list[Change], str, list[str]]:
    """Use the configured certificate, or plan one (changes, diff,
    warnings); ``replace`` plans a new one even when files exist."""
    config, root = cluster.config, params.server_root
    data_dir = cluster.data_dir or posixpath.dirname(cluster.main)
    warnings: list[str] = []
    ca_sha = None
    if params.ca_cert is not None and params.ca_key is not None:
        ca_pem = _read_ca(view, params.ca_cert, "certificate")
        load_issuer(ca_pem, _read_ca(view, params.ca_key, "key"), params.ca_cert)
        ca_sha = sha256_bytes(ca_pem)
        if params.client_certificates:
            edits.set("ssl_ca_file", server_path(params.ca_cert, root), note, quoted=True)
    configured = [
        config.to_target(config.value(name, default) or default, data_dir)
        for name, default in (("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key"))
    ]
    if not replace and all(p is not None and checks.is_file(view, p) for p in configured):
        return [], "", warnings
    conf_dir = posixpath.dirname(cluster.main)
    cert_path = posixpath.join(conf_dir, CERT_NAME)
    key_path = posixpath.join(conf_dir, KEY_NAME)
    names = params.host_names or [_hostname(view), "localhost"]
    dns = list(dict.fromkeys(n for n in names if not is_ip(n)))
    ips = list(dict.fromkeys([*(n for n in names if is_ip(n)), "127.0.0.1", "::1"]))
    profile = PROFILES[params.tls_profile]
    cert = IssueCertificate(
        path=cert_path,
        before_sha256=_sha(view, cert_path),
        key_path=key_path,
        common_name=dns[0] if dns else "localhost",
        dns_names=dns,
        ip_addresses=ips,
        valid_days=profile.cert_days,
        ca_cert_path=params.ca_cert,
        ca_key_path=params.ca_key,
        ca_cert_sha256=ca_sha,
    )
    changes: list[Change] = [
        GenerateKey(path=key_path, before_sha256=_sha(view, key_path)),
        cert,
    ]
    if params.ca_cert is None:
        warnings.append(
            f"ssl_cert_file/ssl_key_file did not exist in the target: a self-signed "
            f"certificate for {cert.common_name!r} (valid {cert.valid_days} days) is issued "
            f"at {cert_path} for a key made on the host at apply time at {key_path}; clients "
            "with sslmode=verify-ca/verify-full reject it until it is replaced by one from "
            "your CA (or plan again with ca_cert= and ca_key=)"
        )
    owner = _owner(view, cluster)
    if owner is not None and owner[0] != 0:
        changes.insert(1, SetMode(path=key_path, mode=0o600, uid=owner[0], gid=owner[1]))
    else:
        warnings.append(
            f"{key_path} will be owned by root with mode 0600: the server's account cannot "
            "read it; chown it to that account (e.g. postgres) before reloading"
        )
    edits.set("ssl_cert_file", server_path(cert_path, root), note, quoted=True)
    edits.set("ssl_key_file", server_path(key_path, root), note, quoted=True)
    diff = unified_diff(key_path, None, GENERATED_KEY + "\n")
    diff += unified_diff(cert_path, None, cert.describe() + "\n")
    return changes, diff, warnings


def _read_ca(view: TargetView, path: str, what: str) -> bytes:
    try:
        return view.read_bytes(path)
    except FileNotFoundError:
        raise InputError(
            f"the CA {what} {path} does not exist in {view.describe()}; give ca_cert and "
            "ca_key as paths inside the target"
        ) from None


def _sha(view: TargetView, path: str) -> str | None:
    try:
        return sha256_bytes(view.read_bytes(path))
    except FileNotFoundError:
        return None
