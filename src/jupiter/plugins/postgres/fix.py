"""``postgresql-conf`` and ``pg-hba``: harden a PostgreSQL cluster's configuration.

``postgresql-conf`` fixes one setting per plan (its finding's rule), in place
(see :mod:`jupiter.plugins.postgres.edit`; the key and certificate are
planned by :mod:`jupiter.plugins.postgres.certs`):

* ``PG-SSL-OFF`` → ``ssl = on`` with the TLS profile's settings
  (:mod:`jupiter.plugins.postgres.tls`: Mozilla ``intermediate`` by default,
  ``modern`` with ``tls_profile=modern``). The configured ``ssl_cert_file``
  and ``ssl_key_file`` are used when both exist in the target; otherwise a
  key and certificate are planned next to the configuration
  (``jupiter-server.key``/``.crt``, key mode 0600, owned like the data
  directory) and the two settings point at them. The plan only *describes*
  them (:class:`~jupiter.plans.GenerateKey`,
  :class:`~jupiter.plans.IssueCertificate`): the key is made on the host at
  apply time and never appears in a plan, diff, export or database row. The
  certificate is self-signed, or issued by the organisation's CA when
  ``ca_cert``/``ca_key`` name its files in the target.
* ``PG-TLS-CERT`` → a new key and certificate when the one in use is
  Jupiter's own (``jupiter-server.crt``) or ``ca_cert``/``ca_key`` are given;
  ``needs_manual`` for an operator's certificate otherwise.
* ``PG-TLS-PROFILE`` → the profile's settings, when ``ssl`` is on but the
  protocol floor, the cipher list or the ECDH curve is weaker.
* ``PG-PASSWORD-ENCRYPTION`` → ``scram-sha-256``, with the manual step of
  resetting passwords still stored as MD5.
* ``PG-LOG-CONNECTIONS`` / ``PG-LOG-DISCONNECTIONS`` → ``on``.
* ``PG-INLINE-CONFIG`` (a Dockerfile ``RUN`` that writes the configuration
  inline) is ``needs_manual`` naming the line.
* ``PG-LISTEN-ALL`` is never changed automatically (only a human knows which
  interfaces clients use): the plan is ``needs_manual``.

``pg-hba`` rewrites one pg_hba record per plan, fixing every problem of that
record at once (the store identifies config findings by file, line and
category, so findings on one line are one issue):

* ``trust``, ``password`` and ``md5`` on TCP records become ``scram-sha-256``;
* ``host``/``hostnossl`` records that are rewritten and are not loopback-only
  become ``hostssl`` (world-reachable ones are always rewritten);
* ``trust`` on ``local`` records becomes ``peer``, the Debian default for
  Unix sockets: the OS user must then match the role, which is what a DBA
  wants for local administration, and needs no password management.

Every pg-hba plan is marked ``disruption``: clients that relied on the weak
rule are refused until they use TLS or a password, and the plan says which.

With ``client_certificates=true``, TCP records that become (or are)
``hostssl`` get ``clientcert=verify-full`` (rule ``PG-HBA-NO-CLIENTCERT``):
clients must then present a certificate from the CA in ``ssl_ca_file``,
whose CN is the role they log in as.

Parameters (:class:`PostgresParams`): ``server_root`` — the absolute path at
which the server sees the target's root (``/`` for a real host); paths
written into ``postgresql.conf`` are made under it. ``tls_profile``,
``ca_cert``/``ca_key`` (paths in the target), ``host_names`` (the
certificate's SAN; default the host's name and ``localhost``) and
``client_certificates`` as above.
"""

from __future__ import annotations

import posixpath
from typing import ClassVar

from pydantic import BaseModel

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import (
    Change,
    Plan,
    Risk,
    WriteFile,
    sha256_bytes,
    unified_diff,
)
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.postgres import detect as checks
from jupiter.plugins.postgres import sources
from jupiter.plugins.postgres.certs import CERT_NAME, plan_tls_files
from jupiter.plugins.postgres.edit import ConfEdits, replace_fields
from jupiter.plugins.postgres.params import PostgresParams
from jupiter.plugins.postgres.parse_conf import split_lines
from jupiter.plugins.postgres.parse_hba import HbaRecord
from jupiter.plugins.postgres.tls import PROFILES
from jupiter.plugins.postgres.validate import validate_candidate
from jupiter.targets.base import TargetView

SERVICE = "postgresql"
MD5_ROLES_QUERY = "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%'"


def _params(params: PostgresParams | None) -> PostgresParams:
    return PostgresParams() if params is None else params


