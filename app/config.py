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
    # Seconds between runs of the in-service purge of ended sessions, used
    # tokens and old delivered mail events; 0 turns it off (then run
    # `sessiongate sessions purge-expired` from cron).
    session_purge_interval: Annotated[int, Field(ge=0)] = 60 * 60  # 1 hour

    # Account lifecycle (docs/accounts.md).
    # Login refuses accounts whose e-mail is not verified. None: on, except
    # in demo mode.
    require_verified_email: bool | None = None
    # Seconds a verification link works, counted from when it was mailed.
    verify_token_lifetime: Annotated[int, Field(gt=0)] = 24 * 60 * 60  # 24 hours
    # Seconds a password-reset link works, counted from when it was mailed.
    reset_token_lifetime: Annotated[int, Field(gt=0)] = 60 * 60  # 1 hour
    # Where the links in the mails point: PUBLIC_URL + path + "#token=...".
    # The token rides in the fragment, which browsers never send to a server.
    verify_path: str = "/verify"
    reset_path: str = "/reset"
    # Seconds delivered mail events are kept in auth.events before the purge.
    event_retention: int = 7 * 24 * 60 * 60  # 7 days

    # The mailer (`sessiongate mailer`). "stdout" prints mails instead of
    # sending them; None: stdout in demo mode, smtp otherwise.
    mail_transport: Literal["smtp", "stdout"] | None = None
    # Run the mailer inside the service process too (`sessiongate run` turns
    # this on in demo mode).
    mailer_in_service: bool = False
    mail_from: str = "sessiongate <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    # "starttls": upgrade a plain connection (port 587); "tls": implicit TLS
    # (port 465); "none": plain text, only for a relay on a trusted network.
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # Seconds one SMTP exchange may take before it counts as failed.
    smtp_timeout: float = 30.0
    # Seconds between the mailer's sweeps of the outbox (besides LISTEN).
    mailer_poll_interval: float = 30.0
    # Retry backoff in seconds: base * 2^(attempts - 1), at most the maximum.
    mailer_retry_base: float = 10.0
    mailer_retry_max: float = 60 * 60  # 1 hour

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
    def verified_email_required(self) -> bool:
        """REQUIRE_VERIFIED_EMAIL, resolved: explicit wins, else on outside demo mode."""
        if self.require_verified_email is not None:
            return self.require_verified_email
        return not self.demo_mode

    @property
    def mailer_transport(self) -> Literal["smtp", "stdout"]:
        """MAIL_TRANSPORT, resolved: explicit wins, else stdout in demo mode."""
        if self.mail_transport is not None:
            return self.mail_transport
        return "stdout" if self.demo_mode else "smtp"

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
