"""Request settings folded into the authenticating statement, so they cost no round trip."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.role_guard import IDENTITY_SETTINGS

# Statement texts differ only by their shape: how many settings, how many
# roles each limit covers, and whether the cache is loaded. A handful of
# shapes covers every request; each is prepared once per connection by
# asyncpg's statement cache.
_SHAPES_CACHED = 64
# Each cached (role, setting) adds ~55 bytes of SQL and two parameters, and
# asyncpg never caches a text over 15 KiB (about 280 of them): it would be
# prepared on every request. Well before that, auth.authenticate() copies
# the resolved role's limits from the catalog instead (~50 us a request).
_MAX_INLINE_LIMITS = 64
# Makes the transaction read only from the next statement on. Used instead
# of BEGIN READ ONLY, whose BEGIN may have been sent by the request before
# (app/leases.py), which cannot know the mode. A transaction may always
# turn read only, and once it has run a query it can never turn back.
READ_ONLY = "pg_catalog.set_config('transaction_read_only', 'on', true)"


@dataclass(frozen=True)
class Prelude:
    """Transaction settings for a data request, and its pre-request function.

    `settings` become set_config(name, value, true) in the same SELECT as
    auth.authenticate(), after it (the inner query is fenced with OFFSET 0).
    `call` is a quoted, qualified function name from configuration, never
    from a request; it runs in a statement of its own after authentication.
    `limits` are
    (role, setting, value) from the schema cache: the ones for the role the
    session resolves to are set too, and auth.authenticate() is told not to
    read them from the catalog itself. With None (no cache loaded) it does.
    `anonymous_role` is the role for a request without a live session,
    passed to auth.authenticate() rather than read from the connection.
    """

    settings: tuple[tuple[str, str], ...]
    anonymous_role: str
    call: str | None = None
    limits: tuple[tuple[str, str, str], ...] | None = None

    def statement(self, token_hash: bytes | None, *, read_only: bool) -> tuple[str, list[Any]]:
        """The authenticating SELECT with the settings folded in, and its $n arguments.

        `read_only` makes the transaction read only from the next statement on.

        Every name and value is a scalar text bind parameter. They once
        travelled as one JSON array unpacked by json_to_recordset, which
        cost PostgreSQL more than all the set_config calls together, and
        before that as text[] arrays, which asyncpg checks element by
        element (both measured in docs/benchmarks.md).
        """
        limits = self.limits
        if limits is not None and len(limits) > _MAX_INLINE_LIMITS:
            limits = None
        args: list[Any] = [token_hash, self.anonymous_role]
        for name, value in self.settings:
            args += (name, value)
        # Grouped by setting name, so each name becomes one CASE over the roles.
        by_name: dict[str, list[tuple[str, str]]] = {}
        for role, name, value in limits or ():
            by_name.setdefault(name, []).append((role, value))
        for name, choices in by_name.items():
            args.append(name)
            for role, value in choices:
                args += (role, value)
        shape = (
            len(self.settings),
            tuple(len(choices) for choices in by_name.values()),
            limits is None,
            read_only,
        )
        return _statement_text(*shape), args


@lru_cache(maxsize=_SHAPES_CACHED)
def _statement_text(
    settings: int, limit_roles: tuple[int, ...], copy_limits: bool, read_only: bool
) -> str:
    """The statement for one shape: `settings` settings, then one CASE per
    limit name, with one branch per role in `limit_roles`. Parameters are
    numbered in the order Prelude.statement appends its arguments."""
    number = 2  # $1 is the token hash, $2 the anonymous role

    def next_param() -> str:
        nonlocal number
        number += 1
        return f"${number}"

    # The response settings start empty. Only the request's own SQL (a
    # function, the pre-request) may set them, and a value some earlier
    # request left at session level (set_config(..., false)) on this
    # pooled connection must not reach this response.
    calls = [
        "pg_catalog.set_config('response.headers', '', true)",
        "pg_catalog.set_config('response.status', '', true)",
    ]
    if read_only:
        calls.append(READ_ONLY)
    for _ in range(settings):
        name, value = next_param(), next_param()
        calls.append(f"pg_catalog.set_config({name}, {value}, true)")
    for roles in limit_roles:
        name = next_param()
        branches = []
        for _ in range(roles):
            role, value = next_param(), next_param()
            branches.append(f" WHEN {role} THEN pg_catalog.set_config({name}, {value}, true)")
        # No branch for the resolved role: the setting is left as it is.
        calls.append(f"CASE a.role{''.join(branches)} END")
    columns = "".join(f", {call} AS s{i}" for i, call in enumerate(calls))
    # The settings are volatile output columns of a fenced (OFFSET 0)
    # subquery: the planner neither drops them, though the outer query does
    # not read them, nor runs them before authenticate() has produced its
    # row, so they take effect after the role switch.
    inner = (
        f"SELECT a.role, a.user_id, a.session_id, a.last_seen_at{columns}"
        f" FROM auth.authenticate($1, {'true' if copy_limits else 'false'}, $2, true) a OFFSET 0"
    )
    # The identity settings after every setting above has run.
    return (
        "SELECT s.role, s.user_id, s.session_id, s.last_seen_at,"
        f" {IDENTITY_SETTINGS} AS identity FROM ({inner}) s"
    )
