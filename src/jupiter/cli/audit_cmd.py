"""``jupiter audit``: verify, checkpoint and export the tamper-evident audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Also compare the chain with this signed checkpoint: catches a rewrite, "
            "truncation or fork before it.",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="Public key that signed the checkpoint (default: this workspace's)."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Walk the hash chain; exit 1 and name the first bad entry if it was tampered with."""
    from jupiter.errors import DatabaseDamaged

    try:
        result = state.engine().audit_verify(checkpoint, key)
    except DatabaseDamaged as exc:
        # A check that cannot read what it checks has failed: exit 1, not 2.
        message = f"the audit chain cannot be read: {exc.message}"
        if json:
            state.emit_json(
                {"ok": False, "entries": 0, "first_bad_entry": None, "problem": message}
            )
        else:
            state.console(stderr=True).print(f"audit chain UNREADABLE: {message}")
        raise typer.Exit(1) from None
    if json:
        state.emit_json(result.to_json())
    elif result.ok:
        against = (
            f", the first {result.checkpoint_entries} as signed in {checkpoint}"
            if checkpoint is not None
            else ""
        )
        state.console().print(f"audit chain intact: {result.entries} entries verified{against}")
    else:
        state.console(stderr=True).print(f"audit chain BROKEN: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint(
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            help="Also write the checkpoint here (a file, or a directory to write into): "
            "somewhere the database's writers cannot change.",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sign the chain's current head with the workspace's audit key (Ed25519)."""
    done = state.engine().audit_checkpoint(witness)
    if not done.checkpoint:
        against = f" (compared with {done.against})" if done.against else ""
        state.console(stderr=True).print(
            f"audit chain BROKEN{against}: {done.result.problem}; no checkpoint was signed"
        )
        raise typer.Exit(1)
    if json:
        state.emit_json(done.checkpoint)
        return
    cp = done.checkpoint
    out = state.console()
    out.print(f"checkpoint signed: {cp['entries']} entries, head {cp['head']}, key {cp['key_id']}")
    for path in done.files:
        out.print(f"written to {path}")


@app.command("public-key")
def public_key(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Print the public half of the audit signing key (PEM), to verify checkpoints elsewhere."""
    from jupiter.keys import KeyStore

    state.engine().workspace.ensure()
    pem = KeyStore(state.engine().workspace.home).audit_public_pem()
    if output is None:
        state.console().print(pem, end="")
        return
    output.write_text(pem, encoding="ascii")


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or cef.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Export every audit entry for a SIEM (JSON lines or ArcSight CEF)."""
    import sys

    import orjson

    from jupiter import __version__
    from jupiter.audit import to_cef
    from jupiter.errors import InputError

    if fmt not in ("jsonl", "cef"):
        raise InputError(f"unknown export format {fmt!r}; use jsonl or cef")
    lines = (
        (orjson.dumps(e).decode() if fmt == "jsonl" else to_cef(e, __version__))
        for e in state.engine().audit_export()
    )
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    tmp = output.with_name(output.name + ".partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    tmp.replace(output)
