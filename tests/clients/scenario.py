"""The scenario both real clients run, and what each step must return.

Both clients (postgrest-py, postgrest-js) run the same steps against the
same seeded rows, and are judged here by the same expectations, so the two
test modules differ only in how they drive their client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

SCHEMA = "clients_demo"
STEPS = ("select", "filter", "order", "embed", "rpc", "insert", "update", "delete")

# Steps the data API does not support yet: expected to fail until it does
# (strict=False, so they turn green without an edit). Keep this short.
NOT_YET: dict[str, str] = {}


@dataclass(frozen=True)
class StepResult:
    """What a client returned for one step: rows, or an error."""

    data: Any
    error: str | None
    status: int | None = None


def step_params() -> list[Any]:
    """The steps as pytest parameters, the unsupported ones marked xfail."""
    return [
        pytest.param(
            step,
            marks=[pytest.mark.xfail(strict=False, reason=NOT_YET[step])]
            if step in NOT_YET
            else [],
        )
        for step in STEPS
    ]


def _names(data: Any) -> list[str]:
    assert isinstance(data, list), data
    return [str(row["name"]) for row in data]


def judge(step: str, result: StepResult, user_id: str) -> None:
    """Assert the step returned what PostgREST would, under this user's RLS."""
    assert result.error is None, f"{step}: {result.error}"
    data = result.data
    if step == "select":
        # The other user's row ("durian") is invisible.
        assert sorted(_names(data)) == ["apple", "banana", "cherry"]
    elif step == "filter":
        assert _names(data) == ["banana"]
    elif step == "order":
        assert _names(data) == ["cherry", "banana", "apple"]
    elif step == "embed":
        assert _names(data) == ["apple"]
        assert sorted(task["title"] for task in data[0]["tasks"]) == ["pick", "plan"]
    elif step == "rpc":
        assert _names(data) == ["banana"]
    elif step == "insert":
        assert [(row["name"], row["owner"]) for row in data] == [("elder", user_id)]
    elif step == "update":
        assert [(row["name"], row["done"]) for row in data] == [("banana", True)]
    elif step == "delete":
        assert _names(data) == ["cherry"]
    else:
        raise AssertionError(f"unknown step {step}")


def judge_stored(step: str, stored: dict[str, bool]) -> None:
    """Assert a write step reached the database (projects by name, as stored)."""
    if step == "insert":
        assert "elder" in stored
    elif step == "update":
        assert stored["banana"] is True
    elif step == "delete":
        assert "cherry" not in stored
