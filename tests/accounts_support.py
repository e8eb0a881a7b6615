"""Fixtures for the account lifecycle tests: a real SMTP server, the mailer, a strict server.

The SMTP server is aiosmtpd on a loopback port, collecting every message it
accepts. The mailer is the real `app.mailer.Mailer`, run in the test's event
loop against the test database and that SMTP server. The service runs with
REQUIRE_VERIFIED_EMAIL on, as it does outside the demo.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.config import Settings
from app.db import create_engine, plain_dsn
from app.mailer import Mailer
from app.tasks import cancel_and_wait
from tests.conftest import (
    TEST_PASSWORD,
    LiveServer,
    TestDatabase,
    free_port,
    make_client,
    make_settings,
    unique_email,
)

_LINK = re.compile(r"(https?://\S+?)#token=([A-Za-z0-9_-]{43})")


class Inbox:
    """Every message an SMTP server accepted, by recipient."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: keep the message."""
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._messages.append(([r.lower() for r in envelope.rcpt_tos], parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages delivered to `address` so far."""
        with self._lock:
            return [m for rcpts, m in self._messages if address.lower() in rcpts]

    async def wait_for(
        self, address: str, count: int = 1, within: float = 15
    ) -> list[EmailMessage]:
        """Wait until `address` has at least `count` messages; all of them."""
        deadline = time.monotonic() + within
        while len(found := self.to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{address} got {len(found)} messages, expected {count}")
            await asyncio.sleep(0.02)
        return found


class SmtpServer:
    """aiosmtpd on a loopback port, started and stopped explicitly."""

    def __init__(self, inbox: Inbox, port: int | None = None) -> None:
        self.inbox = inbox
        self.port = port or free_port()
        self._controller = Controller(inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        """Accept connections."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop accepting connections."""
        self._controller.stop()


def body_of(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def link_in(message: EmailMessage) -> tuple[str, str]:
    """The page URL and the token of the one link in a message."""
    found = _LINK.findall(body_of(message))
    assert len(found) == 1, body_of(message)
    page, token = found[0]
    return page, token


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server collecting every mail the tests cause."""
    server = SmtpServer(Inbox()).start()
    yield server
    server.stop()


def mailer_settings(database: TestDatabase, smtp_port: int, **overrides: Any) -> Settings:
    """Settings for a mailer that sends to the test SMTP server, quickly retrying."""
    values: dict[str, Any] = {
        "require_verified_email": True,
        "mail_transport": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_tls": "none",
        "smtp_timeout": 5.0,
        "mailer_poll_interval": 0.5,
        "mailer_retry_base": 0.2,
        "mailer_retry_max": 1.0,
        "public_url": "https://accounts.example.test",
    }
    values.update(overrides)
    return make_settings(database, **values)


@pytest.fixture(scope="session")
def accounts_server(database: TestDatabase, smtp: SmtpServer) -> Iterator[LiveServer]:
    """The service with REQUIRE_VERIFIED_EMAIL on and no mailer of its own."""
    with LiveServer(mailer_settings(database, smtp.port)) as server:
        yield server


MailerFactory = Callable[..., Awaitable[Mailer]]


@pytest.fixture
async def start_mailer(database: TestDatabase, smtp: SmtpServer) -> AsyncIterator[MailerFactory]:
    """Start real mailers (settings overridable); each is stopped after the test."""
    running: list[tuple[asyncio.Task[None], Any]] = []

    async def start(*, wait: bool = True, **overrides: Any) -> Mailer:
        settings = mailer_settings(database, overrides.pop("smtp_port", smtp.port), **overrides)
        engine = create_engine(database.runtime_url, settings)
        mailer = Mailer(engine, settings, plain_dsn(database.runtime_url))
        task = asyncio.create_task(mailer.run())
        running.append((task, engine))
        if wait:
            await asyncio.wait_for(mailer.ready.wait(), 30)
        return mailer

    yield start
    for task, engine in running:
        await cancel_and_wait(task)
        await engine.dispose()


@pytest.fixture
async def mailer(start_mailer: MailerFactory) -> Mailer:
    """One running mailer, sending to the test SMTP server."""
    return await start_mailer()


@pytest.fixture
async def http(accounts_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-out client of the strict server."""
    async with make_client(accounts_server.url) as client:
        yield client


async def sign_up_verified(
    http: httpx.AsyncClient, inbox: Inbox, email: str | None = None
) -> dict[str, Any]:
    """Sign up, follow the mailed link; the verified user's JSON. Needs a running mailer."""
    address = email or unique_email("acct")
    response = await http.post("/api/signup", json={"email": address, "password": TEST_PASSWORD})
    assert response.status_code == 201, response.text
    [message] = await inbox.wait_for(address)
    _, token = link_in(message)
    verified = await confirm_sign_up(http, token)
    assert verified.status_code == 200, verified.text
    user: dict[str, Any] = verified.json()
    return user


async def confirm_sign_up(
    http: httpx.AsyncClient, token: str, password: str = TEST_PASSWORD
) -> httpx.Response:
    """POST /api/verify with a sign-up link's token and that sign-up's password."""
    return await http.post("/api/verify", json={"token": token, "password": password})


async def log_in(
    http: httpx.AsyncClient, email: str, password: str = TEST_PASSWORD, **headers: str
) -> httpx.Response:
    """POST /api/login; the response (the client keeps the cookie on success)."""
    return await http.post(
        "/api/login", json={"email": email, "password": password}, headers=headers
    )
