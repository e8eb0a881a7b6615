"""Request and response bodies of the account lifecycle routes (verify, reset, sessions, admin)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifyBody(_Strict):
    """A token from a verification link, and for a sign-up the password it was made with."""

    token: str = Field(max_length=256)
    password: str | None = Field(default=None, max_length=4096)


class EmailBody(_Strict):
    """An e-mail address, for resending a verification or forgetting a password."""

    email: str = Field(max_length=320, examples=["ada@example.com"])


class PasswordReset(_Strict):
    """A token from a reset link, and the new password."""

    token: str = Field(max_length=256)
    password: str = Field(max_length=4096)


class PasswordChange(_Strict):
    """A signed-in user's current and new password."""

    current_password: str = Field(max_length=4096)
    new_password: str = Field(max_length=4096)


class EmailChange(_Strict):
    """A new address for the signed-in user; the current password confirms it is them."""

    email: str = Field(max_length=320)
    current_password: str = Field(max_length=4096)


class Accepted(BaseModel):
    """The answer to a request whose outcome is mailed, not told."""

    status: str
    message: str


class SessionInfo(BaseModel):
    """One of the caller's live sessions."""

    id: UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class AdminUserCreate(_Strict):
    """A user an admin creates; role defaults to DEFAULT_ROLE."""

    email: str = Field(max_length=320)
    password: str = Field(max_length=4096)
    role: str | None = Field(default=None, max_length=63)
    verified: bool = False


class AdminUserUpdate(_Strict):
    """Fields an admin may change; those left out stay as they are."""

    role: str | None = Field(default=None, max_length=63)
    disabled: bool | None = None
    verified: bool | None = None


class Revoked(BaseModel):
    """How many sessions were ended."""

    revoked: int
