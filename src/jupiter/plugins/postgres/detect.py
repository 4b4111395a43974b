"""Built-in PostgreSQL checks over ``postgresql.conf`` and ``pg_hba.conf``.

Clusters are found at the Debian layout (``etc/postgresql/<version>/<cluster>/``)
and the RHEL one (``var/lib/pgsql[/<version>]/data/``). For each cluster the
configuration is read as the server reads it (includes, then the data
directory's ``postgresql.auto.conf``; the last value wins) and ``pg_hba.conf``
is taken from ``hba_file`` (else the data directory, else next to the conf).

Rule ids (category ``config.database``):

* ``PG-SSL-OFF`` — ``ssl`` is not on (default off);
* ``PG-TLS-PROFILE`` — ``ssl`` is on but the protocol floor, cipher list or
  ECDH curve is weaker than the Mozilla profile asked for (``intermediate``
  by default; :mod:`jupiter.plugins.postgres.tls`);
* ``PG-TLS-CERT`` — ``ssl`` is on and the certificate in use is expired,
  valid longer than the profile allows, lacks SAN or key identifiers, or has
  a weak key;
* ``PG-PASSWORD-ENCRYPTION`` — ``password_encryption`` is not
  ``scram-sha-256`` (unset counts as md5 before PostgreSQL 14);
* ``PG-LOG-CONNECTIONS`` / ``PG-LOG-DISCONNECTIONS`` — connection logging off;
* ``PG-LISTEN-ALL`` — ``listen_addresses`` contains ``*``, ``0.0.0.0`` or ``::``;
* ``PG-HBA-TRUST`` — a pg_hba record with ``trust``;
* ``PG-HBA-WEAK-AUTH`` — ``password`` or ``md5`` on a TCP record;
* ``PG-HBA-NO-CLIENTCERT`` — only when the asset's clients present
  certificates (``client_certificates``): a remote TCP record without
  ``clientcert=verify-full``;
* ``PG-INLINE-CONFIG`` — (repositories) a Dockerfile ``RUN`` writes
  ``postgresql.conf`` or ``pg_hba.conf`` inline (``echo ... >>``, ``sed -i``);
* ``PG-HBA-NO-SSL`` — a world-reachable (``all``, ``0.0.0.0/0``, ``::/0``)
  ``host``/``hostnossl`` record that does not require SSL.

A target without a cluster at those layouts is a repository: every
``postgresql.conf`` :mod:`jupiter.plugins.postgres.sources` takes is a
cluster, with the ``pg_hba.conf`` beside it; its findings carry
``extra.config_file`` (path and evidence). Certificates the configuration
names by absolute path are host files and are not judged there.

Locations point at the effective line; an unset setting points at its
commented-out template line (``#ssl = off``) in the main file when there is
one, else at the file alone.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import posixpath
import re
from dataclasses import dataclass

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.kit import read_text
from jupiter.plugins.postgres import tls
from jupiter.plugins.postgres.parse_conf import (
    PgConfig,
    extend_conf,
    parse_conf,
    split_lines,
)
from jupiter.plugins.postgres.parse_hba import HbaFile, HbaRecord, parse_hba
from jupiter.targets.base import TargetView

SCANNER = "jupiter"
SSL_OFF = "PG-SSL-OFF"
TLS_PROFILE = "PG-TLS-PROFILE"
TLS_CERT = "PG-TLS-CERT"
PASSWORD_ENCRYPTION = "PG-PASSWORD-ENCRYPTION"  # noqa: S105 - a rule id
LOG_CONNECTIONS = "PG-LOG-CONNECTIONS"
LOG_DISCONNECTIONS = "PG-LOG-DISCONNECTIONS"
LISTEN_ALL = "PG-LISTEN-ALL"
HBA_TRUST = "PG-HBA-TRUST"
HBA_WEAK_AUTH = "PG-HBA-WEAK-AUTH"
HBA_NO_SSL = "PG-HBA-NO-SSL"
HBA_NO_CLIENTCERT = "PG-HBA-NO-CLIENTCERT"
INLINE_CONFIG = "PG-INLINE-CONFIG"
CLIENTCERT = "clientcert=verify-full"
CONF_RULES = frozenset(
    {
        SSL_OFF,
        TLS_PROFILE,
        TLS_CERT,
        PASSWORD_ENCRYPTION,
        LOG_CONNECTIONS,
        LOG_DISCONNECTIONS,
        LISTEN_ALL,
        INLINE_CONFIG,
    }
)
HBA_RULES = frozenset({HBA_TRUST, HBA_WEAK_AUTH, HBA_NO_SSL, HBA_NO_CLIENTCERT})
# The setting each postgresql.conf rule is about.
RULE_SETTING = {
    SSL_OFF: "ssl",
    TLS_PROFILE: "ssl_min_protocol_version",
    TLS_CERT: "ssl_cert_file",
    PASSWORD_ENCRYPTION: "password_encryption",
    LOG_CONNECTIONS: "log_connections",
    LOG_DISCONNECTIONS: "log_disconnections",
    LISTEN_ALL: "listen_addresses",
}
CONF_GLOBS = (
    "etc/postgresql/*/*/postgresql.conf",
    "var/lib/pgsql/data/postgresql.conf",
    "var/lib/pgsql/*/data/postgresql.conf",
)
TCP_TYPES = frozenset({"host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"})
_WILDCARD_LISTEN = frozenset({"*", "0.0.0.0", "::"})  # noqa: S104 - detected, not bound
_DEBIAN_VERSION = re.compile(r"^etc/postgresql/(\d+)/")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass
class Cluster:
    """One PostgreSQL cluster's configuration as found in a target."""

    config: PgConfig
    version: int | None
    data_dir: str | None
    hba_path: str | None
    ident_path: str | None

    @property
    def main(self) -> str:
        return self.config.main


