"""The caller's own sessions: list them, end one, end all the others."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from app import audit, sessions
from app.api.account_bodies import Revoked, SessionInfo
from app.api.caller import reply, require_caller
from app.api.models import ErrorBody
from app.errors import ApiError
from app.gateway import get_gateway

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404)}

_LIST = text(
    "SELECT id, created_at, last_seen_at, expires_at, host(ip) AS ip, user_agent"
    " FROM auth.list_user_sessions(:user_id)"
)
_REVOKE_ONE = text("SELECT auth.revoke_user_session(:user_id, :session_id)")


@router.get("", response_model=list[SessionInfo], responses=_ERRORS)
async def list_sessions(request: Request) -> Response:
    """The caller's live sessions, newest first; `current` marks this one."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with gateway.engine.connect() as conn:
        rows = (await conn.execute(_LIST, {"user_id": caller.user_id})).all()
    items = [
        SessionInfo(**row._mapping, current=row.id == caller.session_id).model_dump(mode="json")
        for row in rows
    ]
    return reply(items)


@router.delete("/{session_id}", status_code=204, responses=_ERRORS)
async def end_session(session_id: UUID, request: Request) -> Response:
    """End one of the caller's sessions. Ending the current one also deletes the cookie."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with gateway.engine.begin() as conn:
        ended = (
            await conn.execute(_REVOKE_ONE, {"user_id": caller.user_id, "session_id": session_id})
        ).scalar_one()
    if not ended:
        # Someone else's session looks exactly like one that does not exist.
        raise ApiError(404, "not_found", "No such session", hint="GET /api/sessions lists yours.")
    audit.event("revoke", request, user_id=caller.user_id, session_id=session_id)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if session_id == caller.session_id:
        gateway.cookie.delete(response)
    return response


@router.delete("", response_model=Revoked, responses=_ERRORS)
async def end_other_sessions(request: Request) -> Response:
    """End every session of the caller except this one."""
    gateway = get_gateway(request)
    caller = await require_caller(gateway, request)
    async with gateway.engine.begin() as conn:
        count = await sessions.revoke_user(conn, caller.user_id, keep=caller.session_id)
    audit.event(
        "revoke_others", request, user_id=caller.user_id, session_id=caller.session_id, count=count
    )
    return reply({"revoked": count})
