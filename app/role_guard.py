"""The request must end as the caller it authenticated as: SQL that changed that is rolled back.

auth.authenticate() switches the transaction into the caller's role and
sets the identity settings (auth.user_id, the claims). A function the
request reaches could try to leave the role: RESET ROLE (back to
authenticator, which may switch into every request role), SET ROLE admin,
or set_config('role', ..., false), which would even outlive the
transaction on a pooled connection. PostgreSQL forbids those only inside
SECURITY DEFINER code. Or it could stay in role and overwrite an identity
setting, which any role may do anywhere, and so read or write as another
user through every policy that trusts auth.user_id() or the claims. So the
service checks, in or after the last statement before COMMIT, that
IDENTITY_SETTINGS is what it was right after authentication. If
not, the transaction is rolled back (undoing every write and the change
itself), the response is replaced by an error, and the attempt is audited.
docs/security.md describes what this does not cover (a function that
switches back before it returns) and the defences for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from app import audit
from app.errors import ApiError

if TYPE_CHECKING:
    from app.rls import RequestTransaction

# The role and every identity setting auth.authenticate() makes
# (sql/04_authenticate.sql; keep the two lists in step), as one text. An
# expression rather than a function, so it needs no privilege: it runs in
# whatever role a request has, one an operator added or one SQL escaped to.
_NAMES = (
    "auth.user_id",
    "auth.session_id",
    "request.jwt.claims",
    "jwt.claims.role",
    "jwt.claims.user_id",
    "jwt.claims.email",
    "jwt.claims.session_id",
)
IDENTITY_SETTINGS = (
    "pg_catalog.json_build_array(current_user, "
    + ", ".join(f"pg_catalog.current_setting('{name}', true)" for name in _NAMES)
    # Qualified: a temporary table named `text` would otherwise stand in for
    # the type (pg_temp comes first for type names unless listed).
    + ")::pg_catalog.text"
)
_IDENTITY = f"SELECT current_user, {IDENTITY_SETTINGS}"


async def verify(tx: RequestTransaction, connection: HTTPConnection | None = None) -> None:
    """Raise (so the transaction rolls back) if the transaction is no longer its caller."""
    driver = await tx.driver()
    row = await driver.fetchrow(_IDENTITY)
    assert row is not None
    current, settings = row[0], row[1]
    if settings == tx.identity.settings:
        return
    escaped_role = current != tx.identity.role
    audit.event(
        "role_escape" if escaped_role else "identity_overwrite",
        connection,
        user_id=tx.identity.user_id,
        session_id=tx.identity.session_id,
        expected_role=tx.identity.role,
        found_role=current,
    )
    if escaped_role:
        raise ApiError(
            500,
            "role_changed",
            "The request's SQL changed its database role; nothing was committed",
            hint="Functions reachable through the API must not run SET ROLE, RESET ROLE or"
            " set_config('role', ...).",
        )
    raise ApiError(
        500,
        "identity_changed",
        "The request's SQL changed who it runs as; nothing was committed",
        hint="Functions reachable through the API must not set auth.user_id, auth.session_id,"
        " request.jwt.claims or jwt.claims.*.",
    )
