"""Settings: one pydantic-settings class, read from the environment and `.env`."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
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
    public_url: str = "http://127.0.0.1:8000"  # unset: http://HOST:PORT

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
    # so a key can be rotated in without logging anyone out. The first also
    # keys typed addresses for the throttle and the audit log (app/addresses.py).
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    cookie_name: str = "sessiongate"
    # None: Secure (and the __Host- prefix) exactly when public_url is https.
    cookie_secure: bool | None = None

    # Seconds a device cookie (app/devices.py) keeps a browser that signed in
    # exempt from its account's lock, counted from its last sign-in.
    device_cookie_lifetime: Annotated[int, Field(gt=0)] = 90 * 24 * 60 * 60  # 90 days

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
    # Per-schema overrides of db_max_rows, e.g. {"reports": 100}.
    db_max_rows_by_schema: dict[str, int] = Field(default_factory=dict)
    # Profile names accepted in Accept-Profile/Content-Profile for a schema.
    db_schema_aliases: dict[str, str] = Field(default_factory=dict)
    # How a data request's transaction ends: commit, rollback, or either
    # with "-allow-override" so Prefer: tx=commit|rollback may choose.
    db_tx_end: Literal["commit", "commit-allow-override", "rollback", "rollback-allow-override"] = (
        "commit"
    )
    # A function (schema.name) called in every data request's transaction,
    # after authentication and the request.* settings; it may raise to refuse.
    db_pre_request: str | None = None
    # Schemas appended to the data API's search_path (for extension types).
    db_extra_search_path: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Tables where PATCH and DELETE need at least one filter.
    db_safe_update_tables: Annotated[list[str], NoDecode] = Field(default_factory=list)

    password_min_length: int = 8
    password_max_length: int = 128

    # Origins other than PUBLIC_URL's that may send credentialed cross-origin
    # requests (CORS) and unsafe requests (CSRF check). Exact origins only,
    # e.g. https://app.example.com; never "*". Empty: same-origin only.
    trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Brute-force throttling (app/throttle.py, counters in auth.throttle).
    # Failures allowed per account (e-mail) before back-off starts.
    throttle_account_free_failures: int = 5
    # Longest an account is held back, in seconds: short, so an attacker
    # cannot lock a victim out for long.
    throttle_account_max_lock: int = 5 * 60  # 5 minutes
    # Failures allowed per client address (IPv4, or IPv6 /64) before back-off.
    throttle_address_free_failures: int = 20
    # Longest a client address is held back, in seconds.
    throttle_address_max_lock: int = 60 * 60  # 1 hour
    # First lock, in seconds; each further failure doubles it, up to the maxima.
    throttle_base_lock: int = 2  # seconds
    # Seconds after the last failure (or the end of a lock) that a counter is forgotten.
    throttle_window: int = 15 * 60  # 15 minutes

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        origins = []
        for origin in value:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"TRUSTED_ORIGINS: {origin!r} is not an exact http(s) origin")
            if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
                raise ValueError(f"TRUSTED_ORIGINS: {origin!r} must be scheme://host[:port]")
            origins.append(origin_of(origin))
        return origins

    @field_validator("db_schemas", "db_extra_search_path", "db_safe_update_tables", mode="before")
    @classmethod
    def _split_schemas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_public_url(cls, data: Any) -> Any:
        # Unset, PUBLIC_URL follows HOST and PORT, so `PORT=9000 make run`
        # serves a page whose own origin passes the CSRF check.
        if isinstance(data, dict) and not data.get("public_url"):
            host = data.get("host") or "127.0.0.1"
            port = data.get("port") or 8000
            return {**data, "public_url": f"http://{host}:{port}"}
        return data

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
        if min(self.throttle_account_free_failures, self.throttle_address_free_failures) < 1:
            raise ValueError("THROTTLE_*_FREE_FAILURES must be at least 1")
        if min(self.throttle_base_lock, self.throttle_window) < 1:
            raise ValueError("THROTTLE_BASE_LOCK and THROTTLE_WINDOW must be positive")
        if (
            self.cookie_secure is False
            and urlsplit(self.public_url).scheme == "https"
            and not self.demo_mode
        ):
            # Over HTTPS nothing needs a cookie without Secure, and one would
            # also travel over plain HTTP to the same host, and lose __Host-.
            raise ValueError(
                "COOKIE_SECURE=false with an https PUBLIC_URL would send the session cookie"
                " over plain HTTP too; unset COOKIE_SECURE (it follows PUBLIC_URL)"
            )
        return self

    @property
    def public_origin(self) -> str:
        """The origin (scheme://host[:port]) of PUBLIC_URL."""
        return origin_of(self.public_url)

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Origins whose pages may make unsafe, credentialed requests."""
        return frozenset([self.public_origin, *self.trusted_origins])

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

    @property
    def device_cookie_name(self) -> str:
        """The device cookie's name on the wire (`__Host-` prefixed over HTTPS)."""
        return f"{self.session_cookie_name}-device"

    @cached_property
    def signing_keys(self) -> list[str]:
        """The cookie keys, newest first, falling back to a persisted demo key."""
        keys = [key.get_secret_value() for key in self.secret_keys]
        problems = [problem for key in keys if (problem := weak_key_problem(key))]
        if not self.demo_mode:
            # Outside the demo a forged cookie is a real account: refuse to start.
            if not keys:
                raise InsecureConfigurationError(
                    "SECRET_KEYS is not set. Outside demo mode sessiongate needs at least one"
                    " random signing key of 32+ characters, e.g. from"
                    ' `python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
                )
            if problems:
                raise InsecureConfigurationError(f"SECRET_KEYS: {problems[0]}")
        if keys:
            return keys
        return [_demo_secret_key(self.data_dir)]


MIN_KEY_LENGTH = 32  # characters; a token_urlsafe(24) or longer
# Values copied from examples and tutorials; a key equal to one (in any case) is refused.
KNOWN_DEFAULT_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "development",
        "insecure",
        "sessiongate",
        "please-change-this-key-to-a-random-value-32chars",
    }
)


class InsecureConfigurationError(ValueError):
    """A setting that would make the service unsafe outside demo mode."""


def weak_key_problem(key: str) -> str | None:
    """Why a signing key is unacceptable outside demo mode, or None if it is fine."""
    lowered = key.lower()
    if lowered in KNOWN_DEFAULT_KEYS or ("change" in lowered and "me" in lowered):
        return "a key is a well-known default; generate a random one"
    if len(key) < MIN_KEY_LENGTH:
        return f"a key is shorter than {MIN_KEY_LENGTH} characters"
    if len(set(key)) < 8:
        return "a key repeats too few distinct characters to be random"
    return None


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


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
