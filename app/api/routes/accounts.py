"""Account routes: sign-up, login, logout, the current user (and its e-mail change), refresh."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from starlette.responses import Response

from app import audit, sessions, throttle
from app.api.account_bodies import EmailChange
from app.api.caller import database_errors, reply, require_caller
from app.api.deps import client_ip, user_agent
from app.api.models import Credentials, ErrorBody, User
from app.errors import JSON_TYPE, ApiError, not_authenticated
from app.gateway import Gateway, get_gateway
from app.passwords import hash_password, verify_password

router = APIRouter(prefix="/api", tags=["accounts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 409, 422)
}

_CREATE_USER = text("SELECT * FROM auth.create_user(:email, :password_hash, :role, :verified)")
_LOOKUP = text("SELECT user_id, password_hash, disabled, verified FROM auth.login_lookup(:email)")
_SIGN_UP = text("SELECT auth.sign_up(:email, :password_hash, :role)")
_FIND_USER = text("SELECT * FROM auth.find_user(:email)")
_REQUEST_EMAIL_CHANGE = text("SELECT auth.request_email_change(:user_id, :email)")
_UPGRADE_HASH = text("SELECT auth.upgrade_password_hash(:user_id, :old, :new)")
_GET_USER = text("SELECT * FROM auth.get_user(:user_id)")

_INVALID_CREDENTIALS = ApiError(
    401,
    "invalid_credentials",
    "Invalid e-mail or password",
    hint="Check both and try again.",
)


def _json(payload: Any, status: int = 200) -> Response:
    # Responses that set or reflect a session must never be cached.
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=JSON_TYPE,
        headers={"Cache-Control": "no-store"},
    )


def normalise_email(raw: str) -> str:
    """A syntactically valid address in normal form, or a 422."""
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ApiError(
            422, "invalid_email", "That is not a valid e-mail address", details=str(error)
        ) from error


def _unwrap(error: sa_exc.DBAPIError) -> asyncpg.PostgresError | None:
    cause = error.orig.__cause__ if error.orig is not None else None
    return cause if isinstance(cause, asyncpg.PostgresError) else None


async def create_user(
    gateway: Gateway, email: str, password: str, *, role: str | None = None, verified: bool
) -> dict[str, Any]:
    """Validate, hash and store a new user; the profile row. Shared with the CLI."""
    address = normalise_email(email)
    gateway.passwords.check(password)
    password_hash = await hash_password(password)
    try:
        async with gateway.engine.begin() as conn:
            row = (
                await conn.execute(
                    _CREATE_USER,
                    {
                        "email": address,
                        "password_hash": password_hash,
                        "role": role or gateway.settings.default_role,
                        "verified": verified,
                    },
                )
            ).one()
    except sa_exc.DBAPIError as error:
        cause = _unwrap(error)
        if isinstance(cause, asyncpg.UniqueViolationError):
            raise ApiError(
                409,
                "email_taken",
                "An account with this e-mail already exists",
                hint="Sign in instead, or use another address.",
            ) from error
        if cause is not None and cause.sqlstate in {"22023", "42501"}:
            raise ApiError(422, "invalid_role", str(cause.args[0]), hint=cause.hint) from error
        raise
    return dict(row._mapping)


@router.post("/signup", status_code=201, response_model=User, responses=_ERRORS)
async def signup(body: Credentials, request: Request) -> Response:
    """Create an unverified account with the default role; a verification mail follows.

    An address that already has an account gets the same answer, in about
    the same time (the password is hashed either way), and no new account:
    its owner is mailed instead. The body then describes an account that
    does not exist, so the answer tells a caller nothing about the address.
    """
    gateway = get_gateway(request)
    address = normalise_email(body.email)
    gateway.passwords.check(body.password)
    # Every sign-up mails the address (a link, or a notice to its owner) and
    # costs a password hash, so each one counts, per address and per client.
    await throttle.spend(gateway, request, "signup", email=address)
    password_hash = await hash_password(body.password)
    role = gateway.settings.default_role
    async with gateway.engine.begin() as conn:
        created = (
            await conn.execute(
                _SIGN_UP, {"email": address, "password_hash": password_hash, "role": role}
            )
        ).scalar_one()
        row: dict[str, Any] | None = None
        if created:
            row = dict((await conn.execute(_FIND_USER, {"email": address})).one()._mapping)
    if row is None:
        now = datetime.now(UTC)
        row = {
            "id": uuid.uuid4(),
            "email": address,
            "role": role,
            "verified": False,
            "disabled": False,
            "created_at": now,
            "updated_at": now,
        }
    return _json(User.from_row(row).model_dump(mode="json"), status=201)


@router.post("/login", response_model=User, responses=_ERRORS)
async def login(body: Credentials, request: Request) -> Response:
    """Check the password and start a new session in an HttpOnly cookie.

    Unknown e-mail and wrong password get the same answer in about the same
    time. A session cookie sent along is revoked: login never reuses one.
    """
    gateway = get_gateway(request)
    try:
        address: str | None = normalise_email(body.email)
    except ApiError:
        address = None
    attempted = address or body.email[:320]
    account = None
    if address is not None and len(body.password) <= gateway.passwords.max_length:
        async with gateway.engine.connect() as conn:
            account = (await conn.execute(_LOOKUP, {"email": address})).one_or_none()
    # Throttled by account (as typed, if not even valid), or by device for a
    # browser that signed in to this very account before (a device cookie
    # names the user id: look-alike addresses share a throttle key, never
    # an id), and by client network.
    device = (
        None
        if account is None
        else gateway.device.device(request, account.user_id, account.password_hash)
    )
    async with throttle.attempt(
        gateway, request, "login", email=attempted, device=device
    ) as attempt:
        valid, replacement = await verify_password(
            body.password[: gateway.passwords.max_length],
            None if account is None else account.password_hash,
        )
        if account is None or not valid:
            # Counted and committed before the 401 goes out.
            await attempt.fail()
            audit.event("login_failed", request, email=attempted, reason="invalid_credentials")
            raise _INVALID_CREDENTIALS
        # The password was right: the two refusals below are no failure.
        if account.disabled:
            audit.event("login_failed", request, user_id=account.user_id, reason="account_disabled")
            raise ApiError(403, "account_disabled", "This account is disabled")
        # Only after the password matched, so this answer reveals nothing new.
        if gateway.settings.verified_email_required and not account.verified:
            raise ApiError(
                403,
                "email_not_verified",
                "This account's e-mail address is not verified yet",
                hint="Follow the link in the verification mail, or ask for a new one with"
                " POST /api/verify/resend.",
            )
        await attempt.succeed()

    presented = gateway.cookie.read(request)
    stored_hash = account.password_hash
    async with gateway.engine.begin() as conn:
        if presented is not None:
            await sessions.revoke(conn, presented)
        if replacement is not None:
            upgraded = (
                await conn.execute(
                    _UPGRADE_HASH,
                    {"user_id": account.user_id, "old": account.password_hash, "new": replacement},
                )
            ).scalar_one()
            if upgraded:
                stored_hash = replacement
        issued = await sessions.issue(
            conn,
            gateway.settings,
            account.user_id,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        user = (await conn.execute(_GET_USER, {"user_id": account.user_id})).one()
    audit.event("login", request, user_id=account.user_id, session_id=issued.session_id)
    response = _json(User.from_row(dict(user._mapping)).model_dump(mode="json"))
    gateway.cookie.write(response, issued.secret, issued.expires_at)
    # A new device id at every sign-in: the lifetime runs from the last one.
    # Under the password as stored now: a later change or reset ends it.
    gateway.device.write(response, account.user_id, stored_hash)
    return response


@router.post("/logout", status_code=204, responses=_ERRORS)
async def logout(request: Request) -> Response:
    """End the session and delete the cookie. Always 204, signed in or not."""
    gateway = get_gateway(request)
    presented = gateway.cookie.read(request)
    if presented is not None:
        async with gateway.engine.begin() as conn:
            ended = await sessions.revoke(conn, presented)
        audit.event("logout", request, session_id=ended)
    # Clear-Site-Data: the browser drops what signed-in pages left in storage.
    # Not "cookies": the session cookie is deleted by name below, and the
    # device cookie must outlive the session (docs/security.md, Logout).
    response = Response(
        status_code=204,
        headers={"Cache-Control": "no-store", "Clear-Site-Data": '"storage"'},
    )
    gateway.cookie.delete(response)
    return response


@router.get("/me", response_model=User, responses=_ERRORS)
async def me(request: Request) -> Response:
    """The signed-in user, or 401."""
    gateway = get_gateway(request)
    presented = gateway.cookie.read(request)
    if presented is None:
        raise not_authenticated()
    async with gateway.engine.connect() as conn:
        row = await sessions.current_user(conn, presented)
    if row is None:
        raise not_authenticated()
    return _json(User.from_row(row).model_dump(mode="json"))


@router.patch("/me", status_code=202, responses=_ERRORS)
async def change_email(body: EmailChange, request: Request) -> Response:
    """Move the account to another address, after the current password is confirmed.

    The address changes only once the link mailed to the new address is
    followed (POST /api/verify). If the new address already has an account,
    its owner gets a notice instead, and the caller this same answer.
    """
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    address = normalise_email(body.email)
    # Guessing the current password is throttled as for a password change.
    async with throttle.attempt(gateway, request, "password", email=caller.email) as attempt:
        async with gateway.engine.connect() as conn:
            account = (await conn.execute(_LOOKUP, {"email": caller.email})).one_or_none()
        valid, _ = await verify_password(
            body.current_password[: gateway.passwords.max_length],
            None if account is None else account.password_hash,
        )
        if account is None or not valid:
            await attempt.fail()
            raise ApiError(
                403,
                "wrong_password",
                "The current password is not correct",
                hint="Changing the e-mail address needs the current password.",
            )
    # The link goes to an address of the caller's choosing: counted like a resend.
    await throttle.spend(gateway, request, "verify", email=address)
    async with database_errors(), gateway.engine.begin() as conn:
        await conn.execute(_REQUEST_EMAIL_CHANGE, {"user_id": caller.user_id, "email": address})
    return reply(
        {
            "status": "verification_sent",
            "message": "To finish the change, follow the link mailed to the new address.",
            "email": address,
        },
        status=202,
    )


@router.post("/refresh", responses=_ERRORS)
async def refresh(request: Request) -> Response:
    """Swap the session's secret for a new one; the old cookie stops working."""
    gateway = get_gateway(request)
    presented = gateway.cookie.read(request)
    if presented is None:
        raise not_authenticated()
    async with gateway.engine.begin() as conn:
        issued = await sessions.rotate(conn, gateway.settings, presented)
    if issued is None:
        raise not_authenticated()
    audit.event("refresh", request, session_id=issued.session_id)
    response = _json(
        {"session_id": str(issued.session_id), "expires_at": issued.expires_at.isoformat()}
    )
    gateway.cookie.write(response, issued.secret, issued.expires_at)
    return response
