"""postgrest-py (the client supabase-py uses), unchanged, against sessiongate with a cookie."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError

from tests.clients.conftest import SignedInUser, stored_projects
from tests.clients.scenario import SCHEMA, StepResult, judge, judge_stored, step_params
from tests.conftest import TestDatabase


def _steps(client: AsyncPostgrestClient) -> dict[str, Callable[[], Awaitable[Any]]]:
    # A fresh builder per step: builders keep the filters added to them.
    projects = functools.partial(client.from_, "projects")
    return {
        "select": lambda: projects().select("name").execute(),
        "filter": lambda: projects().select("name").eq("name", "banana").execute(),
        "order": lambda: projects().select("name").order("name", desc=True).execute(),
        "embed": lambda: projects().select("name,tasks(title)").eq("name", "apple").execute(),
        "rpc": lambda: client.rpc("projects_like", {"pattern": "b%"}).execute(),
        "insert": lambda: projects().insert({"name": "elder"}).execute(),
        "update": lambda: projects().update({"done": True}).eq("name", "banana").execute(),
        "delete": lambda: projects().delete().eq("name", "cherry").execute(),
    }


@pytest.fixture(scope="module")
async def py_results(seeded_user: SignedInUser) -> dict[str, StepResult]:
    """Every step run once, in order, by one client holding the session cookie."""
    results: dict[str, StepResult] = {}
    client = AsyncPostgrestClient(
        seeded_user.api_url,
        schema=SCHEMA,
        headers={"Cookie": seeded_user.cookie},
        retry_enabled=False,
    )
    async with client:
        for step, run in _steps(client).items():
            try:
                response = await run()
                results[step] = StepResult(response.data, None)
            except APIError as error:
                results[step] = StepResult(None, f"APIError {error.code}: {error.message}")
            except Exception as error:  # a client-side failure is a failed step, not a crash
                results[step] = StepResult(None, repr(error))
    return results


@pytest.mark.parametrize("step", step_params())
async def test_postgrest_py_step(
    step: str,
    py_results: dict[str, StepResult],
    seeded_user: SignedInUser,
    database: TestDatabase,
) -> None:
    """Each step returns what PostgREST would, and writes reach the database."""
    judge(step, py_results[step], seeded_user.user_id)
    judge_stored(step, await stored_projects(database, seeded_user.user_id))
