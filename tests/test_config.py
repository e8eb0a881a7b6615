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
