"""Validate a candidate PostgreSQL configuration by starting the real server.

The candidate cluster's files (``postgresql.conf``, everything it includes,
``postgresql.auto.conf``, ``pg_hba.conf``, ``pg_ident.conf`` and the TLS files
it names) are copied into a private directory; absolute include paths are
rewritten to the copies (line numbers are kept, so the server's messages point
at the right lines). Values that depend on the host rather than on the
configuration (locales, preloaded libraries, huge pages) are neutralised in
the copies, so an extension or locale missing on the machine running Jupiter
does not fail a correct plan; commands and libraries the candidate names are
never run or loaded. Then ``postgres`` starts on a throw-away cluster
(:mod:`jupiter.plugins.postgres.server`) with the copies, without TCP,
and is stopped again.

Keys and certificates the plan generates (``GenerateKey``,
``IssueCertificate``) are made here with throw-away keys to the plan's spec;
the real key is made only on apply.

A repository's configuration names its TLS files by host paths the
repository does not hold: the sandbox then supplies a throw-away
self-signed certificate and key (and uses that certificate as the CA file),
made in the sandbox and deleted with it, and the result says so.

A private key is copied with mode 0600 when the candidate's mode would be
accepted by the server on the target (0600, or 0640 for a root-owned key),
else with its own mode, so a key the server would refuse is refused here.
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

from jupiter.errors import InputError, JupiterError
from jupiter.keygen import with_throwaway_material
from jupiter.plans import Plan
from jupiter.plugins.base import ValidationResult
from jupiter.plugins.kit import read_text
from jupiter.plugins.postgres.detect import Cluster, find_clusters, load_cluster
from jupiter.plugins.postgres.parse_conf import (
    INCLUDE_DIRECTIVES,
    parse_conf_line,
    quote,
    split_lines,
)
from jupiter.plugins.postgres.server import (
    ServerError,
    find_postgres,
    give_to,
    running_server,
    server_account,
    throwaway_cluster,
)
from jupiter.targets.base import TargetView

VALIDATOR = "postgres start"
_TLS_FILES = {
    "ssl_cert_file": "server.crt",
    "ssl_key_file": "server.key",
    "ssl_ca_file": "",
    "ssl_crl_file": "",
    "ssl_dh_params_file": "",
}
_NEUTRAL = {
    "lc_messages": "C",
    "lc_monetary": "C",
    "lc_numeric": "C",
    "lc_time": "C",
    "shared_preload_libraries": "",
    "huge_pages": "try",
}
# The candidate comes from the target: the sandbox must not run a command or
# load a library it names (the command line beats the files).
_NO_EXEC = {
    "ssl_passphrase_command": "",
    "shared_preload_libraries": "",
    "local_preload_libraries": "",
    "session_preload_libraries": "",
    "archive_command": "",
    "restore_command": "",
}


def guess_server_root(view: TargetView, main: str) -> str:
    """Where the server sees the target's root, judged from the absolute paths
    in ``main`` (``hba_file``, TLS files, includes...): the first one whose
    tail names a path that exists in the target gives the prefix; ``/`` else.

    Validators get no parameters, so the ``server_root`` a plan was made with
    is recovered this way.
    """
    for lineno, line in enumerate(split_lines(read_text(view, main)), start=1):
        try:
            setting = parse_conf_line(main, lineno, line)
        except InputError:
            continue
        if setting is None or not setting.value.startswith("/"):
            continue
        parts = [p for p in setting.value.split("/") if p]
        for skip in range(len(parts)):
            if view.stat("/".join(parts[skip:])) is not None:
                return "/" + "/".join(parts[:skip])
    return "/"


def touched_cluster(plan: Plan, candidate: TargetView) -> Cluster | None:
    """The cluster whose files (or configuration directory) the plan touches."""
    touched = set(plan.touched_paths())
    for main in find_clusters(candidate):
        cluster = load_cluster(candidate, main, guess_server_root(candidate, main))
        paths = set(cluster.config.files) | {cluster.hba_path}
        if touched & paths or any(posixpath.dirname(p) == posixpath.dirname(main) for p in touched):
            return cluster
    return None


def validate_candidate(plan: Plan, candidate: TargetView) -> ValidationResult:
    """Start PostgreSQL with the candidate configuration the plan touches."""
    binary = find_postgres()
    if binary is None:
        return ValidationResult(VALIDATOR, "skipped", "PostgreSQL is not installed here")
    who = server_account()
    if isinstance(who, str):
        return ValidationResult(VALIDATOR, "skipped", who)
    try:
        # The real key is made on apply: start the server with a throw-away
        # one made to the same spec.
        candidate = with_throwaway_material(candidate, plan)
        cluster = touched_cluster(plan, candidate)
    except JupiterError as exc:
        return ValidationResult(VALIDATOR, "failed", str(exc))
    if cluster is None:
        return ValidationResult(
            VALIDATOR, "skipped", "the plan touches no PostgreSQL cluster configuration"
        )
    try:
        sandbox = throwaway_cluster(binary, who)
    except ServerError as exc:
        return ValidationResult(VALIDATOR, "skipped", f"no throw-away cluster: {exc}")
    work = sandbox.workdir()
    supplied: list[str] = []
    try:
        config_file, settings = stage(candidate, cluster, work / "root", supplied)
        give_to(work, who)
        with running_server(sandbox, config_file, settings, work):
            pass
    except ServerError as exc:
        return ValidationResult(
            VALIDATOR, "failed", f"{cluster.main} with its candidate files: {exc}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    note = ""
    if supplied:
        note = (
            f" ({', '.join(supplied)}: not in the repository, so a throw-away self-signed "
            "certificate and key made in the validation sandbox stood in)"
        )
    return ValidationResult(
        VALIDATOR,
        "passed",
        f"{sandbox.version} started with the candidate {cluster.main} and "
        f"{cluster.hba_path or 'no pg_hba.conf'}{note}",
    )


def stage(
    view: TargetView, cluster: Cluster, root: Path, supplied: list[str] | None = None
) -> tuple[Path, dict[str, str]]:
    """Copy the cluster's files under ``root``; return the main file's copy and
    the ``-c`` settings that point the server at the copies. For a
    repository's cluster, TLS settings naming files it does not hold get
    throw-away ones, listed in ``supplied``."""
    config = cluster.config
    settings: dict[str, str] = dict(_NO_EXEC)

    def put(rel: str, data: bytes, mode: int = 0o600) -> Path:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(mode)
        return dest

    auto = None
    for path, conf in config.files.items():
        lines = conf.lines()
        for setting in conf.settings:
            new = None
            if setting.name in INCLUDE_DIRECTIVES:
                rel = config.to_target(setting.value, posixpath.dirname(path))
                if rel is not None:
                    if setting.name == "include_dir":
                        (root / rel).mkdir(parents=True, exist_ok=True)
                    new = str(root / rel) if setting.value.startswith("/") else None
            elif setting.name in _NEUTRAL:
                new = _NEUTRAL[setting.name]
            if new is not None:
                raw = lines[setting.line - 1]
                lines[setting.line - 1] = (
                    raw[: setting.span[0]] + quote(new) + raw[setting.span[1] :]
                )
        text = "".join(lines)
        if posixpath.basename(path) == "postgresql.auto.conf" and path != config.main:
            auto = put(path, text.encode())
        else:
            put(path, text.encode())
    main = root / config.main
    if auto is not None:
        # The server reads postgresql.auto.conf from its data directory, which
        # here is the throw-away one: include the copy last, as it would be.
        with open(main, "a") as handle:
            handle.write(f"\ninclude {quote(str(auto))}\n")
    if cluster.hba_path:
        settings["hba_file"] = str(put(cluster.hba_path, view.read_bytes(cluster.hba_path)))
    else:
        settings["hba_file"] = str(put("missing/pg_hba.conf", b""))
    ident = cluster.ident_path
    settings["ident_file"] = str(
        put(ident, view.read_bytes(ident)) if ident else put("missing/pg_ident.conf", b"")
    )
    base_dir = cluster.data_dir or posixpath.dirname(config.main)
    for name, default in _TLS_FILES.items():
        value = config.value(name, default) or ""
        if not value:
            continue
        rel = config.to_target(value, base_dir)
        state = view.stat(rel) if rel else None
        missing = rel is None or state is None or state.kind != "file"
        if missing and config.repo:
            if name in ("ssl_cert_file", "ssl_key_file", "ssl_ca_file"):
                settings[name] = str(_throwaway_tls(root)[name])
            else:
                settings[name] = ""
            if supplied is not None:
                supplied.append(f"{name} {value}")
            continue
        if rel is None or state is None or state.kind != "file":
            # Absent from the candidate: point at a path that does not exist
            # either, so "ssl = on" fails here as it would on the target.
            settings[name] = str(root / "missing" / posixpath.basename(value))
            continue
        mode = 0o600
        if name == "ssl_key_file":
            accepted = state.mode & 0o077 == 0 or (state.uid == 0 and state.mode & 0o037 == 0)
            mode = 0o600 if accepted else state.mode & 0o777
        settings[name] = str(put(f"tls/{name}", view.read_bytes(rel), mode))
    return main, settings


def _throwaway_tls(root: Path) -> dict[str, Path]:
    """A self-signed certificate (usable as its own CA) and its key under
    ``root/throwaway``, made once per sandbox."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from jupiter.keygen import key_pem, new_key

    folder = root / "throwaway"
    cert, key_file = folder / "server.crt", folder / "server.key"
    if not cert.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = new_key("ec-p256")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jupiter-validation")])
        now = dt.datetime.now(dt.UTC)
        built = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        from cryptography.hazmat.primitives import serialization

        cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key_pem(key))
        key_file.chmod(0o600)
        cert.chmod(0o600)
    return {"ssl_cert_file": cert, "ssl_key_file": key_file, "ssl_ca_file": cert}
