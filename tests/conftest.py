"""Fixtures: a real PostgreSQL, a migrated database per test run, a real HTTP server.

PostgreSQL is the embedded server (in .data/test-pg) unless TEST_DATABASE_URL
names a superuser connection to another cluster (CI uses Debian's
PostgreSQL 15 that way). Each test run gets its own database, so runs on one
cluster do not see each other's rows. The service runs under uvicorn on a
free loopback port and tests talk to it over TCP with httpx.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT, Settings
from app.db import asyncpg_url, ensure_database, plain_dsn
from app.embedded import start as start_embedded
from app.main import create_app
from app.migrations import upgrade_async

TEST_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestDatabase:
    """URLs of the migrated test database."""

    __test__ = False  # a fixture value, not a test class

    admin_url: str  # SQLAlchemy URL, superuser
    runtime_url: str  # SQLAlchemy URL, authenticator

    @property
    def admin_dsn(self) -> str:
        """asyncpg DSN for the superuser."""
        return plain_dsn(self.admin_url)

    @property
    def runtime_dsn(self) -> str:
        """asyncpg DSN for authenticator."""
        return plain_dsn(self.runtime_url)


def _cluster_admin_url() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return asyncpg_url(explicit)
    server = start_embedded(PROJECT_ROOT / ".data" / "test-pg")
    return server.url(server.superuser, "postgres")


async def _migrate(admin_url: str) -> None:
    # Concurrent test runs on one cluster can collide on cluster-wide GRANTs
    # ("tuple concurrently updated"); each migration is one transaction, so
    # retrying is safe.
    for attempt in range(5):
        try:
            await upgrade_async(admin_url, demo=True)
            return
        except Exception:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5 + attempt)


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[TestDatabase]:
    """A freshly migrated database (contract and demo app), dropped afterwards."""
    cluster = make_url(_cluster_admin_url())
    name = f"sessiongate_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = cluster.set(database=name).render_as_string(hide_password=False)
    runtime = cluster.set(database=name, username="authenticator", password=None).render_as_string(
        hide_password=False
    )
    await ensure_database(admin)
    await _migrate(admin)
    yield TestDatabase(admin_url=admin, runtime_url=runtime)
    maintenance = plain_dsn(cluster.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(maintenance)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def admin_db(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection for looking behind the API (never used by the service)."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def authenticator_db(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A connection as authenticator: what the service itself may do in SQL."""
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        yield conn
    finally:
        await conn.close()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def create_api_functions(database: TestDatabase, definitions: Mapping[str, str]) -> None:
    """Create api.<name>() for each definition (everything after `api.<name>()`),
    owned like the contract's objects and executable by webuser and anonymous.

    Start the server that should see them afterwards: its schema cache
    reads them at start-up.
    """
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        for name, definition in definitions.items():
            await conn.execute(
                f"CREATE OR REPLACE FUNCTION api.{name}() {definition};"
                f" ALTER FUNCTION api.{name}() OWNER TO sessiongate_owner;"
                f" GRANT EXECUTE ON FUNCTION api.{name}() TO webuser, anonymous;"
            )
    finally:
        await conn.close()


@asynccontextmanager
async def role_setting_in_database(
    admin: asyncpg.Connection, role: str, name: str, value: str
) -> AsyncIterator[None]:
    """`ALTER ROLE role IN DATABASE <this one> SET name = value` for the block,
    reset afterwards whatever happens. ALTER ROLE takes no bind parameters,
    so every part is quoted by PostgreSQL first."""
    quoted = await admin.fetchrow(
        "SELECT quote_ident(current_database()), quote_ident($1), quote_ident($2),"
        " quote_literal($3)",
        role,
        name,
        value,
    )
    assert quoted is not None
    database, role_, name_, value_ = quoted
    await admin.execute(f"ALTER ROLE {role_} IN DATABASE {database} SET {name_} = {value_}")
    try:
        yield
    finally:
        await admin.execute(f"ALTER ROLE {role_} IN DATABASE {database} RESET {name_}")


def make_settings(database: TestDatabase, **overrides: Any) -> Settings:
    """Service settings for tests; keyword arguments override fields."""
    values: dict[str, Any] = {
        "database_url": database.runtime_url,
        "database_admin_url": database.admin_url,
        "secret_keys": ["test-key-0123456789-abcdefghijklmnopqrstuvwxyz"],
        "demo": True,
        "public_url": "http://127.0.0.1",
        "pool_size": 4,
        "pool_max_overflow": 0,
        # Every test client connects from 127.0.0.1, and many tests fail a
        # login on purpose: the shared counters must not lock the suite out.
        # tests/security/test_throttle.py runs servers with the real defaults.
        "throttle_account_free_failures": 1000,
        "throttle_address_free_failures": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class LiveServer:
    """A uvicorn server running the app in a background thread.

    A context manager: `with LiveServer(settings) as server:` starts it and
    stops it however the block ends.
    """

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{self.port}"})
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, with no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start and wait until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                # A server still starting would hold its port and pools
                # until the run ends; nobody else is left to stop it.
                self.stop()
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def live_server(database: TestDatabase) -> Iterator[LiveServer]:
    """The service under test, shared by the whole run."""
    with LiveServer(make_settings(database)) as server:
        yield server


@pytest.fixture
def server_factory(database: TestDatabase) -> Iterator[Any]:
    """Start extra servers with other settings; all stopped after the test."""
    with ExitStack() as started:

        def start(**overrides: Any) -> LiveServer:
            return started.enter_context(LiveServer(make_settings(database, **overrides)))

        yield start


async def _declare_json(request: httpx.Request) -> None:
    # Like the demo page's fetch() wrapper: an unsafe request without a body
    # still declares JSON, which the CSRF rule asks of cookie-bearing requests.
    if request.method not in {"GET", "HEAD", "OPTIONS"} and "content-type" not in request.headers:
        request.headers["content-type"] = "application/json"


def make_client(base_url: str) -> httpx.AsyncClient:
    """An HTTP client with its own cookie jar, like one browser profile."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=30,
        follow_redirects=False,
        event_hooks={"request": [_declare_json]},
    )


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh, signed-out client of the live server."""
    async with make_client(live_server.url) as http:
        yield http


def cookie_header(value: str, name: str = "sessiongate") -> dict[str, str]:
    """Headers that present exactly this session cookie, whatever the client's jar holds."""
    return {"cookie": f"{name}={value}"}


def unique_email(prefix: str = "user") -> str:
    """An address no other test uses."""
    return f"{prefix}-{secrets.token_hex(6)}@example.com"


async def sign_up(http: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    """Create an account through the API; its JSON."""
    response = await http.post(
        "/api/signup", json={"email": email or unique_email(), "password": TEST_PASSWORD}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def sign_in(http: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    """Sign up and log in; the client then holds the session cookie."""
    user = await sign_up(http, email)
    response = await http.post(
        "/api/login", json={"email": user["email"], "password": TEST_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return user


@pytest.fixture
async def signed_in(
    live_server: LiveServer,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """A client holding a live session, and its user."""
    async with make_client(live_server.url) as http:
        user = await sign_in(http)
        yield http, user
