"""The `sessiongate` command: run, migrate, and manage users, with the service's settings."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from app.config import Settings, get_settings
from app.db import create_engine, ensure_database, resolve_urls
from app.errors import ApiError
from app.gateway import Gateway

cli = typer.Typer(
    help="sessiongate: session cookies in front of PostgreSQL RLS.", no_args_is_help=True
)
users = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
cli.add_typer(users, name="user")
session_commands = typer.Typer(help="Inspect and end sessions.", no_args_is_help=True)
cli.add_typer(session_commands, name="sessions")


def _migrate(settings: Settings) -> None:
    urls = resolve_urls(settings)
    if settings.embedded:
        asyncio.run(ensure_database(urls.admin))
    # Imported here: alembic costs half a second that user commands do not need.
    from app import migrations

    migrations.upgrade(urls.admin, demo=settings.demo_mode)


@cli.command()
def migrate() -> None:
    """Apply the SQL contract (and the demo app in demo mode)."""
    settings = get_settings()
    _migrate(settings)
    typer.echo("database is up to date")


@cli.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT).")] = None,
) -> None:
    """Migrate, then serve. Starts the embedded PostgreSQL when DATABASE_URL is unset."""
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    _migrate(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    # The app factory reads the settings again; let it see the same address,
    # so a PUBLIC_URL derived from HOST and PORT matches where we listen.
    os.environ["HOST"], os.environ["PORT"] = bind_host, str(bind_port)
    url = f"http://{bind_host}:{bind_port}/"
    typer.secho(f"sessiongate is starting on {url}", fg=typer.colors.GREEN, bold=True)
    if settings.demo_mode:
        typer.echo(f"  demo app: {url}    API docs: {url}docs")
        # The demo has no separate mailer: verification and reset mails are
        # printed here by the service itself, unless MAILER_IN_SERVICE says no.
        os.environ.setdefault("MAILER_IN_SERVICE", "true")
    import uvicorn

    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def _with_gateway(action: Callable[[Gateway], Awaitable[Any]]) -> Any:
    settings = get_settings()
    urls = resolve_urls(settings)

    async def go() -> Any:
        engine = create_engine(urls.runtime, settings)
        try:
            return await action(Gateway.build(settings, engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except ApiError as error:
        typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        raise typer.Exit(1) from error


@users.command("add")
def user_add(
    email: str,
    role: Annotated[str | None, typer.Option(help="Database role (default: DEFAULT_ROLE).")] = None,
    verified: Annotated[bool, typer.Option("--verified", help="Mark the e-mail verified.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user. Prompts for the password unless --password-stdin."""
    from app.api.routes.accounts import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            typer.secho("error: the passwords differ", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)

    row = _with_gateway(lambda gw: create_user(gw, email, password, role=role, verified=verified))
    typer.echo(f"created {row['email']} ({row['role']}) id={row['id']}")


@users.command("list")
def user_list() -> None:
    """List users: id, e-mail, role, verified, disabled."""
    from sqlalchemy import text

    async def fetch(gateway: Gateway) -> list[Any]:
        async with gateway.engine.connect() as conn:
            return list(await conn.execute(text("SELECT * FROM auth.list_users()")))

    rows = _with_gateway(fetch)
    for row in rows:
        flags = ",".join(
            flag for flag, on in (("verified", row.verified), ("disabled", row.disabled)) if on
        )
        typer.echo(f"{row.id}  {row.email:<40} {row.role:<12} {flags}")
    if not rows:
        typer.echo("no users")


async def _find_user(gateway: Gateway, email: str) -> Any:
    from sqlalchemy import text

    async with gateway.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT * FROM auth.find_user(:email)"), {"email": email})
        ).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"no user with e-mail {email}")
    return row


