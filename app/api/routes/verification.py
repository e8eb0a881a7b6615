"""E-mail verification routes: follow a link, ask for a new one."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy import TextClause, text
from sqlalchemy import exc as sa_exc
from starlette.responses import Response

from app import audit, throttle
from app.api.account_bodies import Accepted, EmailBody, VerifyBody
from app.api.caller import database_errors, reply
from app.api.models import ErrorBody, User
from app.api.routes.accounts import normalise_email
from app.errors import ApiError
from app.gateway import Gateway, get_gateway
from app.passwords import verify_password
from app.tokens import parse_token

router = APIRouter(prefix="/api", tags=["accounts"])
log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 403, 409, 422)
}

_PASSWORD = text("SELECT password_hash FROM auth.verification_password(:token_hash)")
_VERIFY = text("SELECT * FROM auth.verify_email(:token_hash, :checked_hash)")
_REQUEST = text("SELECT auth.request_verification(:email)")

# One answer for every resend, whatever the address: the mail says the rest.
RESEND_ACCEPTED = {
    "status": "accepted",
    "message": "If this address has an account waiting for verification, a new link is on its way.",
}


def invalid_token() -> ApiError:
    """The one answer for a token that is unknown, used, expired or for something else."""
    return ApiError(
        400,
        "invalid_token",
        "This link is invalid or has expired",
        hint="Links work once and for a limited time; ask for a new one.",
    )


@router.post("/verify", response_model=User, responses=_ERRORS)
async def verify(body: VerifyBody, request: Request) -> Response:
    """Confirm an e-mail address with the token from its verification link.

    A link that confirms a sign-up also needs the password chosen at that
    sign-up: without it, anyone could sign up somebody else's address and
    wait for its owner to follow the link. Without a password the answer
    is then 400 `password_required`, and the link still works. A link to a
    new address (PATCH /api/me) needs only the token.
    """
    gateway = get_gateway(request)
    async with throttle.attempt(gateway, request, "verify", email=None) as attempt:
        hashed = parse_token(body.token)
        if hashed is None:
            await attempt.fail()
            raise invalid_token()
        async with gateway.engine.connect() as conn:
            needed = (await conn.execute(_PASSWORD, {"token_hash": hashed})).one_or_none()
        if needed is None:
            await attempt.fail()
            audit.event("verify_failed", request, reason="invalid_token")
            raise invalid_token()
        if needed.password_hash is not None:
            await _check_password(request, attempt, body.password, needed.password_hash)
        async with database_errors(), gateway.engine.begin() as conn:
            row = (
                await conn.execute(
                    _VERIFY, {"token_hash": hashed, "checked_hash": needed.password_hash}
                )
            ).one_or_none()
        if row is None:
            await attempt.fail()
            audit.event("verify_failed", request, reason="invalid_token")
            raise invalid_token()
    audit.event("verify", request, user_id=row.id)
    return reply(User.from_row(dict(row._mapping)).model_dump(mode="json"))


async def _check_password(
    request: Request, attempt: throttle.Attempt, password: str | None, stored: str
) -> None:
    """Raise unless `password` is the one whose hash a sign-up link carries."""
    gateway = get_gateway(request)
    if password is None:
        raise ApiError(
            400,
            "password_required",
            "Confirming a sign-up needs the password it was made with",
            hint="Send the password chosen when signing up along with the token.",
        )
    valid, _ = await verify_password(password[: gateway.passwords.max_length], stored)
    if not valid:
        await attempt.fail()
        audit.event("verify_failed", request, reason="wrong_password")
        raise ApiError(
            403,
            "wrong_password",
            "This is not the password this sign-up was made with",
            hint="A link takes the password of the sign-up that sent it. If you did not"
            " send it, ignore it; to get into the account, reset its password"
            " (POST /api/password/forgot), which also confirms the address.",
        )


async def queue_mail(
    request: Request,
    background: BackgroundTasks,
    scope: str,
    statement: TextClause,
    address: str,
) -> None:
    """Throttle, then have `statement` queue a mail to `address` once the answer is sent.

    Every such request mails someone, so each one is counted (throttle.spend)
    before the answer, which is the same work whatever the address. The
    statement is not: for an address with an account it writes (a token
    deleted, an outbox row, a NOTIFY) and waits for the WAL flush at commit,
    for any other it commits read-only, which is faster. Run before the
    answer, the difference would tell which addresses have accounts; run
    after it (a background task), it cannot. So the 202 means queued, not
    written.
    """
    gateway = get_gateway(request)
    await throttle.spend(gateway, request, scope, email=address)
    background.add_task(_queue, gateway, scope, statement, address)


async def _queue(gateway: Gateway, scope: str, statement: TextClause, address: str) -> None:
    """Run a mail request after its answer went out; a failure is logged, never raised."""
    try:
        async with gateway.engine.begin() as conn:
            await conn.execute(statement, {"email": address})
    except Exception as error:
        # Nobody is left to tell but the log. Not SQLAlchemy's message nor
        # the traceback: they carry the statement's parameters, the address.
        cause = error.orig if isinstance(error, sa_exc.StatementError) else None
        log.error(
            "a %s mail was answered 202 but could not be queued: %s: %s",
            scope,
            type(cause or error).__name__,
            cause or error,
        )


@router.post("/verify/resend", status_code=202, response_model=Accepted, responses=_ERRORS)
async def resend(body: EmailBody, request: Request, background: BackgroundTasks) -> Response:
    """Queue a new verification link (the previous one stops working). Always 202.

    202 means queued: the link goes out after the answer, and only if the
    address has an unverified, enabled account.
    """
    await queue_mail(request, background, "verify", _REQUEST, normalise_email(body.email))
    return reply(RESEND_ACCEPTED, status=202)
