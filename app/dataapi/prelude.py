"""Request settings folded into the authenticating statement, so they cost no round trip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Prelude:
    """Transaction settings for a data request, and its pre-request function.

    `settings` become set_config(name, value, true) in the same SELECT as
    auth.authenticate(), after it (the inner query is fenced with OFFSET 0).
    `call` is a quoted, qualified function name from configuration, never
    from a request; it runs in a statement of its own after authentication.
    With `lenient_timezone`, a "timezone" PostgreSQL does not know is skipped
    instead of failing the request (Prefer: handling=lenient). `limits` are
    (role, setting, value) from the schema cache: the ones for the role the
    session resolves to are set too, and auth.authenticate() is told not to
    read them from the catalog itself. With None (no cache loaded) it does.
    `anonymous_role` is the role for a request without a live session,
    passed to auth.authenticate() rather than read from the connection.
    """

    settings: tuple[tuple[str, str], ...]
    anonymous_role: str
    call: str | None = None
    lenient_timezone: bool = False
    limits: tuple[tuple[str, str, str], ...] | None = None

    def statement(self, token_hash: bytes | None) -> tuple[str, list[Any]]:
        """The authenticating SELECT with the settings folded in, and its $n arguments.

        Each setting travels as {"n": name, "v": value, "r": role or null
        for any} in one JSON array: one bind parameter whatever the number
        of settings, and one statement text to prepare. One JSON text
        rather than three text[] arrays, because asyncpg checks every array
        element against several abstract base classes (measured in
        docs/benchmarks.md).
        """
        limits = self.limits or ()
        entries = [{"n": name, "v": value, "r": None} for name, value in self.settings]
        entries += [{"n": name, "v": value, "r": role} for role, name, value in limits]
        args: list[Any] = [token_hash, orjson.dumps(entries).decode(), self.anonymous_role]
        # Correlated with a, so it runs per row, after authenticate().
        check = " WHERE a.role IS NOT NULL AND (x.r IS NULL OR x.r = a.role)"
        if self.lenient_timezone and any(name == "timezone" for name, _ in self.settings):
            # An unknown timezone is skipped rather than failing the request.
            check += (
                " AND (x.n <> 'timezone' OR EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names"
                " WHERE name = x.v))"
            )
        settings = (
            "(SELECT pg_catalog.count(set_config(x.n, x.v, true)) FROM"
            " json_to_recordset(CAST($2 AS json)) AS x(n text, v text, r text)"
            f"{check}) AS sg"
        )
        # Without a loaded cache the function copies the limits itself.
        copy_limits = "true" if self.limits is None else "false"
        # OFFSET 0 keeps the inner SELECT whole: authenticate() switches the
        # role first, then the (volatile, so never pruned) settings run.
        inner = (
            f"SELECT a.role, a.user_id, a.session_id, a.last_seen_at, {settings}"
            f" FROM auth.authenticate($1, {copy_limits}, $3, true) a OFFSET 0"
        )
        sql = f"SELECT s.role, s.user_id, s.session_id, s.last_seen_at FROM ({inner}) s"
        return sql, args