def parse_bool(value: str) -> bool | None:
    """PostgreSQL's boolean rules: unambiguous prefixes of true/false/yes/no,
    ``on``/``off`` (at least two letters), ``1``/``0``; ``None`` if invalid."""
    v = value.strip().lower()
    if not v:
        return None
    if v in ("1", "0"):
        return v == "1"
    if v[0] == "o":
        if len(v) < 2:
            return None
        return True if "on".startswith(v) else (False if "off".startswith(v) else None)
    for word in _TRUE:
        if word.startswith(v):
            return True
    for word in _FALSE:
        if word.startswith(v):
            return False
    return None


def host_clusters(view: TargetView) -> list[str]:
    """Target paths of every ``postgresql.conf`` at a host layout."""
    found: set[str] = set()
    for pattern in CONF_GLOBS:
        found.update(p for p in view.glob(pattern) if is_file(view, p))
    return sorted(found)


def find_clusters(view: TargetView) -> list[str]:
    """Target paths of every ``postgresql.conf`` at a known location, or, in
    a repository, of every one :mod:`jupiter.plugins.postgres.sources` takes."""
    from jupiter.plugins.postgres import sources

    return host_clusters(view) or sorted(sources.survey(view).mains)


def is_repo_main(main: str) -> bool:
    return not any(
        fnmatch.fnmatchcase(main, g) and main.count("/") == g.count("/") for g in CONF_GLOBS
    )


def load_cluster(view: TargetView, main: str, server_root: str = "/") -> Cluster:
    config = parse_conf(view, main, server_root, repo=is_repo_main(main))
    conf_dir = posixpath.dirname(main)
    data_dir: str | None = conf_dir
    data_setting = config.value("data_directory")
    if data_setting:
        data_dir = config.to_target(data_setting, conf_dir)
    auto = posixpath.join(data_dir, "postgresql.auto.conf") if data_dir else None
    if auto and auto not in config.files and is_file(view, auto):
        extend_conf(view, config, auto)
    return Cluster(
        config=config,
        version=_version(view, main, data_dir),
        data_dir=data_dir,
        hba_path=_aux_file(view, config, "hba_file", "pg_hba.conf", data_dir),
        ident_path=_aux_file(view, config, "ident_file", "pg_ident.conf", data_dir),
    )


def is_file(view: TargetView, path: str) -> bool:
    state = view.stat(path)
    return state is not None and state.kind == "file"


def _version(view: TargetView, main: str, data_dir: str | None) -> int | None:
    m = _DEBIAN_VERSION.match(main)
    if m:
        return int(m.group(1))
    if data_dir and is_file(view, posixpath.join(data_dir, "PG_VERSION")):
        text = view.read_bytes(posixpath.join(data_dir, "PG_VERSION")).decode(errors="replace")
        head = text.strip().split(".")[0]
        return int(head) if head.isdigit() else None
    return None


