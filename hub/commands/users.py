"""`hub user`: the people who sign in to the settings pages (hub/auth). Passwords come from
a hidden prompt (asked twice) or, for scripts, the first line of stdin with
`--password-stdin`; never from an argument, which shell history and `ps` would keep."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from hub import db
from hub import integrations as store
from hub.auth import users
from hub.commands import typer_app
from hub.errors import ValidationError
from hub.schema import ROLES

app = typer_app("Users of the settings pages: add, list, disable, reset a password.")

PASSWORD_STDIN = typer.Option(False, "--password-stdin", help="read the password from the first line of stdin")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise ValidationError("no password given")
    return password


@app.command("add")
def user_add(
    company: str = typer.Option(..., help="company id or name"),
    email: str = typer.Option(..., help="the user's email (their sign-in name)"),
    role: str = typer.Option(..., help=f"one of: {', '.join(ROLES)}"),
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Add a user to a company (creating the user, with a password, if new; an existing
    user keeps their password and gets this role in the company)."""
    users.check_role(role)
    address = users.normalize_email(email)
    with db.engine().connect() as conn:
        company_row = store.find_company(conn, company)
        existing = users.find_user(conn, address)
    password = None if existing else _read_password(password_stdin)
    with db.engine().begin() as conn:
        user_id = existing.id if existing else users.create_user(conn, address, password)
        outcome = users.grant(conn, user_id, company_row.id, role)
    what = {"added": f"is now {role} of", "changed": f"is now {role} of", "unchanged": f"was already {role} of"}[outcome]
    typer.echo(f"user {address} ({'existing' if existing else 'new'}) {what} '{company_row.name}'")


@app.command("list")
def user_list(company: Optional[str] = typer.Option(None, help="only this company's members (id or name)")) -> None:
    """List users with their companies and roles."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        rows = users.list_users(conn, company_id)
    if not rows:
        typer.echo("no users yet: hub user add --company C --email E --role admin")
        return
    typer.echo(f"{'email':<32} {'active':<6} {'last sign-in':<20} companies")
    for r in rows:
        last = r.last_login_at.isoformat(timespec="seconds") if r.last_login_at else "never"
        roles = ", ".join(f"{name} ({role})" for name, role in r.roles) or "-"
        typer.echo(f"{r.email:<32} {'yes' if r.is_active else 'no':<6} {last:<20} {roles}")


@app.command("disable")
def user_disable(email: str) -> None:
    """Disable a user: they cannot sign in, and their open sessions end at the next request."""
    with db.engine().begin() as conn:
        user = users.set_active(conn, email, False)
    typer.echo(f"user {user.email} disabled")


@app.command("enable")
def user_enable(email: str) -> None:
    """Enable a disabled user again."""
    with db.engine().begin() as conn:
        user = users.set_active(conn, email, True)
    typer.echo(f"user {user.email} enabled")


@app.command("reset-password")
def user_reset_password(email: str, password_stdin: bool = PASSWORD_STDIN) -> None:
    """Set a new password; the user's open sessions end."""
    with db.engine().connect() as conn:
        address = users.require_user(conn, email).email
    password = _read_password(password_stdin)
    with db.engine().begin() as conn:
        users.reset_password(conn, address, password)
    typer.echo(f"password of {address} reset; their sessions have ended")
