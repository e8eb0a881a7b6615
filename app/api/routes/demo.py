"""The demo application's hand-written route: library use of `RlsSession`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from app.rls import RlsSession

router = APIRouter(prefix="/demo", tags=["demo"])

_SUMMARY = text(
    """
    SELECT current_user AS role,
           auth.user_id() AS user_id,
           count(*) FILTER (WHERE user_id = auth.user_id()) AS mine,
           count(*) FILTER (WHERE user_id = auth.user_id() AND done) AS mine_done,
           count(*) FILTER (WHERE public) AS public
    FROM api.todos
    """
)


@router.get("/summary")
async def summary(session: RlsSession) -> dict[str, Any]:
    """Counts of the todos the caller can see. Row Level Security does the filtering."""
    row = (await session.execute(_SUMMARY)).one()
    return dict(row._mapping)
