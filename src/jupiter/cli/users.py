"""``jupiter users``: users, roles and API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from jupiter.cli import state

app = typer.Typer(no_args_is_help=True)
token_app = typer.Typer(no_args_is_help=True)
app.add_typer(token_app, name="token", help="Create and revoke API tokens.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(help="User name (as given to --actor).")]
GroupOpt = Annotated[
    str | None, typer.Option("--group", help="Scope the role(s) to this asset group.")
]
EnvOpt = Annotated[str | None, typer.Option("--env", help="Scope the role(s) to this environment.")]


@app.command("add")
def add(
    name: NameArg,
    role: Annotated[
        list[str],
        typer.Option(
            "--role", help="viewer, analyst, approver, operator, admin or auditor (repeatable)."
        ),
    ],
    group: GroupOpt = None,
    env: EnvOpt = None,
    json: JsonOpt = False,
) -> None:
    """Add a user with one or more roles."""
    result = state.engine().add_user(name, role, group, env)
    if json:
        state.emit_json(result)
        return
    state.console().print(f"added {name} with roles {', '.join(role)}")


@app.command("grant")
def grant(
    name: NameArg,
    role: Annotated[str, typer.Argument(help="Role to grant.")],
    group: GroupOpt = None,
    env: EnvOpt = None,
    json: JsonOpt = False,
) -> None:
    """Grant a user one more role (optionally scoped)."""
    result = state.engine().grant_role(name, role, group, env)
    if json:
        state.emit_json(result)
        return
    verb = "granted" if result["changed"] else "already held"
    state.console().print(f"{name}: {role} {verb}")


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """List users, their roles and tokens."""
    rows = state.engine().list_users()
    if json:
        state.emit_json(rows)
        return
    from rich.table import Table

    table = Table("name", "roles", "tokens", "disabled")
    for r in rows:
        roles = []
        for g in r["roles"]:
            scope = ",".join(f"{k}={g[k]}" for k in ("group", "environment") if g[k] is not None)
            roles.append(g["role"] + (f"({scope})" if scope else ""))
        live = [t["id"] for t in r["tokens"] if not t["revoked"]]
        table.add_row(r["name"], ", ".join(roles), ", ".join(live), "yes" if r["disabled"] else "")
    state.console().print(table)


@app.command("disable")
def disable(name: NameArg, json: JsonOpt = False) -> None:
    """Disable a user: it can no longer act (its history stays)."""
    result = state.engine().disable_user(name)
    if json:
        state.emit_json(result)
        return
    state.console().print(f"disabled {name}")


@token_app.command("create")
def token_create(
    user: Annotated[
        str | None, typer.Option("--user", help="Whose token (default: yourself; admin only).")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    expires_days: Annotated[
        int, typer.Option("--expires-days", help="Days until the token expires.")
    ] = 90,
    json: JsonOpt = False,
) -> None:
    """Create an API token; it is shown once (use it as JUPITER_TOKEN)."""
    result = state.engine().create_token(user, label, expires_days)
    if json:
        state.emit_json(result)
        return
    state.console().print(
        f"token {result['id']} for {result['user']} (expires {result['expires_at']}); "
        "shown once, store it now:"
    )
    typer.echo(result["token"])


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (see `jupiter users list`).")],
    json: JsonOpt = False,
) -> None:
    """Revoke an API token."""
    result = state.engine().revoke_token(token_id)
    if json:
        state.emit_json(result)
        return
    state.console().print(f"revoked token {token_id} of {result['user']}")
