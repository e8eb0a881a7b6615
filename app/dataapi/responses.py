"""Turning a statement's result row into an HTTP response, PostgREST's way."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from starlette.responses import Response

from app.errors import ApiError


@dataclass
class Outcome:
    """What a data request produced, before it becomes a Response."""

    status: int
    body: str | None = None
    media_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set(self, name: str, value: str) -> None:
        """Replace (or add) a header."""
        lower = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lower]
        self.headers.append((name, value))

    def apply_gucs(self, headers_json: str | None, status: str | None) -> None:
        """Honour response.headers and response.status set by SQL (PGRST111/PGRST112)."""
        if headers_json is not None:
            try:
                items = orjson.loads(headers_json)
                if not isinstance(items, list):
                    raise ValueError
                pairs: list[tuple[str, str]] = []
                for item in items:
                    if not isinstance(item, dict) or len(item) != 1:
                        raise ValueError
                    ((name, value),) = item.items()
                    if not isinstance(value, str):
                        raise ValueError
                    pairs.append((str(name), value))
            except ValueError:
                raise ApiError(
                    500,
                    "PGRST111",
                    "response.headers guc must be a JSON array composed of objects with a single"
                    " key and a string value",
                ) from None
            for name, value in pairs:
                if name.lower() == "set-cookie":
                    self.headers.append((name, value))
                else:
                    self.set(name, value)
        if status is not None:
            try:
                code = int(status)
                if not 100 <= code <= 599:
                    raise ValueError
            except ValueError:
                raise ApiError(
                    500, "PGRST112", "response.status guc must be a valid status code"
                ) from None
            self.status = code

    def response(self) -> Response:
        """The Starlette response; no body means no Content-Type."""
        content = b"" if self.body is None else self.body.encode()
        response = Response(content, status_code=self.status, media_type=self.media_type)
        for name, value in self.headers:
            response.headers.append(name, value)
        return response


def content_range(lower: int, rows: int, total: int | None) -> str:
    """Content-Range: `first-last/total`, `*` for unknown parts."""
    shown = "*" if total is None else str(total)
    if rows <= 0:
        return f"*/{shown}"
    return f"{lower}-{lower + rows - 1}/{shown}"


def range_status(lower: int, rows: int, total: int | None) -> int:
    """200 for a complete result, 206 for a part of a known total; 416 raised by the caller."""
    if total is not None and (lower > 0 or lower + rows < total):
        return 206
    return 200


def range_not_satisfiable(details: str, total: int | None = None) -> ApiError:
    """PGRST103."""
    headers = {"Content-Range": f"*/{'*' if total is None else total}"}
    return ApiError(
        416, "PGRST103", "Requested range not satisfiable", details=details, headers=headers
    )
