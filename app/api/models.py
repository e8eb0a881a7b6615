"""Request and response bodies of the account routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Credentials(BaseModel):
    """E-mail and password, as sign-up and login take them."""

    model_config = ConfigDict(extra="forbid")

    # Bounds here stop absurd input early; the real rules are checked by the
    # handlers so that their errors carry our codes.
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=4096, examples=["correct horse battery staple"])


class User(BaseModel):
    """A user as the API shows one: never the password hash."""

    id: UUID
    email: str
    role: str
    verified: bool
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        """Build from a row of auth.user_profiles."""
        return cls.model_validate({key: row[key] for key in cls.model_fields})


class ErrorBody(BaseModel):
    """Every error response: PostgREST's four keys."""

    code: str
    message: str
    details: str | None = None
    hint: str | None = None
