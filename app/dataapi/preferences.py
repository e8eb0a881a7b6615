"""The Prefer header: PostgREST's preferences, parsed once per request."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import ApiError

_CHOICES = {
    "return": {"minimal", "headers-only", "representation"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "handling": {"strict", "lenient"},
    "tx": {"commit", "rollback"},
}
# The order PostgREST lists applied preferences in.
_APPLIED_ORDER = (
    "resolution",
    "missing",
    "return",
    "count",
    "tx",
    "handling",
    "timezone",
    "max-affected",
)


@dataclass
class Preferences:
    """What the client asked for in Prefer; unknown tokens are kept for handling=strict."""

    values: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """The value of one preference, if given and valid."""
        return self.values.get(name)

    @property
    def strict(self) -> bool:
        """handling=strict."""
        return self.values.get("handling") == "strict"

    @property
    def max_affected(self) -> int | None:
        """max-affected=N, only meaningful with handling=strict."""
        raw = self.values.get("max-affected")
        return int(raw) if raw is not None else None

    def check(self) -> None:
        """Under handling=strict, unknown preferences are an error (PGRST122)."""
        if self.strict and self.invalid:
            raise ApiError(
                400,
                "PGRST122",
                "Invalid preferences given with handling=strict",
                details="Invalid preferences: " + ", ".join(self.invalid),
            )

    def applied(self, names: set[str]) -> str | None:
        """The Preference-Applied value for the preferences in `names` that were given."""
        tokens = [
            f"{n}={self.values[n]}" for n in _APPLIED_ORDER if n in names and n in self.values
        ]
        return ", ".join(tokens) or None


def _valid(name: str, value: str) -> bool:
    if name in _CHOICES:
        return value in _CHOICES[name]
    if name == "timezone":
        return bool(value)
    if name == "max-affected":
        return value.isdigit()
    return name == "params" and value == "single-object"


def parse_prefer(headers: list[str]) -> Preferences:
    """All Prefer headers, comma-separated tokens; the first of a repeated token wins."""
    prefs = Preferences()
    for header in headers:
        for token in header.split(","):
            token = token.strip()
            if not token:
                continue
            name, _, value = token.partition("=")
            name, value = name.strip(), value.strip()
            if _valid(name, value):
                prefs.values.setdefault(name, value)
            else:
                prefs.invalid.append(token)
    return prefs
