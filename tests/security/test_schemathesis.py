"""Schemathesis against the live service's own OpenAPI schema: no 5xx for any generated input.

Every operation in /openapi.json gets a bounded number of requests generated
from the schema (derandomized, so a run is repeatable), each sent signed out
and again with a live session cookie; the only check is that the service
never answers with a server error. Small enough to run in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.conftest import TEST_PASSWORD, LiveServer, unique_email

MAX_EXAMPLES = 8  # per operation; bounded so the suite stays fast


@pytest.fixture(scope="module")
def session_cookie(live_server: LiveServer) -> Iterator[dict[str, str]]:
    """A live session's cookie for the generated requests (a fresh account of its own)."""
    email = unique_email("schemathesis")
    with httpx.Client(base_url=live_server.url) as http:
        credentials = {"email": email, "password": TEST_PASSWORD}
        assert http.post("/api/signup", json=credentials).status_code == 201
        assert http.post("/api/login", json=credentials).status_code == 200
        yield {"sessiongate": http.cookies["sessiongate"]}


def test_no_server_errors_for_generated_requests(
    live_server: LiveServer, session_cookie: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    server_errors: list[str] = []
    operations = 0
    sent: list[int] = []
    for result in schema.get_all_operations():
        # An operation the schema describes wrongly is itself a failure.
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            for cookies in ({}, session_cookie):
                response = case.call(base_url=live_server.url, cookies=cookies, timeout=30)
                sent.append(response.status_code)
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} query={case.query!r}"
                        f" body={case.body!r} -> {response.status_code} {response.text[:200]}"
                    )

        exercise()
    # The schema really was read, and every operation was exercised.
    assert operations >= 10
    assert len(sent) >= 2 * operations
    assert not server_errors, "\n".join(server_errors[:20])
