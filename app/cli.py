"""The `sessiongate` command: run, migrate, and manage users, with the service's settings."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
import uvicorn

from app import migrations
from app.config import Settings, get_settings
from app.db import create_engine, ensure_database, resolve_urls
from app.errors import ApiError
from app.gateway import Gateway

cli = typer.Typer(
    help="sessiongate: session cookies in front of PostgreSQL RLS.", no_args_is_help=True
)
users = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
cli.add_typer(users, name="user")


def _migrate(settings: Settings) -> None:
    urls = resolve_urls(settings)
    if settings.embedded:
        asyncio.run(ensure_database(urls.admin))
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
    url = f"http://{bind_host}:{bind_port}/"
    typer.secho(f"sessiongate is starting on {url}", fg=typer.colors.GREEN, bold=True)
    if settings.demo_mode:
        typer.echo(f"  demo app: {url}    API docs: {url}docs")
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


def main() -> None:
    """Console-script entry point."""
    cli()