def _update_user(email: str, **changes: Any) -> None:
    from sqlalchemy import text

    async def go(gateway: Gateway) -> Any:
        user = await _find_user(gateway, email)
        async with gateway.engine.begin() as conn:
            return (
                await conn.execute(
                    text("SELECT * FROM auth.update_user(:id, :role, :disabled, :verified)"),
                    {"id": user.id, "role": None, "disabled": None, "verified": None, **changes},
                )
            ).one()

    try:
        row = _with_gateway(go)
    except Exception as error:  # a refused role comes back as a database error
        cause = getattr(getattr(error, "orig", None), "__cause__", None)
        if cause is None:
            raise
        typer.secho(f"error: {cause.args[0]}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error
    typer.echo(
        f"{row.email} ({row.role})"
        + (" disabled" if row.disabled else "")
        + (" verified" if row.verified else "")
    )


@users.command("set-role")
def user_set_role(email: str, role: str) -> None:
    """Give a user another database role (one authenticator may switch into)."""
    _update_user(email, role=role)


@users.command("disable")
def user_disable(email: str) -> None:
    """Disable a user; their sessions end at once."""
    _update_user(email, disabled=True)


@users.command("enable")
def user_enable(email: str) -> None:
    """Enable a disabled user."""
    _update_user(email, disabled=False)


@users.command("verify")
def user_verify(email: str) -> None:
    """Mark a user's e-mail address verified."""
    _update_user(email, verified=True)


@users.command("delete")
def user_delete(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user, their sessions and tokens."""
    from sqlalchemy import text

    if not yes:
        typer.confirm(f"Delete {email} for good?", abort=True)

    async def go(gateway: Gateway) -> None:
        user = await _find_user(gateway, email)
        async with gateway.engine.begin() as conn:
            await conn.execute(text("SELECT auth.delete_user(:id)"), {"id": user.id})

    _with_gateway(go)
    typer.echo(f"deleted {email}")


@session_commands.command("list")
def sessions_list(
    email: Annotated[str | None, typer.Argument(help="Only this user's sessions.")] = None,
) -> None:
    """List live sessions: id, user, created, last seen, ip, user agent."""
    from sqlalchemy import text

    async def fetch(gateway: Gateway) -> list[Any]:
        async with gateway.engine.connect() as conn:
            rows = list(await conn.execute(text("SELECT * FROM auth.list_all_sessions()")))
        return [r for r in rows if email is None or r.email.lower() == email.lower()]

    rows = _with_gateway(fetch)
    for row in rows:
        typer.echo(
            f"{row.id}  {row.email:<32} created {row.created_at:%Y-%m-%d %H:%M}"
            f"  seen {row.last_seen_at:%Y-%m-%d %H:%M}  {row.ip or '-'}  {row.user_agent or ''}"
        )
    if not rows:
        typer.echo("no sessions")


@session_commands.command("revoke")
def sessions_revoke(
    session_id: Annotated[str | None, typer.Argument(help="The session's id.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="End all of this user's.")] = None,
) -> None:
    """End one session by id, or every session of a user with --user EMAIL."""
    from uuid import UUID

    from sqlalchemy import text

    from app import sessions

    if (session_id is None) == (user is None):
        typer.secho("error: give a session id or --user EMAIL", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def go(gateway: Gateway) -> int:
        if user is not None:
            found = await _find_user(gateway, user)
            async with gateway.engine.begin() as conn:
                return await sessions.revoke_user(conn, found.id)
        try:
            wanted = UUID(str(session_id))
        except ValueError as error:
            raise ApiError(422, "invalid_id", "that is not a session id") from error
        async with gateway.engine.begin() as conn:
            ended = await conn.execute(
                text("SELECT auth.revoke_session_by_id(:id)"), {"id": wanted}
            )
            return 1 if ended.scalar_one() else 0

    count = _with_gateway(go)
    typer.echo(f"revoked {count} session(s)")


@session_commands.command("purge-expired")
def sessions_purge(
    grace: Annotated[
        int, typer.Option(help="Keep ended sessions this many seconds (for forensics).")
    ] = 0,
) -> None:
    """Delete ended sessions, spent tokens and old delivered mail events."""
    from app import housekeeping

    async def go(gateway: Gateway) -> Any:
        return await housekeeping.purge(gateway.engine, gateway.settings, grace_seconds=grace)

    done = _with_gateway(go)
    typer.echo(f"purged {done.sessions} sessions, {done.tokens} tokens, {done.events} events")


@cli.command()
def mailer(
    once: Annotated[bool, typer.Option("--once", help="Send what is due, then exit.")] = False,
) -> None:
    """Send verification and reset mails from the outbox (LISTEN + periodic sweep)."""
    from app.db import plain_dsn
    from app.mailer import Mailer

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    urls = resolve_urls(settings)

    async def go() -> int:
        engine = create_engine(urls.runtime, settings)
        worker = Mailer(engine, settings, plain_dsn(urls.runtime))
        try:
            if once:
                return await worker.drain()
            await worker.run()
            return 0
        finally:
            await engine.dispose()

    try:
        handled = asyncio.run(go())
    except KeyboardInterrupt:
        return
    if once:
        typer.echo(f"handled {handled} event(s)")


def main() -> None:
    """Console-script entry point."""
    cli()