def _cluster_for(view: TargetView, finding: FindingRecord, root: str) -> checks.Cluster:
    """The cluster a finding belongs to, as it is now."""
    wanted = finding.extra.get("conf")
    mains = checks.find_clusters(view)
    if isinstance(wanted, str) and wanted in mains:
        return checks.load_cluster(view, wanted, root)
    for main in mains:
        cluster = checks.load_cluster(view, main, root)
        if finding.location.path in (*cluster.config.files, cluster.hba_path):
            return cluster
    raise ConflictError(
        f"no PostgreSQL cluster on {view.describe()} holds {finding.location.path} named by "
        f"finding {finding.rule_id}; run detect again and plan the new findings"
    )


class _PostgresBase(Remediator[PostgresParams]):
    categories: ClassVar[frozenset[Category]] = frozenset({Category.CONFIG_DATABASE})
    params_model: ClassVar[type[BaseModel]] = PostgresParams

    def _base_plan(self, finding: FindingRecord) -> Plan:
        if finding.rule_id not in self.rule_ids:
            raise InputError(
                f"{self.name} cannot plan rule {finding.rule_id!r}; it handles "
                f"{', '.join(sorted(self.rule_ids))}"
            )
        return Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            title=finding.title,
            severity=finding.severity,
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Start the real server on a throw-away cluster with the candidate files."""
        if plan.empty:
            return []
        return [validate_candidate(plan, candidate)]


class PostgresqlConf(_PostgresBase):
    name: ClassVar[str] = "postgresql-conf"
    summary: ClassVar[str] = (
        "Harden postgresql.conf in place: TLS on to Mozilla's intermediate (or modern) profile, "
        "with a key made on the host at apply time and a self-signed or CA-issued certificate "
        "if needed; SCRAM password hashing, connection logging; report listen_addresses='*'."
    )
    rule_ids: ClassVar[frozenset[str]] = checks.CONF_RULES

    def detect(self, view: TargetView, params: PostgresParams | None = None) -> list[FindingRecord]:
        p = _params(params)
        return checks.detect_conf(view, p.server_root, p.tls_profile)

    def survey(
        self, view: TargetView, params: PostgresParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        p = _params(params)
        problems: list[str] = []
        return checks.detect_conf(view, p.server_root, p.tls_profile, problems), problems

    def config_files(
        self, view: TargetView, params: PostgresParams | None = None
    ) -> list[TakenFile]:
        # the pg_hba.conf files are listed by pg-hba
        return [] if checks.host_clusters(view) else sources.survey(view).files

    def plan(self, finding: FindingRecord, view: TargetView, params: PostgresParams) -> Plan:
        base = self._base_plan(finding)
        if finding.rule_id == checks.INLINE_CONFIG:
            where = f"{finding.location.path} line {finding.location.start_line}"
            reason = (
                f"{where} writes {finding.extra.get('dest', 'the configuration')} inline "
                f"({(finding.evidence or '')[:120]}); Jupiter does not rewrite shell commands: "
                "move these settings into the postgresql.conf or pg_hba.conf the image COPYs, "
                "which Jupiter checks and fixes"
            )
            return base.model_copy(update={"needs_manual": reason})
        root = _params(params).server_root
        cluster = _cluster_for(view, finding, root)
        p = _params(params)
        current = checks.check_conf(cluster, p.tls_profile, view)
        if finding.rule_id not in {f.rule_id for f in current}:
            return base
        edits = ConfEdits(cluster.config)
        note = f"set by jupiter ({finding.rule_id})"
        changes: list[Change] = []
        warnings: list[str] = []
        manual: list[str] = []
        diff = ""
        if finding.rule_id == checks.LISTEN_ALL:
            setting = cluster.config.get("listen_addresses")
            where = f"{setting.path} line {setting.line}" if setting else cluster.main
            reason = (
                f"{where}: listen_addresses = {cluster.config.value('listen_addresses')!r} "
                "exposes PostgreSQL on every interface; set it to the addresses clients "
                "really use (e.g. 'localhost,10.0.0.5') and restart PostgreSQL"
            )
            return base.model_copy(
                update={
                    "needs_manual": reason,
                    "risk": Risk(
                        services_to_reload=[SERVICE], manual_steps=[reason], disruption=True
                    ),
                }
            )
        if finding.rule_id == checks.TLS_CERT:
            cert = checks.cert_file(cluster) or ""
            own = posixpath.basename(cert) == CERT_NAME
            if not own and p.ca_cert is None:
                [weak] = [f for f in current if f.rule_id == checks.TLS_CERT]
                reason = (
                    f"{weak.evidence}: replace it with a certificate from your CA (valid at most "
                    f"{PROFILES[p.tls_profile].cert_days} days, with subject alternative names "
                    "and key identifiers), or plan again with ca_cert= and ca_key= to have "
                    "Jupiter issue one for a key made on the host"
                )
                return base.model_copy(
                    update={
                        "needs_manual": reason,
                        "risk": Risk(services_to_reload=[SERVICE], manual_steps=[reason]),
                    }
                )
            changes, diff, warnings = plan_tls_files(view, cluster, p, edits, note, replace=True)
        elif finding.rule_id in (checks.SSL_OFF, checks.TLS_PROFILE):
            if finding.rule_id == checks.SSL_OFF and cluster.config.repo:
                # A repository holds configuration, not a host's secrets: no
                # key is made into it; the host must have the pair it names.
                edits.set("ssl", "on", note)
                manual.append(_deploy_tls_step(cluster))
            elif finding.rule_id == checks.SSL_OFF:
                changes, diff, warnings = plan_tls_files(view, cluster, p, edits, note)
                edits.set("ssl", "on", note)
            for name, value in PROFILES[p.tls_profile].settings.items():
                edits.set(name, value, f"{note}, Mozilla {p.tls_profile}", quoted=True)
        elif finding.rule_id == checks.PASSWORD_ENCRYPTION:
            edits.set("password_encryption", "scram-sha-256", note)
            manual.append(
                "Passwords already stored as MD5 stay MD5 until they are set again: list them "
                f"with {MD5_ROLES_QUERY}; then reset each with ALTER ROLE <name> PASSWORD "
                "'<new password>' (or \\password <name> in psql) after the reload"
            )
        else:
            edits.set(checks.RULE_SETTING[finding.rule_id], "on", note)
        conf_changes, conf_diff = edits.build(view)
        return base.model_copy(
            update={
                "changes": [*changes, *conf_changes],
                "diff": diff + conf_diff,
                "risk": Risk(
                    change_kind="config",
                    services_to_reload=[SERVICE],
                    warnings=warnings,
                    manual_steps=manual,
                ),
            }
        )


class PgHba(_PostgresBase):
    name: ClassVar[str] = "pg-hba"
    summary: ClassVar[str] = (
        "Rewrite weak pg_hba.conf records in place: trust/password/md5 become scram-sha-256 "
        "(peer for local trust), remote host records become hostssl."
    )
    rule_ids: ClassVar[frozenset[str]] = checks.HBA_RULES

    def detect(self, view: TargetView, params: PostgresParams | None = None) -> list[FindingRecord]:
        p = _params(params)
        return checks.detect_hba(view, p.server_root, p.client_certificates)

    def survey(
        self, view: TargetView, params: PostgresParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        p = _params(params)
        problems: list[str] = []
        found = checks.detect_hba(view, p.server_root, p.client_certificates, problems)
        # the clusters' own problems are postgresql-conf's to report
        return found, [x for x in problems if "pg_hba" in x]

    def config_files(
        self, view: TargetView, params: PostgresParams | None = None
    ) -> list[TakenFile]:
        if checks.host_clusters(view):
            return []
        out = []
        for cluster, evidence in checks.clusters(view, _params(params).server_root, []):
            if cluster.hba_path is not None:
                why = f"the pg_hba.conf beside {cluster.main} ({evidence})"
                out.append(TakenFile(cluster.hba_path, sources.DOMAIN, why))
        return out

    def plan(self, finding: FindingRecord, view: TargetView, params: PostgresParams) -> Plan:
        base = self._base_plan(finding)
        root = _params(params).server_root
        cluster = _cluster_for(view, finding, root)
        hba = checks.load_hba(view, cluster)
        if hba is None:
            raise ConflictError(
                f"the pg_hba.conf of {cluster.main} no longer exists on {view.describe()}; "
                "run detect again"
            )
        record = _find_record(hba.records, finding)
        if record is None:
            return base
        client_certs = _params(params).client_certificates
        issues = checks.hba_issues(record, client_certs)
        if finding.rule_id not in {rule for rule, _, _ in issues}:
            return base
        new_type, new_method, warnings, manual = _rewrite(record, cluster)
        replacements = {record.method_index: new_method}
        if checks.wants_clientcert(record, client_certs):
            new_type = "hostssl"  # clientcert is an option of TLS connections only
            last = len(record.fields) - 1
            replacements[last] = replacements.get(last, record.fields[last].text)
            replacements[last] += " " + checks.CLIENTCERT
            warnings.append(
                f"{record.path} line {record.line}: clients from {record.address} must now "
                "present a certificate issued by the CA in ssl_ca_file whose CN is their role "
                "name (sslcert/sslkey in libpq)"
            )
            if not cluster.config.value("ssl_ca_file"):
                warnings.append(
                    f"ssl_ca_file is not set in {cluster.main}: the server cannot verify client "
                    "certificates; apply postgresql-conf with ca_cert=, ca_key= and "
                    "client_certificates=true first"
                )
        if new_type != record.conn_type:
            replacements[0] = new_type
        lines = split_lines(hba.text, keepends=True)
        raw = lines[record.line - 1]
        body = raw.rstrip("\r\n")
        lines[record.line - 1] = (
            replace_fields(body, record.fields, replacements) + raw[len(body) :]
        )
        after = "".join(lines)
        related = [
            f"{rule}@{hba.path}:{record.line}" for rule, _, _ in issues if rule != finding.rule_id
        ]
        return base.model_copy(
            update={
                "changes": [
                    WriteFile(
                        path=hba.path,
                        content=after,
                        before_sha256=sha256_bytes(view.read_bytes(hba.path)),
                    )
                ],
                "diff": unified_diff(hba.path, hba.text, after),
                "related_findings": related,
                "risk": Risk(
                    change_kind="config",
                    services_to_reload=[SERVICE],
                    warnings=warnings,
                    manual_steps=manual,
                    # tightened authentication can lock out clients that
                    # relied on the old rule until they are reconfigured
                    disruption=True,
                ),
            }
        )


def _deploy_tls_step(cluster: checks.Cluster) -> str:
    cert = cluster.config.value("ssl_cert_file") or "server.crt (in the data directory)"
    key = cluster.config.value("ssl_key_file") or "server.key (in the data directory)"
    return (
        f"{cluster.main} now turns ssl on: every host it is deployed to needs the certificate "
        f"{cert} and its key {key} (mode 0600, owned by postgres) before PostgreSQL restarts; "
        "Jupiter makes no private key inside a repository"
    )


def _find_record(records: list[HbaRecord], finding: FindingRecord) -> HbaRecord | None:
    """The finding's record: same text on the same line, else the same text
    elsewhere (lines moved); ``None`` when it is gone (edited or fixed)."""
    text = finding.extra.get("record") or finding.evidence
    line = finding.location.start_line
    if not text:  # e.g. another scanner's finding: only the line is known
        return next((r for r in records if r.line == line), None)
    same = [r for r in records if r.text.strip() == text]
    return next((r for r in same if r.line == line), same[0] if same else None)


def _rewrite(record: HbaRecord, cluster: checks.Cluster) -> tuple[str, str, list[str], list[str]]:
    """(new type, new method, warnings, manual steps) for one record."""
    kind, method = record.conn_type, record.method
    warnings: list[str] = []
    manual: list[str] = []
    where = f"{record.path} line {record.line}"
    if kind == "local":
        if method == "trust":
            warnings.append(
                f"{where}: local connections now use peer authentication: the OS user must "
                "match the database role (Debian's default); scripts that connect as another "
                "role need a map in pg_ident.conf or a password"
            )
            return kind, "peer", warnings, manual
        return kind, method, warnings, manual
    new_method = method
    if method in ("trust", "password", "md5"):
        new_method = "scram-sha-256"
        if method == "trust":
            manual.append(
                f"{where}: clients matched by this record now need a password: give each role "
                "a SCRAM password (ALTER ROLE <name> PASSWORD '<new password>') and configure "
                "the clients (e.g. ~/.pgpass)"
            )
        else:
            manual.append(
                f"{where}: roles whose password is stored as MD5 can no longer log in through "
                f"this record: list them with {MD5_ROLES_QUERY} and reset each with ALTER ROLE "
                "<name> PASSWORD '<new password>' while password_encryption = 'scram-sha-256'"
            )
    new_type = kind
    if kind in ("host", "hostnossl") and not checks.is_loopback(record):
        new_type = "hostssl"
        warnings.append(
            f"{where}: clients from {record.address} must now use TLS (libpq's default "
            "sslmode=prefer does; clients with sslmode=disable are refused)"
        )
        if not checks.bool_setting(cluster, "ssl"):
            warnings.append(
                f"ssl is off in {cluster.main}: hostssl records match nothing until the "
                f"{checks.SSL_OFF} fix (postgresql-conf) is applied, so these clients would be "
                "refused; apply that fix first"
            )
    return new_type, new_method, warnings, manual
