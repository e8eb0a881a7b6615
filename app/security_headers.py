"""Security headers on every response, and no caching of anything tied to a session.

Pure ASGI: it only edits the response's header list on the way out, so it
costs next to nothing per request. A header a route already set is kept,
except Cache-Control on a response tied to a session, which is always
`no-store` (a shared cache must never keep one user's page for another).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.csrf import has_cookie

# The demo page and every JSON response: our own scripts and styles only, no
# inline code, no plugins, no framing, fetch() to this origin only.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's interactive docs load Swagger UI / ReDoc from jsDelivr and start
# them with an inline script; they hold no user data. Operators who do not
# want that can turn the docs off at the reverse proxy.
DOCS_CSP = (
    "default-src 'none'; object-src 'none'; "
    "script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
HSTS = "max-age=63072000; includeSubDomains"  # 2 years, as hstspreload.org asks

_BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


class SecurityHeadersMiddleware:
    """Add the security headers; mark session-bound responses `no-store`, `Vary: Cookie`.

    cookie_name: the session cookie's name on the wire.
    hsts: send Strict-Transport-Security (only meaningful over HTTPS).
    vary_origin: add `Vary: Origin` (when CORS answers depend on the Origin).
    static_prefix: paths that never depend on the session (cacheable files).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie_name: str,
        hsts: bool = False,
        vary_origin: bool = False,
        static_prefix: str = "/static/",
    ) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.cookie_prefix = cookie_name.encode() + b"="
        self.static_prefix = static_prefix
        base = list(_BASE_HEADERS)
        if hsts:
            base.append((b"strict-transport-security", HSTS.encode()))
        self.base = base
        self.vary = b"Cookie, Origin" if vary_origin else b"Cookie"
        # The headers each kind of page gets, worked out once.
        self._added = {
            csp: [*base, (b"content-security-policy", csp.encode())]
            for csp in (STRICT_CSP, DOCS_CSP)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; edit the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        static = path.startswith(self.static_prefix)
        cookie = b"; ".join(value for key, value in scope["headers"] if key == b"cookie")
        presented = has_cookie(cookie.decode("latin-1"), self.cookie_name)
        added = self._added[DOCS_CSP if path in DOCS_PATHS else STRICT_CSP]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                headers += [header for header in added if header[0] not in present]
                if not static:
                    sets_session = b"set-cookie" in present and any(
                        key.lower() == b"set-cookie" and value.startswith(self.cookie_prefix)
                        for key, value in headers
                    )
                    if presented or sets_session:
                        if b"cache-control" in present:
                            headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", b"no-store"))
                    if b"vary" in present:
                        headers = _add_vary(headers, self.vary)
                    else:
                        headers.append((b"vary", self.vary))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_vary(headers: list[tuple[bytes, bytes]], extra: bytes) -> list[tuple[bytes, bytes]]:
    """Merge `extra` into the Vary header without duplicating names."""
    names: list[bytes] = []
    rest: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        if key.lower() == b"vary":
            names.extend(part.strip() for part in value.split(b",") if part.strip())
        else:
            rest.append((key, value))
    seen = {name.lower() for name in names}
    names.extend(name.strip() for name in extra.split(b",") if name.strip().lower() not in seen)
    rest.append((b"vary", b", ".join(names)))
    return rest
