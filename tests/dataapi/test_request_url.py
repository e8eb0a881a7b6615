"""The data API reads the path and query from the ASGI scope exactly as Starlette's URL would."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import URL

from app.dataapi.request import url_path, url_query
from app.errors import ApiError

PATHS = [
    "/api/todos",
    "/api/to dos",
    "/api/a?b",
    "/api/a#b",
    "/api/a\\b",
    "/api/a\nb",
    "/api/a\tb\r",
    "/api/café",
    "/api/%41",
    "/api//x",
]
QUERIES = [
    b"",
    b"a=1&b=2",
    "select=nämé:name&name=eq.café".encode(),
    b"x=%20y",
    b"a=b#c",
    b"q=a%0Ab",
    b"a=\tb\n",
    b"#x",
]


def _scope(path: str, query: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"example.com")],
    }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("query", QUERIES)
def test_path_and_query_match_starlettes_url(path: str, query: bytes) -> None:
    scope = _scope(path, query)
    url = URL(scope=scope)
    assert url_path(scope) == url.path
    assert url_query(scope) == url.query


def test_raw_utf8_in_the_query_is_read_as_utf8() -> None:
    assert url_query(_scope("/api/x", "name=eq.café".encode())) == "name=eq.café"


def test_a_query_that_is_not_utf8_is_a_client_error() -> None:
    with pytest.raises(ApiError) as raised:
        url_query(_scope("/api/x", b"name=eq.\xff\xfe"))
    assert raised.value.status == 400
    assert raised.value.code == "PGRST100"