def _aux_file(
    view: TargetView, config: PgConfig, setting: str, default: str, data_dir: str | None
) -> str | None:
    """Where ``hba_file``/``ident_file`` is in the target (relative paths are
    relative to the data directory, the server's working directory)."""
    value = config.value(setting)
    conf_dir = posixpath.dirname(config.main)
    candidates = []
    if value:
        candidates.append(config.to_target(value, data_dir or conf_dir))
    if data_dir:
        candidates.append(posixpath.join(data_dir, default))
    candidates.append(posixpath.join(conf_dir, default))
    for candidate in candidates:
        if candidate and is_file(view, candidate):
            return candidate
    return None


def template_line(config: PgConfig, name: str) -> int | None:
    """Line of the commented-out ``#name = ...`` in the main file, if any."""
    pattern = re.compile(rf"^\s*#\s*{re.escape(name)}\s*(=|\s)", re.IGNORECASE)
    for lineno, line in enumerate(split_lines(config.files[config.main].text), start=1):
        if pattern.match(line):
            return lineno
    return None


def _conf_finding(
    cluster: Cluster, rule: str, severity: Severity, title: str, evidence_unset: str
) -> FindingRecord:
    name = RULE_SETTING[rule]
    setting = cluster.config.get(name)
    if setting is not None:
        location = Location(path=setting.path, start_line=setting.line, end_line=setting.line)
        evidence = setting.text.strip()
    else:
        line = template_line(cluster.config, name)
        location = Location(path=cluster.main, start_line=line, end_line=line)
        evidence = evidence_unset
    return FindingRecord(
        scanner=SCANNER,
        rule_id=rule,
        category=Category.CONFIG_DATABASE,
        title=title,
        severity=severity,
        location=location,
        evidence=evidence,
        cwe=_CWE.get(rule, []),
        extra={"conf": cluster.main, "setting": name},
    )


_CWE = {
    SSL_OFF: ["CWE-319"],
    TLS_PROFILE: ["CWE-327"],
    TLS_CERT: ["CWE-295"],
    PASSWORD_ENCRYPTION: ["CWE-916"],
    LOG_CONNECTIONS: ["CWE-778"],
    LOG_DISCONNECTIONS: ["CWE-778"],
    LISTEN_ALL: ["CWE-1327"],
    HBA_TRUST: ["CWE-306"],
    HBA_WEAK_AUTH: ["CWE-328"],
    HBA_NO_SSL: ["CWE-319"],
    HBA_NO_CLIENTCERT: ["CWE-295"],
}


def bool_setting(cluster: Cluster, name: str) -> bool:
    setting = cluster.config.get(name)
    if setting is None:
        return False
    parsed = parse_bool(setting.value)
    if parsed is None:
        raise InputError(
            f"{setting.path} line {setting.line}: {name} = {setting.value!r} is not a "
            "boolean; use on or off"
        )
    return parsed


def cert_file(cluster: Cluster) -> str | None:
    """Target path of the server certificate the configuration names."""
    base = cluster.data_dir or posixpath.dirname(cluster.main)
    return cluster.config.to_target(cluster.config.value("ssl_cert_file") or "server.crt", base)


def check_certificate(view: TargetView, cluster: Cluster, tls_profile: str) -> FindingRecord | None:
    """A ``PG-TLS-CERT`` finding when the certificate in use falls short."""
    path = cert_file(cluster)
    if path is None or not is_file(view, path):
        return None  # the server does not start without it: nothing to judge
    problems = tls.certificate_problems(
        view.read_bytes(path), tls.PROFILES[tls_profile], dt.datetime.now(dt.UTC)
    )
    if not problems:
        return None
    evidence = f"{path}: " + "; ".join(problems)
    finding = _conf_finding(
        cluster,
        TLS_CERT,
        Severity.MEDIUM,
        f"PostgreSQL's TLS certificate falls short of Mozilla's {tls_profile} profile",
        evidence,
    )
    return finding.model_copy(update={"evidence": evidence})


