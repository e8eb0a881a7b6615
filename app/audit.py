"""The audit trail: one JSON line per security event on the `sessiongate.audit` logger.

Events name what happened to an account or a session (login, login_failed,
lock, logout, refresh, revoke, password_change, password_reset, ...). A
session appears only as `session_ref`, a hash of its public id, so the log
lets an operator follow one session without the log itself becoming a list
of ids to revoke; a session secret, a password or a token never reaches it.
An address typed at a failed login is logged only as `account_ref` (its
keyed hash, as the throttle keys it), because it may belong to nobody, or be
a password typed in the wrong box: a plain hash would give that back to
anyone with a dictionary.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import HTTPConnection

from app.addresses import AddressKeys
from app.gateway import get_gateway

log = logging.getLogger("sessiongate.audit")
# Audit lines are INFO; they must not vanish because LOG_LEVEL=warning is set
# for the rest of the service. Route or silence this logger explicitly instead.
log.setLevel(logging.INFO)

REF_LENGTH = 16  # hex characters (64 bits): enough to correlate, nothing to replay


def session_ref(session_id: UUID | str | None) -> str | None:
    """A stable, non-reversible reference to a session: sha256 of its id, shortened."""
    if session_id is None:
        return None
    digest = hashlib.sha256(b"sessiongate.session:" + str(session_id).encode())
    return digest.hexdigest()[:REF_LENGTH]


def account_ref(address_keys: AddressKeys, email: str) -> str:
    """A reference to an e-mail address as typed: its throttle key, shortened."""
    return address_keys.key(email)[:REF_LENGTH]


def _client(connection: HTTPConnection | None) -> dict[str, Any]:
    if connection is None:
        return {}
    agent = connection.headers.get("user-agent")
    return {
        "ip": connection.client.host if connection.client else None,
        "user_agent": agent[:200] if agent else None,
    }


def event(
    name: str,
    connection: HTTPConnection | None = None,
    *,
    user_id: UUID | str | None = None,
    session_id: UUID | str | None = None,
    email: str | None = None,
    **fields: Any,
) -> None:
    """Write one audit line. `session_id` and `email` are hashed before they are logged.

    An `email` is keyed with the address keys of the app serving `connection`,
    so it needs one.
    """
    record: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": name,
        "user_id": None if user_id is None else str(user_id),
        "session_ref": session_ref(session_id),
    }
    if email is not None:
        if connection is None:
            raise TypeError("an audit line with an e-mail address needs the request")
        record["account_ref"] = account_ref(get_gateway(connection).address_keys, email)
    record.update(_client(connection))
    record.update(fields)
    log.info(orjson.dumps(record, default=str).decode())
