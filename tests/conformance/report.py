"""Pass rates per area, the reviewed divergence list, thresholds, and the failure report."""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conformance.runner import Outcome

HERE = Path(__file__).resolve().parent
THRESHOLDS_FILE = HERE / "thresholds.toml"
DIVERGENCES_FILE = HERE / "divergences.toml"
_MISSING = object()


@dataclass(frozen=True)
class AreaStats:
    """Counts for one area. Divergent cases are left out of the pass rate."""

    area: str
    total: int
    passed: int
    divergent: int

    @property
    def judged(self) -> int:
        """Cases the pass rate is taken over."""
        return self.total - self.divergent

    @property
    def rate(self) -> float:
        """Share of judged cases that pass (1.0 when none are judged)."""
        return self.passed / self.judged if self.judged else 1.0


def load_divergences(path: Path = DIVERGENCES_FILE) -> dict[int, str]:
    """Case id -> the reviewed reason sessiongate deliberately differs."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {int(key): str(value) for key, value in data.get("divergences", {}).items()}


def load_pins(path: Path = DIVERGENCES_FILE) -> dict[int, tuple[str, Any]]:
    """Case id -> (dotted path into `expect`, the value the divergence was reviewed against)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {int(key): (str(pin["path"]), pin["value"]) for key, pin in data.get("pins", {}).items()}


def _expect_at(expect: dict[str, Any], dotted: str) -> Any:
    value: Any = expect
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """Area -> the pass rate it must not fall below."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {str(key): float(value) for key, value in data.get("areas", {}).items()}


def area_stats(outcomes: list[Outcome], divergences: dict[int, str]) -> list[AreaStats]:
    """Per-area counts, areas in alphabetical order."""
    totals: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    divergent: Counter[str] = Counter()
    for outcome in outcomes:
        area = outcome.case.area
        totals[area] += 1
        if outcome.case.id in divergences and not outcome.passed:
            divergent[area] += 1
        elif outcome.passed:
            passed[area] += 1
    return [AreaStats(a, totals[a], passed[a], divergent[a]) for a in sorted(totals)]


def divergence_problems(
    outcomes: list[Outcome],
    divergences: dict[int, str],
    pins: dict[int, tuple[str, Any]] | None = None,
) -> list[str]:
    """Listed divergences that went stale: the case passes, is gone, or no longer says what was
    reviewed (its pinned `expect` value changed)."""
    by_id = {outcome.case.id: outcome for outcome in outcomes}
    problems = []
    for case_id in sorted(divergences):
        outcome = by_id.get(case_id)
        if outcome is None:
            problems.append(f"divergence {case_id} names no case; remove it from divergences.toml")
        elif outcome.passed:
            problems.append(f"divergence {case_id} now passes; remove it from divergences.toml")
    for case_id, (path, value) in sorted((pins or {}).items()):
        if case_id not in divergences:
            problems.append(f"pin {case_id} has no divergence entry")
            continue
        outcome = by_id.get(case_id)
        if outcome is not None and _expect_at(outcome.case.expect, path) != value:
            problems.append(
                f"divergence {case_id}: expect.{path} changed since it was reviewed; review again"
            )
    return problems


def threshold_problems(stats: list[AreaStats], thresholds: dict[str, float]) -> list[str]:
    """Areas whose pass rate fell below their threshold, or that have none."""
    problems = []
    for area in stats:
        if area.area not in thresholds:
            problems.append(f"area {area.area} has no threshold in thresholds.toml")
        elif area.rate + 1e-9 < thresholds[area.area]:
            floor = thresholds[area.area]
            problems.append(f"area {area.area}: pass rate {area.rate:.3f} fell below {floor:.3f}")
    return problems


def floor_rate(rate: float) -> float:
    """A rate rounded down to three decimals, for writing thresholds."""
    return math.floor(rate * 1000) / 1000


def table(stats: list[AreaStats], thresholds: dict[str, float]) -> str:
    """The pass table, one line per area and a total."""
    lines = [
        f"{'area':<24}{'cases':>6}{'pass':>6}{'fail':>6}{'diverge':>8}{'rate':>8}{'floor':>8}",
    ]
    for area in stats:
        floor = thresholds.get(area.area)
        lines.append(
            f"{area.area:<24}{area.total:>6}{area.passed:>6}"
            f"{area.total - area.passed - area.divergent:>6}{area.divergent:>8}"
            f"{area.rate * 100:>7.1f}%"
            + (f"{floor * 100:>7.1f}%" if floor is not None else f"{'-':>8}")
        )
    total = sum(a.total for a in stats)
    passed = sum(a.passed for a in stats)
    divergent = sum(a.divergent for a in stats)
    judged = total - divergent
    rate = passed / judged * 100 if judged else 100.0
    lines.append(
        f"{'TOTAL':<24}{total:>6}{passed:>6}{total - passed - divergent:>6}{divergent:>8}"
        f"{rate:>7.1f}%"
    )
    return "\n".join(lines)


def _reason_group(reason: str) -> str:
    """A failure reason with case-specific detail removed, for grouping."""
    if reason.startswith("status "):
        return re.sub(r"^(status \d+), expected (\d+).*", r"\1, expected \2", reason)
    if reason.startswith("header "):
        absent = " (expected absent)" if "expected absent" in reason else ""
        return reason.split(":", 1)[0].split(" present (")[0] + absent
    if reason.startswith("body"):
        return reason.split(" ", 1)[0] + " mismatch"
    return reason[:80]


def top_reasons(outcomes: list[Outcome], divergences: dict[int, str], limit: int = 15) -> list[str]:
    """The most common kinds of failure, with how many cases show each."""
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.passed or outcome.case.id in divergences:
            continue
        counts.update({_reason_group(reason) for reason in outcome.failures})
    return [f"{count:>4}  {reason}" for reason, count in counts.most_common(limit)]


def write_report(
    path: Path, outcomes: list[Outcome], divergences: dict[int, str], summary: str
) -> None:
    """Every failing case with its request and reasons, grouped by area."""
    by_area: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if not outcome.passed:
            by_area[outcome.case.area].append(outcome)
    lines = [summary, "", "Most common failures:", *top_reasons(outcomes, divergences), ""]
    for area in sorted(by_area):
        lines.append(f"=== {area}")
        for outcome in by_area[area]:
            case = outcome.case
            tag = " [divergence]" if case.id in divergences else ""
            lines.append(
                f"- {case.id} {case.feature} ({case.file}){tag}: "
                f"{case.request.get('method')} {case.request.get('path')} schema={case.schema}"
            )
            lines += [f"    {reason}" for reason in outcome.failures]
            if outcome.status is not None:
                lines.append(f"    got {outcome.status}: {outcome.body[:300]!r}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
