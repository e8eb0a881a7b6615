"""E-mail verification routes: follow a link, ask for a new one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import TextClause, text
from starlette.responses import Response

from app import audit, throttle
from app.api.account_bodies import Accepted, EmailBody, TokenBody
from app.api.caller import database_errors, reply
from app.api.models import ErrorBody, User
from app.api.routes.accounts import normalise_email
from app.errors import ApiError
from app.gateway import get_gateway
from app.tokens import parse_token

router = APIRouter(prefix="/api", tags=["accounts"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 409, 422)}

_VERIFY = text("SELECT * FROM auth.verify_email(:token_hash)")
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
async def verify(body: TokenBody, request: Request) -> Response:
    """Confirm an e-mail address with the token from its verification link."""
    gateway = get_gateway(request)
    await throttle.check(gateway, request, "verify", email=None)
    hashed = parse_token(body.token)
    if hashed is None:
        await throttle.fail(gateway, request, "verify", email=None)
        raise invalid_token()
    async with database_errors(), gateway.engine.begin() as conn:
        row = (await conn.execute(_VERIFY, {"token_hash": hashed})).one_or_none()
    if row is None:
        await throttle.fail(gateway, request, "verify", email=None)
        audit.event("verify_failed", request, reason="invalid_token")
        raise invalid_token()
    audit.event("verify", request, user_id=row.id)
    return reply(User.from_row(dict(row._mapping)).model_dump(mode="json"))


async def queue_mail(request: Request, scope: str, statement: TextClause, address: str) -> None:
    """Throttle, then run `statement` to queue a mail to `address` (if it has an account).

    Every such request mails someone, so each one counts against the
    throttle as a failure: nobody can use these routes to mail-bomb.
    """
    gateway = get_gateway(request)
    await throttle.check(gateway, request, scope, email=address)
    await throttle.fail(gateway, request, scope, email=address)
    async with gateway.engine.begin() as conn:
        await conn.execute(statement, {"email": address})


@router.post("/verify/resend", status_code=202, response_model=Accepted, responses=_ERRORS)
async def resend(body: EmailBody, request: Request) -> Response:
    """Mail a new verification link (the previous one stops working). Always 202."""
    await queue_mail(request, "verify", _REQUEST, normalise_email(body.email))
    return reply(RESEND_ACCEPTED, status=202)
