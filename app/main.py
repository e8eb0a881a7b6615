"""The FastAPI application: wiring, start-up and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse

from app import __version__, errors, hardening, housekeeping
from app.api.routes import accounts, admin, demo, passwords, sessions, verification
from app.config import Settings, get_settings
from app.dataapi import routes as data_routes
from app.dataapi.dispatch import DataDispatch
from app.dataapi.reload import SchemaReloader
from app.db import create_engine, create_request_leases, plain_dsn, resolve_urls
from app.gateway import Gateway

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. The database must already be migrated (`sessiongate migrate`)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        urls = resolve_urls(settings)
        engine = create_engine(urls.runtime, settings)
        gateway = Gateway.build(settings, engine)
        gateway.leases = await create_request_leases(urls.runtime, settings)
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is not None
            await gateway.schema.load(raw.driver_connection)
        app.state.gateway = gateway
        background = housekeeping.start(engine, settings, urls.runtime)
        reloader = SchemaReloader(gateway.schema, plain_dsn(urls.runtime))
        reloader.start()
        app.state.schema_reloader = reloader
        try:
            yield
        finally:
            await reloader.stop()
            await housekeeping.stop(background)
            await gateway.toucher.drain()
            await gateway.leases.close()
            await engine.dispose()

    app = FastAPI(
        title="sessiongate",
        version=__version__,
        summary="HttpOnly session cookies in front of PostgreSQL Row Level Security.",
        lifespan=lifespan,
    )
    errors.install(app)
    # Added first, so it runs innermost: CSRF, CORS and the headers still apply.
    app.add_middleware(DataDispatch)
    hardening.install(app, settings)
    # Account routes first: their paths win over a relation of the same name.
    app.include_router(accounts.router)
    app.include_router(verification.router)
    app.include_router(passwords.router)
    app.include_router(sessions.router)
    app.include_router(admin.router)
    app.include_router(demo.router)
    app.include_router(data_routes.router)

    if settings.demo_mode:
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

        # The pages the verification and reset mails link to.
        @app.get(settings.verify_path, include_in_schema=False)
        @app.get(settings.reset_path, include_in_schema=False)
        async def account_link() -> FileResponse:
            return FileResponse(STATIC_DIR / "account-link.html")

    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory`."""
    return create_app()
