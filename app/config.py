"""Settings: one pydantic-settings class, read from the environment and `.env`."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything sessiongate can be told. Each field is documented in `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Where to listen and how the world reaches us.
    host: str = "127.0.0.1"
    port: int = 8000
    # The URL browsers use. Its scheme decides the cookie's Secure flag and
    # __Host- prefix, and its origin is the default same-origin allow-list.
    public_url: str = "http://127.0.0.1:8000"

    # Runtime connection, as the authenticator role. Unset: the embedded
    # PostgreSQL in `data_dir` is started and used.
    database_url: str | None = None
    # Connection used for migrations, as a superuser or the owner of the
    # schema. Unset: database_url (or the embedded server's superuser).
    database_admin_url: str | None = None
    # Embedded PostgreSQL's home; it survives restarts.
    data_dir: Path = PROJECT_ROOT / ".data"
    database_name: str = "sessiongate"
    pool_size: int = 10
    pool_max_overflow: int = 10
    # Seconds a request waits for a pooled connection before a 503.
    pool_timeout: float = 10.0
    # Prepared statements per connection; 0 for PgBouncer before 1.21.
    statement_cache_size: int = 256

    # Demo mode loads the todo app and relaxes start-up checks meant for
    # production. Default: on when running on the embedded PostgreSQL.
    demo: bool | None = None

    # Session cookie signing keys, newest first. The first signs; all verify,
    # so a key can be rotated in without logging anyone out.
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    cookie_name: str = "sessiongate"
    # None: Secure (and the __Host- prefix) exactly when public_url is https.
    cookie_secure: bool | None = None

    # Seconds of inactivity after which a session ends (NIST SP 800-63B AAL2).
    session_idle_timeout: int = 60 * 60  # 1 hour
    # Seconds after sign-in after which a session ends regardless of activity.
    session_absolute_timeout: int = 24 * 60 * 60  # 24 hours
    # Seconds between writes of a session's last-seen time (the sliding expiry).
    session_touch_interval: int = 60  # 1 minute

    # Database roles. They must match sql/00_roles.sql.
    authenticator_role: str = "authenticator"
    anonymous_role: str = "anonymous"
    default_role: str = "webuser"
    admin_role: str = "admin"

    # Schemas the data API exposes; the first is the default profile.
    db_schemas: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["api"])
    # Upper bound on rows a data GET returns; None: no bound.
    db_max_rows: int | None = None

    password_min_length: int = 8
    password_max_length: int = 128

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("db_schemas", mode="before")
    @classmethod
    def _split_schemas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.session_idle_timeout <= 0 or self.session_absolute_timeout <= 0:
            raise ValueError("session timeouts must be positive")
        if self.session_touch_interval < 0:
            raise ValueError("SESSION_TOUCH_INTERVAL must not be negative")
        if not self.db_schemas:
            raise ValueError("DB_SCHEMAS must name at least one schema")
        if self.password_min_length < 8 or self.password_max_length < 64:
            raise ValueError("passwords must allow 8 to at least 64 characters")
        return self

    @property
    def embedded(self) -> bool:
        """True when sessiongate runs its own PostgreSQL."""
        return self.database_url is None

    @property
    def demo_mode(self) -> bool:
        """Demo mode, resolved: explicit DEMO wins, else on for embedded PostgreSQL."""
        return self.embedded if self.demo is None else self.demo

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies carry Secure and the __Host- prefix."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return urlsplit(self.public_url).scheme == "https"

    @property
    def session_cookie_name(self) -> str:
        """The cookie's name on the wire (`__Host-` prefixed over HTTPS)."""
        return f"__Host-{self.cookie_name}" if self.secure_cookies else self.cookie_name

    @cached_property
    def signing_keys(self) -> list[str]:
        """The cookie keys, newest first, falling back to a persisted demo key."""
        keys = [key.get_secret_value() for key in self.secret_keys]
        if keys:
            return keys
        return [_demo_secret_key(self.data_dir)]


def _demo_secret_key(data_dir: Path) -> str:
    """A random key kept in the data folder, so demo sessions survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def get_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings()
