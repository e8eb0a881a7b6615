"""The Accept header: which representation a data response is sent in."""

from __future__ import annotations

from enum import Enum

from app.errors import ApiError


class Media(Enum):
    """The representations the data API produces."""

    JSON = "application/json; charset=utf-8"
    OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
    CSV = "text/csv; charset=utf-8"


_TYPES = {
    "application/json": Media.JSON,
    "application/*": Media.JSON,
    "*/*": Media.JSON,
    "application/vnd.pgrst.array+json": Media.JSON,
    "application/vnd.pgrst.object+json": Media.OBJECT,
    "application/vnd.pgrst.object": Media.OBJECT,
    "text/csv": Media.CSV,
    "text/*": Media.CSV,
}


def negotiate(accept: str | None) -> Media:
    """The best supported media type for Accept, by q-value then order; 406 if none."""
    if not accept or not accept.strip():
        return Media.JSON
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, media.lower()))
    for _, _, media in sorted(ranked):
        if media in _TYPES:
            return _TYPES[media]
    raise ApiError(
        406,
        "PGRST107",
        f"None of these media types are available: {', '.join(m for _, _, m in ranked) or accept}",
    )
