"""Helpers for the attack tests: clients from distinct loopback addresses, raw requests, keys."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest

from app.addresses import AddressKeys
from tests.conftest import TestDatabase, make_client, make_settings


def loopback_address() -> str:
    """A fresh 127.x.y.z address, so a test's throttle counters are its own."""
    return f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def client_from(base_url: str, address: str) -> httpx.AsyncClient:
    """Like make_client, but the TCP connection leaves from `address`."""
    client = make_client(base_url)
    client._transport = httpx.AsyncHTTPTransport(local_address=address)
    return client


def raw_client(base_url: str) -> httpx.AsyncClient:
    """A client that adds nothing to requests: what an attacker's page or script sends."""
    return httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)


@pytest.fixture
def account_key(database: TestDatabase) -> Callable[[str], str]:
    """The throttle's key for an address, as the test servers (one SECRET_KEYS) compute it."""
    return AddressKeys.from_settings(make_settings(database)).key
