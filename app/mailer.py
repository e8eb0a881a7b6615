"""The mailer: drains the auth.events outbox, mints each link's token, sends, marks delivered.

It LISTENs on the `validate` and `reset` channels for prompt delivery, and
also sweeps the outbox when it starts and on a timer, so an event written
while no mailer was listening (or whose NOTIFY was missed) still goes out.
One event is handled per transaction: claim it (FOR UPDATE SKIP LOCKED, so
mailers can run side by side), mint its token (committed on its own, so the
link works the moment the mail arrives), send, mark it delivered, COMMIT.
A failed send schedules a retry with exponential backoff; its retry mints
a new token, which replaces the unsent one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from email.message import EmailMessage
from typing import Any, Protocol, TextIO

import aiosmtplib
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.mail import compose
from app.tokens import new_token

log = logging.getLogger(__name__)

CHANNELS = ("validate", "reset")
# Seconds between attempts to re-establish a lost LISTEN connection.
RECONNECT_DELAY = 5.0

_CLAIM = text("SELECT id, kind, payload, attempts FROM auth.claim_event()")
_MINT = text(
    "SELECT auth.mint_token(:user_id, :purpose, :token_hash, :email, :lifetime, :password_hash)"
)
_DELIVERED = text("SELECT auth.event_delivered(:id)")
_FAILED = text("SELECT auth.event_failed(:id, :retry, :error)")

# Event kind -> token purpose; kinds not listed carry no token.
_PURPOSES = {"validate": "verify", "reset": "reset"}


class Transport(Protocol):
    """Where composed messages go."""

    async def send(self, message: EmailMessage) -> None:
        """Hand one message over; raise if it was not accepted."""


class SmtpTransport:
    """Sends through an SMTP server with aiosmtplib, one connection per message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` to the configured server."""
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=None if s.smtp_password is None else s.smtp_password.get_secret_value(),
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            timeout=s.smtp_timeout,
        )


class StdoutTransport:
    """Prints messages instead of sending them: the demo's mailer."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: EmailMessage) -> None:
        """Write `message` to standard output."""
        stream = self._stream or sys.stdout
        headers = "".join(f"{name}: {value}\n" for name, value in message.items())
        stream.write(
            f"----- mail to {message['To']} -----\n{headers}\n{message.get_content()}-----\n"
        )
        stream.flush()


def transport_for(settings: Settings) -> Transport:
    """The transport MAIL_TRANSPORT asks for."""
    if settings.mailer_transport == "stdout":
        return StdoutTransport()
    return SmtpTransport(settings)


class Mailer:
    """The outbox worker. `run()` until cancelled; `drain()` for one sweep."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        listen_dsn: str,
        transport: Transport | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._listen_dsn = listen_dsn
        self._transport = transport or transport_for(settings)
        self._wake = asyncio.Event()
        self._next_retry: float | None = None
        # Set once the first sweep is done and LISTEN is in place.
        self.ready = asyncio.Event()

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number `attempts` (1 = the first retry)."""
        base = self._settings.mailer_retry_base
        return float(min(self._settings.mailer_retry_max, base * 2 ** max(attempts - 1, 0)))

    async def drain(self) -> int:
        """Handle every event that is due now; how many were handled (sent or failed)."""
        handled = 0
        while await self._deliver_one():
            handled += 1
        return handled

    async def _deliver_one(self) -> bool:
        async with self._engine.connect() as conn:
            tx = await conn.begin()
            row = (await conn.execute(_CLAIM)).one_or_none()
            if row is None:
                await tx.rollback()
                return False
            try:
                message = await self._prepare(row.kind, row.payload)
                if message is not None:
                    await self._transport.send(message)
                await conn.execute(_DELIVERED, {"id": row.id})
                await tx.commit()
            except Exception as error:
                await tx.rollback()
                await self._failed(row.id, row.attempts + 1, error)
        return True

    async def _prepare(self, kind: str, payload: dict[str, Any]) -> EmailMessage | None:
        """The message for an event, minting its token; None if it no longer applies.

        The token is committed in its own short transaction before the mail
        goes out, so a link is never followed before its hash exists. If the
        send then fails, that token was never seen by anyone, and the retry's
        new token replaces it.
        """
        purpose = _PURPOSES.get(kind)
        if purpose is None:
            return compose(self._settings, kind, payload["email"], None)
        token, token_hash = new_token()
        lifetime = (
            self._settings.verify_token_lifetime
            if purpose == "verify"
            else self._settings.reset_token_lifetime
        )
        async with self._engine.begin() as conn:
            minted = await conn.execute(
                _MINT,
                {
                    "user_id": payload["user_id"],
                    "purpose": purpose,
                    "token_hash": token_hash,
                    "email": payload.get("email") if purpose == "verify" else None,
                    "lifetime": lifetime,
                    # A repeated sign-up's password, applied if its link is followed.
                    "password_hash": payload.get("password_hash"),
                },
            )
            recipient = minted.scalar_one()
        if recipient is None:
            return None
        return compose(self._settings, kind, recipient, token)

    async def _failed(self, event_id: int, attempts: int, error: Exception) -> None:
        retry = self.backoff(attempts)
        log.warning(
            "mail event %s failed (attempt %s), retrying in %.1fs: %s",
            event_id,
            attempts,
            retry,
            error,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                _FAILED,
                {"id": event_id, "retry": retry, "error": f"{type(error).__name__}: {error}"},
            )
        due = time.monotonic() + retry
        self._next_retry = due if self._next_retry is None else min(self._next_retry, due)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _timeout(self) -> float:
        timeout = self._settings.mailer_poll_interval
        if self._next_retry is not None:
            timeout = min(timeout, max(self._next_retry - time.monotonic(), 0.0) + 0.05)
        return timeout

    async def run(self) -> None:
        """LISTEN and sweep until cancelled; survives database and SMTP outages."""
        while True:
            try:
                await self._listen_and_sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("mailer: lost the database, retrying", exc_info=True)
                await asyncio.sleep(RECONNECT_DELAY)

    async def _listen_and_sweep(self) -> None:
        listener: asyncpg.Connection = await asyncpg.connect(self._listen_dsn)
        lost = asyncio.Event()

        def on_lost(_: object) -> None:
            lost.set()
            self._wake.set()

        listener.add_termination_listener(on_lost)
        try:
            for channel in CHANNELS:
                await listener.add_listener(channel, self._on_notify)
            while not lost.is_set():
                # Cleared before the sweep: a NOTIFY during it triggers another.
                self._wake.clear()
                if self._next_retry is not None and self._next_retry <= time.monotonic():
                    self._next_retry = None
                await self.drain()
                self.ready.set()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can
                # swallow a cancellation that races with the wake-up, and
                # the mailer would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._timeout()):
                        await self._wake.wait()
        finally:
            with contextlib.suppress(Exception):
                await listener.close(timeout=5)
