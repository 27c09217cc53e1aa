"""Store administration: init, users, audit, config."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from console.common import DbOption, JsonOption, err, note, now, open_store, out, print_json, store_path, who

users_app = typer.Typer(help="Who may do what in this store.", no_args_is_help=True)
config_app = typer.Typer(help="The shop policy file beside the store.", no_args_is_help=True)


def init(
    db: DbOption = None,
    group: Annotated[
        Optional[str],
        typer.Option("--group", help="Share the store with this OS group (file mode 0660 instead of 0600)."),
    ] = None,
    timezone: Annotated[
        Optional[str], typer.Option("--timezone", help="The shop's time zone (IANA name); default: this machine's.")
    ] = None,
) -> None:
    """Create an empty store; you become its owner."""
    from core.clock import local_zone_name
    from core.config import parse_config
    from core.store import Store
    from core.users import os_login

    path = store_path(db)
    zone = timezone or local_zone_name()
    parse_config(f'timezone = "{zone}"\n')  # refuse an unknown zone before creating anything
    store = Store.create(path, owner=os_login(), now=now(), timezone=zone, group=group)
    store.close()
    out().print(f"Created {path} (owner: {os_login()}, time zone: {zone}).")
    out().print(f"Policy: {path.with_suffix('.toml')}")
    if group:
        note(f"Shared with group {group}: members need write access to {path.parent} too (for the -wal file).")
    from rich.markup import escape

    from console.command_lines import command_line

    out().print(f"Next: [bold]{escape(command_line(path, 'import orders FILE'))}[/], "
                f"then [bold]{escape(command_line(path, 'refresh'))}[/].")


@users_app.command("add")
def users_add(
    login: Annotated[str, typer.Argument(help="The OS login name.")],
    role: Annotated[str, typer.Option("--role", help="owner, operator, support or viewer.")],
    db: DbOption = None,
) -> None:
    """Add a user, or change their role."""
    from core.users import add_user

    with open_store(db) as store:
        add_user(store, who(store), login, role, now())
    out().print(f"{login} is now {role}.")


@users_app.command("remove")
def users_remove(login: Annotated[str, typer.Argument()], db: DbOption = None) -> None:
    """Remove a user (they can still look, as a viewer)."""
    from core.users import remove_user

    with open_store(db) as store:
        remove_user(store, who(store), login, now())
    out().print(f"{login} removed.")


@users_app.command("list")
def users_list(db: DbOption = None, json: JsonOption = False) -> None:
    """List users and roles."""
    from rich.table import Table

    from core.clock import format_instant
    from core.users import list_users

    with open_store(db, readonly=True) as store:
        rows = list_users(store)
        me = who(store)
        zone = store.config.zone
    if json:
        print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    for column in ("login", "role", "added by", "added"):
        table.add_column(column)
    for row in rows:
        marker = " (you)" if row["login"] == me.login else ""
        table.add_row(row["login"] + marker, row["role"], row["added_by"], format_instant(row["added_at"], zone, False))
    out().print(table)
    if not me.known:
        note(f"You ({me.login}) are not in this list, so you can only look (viewer).")


def audit(
    db: DbOption = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain; name the first broken row.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent rows to show.", min=1,
                                          max=1_000_000)] = 30,
    json: JsonOption = False,
) -> None:
    """Show the audit log (newest first), or verify its hash chain."""
    from core import audit as audit_log
    from core.clock import format_instant

    with open_store(db, readonly=True) as store:
        if verify:
            result = audit_log.verify(store)
            if json:
                print_json({"ok": result.ok, "rows": result.rows, "first_broken": result.first_broken,
                            "reason": result.reason})
            elif result.ok:
                out().print(f"✓ audit chain intact ({result.rows} rows)")
            else:
                err().print(f"[bold red]✗ audit chain broken at row {result.first_broken}:[/] {result.reason}")
            if not result.ok:
                raise typer.Exit(2)
            return
        rows = audit_log.recent(store, limit)
        zone = store.config.zone
    if json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("#", "when", "who", "action", "target", "details"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), format_instant(row["at"], zone), row["actor"], row["action"],
                      row["target"] or "", row["details"] if row["details"] != "{}" else "")
    out().print(table)


@config_app.command("path")
def config_path(db: DbOption = None) -> None:
    """Print where the config file is."""
    from core.config import config_path_for

    typer.echo(str(config_path_for(store_path(db))))


@config_app.command("show")
def config_show(db: DbOption = None, json: JsonOption = False) -> None:
    """Show the effective policy (the file's values over the defaults)."""
    from core.config import config_path_for, load_config

    config = load_config(config_path_for(store_path(db)))
    if json:
        print_json(config.policy())
        return
    import tomlkit

    policy = config.policy()
    policy["caps"] = [dict(rule) for rule in policy["caps"]]
    policy["segments"] = {name: [dict(rule) for rule in rules] for name, rules in policy["segments"].items()}
    if policy["rfm"].get("cn8_fixed") is None:
        policy["rfm"].pop("cn8_fixed")
    for rules in policy["segments"].values():
        for rule in rules:
            for axis in ("r", "f", "m"):
                low, high = rule[axis]
                rule[axis] = f"{low}-{high}" if low != high else str(low)
    out().print(f"[dim]# {config.path} (hash {config.hash})[/]")
    typer.echo(tomlkit.dumps(_tomlable(policy)).rstrip())
    for message in config.warnings:
        err().print(f"[yellow]warning:[/] {message}")


def _tomlable(value):
    if isinstance(value, dict):
        return {key: _tomlable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tomlable(item) for item in value]
    return value


@config_app.command("check")
def config_check(db: DbOption = None) -> None:
    """Validate the config file; name each bad key and its line."""
    from core.config import config_path_for, load_config

    path = config_path_for(store_path(db))
    config = load_config(path)  # a ConfigError is reported by the root group
    for message in config.warnings:
        err().print(f"[yellow]warning:[/] {message}")
    state = "no file: the defaults apply" if not path.exists() else "ok"
    out().print(f"✓ {path}: {state} (hash {config.hash})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(users_app, name="users")
    app.command("audit")(audit)
    app.add_typer(config_app, name="config")
