"""``jupiter generate`` and ``jupiter script``: configurations and fix scripts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state


def generate(
    kind: Annotated[str, typer.Argument(help="ssh, firewall or postgresql.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="KEY=VALUE, e.g. level=maximum, allow=80,443, environment=production.",
        ),
    ] = None,
    level: Annotated[str | None, typer.Option(help="ssh: baseline, strict or maximum.")] = None,
    asset_type: Annotated[
        str | None, typer.Option(help="firewall: web_server, database, bastion, generic.")
    ] = None,
    allow: Annotated[str | None, typer.Option(help="firewall: ports to open, e.g. 80,443.")] = None,
    admin_cidr: Annotated[
        str | None, typer.Option(help="firewall: network allowed to reach admin ports.")
    ] = None,
    environment: Annotated[
        str | None, typer.Option(help="postgresql: production, staging or development.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the files under this directory (a root)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace files that exist under --output.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Render a secure configuration that passes Jupiter's own checks and validators."""
    from jupiter.errors import InputError

    params: dict[str, object] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"parameter {item!r} is not KEY=VALUE")
        params[key] = value
    shortcuts = {
        "level": level,
        "asset_type": asset_type,
        "allow": allow,
        "admin_cidr": admin_cidr,
        "environment": environment,
    }
    params.update({k: v for k, v in shortcuts.items() if v is not None})
    config = state.engine().generate_config(kind, params, output, force)
    written = config.written
    if json:
        state.emit_json(config.to_json())
        return
    err = state.console(stderr=True)
    if written:
        for p in written:
            err.print(f"wrote {p}")
    else:
        for path, content in config.files.items():
            if len(config.files) > 1:
                sys.stdout.write(f"# ---- {path}\n")
            sys.stdout.write(content)
    for note in config.notes:
        err.print(f"[yellow]note:[/] {note}")


def script(
    ref: Annotated[
        str, typer.Argument(help="A finding id, or run:ID for everything a run applied.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="bash, python or ansible.")] = "bash",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write a standalone fix script a change board can read and run itself
    (target root as first argument, --check, --undo, its own backup)."""
    text = state.engine().export_script(ref, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(output.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o700 if fmt != "ansible" else 0o600)
    tmp.replace(output)
    state.console(stderr=True).print(f"wrote {output} (keep it confidential: it embeds the fix)")
