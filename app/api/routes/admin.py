"""Admin user management: list, create, update, disable, delete users and end their sessions.

Every call passes the admin's own session to SQL, which resolves it and
checks the admin role there (auth.admin_actor), and checks clearance:
an admin grants, and manages holders of, only roles their own role is a
member of (auth.require_clearance).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from app import audit
from app.api.account_bodies import AdminUserCreate, AdminUserUpdate, Revoked
from app.api.caller import Caller, database_errors, reply, require_caller
from app.api.models import ErrorBody, User
from app.api.routes.accounts import normalise_email
from app.errors import ApiError
from app.gateway import Gateway, get_gateway
from app.passwords import hash_password

router = APIRouter(prefix="/api/admin/users", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422)
}

_LIST = text("SELECT * FROM auth.admin_list_users(:actor, :admin_role)")
_GET = text("SELECT * FROM auth.admin_get_user(:actor, :admin_role, :user_id)")
_CREATE = text(
    "SELECT * FROM auth.admin_create_user(:actor, :admin_role, :email, :password_hash,"
    " :role, :verified)"
)
_UPDATE = text(
    "SELECT * FROM auth.admin_update_user(:actor, :admin_role, :user_id, :role, :disabled,"
    " :verified)"
)
_DELETE = text("SELECT auth.admin_delete_user(:actor, :admin_role, :user_id)")
_REVOKE = text("SELECT auth.admin_revoke_sessions(:actor, :admin_role, :user_id)")


def _no_such_user() -> ApiError:
    return ApiError(404, "not_found", "No such user", hint="GET /api/admin/users lists them.")


def _actor(gateway: Gateway, caller: Caller) -> dict[str, Any]:
    return {"actor": caller.token_hash, "admin_role": gateway.settings.admin_role}


def _user(row: Any) -> dict[str, Any]:
    return User.from_row(dict(row._mapping)).model_dump(mode="json")


@router.get("", response_model=list[User], responses=_ERRORS)
async def list_users(request: Request) -> Response:
    """Every user, oldest first."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with database_errors(), gateway.engine.connect() as conn:
        rows = (await conn.execute(_LIST, _actor(gateway, caller))).all()
    return reply([_user(row) for row in rows])


@router.get("/{user_id}", response_model=User, responses=_ERRORS)
async def get_user(user_id: UUID, request: Request) -> Response:
    """One user."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with database_errors(), gateway.engine.connect() as conn:
        row = (
            await conn.execute(_GET, {**_actor(gateway, caller), "user_id": user_id})
        ).one_or_none()
    if row is None:
        raise _no_such_user()
    return reply(_user(row))


@router.post("", status_code=201, response_model=User, responses=_ERRORS)
async def create_user(body: AdminUserCreate, request: Request) -> Response:
    """Create a user with a role the admin holds."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    address = normalise_email(body.email)
    gateway.passwords.check(body.password)
    password_hash = await hash_password(body.password)
    async with database_errors(), gateway.engine.begin() as conn:
        row = (
            await conn.execute(
                _CREATE,
                {
                    **_actor(gateway, caller),
                    "email": address,
                    "password_hash": password_hash,
                    "role": body.role or gateway.settings.default_role,
                    "verified": body.verified,
                },
            )
        ).one()
    return reply(_user(row), status=201)


@router.patch("/{user_id}", response_model=User, responses=_ERRORS)
async def update_user(user_id: UUID, body: AdminUserUpdate, request: Request) -> Response:
    """Change role, disabled or verified. Disabling ends the user's sessions at once."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with database_errors(), gateway.engine.begin() as conn:
        row = (
            await conn.execute(
                _UPDATE,
                {
                    **_actor(gateway, caller),
                    "user_id": user_id,
                    "role": body.role,
                    "disabled": body.disabled,
                    "verified": body.verified,
                },
            )
        ).one_or_none()
    if row is None:
        raise _no_such_user()
    audit.event(
        "admin_update",
        request,
        user_id=user_id,
        actor=str(caller.user_id),
        **body.model_dump(exclude_none=True),
    )
    return reply(_user(row))


@router.delete("/{user_id}", status_code=204, responses=_ERRORS)
async def delete_user(user_id: UUID, request: Request) -> Response:
    """Delete a user; their sessions go with them."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with database_errors(), gateway.engine.begin() as conn:
        deleted = (
            await conn.execute(_DELETE, {**_actor(gateway, caller), "user_id": user_id})
        ).scalar_one()
    if not deleted:
        raise _no_such_user()
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.delete("/{user_id}/sessions", response_model=Revoked, responses=_ERRORS)
async def end_user_sessions(user_id: UUID, request: Request) -> Response:
    """End every session of a user."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with database_errors(), gateway.engine.begin() as conn:
        count = (
            await conn.execute(_REVOKE, {**_actor(gateway, caller), "user_id": user_id})
        ).scalar()
    if count is None:
        raise _no_such_user()
    audit.event("revoke_all", request, user_id=user_id, actor=str(caller.user_id), count=count)
    return reply({"revoked": count})