def check_conf(
    cluster: Cluster, tls_profile: str = "intermediate", view: TargetView | None = None
) -> list[FindingRecord]:
    """Findings about ``postgresql.conf`` settings of one cluster (and, given
    the ``view``, about the certificate it names)."""
    out: list[FindingRecord] = []
    if bool_setting(cluster, "ssl"):
        cert = check_certificate(view, cluster, tls_profile) if view is not None else None
        if cert is not None:
            out.append(cert)
        weak = tls.weaknesses(
            tls.PROFILES[tls_profile],
            {name: cluster.config.value(name) for name in tls.PROFILES[tls_profile].settings},
        )
        if weak:
            finding = _conf_finding(
                cluster,
                TLS_PROFILE,
                Severity.MEDIUM,
                f"PostgreSQL's TLS is weaker than Mozilla's {tls_profile} profile",
                "; ".join(weak),
            )
            out.append(finding.model_copy(update={"evidence": "; ".join(weak)}))
    else:
        out.append(
            _conf_finding(
                cluster,
                SSL_OFF,
                Severity.HIGH,
                "PostgreSQL accepts connections without TLS (ssl is off)",
                "ssl is not set (default: off)",
            )
        )
    encryption = cluster.config.value("password_encryption")
    too_old_default = encryption is None and cluster.version is not None and cluster.version < 14
    if too_old_default or (encryption is not None and encryption.lower() != "scram-sha-256"):
        out.append(
            _conf_finding(
                cluster,
                PASSWORD_ENCRYPTION,
                Severity.MEDIUM,
                "New passwords are stored as MD5 hashes (password_encryption is not scram-sha-256)",
                f"password_encryption is not set (default md5 in PostgreSQL {cluster.version})",
            )
        )
    for rule, name in (
        (LOG_CONNECTIONS, "log_connections"),
        (LOG_DISCONNECTIONS, "log_disconnections"),
    ):
        if not bool_setting(cluster, name):
            out.append(
                _conf_finding(
                    cluster,
                    rule,
                    Severity.LOW,
                    f"Connection attempts are not logged ({name} is off)",
                    f"{name} is not set (default: off)",
                )
            )
    listen = cluster.config.value("listen_addresses", "localhost") or ""
    if {part.strip() for part in listen.split(",")} & _WILDCARD_LISTEN:
        out.append(
            _conf_finding(
                cluster,
                LISTEN_ALL,
                Severity.MEDIUM,
                "PostgreSQL listens on every network interface (listen_addresses)",
                "",
            )
        )
    return out


def is_world(record: HbaRecord) -> bool:
    address = record.address
    if address == "all":
        return True
    return record.network is not None and record.network.prefixlen == 0


def is_loopback(record: HbaRecord) -> bool:
    address = record.address
    if address in ("samehost", "localhost"):
        return True
    return record.network is not None and record.network.is_loopback


def wants_clientcert(record: HbaRecord, client_certs: bool) -> bool:
    """Whether ``record`` must demand a verified client certificate."""
    return (
        client_certs
        and record.conn_type in TCP_TYPES
        and record.method not in ("reject", "cert")
        and not is_loopback(record)
        and CLIENTCERT not in record.options
    )


def hba_issues(record: HbaRecord, client_certs: bool = False) -> list[tuple[str, Severity, str]]:
    """(rule id, severity, title) of every problem of one record."""
    kind, method = record.conn_type, record.method
    issues: list[tuple[str, Severity, str]] = []
    if wants_clientcert(record, client_certs):
        issues.append(
            (
                HBA_NO_CLIENTCERT,
                Severity.MEDIUM,
                f"pg_hba.conf does not require a verified client certificate from "
                f"{record.address} ({CLIENTCERT})",
            )
        )
    if method == "trust":
        if kind == "local":
            severity, where = Severity.HIGH, "any local user"
        else:
            severity = Severity.CRITICAL if is_world(record) else Severity.HIGH
            where = "any client from " + (record.address or "")
        issues.append(
            (HBA_TRUST, severity, f"pg_hba.conf lets {where} in without a password (trust)")
        )
    if kind in TCP_TYPES and method in ("password", "md5"):
        cleartext = method == "password" and kind != "hostssl"
        issues.append(
            (
                HBA_WEAK_AUTH,
                Severity.HIGH if cleartext else Severity.MEDIUM,
                f"pg_hba.conf uses weak password authentication ({method}) over TCP",
            )
        )
    if kind in ("host", "hostnossl") and method != "reject" and is_world(record):
        issues.append(
            (
                HBA_NO_SSL,
                Severity.HIGH,
                "pg_hba.conf accepts connections from anywhere without TLS "
                f"({kind} {record.address})",
            )
        )
    return issues


def load_hba(view: TargetView, cluster: Cluster) -> HbaFile | None:
    if cluster.hba_path is None:
        return None
    return parse_hba(cluster.hba_path, read_text(view, cluster.hba_path))


