"""Request settings folded into the authenticating statement, so they cost no round trip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prelude:
    """Transaction settings for a data request, and its pre-request function.

    `settings` become set_config(name, value, true) in the same SELECT as
    auth.authenticate(), after it (the inner query is fenced with OFFSET 0).
    `call` is a quoted, qualified function name from configuration, never
    from a request; it runs in a statement of its own after authentication.
    With `lenient_timezone`, a "timezone" PostgreSQL does not know is skipped
    instead of failing the request (Prefer: handling=lenient).
    """

    settings: tuple[tuple[str, str], ...]
    call: str | None = None
    lenient_timezone: bool = False

    def statement(self) -> tuple[str, dict[str, Any]]:
        """The authenticating SELECT with the settings folded in (SQLAlchemy :params)."""
        params: dict[str, Any] = {}
        exprs: list[str] = []
        for index, (name, value) in enumerate(self.settings):
            params[f"sg_name_{index}"] = name
            params[f"sg_value_{index}"] = value
            expr = f"set_config(:sg_name_{index}, :sg_value_{index}, true)"
            if name == "timezone" and self.lenient_timezone:
                expr = (
                    "CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names"
                    f" WHERE name = :sg_value_{index}) THEN {expr} END"
                )
            exprs.append(f", {expr} AS sg_{index}")
        inner = (
            "SELECT a.role, a.user_id, a.session_id, a.last_seen_at"
            + "".join(exprs)
            + " FROM auth.authenticate(:token_hash) a OFFSET 0"
        )
        sql = f"SELECT s.role, s.user_id, s.session_id, s.last_seen_at FROM ({inner}) s"
        return sql, params
