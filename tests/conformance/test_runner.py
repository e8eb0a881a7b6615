"""The conformance runner's own parts: wire encoding, token minting, assertions, bookkeeping.

These need no database, so they run in every `pytest`, and a broken runner
cannot hide behind a skipped conformance run.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.assertions import Response, UnknownAssertion, check
from tests.conformance.cases import (
    AUTH_OPTIONS,
    BULK_OPTIONS,
    Case,
    cases_dir,
    load_cases,
    server_options,
)
from tests.conformance.client import mint_jwt, request_body, request_headers, request_target
from tests.conformance.report import (
    area_stats,
    divergence_problems,
    load_divergences,
    load_pins,
    load_thresholds,
    threshold_problems,
)
from tests.conformance.runner import Outcome


def _case(**fields: Any) -> Case:
    values: dict[str, Any] = {
        "id": 1,
        "feature": "select/x",
        "schema": "test",
        "request": {"method": "GET", "path": "/items"},
        "expect": {"status": 200},
    }
    values.update(fields)
    return Case(**values)


def _response(
    status: int = 200, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> Response:
    return Response(status=status, reason="OK", headers=headers or [], body=body)


def test_request_target_encodes_only_what_http_cannot_carry() -> None:
    assert request_target("/items?id=eq.1&a=(b,c)*+x") == b"/api/items?id=eq.1&a=(b,c)*+x"
    assert request_target("/t?x=fts.fun%26possible") == b"/api/t?x=fts.fun%26possible"
    assert request_target("/e?name=eq.entity 1") == b"/api/e?name=eq.entity%201"
    assert request_target("/e?k=like.%plan%") == b"/api/e?k=like.%25plan%25"
    assert request_target("/تست") == b"/api/%D8%AA%D8%B3%D8%AA"


def test_minted_token_matches_the_harness_example() -> None:
    # HARNESS.md 3.1, case 1452: the same claims signed with the harness secret.
    expected = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJyb2xlIjoicG9zdGdyZXN0X3Rlc3RfYXV0aG9yIiwiaWQiOiJqZG9lIn0."
        "B-lReuGNDwAlU1GOC476MlO0vAt9JNoHIlxg2vwMaO0"
    )
    payload = {"role": "postgrest_test_author", "id": "jdoe"}
    assert mint_jwt("hs256_test_secret", payload) == expected
    with pytest.raises(ValueError, match="sign_with"):
        mint_jwt("no-such-key", payload)


def test_request_headers_follow_the_schema_and_jwt_rules() -> None:
    plain = _case(schema="test", request={"method": "GET", "path": "/x", "headers": {"A": "b "}})
    assert request_headers(plain) == [("A", "b")]
    profiled = _case(schema="rpc")
    assert ("Accept-Profile", "rpc") in request_headers(profiled)
    own = _case(
        schema="rpc", request={"method": "GET", "path": "/x", "headers": {"accept-profile": "v2"}}
    )
    assert request_headers(own) == [("accept-profile", "v2")]
    jwt = _case(request={"method": "GET", "path": "/x", "jwt": {"payload": {"role": "r"}}})
    ((name, value),) = request_headers(jwt)
    assert name == "Authorization"
    assert value.startswith("Bearer ey")


def test_request_body_precedence() -> None:
    def body(**request: Any) -> bytes | None:
        return request_body(_case(request={"method": "POST", "path": "/x", **request}))

    assert body() is None
    assert body(body_raw="", body={"a": 1}) == b""
    assert body(body_json="s") == b'"s"'
    assert body(body="}{ x") == b"}{ x"
    assert body(body=[{"a": 1}]) == b'[{"a": 1}]'


def test_check_passes_a_conforming_response() -> None:
    response = _response(
        200,
        [
            ("Content-Type", "application/json"),
            ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2026"),
            ("Set-Cookie", "b=2"),
            ("Vary", "Accept"),
            ("Vary", "Prefer"),
        ],
        b'[{"id": 1, "code": "x"}]',
    )
    expect = {
        "status": 200,
        "headers": {
            "content-type": "application/json",
            "Set-Cookie": "a=1; Expires=Wed, 21 Oct 2026\nb=2",
            "Vary": "Accept, Prefer",
        },
        "headers_present": ["vary"],
        "headers_absent": ["Location"],
        "headers_match": {"Content-Type": "^application/"},
        "headers_absent_in_value": {"Vary": ["Origin"], "Server-Timing": ["plan"]},
        "headers_no_blank": True,
        "body_exact": [{"code": "x", "id": 1}],
        "body_contains": ['"code"'],
        "body_jsonpath": [
            {"path": "$[0].code", "equals": "x"},
            {"path": "$[0].id", "present": True},
            {"path": "$[0].nope", "absent": True},
        ],
    }
    assert check(expect, response) == []


def test_check_reports_each_mismatch() -> None:
    response = _response(404, [("Location", "/x"), ("X-Blank", " ")], b'{"code":"y"}')
    expect = {
        "status": 200,
        "status_text": "Not Found",
        "headers": {"Content-Type": "text/csv"},
        "headers_present": ["Content-Range"],
        "headers_absent": ["Location"],
        "headers_match": {"Location": "^/y"},
        "headers_absent_in_value": {"Location": ["/x"]},
        "headers_no_blank": True,
        "body_json": {"code": "x"},
        "body_contains": "zzz",
        "body_jsonpath": [{"path": "$.code", "equals": "x"}],
    }
    assert len(check(expect, response)) == len(expect)
    assert check({"body_raw": "id\n3"}, _response(body=b"id\n4")) != []
    assert check({"body_exact": None}, _response(body=b"[]")) != []
    assert check({"body_exact": ""}, _response(body=b"")) == []


def test_unknown_assertions_fail_loudly() -> None:
    with pytest.raises(UnknownAssertion, match="body_magic"):
        check({"status": 200, "body_magic": 1}, _response())
    with pytest.raises(UnknownAssertion, match="matches"):
        check({"body_jsonpath": [{"path": "$", "matches": "x"}]}, _response(body=b"{}"))


def test_server_options_route_auth_and_variants() -> None:
    assert server_options(_case()) == BULK_OPTIONS
    assert server_options(_case(schema="auth")) == AUTH_OPTIONS
    root = _case(request={"method": "GET", "path": "/?x=1"})
    assert server_options(root) == AUTH_OPTIONS
    variant = server_options(
        _case(schema="auth", config={"db-anon-role": None, "db-schemas": "v1"})
    )
    assert variant["anonymous_role"] is None
    assert variant["db_schemas"] == ["v1"]


def test_divergences_and_thresholds_bookkeeping() -> None:
    failing = Outcome(_case(id=1, feature="select/a"), ["status 404, expected 200"])
    passing = Outcome(_case(id=2, feature="select/b"))
    outcomes = [failing, passing]
    (stats,) = area_stats(outcomes, {1: "reviewed"})
    assert (stats.total, stats.passed, stats.divergent, stats.rate) == (2, 1, 1, 1.0)
    assert divergence_problems(outcomes, {1: "reviewed"}) == []
    assert len(divergence_problems(outcomes, {2: "stale", 3: "gone"})) == 2
    pinned = {1: ("status", 200)}
    assert divergence_problems(outcomes, {1: "reviewed"}, pinned) == []
    assert divergence_problems(outcomes, {1: "reviewed"}, {1: ("status", 201)}) != []
    assert divergence_problems(outcomes, {}, pinned) != []
    (plain,) = area_stats(outcomes, {})
    assert threshold_problems([plain], {"select": 0.5}) == []
    assert threshold_problems([plain], {"select": 0.6}) != []
    assert threshold_problems([plain], {}) != []


def test_committed_lists_parse() -> None:
    assert all(0.0 <= rate <= 1.0 for rate in load_thresholds().values())
    assert all(reason.strip() for reason in load_divergences().values())
    assert set(load_pins()) <= set(load_divergences())


def test_every_shared_case_loads_and_uses_known_assertions() -> None:
    folder = cases_dir()
    if not folder.is_dir():
        pytest.skip(f"no conformance cases at {folder}")
    cases = load_cases(folder)
    assert cases
    for case in cases:
        try:
            check(case.expect, _response())
        except UnknownAssertion as error:
            pytest.fail(f"case {case.id}: {error}")
