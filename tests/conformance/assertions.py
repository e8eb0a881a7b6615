"""The `expect:` block of a case, checked against a response (HARNESS.md section 4)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpath
import orjson


@dataclass(frozen=True)
class Response:
    """What came back: status, reason phrase, headers in wire order, raw body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, repeated ones folded; Set-Cookie joined by newlines, not commas."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        if not values:
            return None
        return ("\n" if name.lower() == "set-cookie" else ", ").join(values)

    @property
    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced, for messages)."""
        return self.body.decode("utf-8", errors="replace")


class UnknownAssertion(Exception):
    """An `expect:` key this runner does not know: the case cannot be judged."""


def _json(response: Response) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return False, None


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _status(expected: Any, response: Response) -> list[str]:
    if response.status != expected:
        return [f"status {response.status}, expected {expected}"]
    return []


def _status_text(expected: Any, response: Response) -> list[str]:
    if response.reason != expected:
        return [f"reason phrase {response.reason!r}, expected {expected!r}"]
    return []


def _headers(expected: Any, response: Response) -> list[str]:
    failures = []
    for name, value in dict(expected).items():
        actual = response.header(name)
        if actual != str(value):
            failures.append(f"header {name}: {actual!r}, expected {str(value)!r}")
    return failures


def _headers_present(expected: Any, response: Response) -> list[str]:
    return [f"header {name} missing" for name in expected if response.header(name) is None]


def _headers_absent(expected: Any, response: Response) -> list[str]:
    return [
        f"header {name} present ({response.header(name)!r}), expected absent"
        for name in expected
        if response.header(name) is not None
    ]


def _headers_match(expected: Any, response: Response) -> list[str]:
    failures = []
    for name, pattern in dict(expected).items():
        actual = response.header(name)
        if actual is None or re.search(str(pattern), actual) is None:
            failures.append(f"header {name}: {actual!r} does not match /{pattern}/")
    return failures


def _headers_absent_in_value(expected: Any, response: Response) -> list[str]:
    failures = []
    for name, needles in dict(expected).items():
        actual = response.header(name) or ""
        failures += [
            f"header {name}: {actual!r} contains {needle!r}"
            for needle in _as_list(needles)
            if str(needle) in actual
        ]
    return failures


def _headers_no_blank(expected: Any, response: Response) -> list[str]:
    if expected is not True:
        return []
    blank = [key for key, value in response.headers if not key.strip() or not value.strip()]
    return [f"blank headers: {blank}"] if blank else []


def _body_exact(expected: Any, response: Response) -> list[str]:
    # The reference harness reads an empty body as "" (its client decodes
    # only JSON), so null and "" both mean "no body at all".
    if expected is None or expected == "":
        if response.body:
            return [f"body {_short(response.text)!r}, expected empty"]
        return []
    ok, actual = _json(response)
    if not ok:
        return [f"body is not JSON: {_short(response.text)!r}, expected {_short(expected)}"]
    if actual != expected:
        return [f"body {_short(actual)}, expected {_short(expected)}"]
    return []


def _body_contains(expected: Any, response: Response) -> list[str]:
    return [
        f"body lacks {needle!r}: {_short(response.text)!r}"
        for needle in _as_list(expected)
        if str(needle) not in response.text
    ]


def _body_raw(expected: Any, response: Response) -> list[str]:
    if response.body != str(expected).encode("utf-8"):
        return [f"raw body {_short(response.text)!r}, expected {_short(str(expected))!r}"]
    return []


_JSONPATH_PREDICATES = frozenset({"equals", "present", "exists", "absent"})


def _body_jsonpath(expected: Any, response: Response) -> list[str]:
    for entry in expected:
        predicates = set(entry) - {"path"}
        if "path" not in entry or len(predicates) != 1 or not predicates <= _JSONPATH_PREDICATES:
            raise UnknownAssertion(
                f"body_jsonpath entry needs a path and one known predicate: {entry}"
            )
    ok, document = _json(response)
    if not ok:
        return [f"body is not JSON: {_short(response.text)!r}"]
    failures = []
    for entry in expected:
        path = str(entry["path"])
        ((predicate, value),) = ((k, v) for k, v in entry.items() if k != "path")
        found = [match.obj for match in jsonpath.finditer(path, document)]
        if predicate == "equals":
            holds = bool(found) and found[0] == value
            detail = f"{_short(found)}, expected {_short(value)}"
        elif predicate == "absent":
            holds = (not found) == bool(value)
            detail = f"absent={not found}, expected {bool(value)}"
        else:  # present / exists
            holds = bool(found) == bool(value)
            detail = f"present={bool(found)}, expected {bool(value)}"
        if not holds:
            failures.append(f"{path}: {detail}")
    return failures


CHECKS: dict[str, Callable[[Any, Response], list[str]]] = {
    "status": _status,
    "status_text": _status_text,
    "headers": _headers,
    "headers_present": _headers_present,
    "headers_absent": _headers_absent,
    "headers_match": _headers_match,
    "headers_absent_in_value": _headers_absent_in_value,
    "headers_no_blank": _headers_no_blank,
    "body_exact": _body_exact,
    "body_json": _body_exact,
    "body_contains": _body_contains,
    "body_raw": _body_raw,
    "body_jsonpath": _body_jsonpath,
}
# Assertions of `kind: cli` cases (the config area's --dump-config); HTTP has none of these.
CLI_ONLY = frozenset({"exit_code", "dump_contains", "stderr_contains", "dump_reparse_stable"})


def check(expect: dict[str, Any], response: Response) -> list[str]:
    """Every failed expectation, as readable reasons; empty when the response conforms.

    Raises UnknownAssertion for a key this runner does not implement, so a
    new assertion kind is never silently skipped.
    """
    unknown = sorted(set(expect) - set(CHECKS))
    if unknown:
        raise UnknownAssertion(f"unknown expect keys {unknown}")
    failures: list[str] = []
    for key, expected in expect.items():
        failures += CHECKS[key](expected, response)
    return failures
