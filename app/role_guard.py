"""The request's role must be the role it ends with: SQL that switched roles is rolled back.

auth.authenticate() switches the transaction into the caller's role. A
function the request reaches could try to leave it: RESET ROLE (back to
authenticator, which may switch into every request role), SET ROLE admin,
or set_config('role', ..., false), which would even outlive the transaction
on a pooled connection. PostgreSQL forbids those only inside SECURITY
DEFINER code, so the service checks, as the last statement before COMMIT,
that the transaction is still in the role it authenticated as. If not, the
transaction is rolled back (undoing every write and the role change
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

_CURRENT_USER = "SELECT current_user"


async def verify(tx: RequestTransaction, connection: HTTPConnection | None = None) -> None:
    """Raise (so the transaction rolls back) if the transaction left its authenticated role."""
    driver = await tx.driver()
    current = await driver.fetchval(_CURRENT_USER)
    if current == tx.identity.role:
        return
    audit.event(
        "role_escape",
        connection,
        user_id=tx.identity.user_id,
        session_id=tx.identity.session_id,
        expected_role=tx.identity.role,
        found_role=current,
    )
    raise ApiError(
        500,
        "role_changed",
        "The request's SQL changed its database role; nothing was committed",
        hint="Functions reachable through the API must not run SET ROLE, RESET ROLE or"
        " set_config('role', ...).",
    )