def check_hba(hba: HbaFile, cluster: Cluster, client_certs: bool = False) -> list[FindingRecord]:
    out: list[FindingRecord] = []
    for record in hba.records:
        for rule, severity, title in hba_issues(record, client_certs):
            out.append(
                FindingRecord(
                    scanner=SCANNER,
                    rule_id=rule,
                    category=Category.CONFIG_DATABASE,
                    title=title,
                    severity=severity,
                    location=Location(path=hba.path, start_line=record.line, end_line=record.line),
                    evidence=record.text.strip(),
                    cwe=_CWE[rule],
                    extra={"conf": cluster.main, "record": record.text.strip()},
                )
            )
    return out


def clusters(
    view: TargetView, server_root: str = "/", problems: list[str] | None = None
) -> list[tuple[Cluster, str | None]]:
    """Every cluster of ``view`` with why it was taken (``None`` on a host).

    Given ``problems``, a repository cluster that cannot be read is reported
    there (one sentence) and the others are still returned; otherwise the
    first one raises, as a host's always does."""
    from jupiter.plugins.postgres import sources

    mains = host_clusters(view)
    if mains:
        return [(load_cluster(view, main, server_root), None) for main in mains]
    found = sources.survey(view)
    out: list[tuple[Cluster, str | None]] = []
    if problems is not None:
        problems.extend(found.problems)
    for main, evidence in sorted(found.mains.items()):
        try:
            out.append((load_cluster(view, main, server_root), evidence))
        except InputError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return out


_IMAGE_FILES = re.compile(r"/[^\s'\";&|]*/(?:postgresql\.conf|pg_hba\.conf)")


def inline_findings(view: TargetView) -> list[FindingRecord]:
    """``PG-INLINE-CONFIG``: Dockerfile ``RUN`` lines that write or edit the
    server's configuration inline (one finding per line)."""
    from jupiter.plugins.configs import inline_writes

    return [
        FindingRecord(
            scanner=SCANNER,
            rule_id=INLINE_CONFIG,
            category=Category.CONFIG_DATABASE,
            title=f"{w.dockerfile} writes {w.dest} inline with a RUN command",
            severity=Severity.LOW,
            location=Location(path=w.dockerfile, start_line=w.line, end_line=w.line),
            evidence=w.text[:300],
            identity=f"inline {' '.join(w.text.split())[:200]}",
            extra={"dest": w.dest},
        )
        for w in inline_writes(view, _IMAGE_FILES)
    ]


def _with_evidence(findings: list[FindingRecord], evidence: str | None) -> list[FindingRecord]:
    if evidence is None:
        return findings
    return [
        f.model_copy(
            update={
                "extra": {
                    **f.extra,
                    "config_file": {
                        "path": f.location.path or str(f.extra.get("conf")),
                        "evidence": evidence,
                    },
                }
            }
        )
        for f in findings
    ]


def detect_conf(
    view: TargetView,
    server_root: str = "/",
    tls_profile: str = "intermediate",
    problems: list[str] | None = None,
) -> list[FindingRecord]:
    """postgresql.conf findings of every cluster in ``view`` (``problems``:
    see :func:`clusters`)."""
    out: list[FindingRecord] = []
    if not host_clusters(view):
        out.extend(inline_findings(view))
    for cluster, evidence in clusters(view, server_root, problems):
        try:
            found = check_conf(cluster, tls_profile, view)
        except InputError as exc:
            if problems is None or evidence is None:
                raise
            problems.append(str(exc))
            continue
        out.extend(_with_evidence(found, evidence))
    return out


def detect_hba(
    view: TargetView,
    server_root: str = "/",
    client_certs: bool = False,
    problems: list[str] | None = None,
) -> list[FindingRecord]:
    """pg_hba.conf findings of every cluster in ``view`` (each file once)."""
    out: list[FindingRecord] = []
    seen: set[str] = set()
    for cluster, evidence in clusters(view, server_root, problems):
        try:
            hba = load_hba(view, cluster)
        except InputError as exc:
            if problems is None or evidence is None:
                raise
            problems.append(str(exc))
            continue
        if hba is None or hba.path in seen:
            continue
        seen.add(hba.path)
        if evidence is not None:
            evidence = f"beside {cluster.main} ({evidence})"
        out.extend(_with_evidence(check_hba(hba, cluster, client_certs), evidence))
    return out
