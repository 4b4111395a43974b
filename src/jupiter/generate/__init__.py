"""Secure-configuration templates: ``jupiter generate ssh|firewall|postgresql``.

:func:`generate` renders complete configuration files (Jinja2 templates
under ``jupiter/templates/``) from validated parameters. The files pass the
same checks as a configuration Jupiter fixed in place: the sshd values come
from :mod:`jupiter.plugins.sshd.detect`, the firewall from
:func:`jupiter.plugins.nftables.fix.render_ruleset`, and the PostgreSQL
template satisfies every ``PG-*`` rule.

Parameters per kind: see :class:`SshParams`, :class:`FirewallGenParams`,
:class:`PostgresqlParams`, or :func:`known_parameters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jupiter.errors import InputError
from jupiter.generate.params import (
    KINDS,
    FirewallGenParams,
    Kind,
    PostgresqlParams,
    SshParams,
    known_parameters,
    parse_params,
)
from jupiter.generate.render import (
    GeneratedConfig,
    render_firewall,
    render_postgresql,
    render_ssh,
)


def generate(kind: Kind, params: Mapping[str, object] | None = None) -> GeneratedConfig:
    """Render the configuration files for ``kind`` from raw ``params``.

    Raises :class:`~jupiter.errors.InputError` for an unknown kind, an unknown
    parameter or an invalid value (one sentence naming it).
    """
    p = parse_params(kind, params)
    if isinstance(p, SshParams):
        return render_ssh(p)
    if isinstance(p, FirewallGenParams):
        return render_firewall(p)
    assert isinstance(p, PostgresqlParams)
    return render_postgresql(p)


def write_generated(config: GeneratedConfig, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write ``config.files`` under ``out_dir`` (``out_dir/etc/ssh/sshd_config``)
    with their modes; returns the paths written. Refuses (InputError) to
    replace an existing file unless ``force``, before writing anything."""
    targets = [
        (out_dir / rel, content, config.modes.get(rel, 0o644))
        for rel, content in config.files.items()
    ]
    existing = [str(path) for path, _, _ in targets if path.exists()]
    if existing and not force:
        raise InputError(
            f"{existing[0]} already exists; choose an empty output directory or pass --force"
        )
    for path, content, mode in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.jupiter-tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.chmod(mode)
        tmp.replace(path)
    return [path for path, _, _ in targets]


__all__ = [
    "KINDS",
    "FirewallGenParams",
    "GeneratedConfig",
    "Kind",
    "PostgresqlParams",
    "SshParams",
    "generate",
    "known_parameters",
    "write_generated",
]
