"""The conformance run: build the fixture database, run every case once, report per area."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from app.config import PROJECT_ROOT
from tests.conformance import database, runner
from tests.conformance.cases import CASES_ENV, SHARED_DIR, cases_dir, load_cases
from tests.conformance.report import (
    THRESHOLDS_FILE,
    area_stats,
    floor_rate,
    load_divergences,
    load_thresholds,
    table,
    top_reasons,
    write_report,
)
from tests.conformance.runner import Outcome

REPORT_FILE = PROJECT_ROOT / ".data" / "conformance-report.txt"
# Set to 1 to rewrite thresholds.toml with the rates just measured (after a
# reviewed improvement, so the floor ratchets up).
WRITE_THRESHOLDS_ENV = "CONFORMANCE_WRITE_THRESHOLDS"


@dataclass(frozen=True)
class ConformanceRun:
    """The outcomes of one run, and whether they came from the shared suite."""

    outcomes: list[Outcome]
    custom_cases: bool


_summary_key = pytest.StashKey[str]()


def _skip_reason() -> str | None:
    if not (SHARED_DIR / "fixtures").is_dir():
        return f"conformance: SKIPPED: no shared suite at {SHARED_DIR}"
    if not cases_dir().is_dir():
        return f"conformance: SKIPPED: no case folder {cases_dir()}"
    if not os.environ.get("TEST_DATABASE_URL"):
        return (
            "conformance: SKIPPED: the fixtures need pgcrypto and PostGIS, which the embedded "
            "PostgreSQL lacks; run `make pg15-test` (tests/pg15.sh sets TEST_DATABASE_URL)"
        )
    return None


def _write_thresholds(rates: dict[str, float]) -> None:
    lines = [
        "# Per-area pass-rate floors for the conformance run (see README.md in this folder).",
        "# A run below a floor fails; raise a floor when an area improves.",
        "[areas]",
        *(f"{area} = {rate:.3f}" for area, rate in sorted(rates.items())),
    ]
    THRESHOLDS_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
async def conformance_run(pytestconfig: pytest.Config) -> ConformanceRun:
    """Every case run once against sessiongate, on a freshly built fixture database."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    cases = load_cases(cases_dir())
    try:
        built = await database.build(os.environ["TEST_DATABASE_URL"], SHARED_DIR / "fixtures")
    except database.MissingExtension as missing:
        # .ci/run installs both; a developer machine may lack PostGIS.
        pytest.skip(
            f"conformance: SKIPPED: the cluster lacks {missing} "
            "(apt-get install postgresql-15-postgis-3)"
        )
    try:
        outcomes = await runner.run(built, cases)
    finally:
        await database.drop(built)
    divergences = load_divergences()
    stats = area_stats(outcomes, divergences)
    if os.environ.get(WRITE_THRESHOLDS_ENV) == "1":
        _write_thresholds({area.area: floor_rate(area.rate) for area in stats})
    summary = table(stats, load_thresholds())
    write_report(REPORT_FILE, outcomes, divergences, summary)
    pytestconfig.stash[_summary_key] = "\n".join(
        [
            f"cases: {cases_dir()}",
            summary,
            "most common failures:",
            *top_reasons(outcomes, divergences, limit=10),
            f"per-case reasons: {REPORT_FILE}",
        ]
    )
    return ConformanceRun(outcomes, custom_cases=bool(os.environ.get(CASES_ENV)))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the pass table after the run, without needing -s."""
    summary = config.stash.get(_summary_key, None)
    if summary is None:
        return
    terminalreporter.write_sep("=", "conformance (PostgREST suite) pass rates")
    terminalreporter.write_line(summary)
