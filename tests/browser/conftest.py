"""Headless Chromium from Debian, driven by Playwright; skipped with a reason when absent.

Never a browser Playwright downloads: the Debian binary at CHROMIUM_PATH
(default /usr/bin/chromium; .ci/run installs it with apt-get).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).is_file()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser_context() -> AsyncIterator[Any]:
    """A fresh Chromium profile (its own --user-data-dir), closed afterwards."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    profile = tempfile.mkdtemp(prefix="sessiongate-chromium-")
    try:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                yield context
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class StaticSite:
    """A one-page site on its own loopback port: the "other origin"."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The site's origin."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other_origin() -> type[StaticSite]:
    """The StaticSite class, for tests that serve an attacker's page."""
    return StaticSite
