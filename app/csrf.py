"""Cross-site request forgery defence: unsafe requests must come from an allowed origin.

The rule (docs/security.md explains why each part is there):

1. Safe methods (GET, HEAD, OPTIONS, TRACE) pass: they must not change state.
2. Origin. With `Sec-Fetch-Site` (every current browser sends it):
   `same-origin` passes; anything else passes only if `Origin` is allowed
   (PUBLIC_URL's origin or TRUSTED_ORIGINS). Without it but with `Origin`
   (older browsers, plain-HTTP sites): the origin must be allowed; `null`
   never is. With neither header the request cannot have been made by a
   browser on another site, so it passes (curl, server-to-server clients).
3. Content type. The CORS-safelisted body types (form, multipart, text/plain)
   are refused outright: they are what a page on another site can send
   without a preflight. A request that carries the session cookie, and every
   login or sign-up, must declare JSON (`application/json` or `*/*+json`),
   or `text/csv` for the data API; both force a preflight cross-origin.

A refusal is a 403 with the usual JSON error body. This is pure ASGI: it
reads a few request headers and never touches the body, so it costs
microseconds and nothing on safe requests.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import JSON_TYPE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Body types a cross-site <form> or a no-preflight fetch() may send.
SAFELISTED_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
# Non-JSON types the data API accepts; they force a preflight like JSON does.
EXTRA_ALLOWED_TYPES = frozenset({"text/csv"})
# Routes that start a session (login CSRF) whether or not a cookie is sent.
DEFAULT_CREDENTIAL_PATHS = frozenset({"/api/login", "/api/signup"})
_VARY = "Origin, Sec-Fetch-Site, Cookie, Content-Type"


class CsrfRefusal(Exception):
    """Why a request was refused: an error code and a message for the client."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


def media_type(content_type: str | None) -> str | None:
    """The essence of a Content-Type ("application/json; charset=utf-8" -> "application/json")."""
    if content_type is None:
        return None
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence or None


def has_cookie(cookie_header: str | None, name: str) -> bool:
    """Whether a Cookie header carries a cookie called `name` (with any value)."""
    if not cookie_header:
        return False
    prefix = name + "="
    return any(part.strip().startswith(prefix) for part in cookie_header.split(";"))


def check(
    *,
    method: str,
    path: str,
    sec_fetch_site: str | None,
    origin: str | None,
    content_type: str | None,
    carries_session: bool,
    allowed_origins: frozenset[str],
    credential_paths: frozenset[str] = DEFAULT_CREDENTIAL_PATHS,
) -> None:
    """Raise CsrfRefusal if the request must be refused; return if it may proceed."""
    if method.upper() in SAFE_METHODS:
        return
    origin_allowed = origin is not None and origin.lower() in allowed_origins
    if sec_fetch_site is not None:
        if sec_fetch_site.lower() != "same-origin" and not origin_allowed:
            raise CsrfRefusal(
                "csrf_cross_site",
                "Cross-site request refused",
                "Unsafe requests must come from a page on this site or a trusted origin.",
            )
    elif origin is not None and not origin_allowed:
        raise CsrfRefusal(
            "csrf_origin",
            "Request from an untrusted origin refused",
            "Add the page's origin to TRUSTED_ORIGINS if it is yours.",
        )
    essence = media_type(content_type)
    if essence in SAFELISTED_TYPES:
        raise CsrfRefusal(
            "csrf_content_type",
            f"Content-Type {essence} is not accepted",
            "Send a JSON body with Content-Type: application/json.",
        )
    if carries_session or path in credential_paths:
        json = essence is not None and (essence == "application/json" or essence.endswith("+json"))
        if not json and essence not in EXTRA_ALLOWED_TYPES:
            raise CsrfRefusal(
                "csrf_content_type",
                "Content-Type: application/json is required",
                "Requests that sign in or carry the session cookie must declare a JSON body,"
                " even an empty one.",
            )


def _header_values(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    wanted = {b"sec-fetch-site", b"origin", b"content-type", b"cookie"}
    found: dict[bytes, str] = {}
    for key, value in raw:
        if key in wanted:
            text = value.decode("latin-1")
            # Several Cookie headers (HTTP/2) are one list; the others take the first.
            found[key] = f"{found[key]}; {text}" if key == b"cookie" and key in found else text
    return found


class CsrfMiddleware:
    """Refuse unsafe requests that a page on another site could have made.

    allowed_origins: exact origins (scheme://host[:port]) whose pages may send
        unsafe requests; PUBLIC_URL's origin plus TRUSTED_ORIGINS.
    cookie_name: the session cookie's name on the wire.
    credential_paths: routes that need JSON even without a cookie (login CSRF).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: frozenset[str],
        cookie_name: str,
        credential_paths: frozenset[str] = DEFAULT_CREDENTIAL_PATHS,
    ) -> None:
        self.app = app
        self.allowed_origins = frozenset(origin.lower() for origin in allowed_origins)
        self.cookie_name = cookie_name
        self.credential_paths = credential_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, then pass on or answer 403 without reading the body."""
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = _header_values(scope["headers"])
        try:
            check(
                method=scope["method"],
                path=scope["path"],
                sec_fetch_site=headers.get(b"sec-fetch-site"),
                origin=headers.get(b"origin"),
                content_type=headers.get(b"content-type"),
                carries_session=has_cookie(headers.get(b"cookie"), self.cookie_name),
                allowed_origins=self.allowed_origins,
                credential_paths=self.credential_paths,
            )
        except CsrfRefusal as refusal:
            await _refuse(send, refusal)
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, refusal: CsrfRefusal) -> None:
    body = orjson.dumps(
        {"code": refusal.code, "message": refusal.message, "details": None, "hint": refusal.hint}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", JSON_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"vary", _VARY.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
