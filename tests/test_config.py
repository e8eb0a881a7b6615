"""Settings that derive from others."""

from __future__ import annotations

import pytest

from app.config import Settings


def test_public_url_follows_host_and_port_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    settings = Settings(_env_file=None)
    assert settings.public_url == "http://127.0.0.1:9001"
    assert "http://127.0.0.1:9001" in settings.allowed_origins


def test_an_explicit_public_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    settings = Settings(_env_file=None, public_url="https://app.example.com")
    assert settings.public_url == "https://app.example.com"


def _deployed(public_url: str, *, cookie_secure: bool | None, demo: bool = False) -> Settings:
    return Settings(
        _env_file=None,
        database_url="postgresql://db.example.com/app",
        demo=demo,
        public_url=public_url,
        cookie_secure=cookie_secure,
    )


def test_secure_cookies_cannot_be_switched_off_over_https() -> None:
    with pytest.raises(ValueError, match="COOKIE_SECURE=false with an https PUBLIC_URL"):
        _deployed("https://app.example.com", cookie_secure=False)
    # Plain HTTP may turn it off, and so may the demo; over HTTPS it follows the URL.
    assert not _deployed("http://10.0.0.5:8000", cookie_secure=False).secure_cookies
    assert not _deployed("https://app.example.com", cookie_secure=False, demo=True).secure_cookies
    over_https = _deployed("https://app.example.com", cookie_secure=None)
    assert over_https.session_cookie_name.startswith("__Host-")
