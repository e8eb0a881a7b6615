"""Errors as values: a code, a message, details and a hint, mapped to HTTP in one place."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"


class ApiError(Exception):
    """An error the client is meant to see, as PostgREST shapes it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: always all four keys, like PostgREST."""
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        }

    def response(self) -> Response:
        """This error as an HTTP response."""
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            media_type=JSON_TYPE,
            headers=self.headers,
        )


def not_authenticated() -> ApiError:
    """The 401 for a route that needs a live session."""
    return ApiError(
        401,
        "not_authenticated",
        "Not signed in",
        hint="Sign in with POST /api/login; the session cookie may have expired.",
    )


# PostgreSQL error classes and codes mapped to HTTP statuses, after PostgREST.
_SQLSTATE_STATUS: dict[str, int] = {
    "23503": 409,  # foreign_key_violation
    "23505": 409,  # unique_violation
    "25006": 405,  # read_only_sql_transaction
    "21000": 500,  # cardinality_violation (PostgREST: 500 unless it's from a single-row request)
    "22023": 400,  # invalid_parameter_value
    "42883": 404,  # undefined_function
    "42P01": 404,  # undefined_table
    "42501": 403,  # insufficient_privilege (401 when anonymous, decided by the caller)
    "P0001": 400,  # raise_exception
    "57014": 500,  # query_canceled (statement_timeout)
    "53400": 500,  # configuration_limit_exceeded
}
_CLASS_STATUS: dict[str, int] = {
    "08": 503,  # connection exception
    "09": 500,  # triggered action exception
    "0L": 403,  # invalid grantor
    "0P": 403,  # invalid role specification
    "23": 400,  # integrity constraint violation
    "22": 400,  # data exception
    "25": 500,  # invalid transaction state
    "28": 403,  # invalid authorization specification
    "2D": 500,  # invalid transaction termination
    "38": 500,  # external routine exception
    "39": 500,  # external routine invocation exception
    "3B": 500,  # savepoint exception
    "40": 500,  # transaction rollback
    "53": 503,  # insufficient resources
    "54": 413,  # program limit exceeded
    "55": 500,  # object not in prerequisite state
    "57": 500,  # operator intervention
    "58": 500,  # system error
    "F0": 500,  # configuration file error
    "HV": 500,  # foreign data wrapper error
    "P0": 500,  # PL/pgSQL error
    "XX": 500,  # internal error
    "42": 400,  # syntax error or access rule violation
}


def status_for_sqlstate(sqlstate: str, *, anonymous: bool) -> int:
    """PostgREST's SQLSTATE-to-HTTP mapping."""
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in _SQLSTATE_STATUS:
        return _SQLSTATE_STATUS[sqlstate]
    return _CLASS_STATUS.get(sqlstate[:2], 500)


_PGRST_MESSAGE_HINT = (
    "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' "
    "and optional keys: 'details', 'hint'."
)
_PGRST_DETAIL_HINT = (
    "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' "
    "and optional key: 'status_text'."
)


def _raised_pgrst(error: asyncpg.PostgresError) -> ApiError:
    """RAISE SQLSTATE 'PGRST': JSON message = the body, JSON detail = status and headers."""
    message = error.args[0] if error.args else ""
    detail = getattr(error, "detail", None)

    def problem(details: str, hint: str) -> ApiError:
        return ApiError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            details=details,
            hint=hint,
        )

    try:
        body = orjson.loads(message)
        if not isinstance(body, dict) or "code" not in body or "message" not in body:
            raise ValueError
    except ValueError:
        return problem(f"Invalid JSON value for MESSAGE: '{message}'", _PGRST_MESSAGE_HINT)
    if detail is None:
        return problem("DETAIL is missing in the RAISE statement", _PGRST_DETAIL_HINT)
    try:
        meta = orjson.loads(detail)
        if not isinstance(meta, dict) or not isinstance(meta.get("status"), int):
            raise ValueError
        headers = meta.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError
    except ValueError:
        return problem(f"Invalid JSON value for DETAIL: '{detail}'", _PGRST_DETAIL_HINT)
    return ApiError(
        meta["status"],
        str(body["code"]),
        str(body["message"]),
        details=None if body.get("details") is None else str(body["details"]),
        hint=None if body.get("hint") is None else str(body["hint"]),
        headers={str(k): str(v) for k, v in headers.items()},
    )


def from_postgres(error: asyncpg.PostgresError, *, anonymous: bool = False) -> ApiError:
    """A database error as the client sees it: PostgreSQL's own words and code."""
    sqlstate = error.sqlstate or "XX000"
    if sqlstate == "PGRST":
        return _raised_pgrst(error)
    return ApiError(
        status_for_sqlstate(sqlstate, anonymous=anonymous),
        sqlstate,
        error.args[0] if error.args else "database error",
        details=getattr(error, "detail", None),
        hint=getattr(error, "hint", None),
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a JSON error."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())[1:]), "problem": err.get("msg")}
            for err in exc.errors()
        ]
        return ApiError(
            422 if problems else 400,
            "invalid_request",
            "The request body is not valid",
            details=orjson.dumps(problems).decode(),
            hint="Send a JSON object with the documented fields.",
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return ApiError(
            exc.status_code,
            codes.get(exc.status_code, f"http_{exc.status_code}"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        ).response()

    @app.exception_handler(asyncpg.PostgresError)
    async def _postgres(_: Request, exc: asyncpg.PostgresError) -> Response:
        return from_postgres(exc).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The trace goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ApiError(500, "internal_error", "Internal server error").response()
