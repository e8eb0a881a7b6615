"""Wiring the request-level defences (CSRF, CORS, security headers) around the app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.config import Settings
from app.cors import cors_options
from app.csrf import CsrfMiddleware
from app.security_headers import SecurityHeadersMiddleware


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware, innermost first: CSRF, then CORS, then the headers.

    The headers layer is outermost so that CSRF refusals and CORS preflight
    answers carry the security headers too. The signing keys are checked here,
    at start-up, so a production service with a weak key never starts.
    """
    settings.signing_keys  # noqa: B018 - raises InsecureConfigurationError when unsafe
    app.add_middleware(
        CsrfMiddleware,
        allowed_origins=settings.allowed_origins,
        cookie_name=settings.session_cookie_name,
    )
    options = cors_options(settings)
    if options is not None:
        app.add_middleware(CORSMiddleware, **options)
    app.add_middleware(
        SecurityHeadersMiddleware,
        cookie_name=settings.session_cookie_name,
        hsts=settings.public_url.startswith("https://"),
        vary_origin=options is not None,
    )
