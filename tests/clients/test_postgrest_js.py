"""@supabase/postgrest-js, unchanged, against sessiongate with a session cookie (run by Node.js).

tests/clients/js holds package.json and package-lock.json; the fixture runs
`npm ci` there when node_modules is missing. Without Node.js the test skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import SignedInUser, stored_projects
from tests.clients.scenario import SCHEMA, StepResult, judge, judge_stored, step_params
from tests.conftest import TestDatabase

JS_DIR = Path(__file__).with_name("js")


def _install() -> str:
    """The node binary, after `npm ci` if the locked packages are not installed yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("postgrest-js: SKIPPED: Node.js and npm are not installed")
    if not (JS_DIR / "node_modules" / "@supabase" / "postgrest-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            check=True,
            timeout=300,
        )
    return node


@pytest.fixture(scope="module")
def js_results(seeded_user: SignedInUser) -> dict[str, StepResult]:
    """Every step run once, in order, by postgrest-js in one Node.js process."""
    node = _install()
    env = {
        **os.environ,
        "BASE_URL": seeded_user.api_url,
        "SCHEMA": SCHEMA,
        "COOKIE": seeded_user.cookie,
    }
    done = subprocess.run(
        [node, "scenario.mjs"],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    raw = json.loads(done.stdout)
    return {
        step: StepResult(value["data"], value["error"], value["status"])
        for step, value in raw.items()
    }


@pytest.mark.parametrize("step", step_params())
async def test_postgrest_js_step(
    step: str,
    js_results: dict[str, StepResult],
    seeded_user: SignedInUser,
    database: TestDatabase,
) -> None:
    """Each step returns what PostgREST would, and writes reach the database."""
    judge(step, js_results[step], seeded_user.user_id)
    judge_stored(step, await stored_projects(database, seeded_user.user_id))
