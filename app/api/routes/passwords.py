"""Password routes: forgotten password, reset by link, change while signed in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy import text
from starlette.responses import Response

from app import audit, sessions, throttle
from app.api.account_bodies import Accepted, EmailBody, PasswordChange, PasswordReset
from app.api.caller import reply, require_caller
from app.api.models import ErrorBody
from app.api.routes.accounts import normalise_email
from app.api.routes.verification import invalid_token, queue_mail
from app.errors import ApiError, not_authenticated
from app.gateway import get_gateway
from app.passwords import hash_password, verify_password
from app.tokens import parse_token

router = APIRouter(prefix="/api/password", tags=["accounts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 409, 422)
}

_REQUEST_RESET = text("SELECT auth.request_password_reset(:email)")
_RESET = text("SELECT auth.reset_password(:token_hash, :new_hash)")
_LOOKUP = text("SELECT password_hash FROM auth.login_lookup(:email)")
_CHANGE = text("SELECT auth.change_password(:user_id, :old_hash, :new_hash, :keep)")

# One answer for every request, whatever the address: the mail says the rest.
FORGOT_ACCEPTED = {
    "status": "accepted",
    "message": "If this address has an account, a link to reset its password is on its way.",
}


@router.post("/forgot", status_code=202, response_model=Accepted, responses=_ERRORS)
async def forgot(body: EmailBody, request: Request, background: BackgroundTasks) -> Response:
    """Queue a reset link for the address. Always 202, same body, same work before it.

    202 means queued: the link goes out after the answer, and only if the
    address has an enabled account.
    """
    address = normalise_email(body.email)
    await queue_mail(request, background, "reset", _REQUEST_RESET, address)
    audit.event("password_reset_requested", request, email=address)
    return reply(FORGOT_ACCEPTED, status=202)


@router.post("/reset", status_code=204, responses=_ERRORS)
async def reset(body: PasswordReset, request: Request) -> Response:
    """Set a new password with the token from a reset link; every session of the user ends."""
    gateway = get_gateway(request)
    async with throttle.attempt(gateway, request, "reset", email=None) as attempt:
        hashed = parse_token(body.token)
        if hashed is None:
            await attempt.fail()
            raise invalid_token()
        gateway.passwords.check(body.password)
        new_hash = await hash_password(body.password)
        async with gateway.engine.begin() as conn:
            user_id = (
                await conn.execute(_RESET, {"token_hash": hashed, "new_hash": new_hash})
            ).scalar()
        if user_id is None:
            await attempt.fail()
            audit.event("password_reset_failed", request, reason="invalid_token")
            raise invalid_token()
    audit.event("password_reset", request, user_id=user_id)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    # Whoever follows the link starts signed out; any cookie they had is dead now.
    gateway.cookie.delete(response)
    return response


@router.post("/change", responses=_ERRORS)
async def change(body: PasswordChange, request: Request) -> Response:
    """Change the password: other sessions end, this one continues with a new secret."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with throttle.attempt(gateway, request, "password", email=caller.email) as attempt:
        async with gateway.engine.connect() as conn:
            old_hash = (await conn.execute(_LOOKUP, {"email": caller.email})).scalar()
        valid, _ = await verify_password(
            body.current_password[: gateway.passwords.max_length], old_hash
        )
        if old_hash is None or not valid:
            await attempt.fail()
            audit.event(
                "password_change_failed",
                request,
                user_id=caller.user_id,
                session_id=caller.session_id,
                reason="wrong_password",
            )
            raise ApiError(
                403,
                "wrong_password",
                "The current password is not correct",
                hint="Enter the password you signed in with.",
            )
    gateway.passwords.check(body.new_password)
    new_hash = await hash_password(body.new_password)
    async with gateway.engine.begin() as conn:
        changed = (
            await conn.execute(
                _CHANGE,
                {
                    "user_id": caller.user_id,
                    "old_hash": old_hash,
                    "new_hash": new_hash,
                    "keep": caller.session_id,
                },
            )
        ).scalar_one()
        if not changed:
            # The password changed meanwhile (another session or a reset).
            raise ApiError(
                409,
                "password_changed",
                "The password was changed by another request",
                hint="Sign in again with the new password.",
            )
        issued = await sessions.rotate(conn, gateway.settings, caller.secret)
        if issued is None:
            # This session ended meanwhile: raising rolls the change back.
            raise not_authenticated()
    audit.event("password_change", request, user_id=caller.user_id, session_id=issued.session_id)
    response = reply(
        {"session_id": str(issued.session_id), "expires_at": issued.expires_at.isoformat()}
    )
    gateway.cookie.write(response, issued.secret, issued.expires_at)
    # The change ended every device cookie of the account (app/devices.py);
    # this browser, which just proved the password, gets a new one.
    gateway.device.write(response, caller.user_id, new_hash)
    return response
