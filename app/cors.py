"""CORS: an exact allow-list of origins that may make credentialed cross-origin requests.

Starlette's CORSMiddleware does the protocol; this module only decides its
arguments, so the rules live in one place: origins come from TRUSTED_ORIGINS
(validated as exact origins, "*" refused at start-up), credentials are
allowed only for those, and an origin not on the list gets no
Access-Control-Allow-Origin at all (never a reflected value). With no
trusted origins the middleware is not installed: the service is same-origin only.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Request headers the data API and account routes understand (PostgREST's set).
ALLOWED_HEADERS = ("Content-Type", "Prefer", "Range", "Accept-Profile", "Content-Profile")
EXPOSED_HEADERS = ("Content-Range", "Location", "Preference-Applied", "Retry-After")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may cache a preflight answer


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """Arguments for Starlette's CORSMiddleware, or None when no other origin is trusted."""
    origins = list(settings.trusted_origins)
    if not origins:
        return None
    if "*" in origins:  # Settings refuses it already; a wildcard with credentials never ships
        raise ValueError("TRUSTED_ORIGINS must not contain '*'")
    return {
        "allow_origins": origins,
        "allow_credentials": True,
        "allow_methods": ALLOWED_METHODS,
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": EXPOSED_HEADERS,
        "max_age": PREFLIGHT_MAX_AGE,
    }
