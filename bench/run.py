"""`make bench`: sessiongate against a bare FastAPI + asyncpg baseline, in one run.

Both servers run side by side on one fresh database and face the same load
generator with the same settings; their runs are interleaved (bare, gate,
gate, bare, ...) so machine noise hits both, and the medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import fixture, load, servers
from bench.fixture import BenchUser
from bench.load import LoadSettings, Measurement, PreparedRequest

TARGET_RATIO = 0.6
POOL_SIZE = 10
RESULTS = Path(__file__).with_name("results") / "latest.json"
COOKIE_NAME = "sessiongate"  # public_url is http://, so no __Host- prefix
FILTERED_QUERY = "done=eq.false&order=id.desc&limit=5"
POST_BODY = '{"description": "written by the benchmark"}'


@dataclass(frozen=True)
class Scenario:
    """One kind of request, as sessiongate serves it and as the baseline does."""

    name: str
    gate: Callable[[BenchUser, str], PreparedRequest]  # (user, gate base URL)
    bare: Callable[[BenchUser], PreparedRequest]
    writes: bool = False  # rows added are removed after each run


SCENARIOS = [
    Scenario(
        "GET /api/todos",
        lambda user, _: PreparedRequest("GET", "/api/todos", {"Cookie": _cookie(user)}),
        lambda user: PreparedRequest("GET", "/todos", {"x-user-id": str(user.user_id)}),
    ),
    Scenario(
        f"GET /api/todos?{FILTERED_QUERY}",
        lambda user, _: PreparedRequest(
            "GET", f"/api/todos?{FILTERED_QUERY}", {"Cookie": _cookie(user)}
        ),
        lambda user: PreparedRequest("GET", "/todos/filtered", {"x-user-id": str(user.user_id)}),
    ),
    Scenario(
        "POST /api/todos (1 row)",
        lambda user, url: PreparedRequest(
            "POST",
            "/api/todos",
            {
                "Cookie": _cookie(user),
                "Content-Type": "application/json",
                # A browser's same-origin fetch sends both; sessiongate may require them.
                "Origin": url,
                "Sec-Fetch-Site": "same-origin",
            },
            POST_BODY,
        ),
        lambda user: PreparedRequest(
            "POST",
            "/todos",
            {"x-user-id": str(user.user_id), "Content-Type": "application/json"},
            POST_BODY,
        ),
        writes=True,
    ),
]


def _cookie(user: BenchUser) -> str:
    return f"{COOKIE_NAME}={user.cookie}"


@dataclass
class ScenarioResult:
    """Every measured run of one scenario, and why it was skipped if it was."""

    name: str
    skipped: str | None = None
    runs: dict[str, list[Measurement]] = field(default_factory=lambda: {"bare": [], "gate": []})

    def median(self, server: str, metric: Callable[[Measurement], float]) -> float:
        """The median of one metric over a server's runs."""
        return statistics.median(metric(run) for run in self.runs[server])

    @property
    def ratio(self) -> float | None:
        """sessiongate's requests/s over the baseline's, or None when not measured.

        The median of each round's ratio: a round's two runs are back to back,
        so load from elsewhere on the machine mostly cancels out within it.
        """
        pairs = list(zip(self.runs["bare"], self.runs["gate"], strict=False))
        ratios = [gate.rps / bare.rps for bare, gate in pairs if bare.rps > 0]
        if self.skipped or not ratios:
            return None
        return statistics.median(ratios)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary and raw runs."""
        summary: dict[str, Any] = {"scenario": self.name, "skipped": self.skipped}
        for server, runs in self.runs.items():
            if runs:
                summary[server] = {
                    "rps": round(self.median(server, lambda run: run.rps), 1),
                    "p50_ms": round(self.median(server, lambda run: run.p50_ms), 3),
                    "p99_ms": round(self.median(server, lambda run: run.p99_ms), 3),
                    "http_errors": sum(run.http_errors for run in runs),
                    "socket_errors": sum(run.socket_errors for run in runs),
                    "runs": [run.as_dict() for run in runs],
                }
        ratio = self.ratio
        summary["ratio"] = None if ratio is None else round(ratio, 3)
        summary["round_ratios"] = [
            round(gate.rps / bare.rps, 3)
            for bare, gate in zip(self.runs["bare"], self.runs["gate"], strict=False)
            if bare.rps > 0
        ]
        summary["target"] = TARGET_RATIO
        summary["target_met"] = None if ratio is None else ratio >= TARGET_RATIO
        return summary


async def _probe(scenario: Scenario, gate_url: str, user: BenchUser) -> str | None:
    """Why sessiongate cannot serve this scenario yet, or None when it answers correctly."""
    request = scenario.gate(user, gate_url)
    async with httpx.AsyncClient(base_url=gate_url, timeout=30) as http:
        response = await http.request(
            request.method, request.path, headers=request.headers, content=request.body or None
        )
    if response.status_code >= 400:
        return f"n/a: sessiongate answered {response.status_code}: {response.text[:160]}"
    if scenario.writes:
        return None if response.status_code == 201 else f"n/a: status {response.status_code}"
    rows = response.json()
    mine = [row for row in rows if row["user_id"] == str(user.user_id)]
    if len(mine) != len(rows):
        return "n/a: the response holds other users' rows"
    if "?" in request.path:
        ids = [row["id"] for row in rows]
        if len(rows) != 5 or any(row["done"] for row in rows) or ids != sorted(ids, reverse=True):
            return f"n/a: filters ignored (got {len(rows)} rows, not the 5 newest open ones)"
    elif len(rows) != fixture.TODOS_PER_USER:
        return f"n/a: expected {fixture.TODOS_PER_USER} rows, got {len(rows)}"
    return None


async def _measure(
    scenario: Scenario,
    result: ScenarioResult,
    urls: dict[str, str],
    files: dict[str, Path],
    options: argparse.Namespace,
    wrk: str | None,
    cleanup: Callable[[], Any],
) -> None:
    settings = LoadSettings(options.connections, options.threads, options.seconds)
    warmup = LoadSettings(options.connections, options.threads, options.warmup)
    for server in ("bare", "gate"):
        await asyncio.to_thread(load.run_load, wrk, urls[server], files[server], warmup)
        if scenario.writes:
            await cleanup()
    for round_index in range(options.rounds):
        order = ("bare", "gate") if round_index % 2 == 0 else ("gate", "bare")
        for server in order:
            run = await asyncio.to_thread(load.run_load, wrk, urls[server], files[server], settings)
            result.runs[server].append(run)
            print(
                f"  {server:4}  round {round_index + 1}: {run.rps:8.0f} req/s  "
                f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                + (f"  ({run.http_errors} HTTP errors)" if run.http_errors else ""),
                flush=True,
            )
            if scenario.writes:
                await cleanup()


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _print_table(results: list[ScenarioResult]) -> None:
    columns = ("req/s", "p50 ms", "p99 ms")
    header = f"{'scenario':52} {'server':6} " + " ".join(f"{c:>8}" for c in columns)
    header += f" {'ratio':>6}  target"
    print("\n" + header + "\n" + "-" * len(header))
    for result in results:
        if result.skipped:
            print(
                f"{result.name:52} {'':6} {'n/a':>8} {'':>8} {'':>8} {'n/a':>6}  {result.skipped}"
            )
            continue
        ratio = result.ratio
        for server in ("bare", "gate"):
            rps = result.median(server, lambda run: run.rps)
            p50 = result.median(server, lambda run: run.p50_ms)
            p99 = result.median(server, lambda run: run.p99_ms)
            errors = sum(run.http_errors + run.socket_errors for run in result.runs[server])
            name = result.name if server == "bare" else ""
            line = f"{name:52} {server:6} {rps:8.0f} {p50:8.2f} {p99:8.2f}"
            if server == "gate" and ratio is not None:
                verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
                line += f" {ratio:6.2f}  >= {TARGET_RATIO} {verdict}"
            if errors:
                line += f"  [{errors} errors]"
            print(line)
    print()


def _options() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=int(env("BENCH_SECONDS", "6")))
    parser.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP", "3")))
    parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "3")))
    parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "32")))
    parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "2")))
    # Another app factory to measure a candidate change against the same baseline.
    parser.add_argument("--gate-factory", default=env("BENCH_GATE_FACTORY", "app.main:app_factory"))
    parser.add_argument(
        "--hold", action="store_true", help="keep both servers up after the run (for profiling)"
    )
    return parser.parse_args()


async def bench(options: argparse.Namespace) -> list[ScenarioResult]:
    """Set up, measure every scenario, tear down; the results."""
    # Ctrl-C or SIGTERM cancel the run, so the servers stop and the database is dropped.
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
    wrk = load.find_wrk()
    generator = load.generator_name(wrk)
    print(f"load generator: {generator}", flush=True)
    started = datetime.now(UTC)
    # Other work on the machine skews both servers; the load average tells how much.
    load_before = os.getloadavg()
    results: list[ScenarioResult] = []
    async with fixture.fresh_database() as db:
        users, last_seed_id = await fixture.seed(db)

        async def cleanup() -> None:
            await fixture.remove_inserted(db, last_seed_id)

        gate_port, bare_port = servers.free_port(), servers.free_port()
        gate_env = servers.gate_env(db.runtime_url, db.admin_url, POOL_SIZE, gate_port)
        bare_env = servers.bare_env(db.admin_dsn, POOL_SIZE)
        with (
            servers.uvicorn_server(
                "gate", options.gate_factory, gate_env, "/openapi.json", gate_port
            ) as gate,
            servers.uvicorn_server(
                "bare", "bench.bare:create_app", bare_env, "/health", bare_port
            ) as bare,
            tempfile.TemporaryDirectory(prefix="sessiongate-bench-") as scratch,
        ):
            print(f"logging in {len(users)} users ...", flush=True)
            users = await fixture.log_in_all(gate.url, COOKIE_NAME, users)
            urls = {"gate": gate.url, "bare": bare.url}
            for index, scenario in enumerate(SCENARIOS):
                result = ScenarioResult(scenario.name)
                results.append(result)
                result.skipped = await _probe(scenario, gate.url, users[0])
                if scenario.writes:
                    await cleanup()
                if result.skipped:
                    print(f"{scenario.name}: {result.skipped}", flush=True)
                    continue
                print(f"{scenario.name}:", flush=True)
                files = {
                    "gate": load.write_requests(
                        Path(scratch) / f"gate-{index}.tsv",
                        [scenario.gate(user, gate.url) for user in users],
                    ),
                    "bare": load.write_requests(
                        Path(scratch) / f"bare-{index}.tsv", [scenario.bare(user) for user in users]
                    ),
                }
                await _measure(scenario, result, urls, files, options, wrk, cleanup)
            if options.hold:
                print(
                    f"holding: gate {gate.url} (pid {gate.pid}),"
                    f" bare {bare.url} (pid {bare.pid}); Ctrl-C ends",
                    flush=True,
                )
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    task.uncancel()
    _print_table(results)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_generator": generator,
        "gate_factory": options.gate_factory,
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "settings": {
            "connections": options.connections,
            "threads": options.threads,
            "seconds": options.seconds,
            "warmup_seconds": options.warmup,
            "rounds": options.rounds,
            "pool_size": POOL_SIZE,
            "users": fixture.USERS,
            "todos_per_user": fixture.TODOS_PER_USER,
        },
        "scenarios": [result.as_dict() for result in results],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"load average (1, 5, 15 min): {load_before} at start, {os.getloadavg()} at end")
    print(f"results written to {RESULTS}")
    return results


def main() -> None:
    """Entry point for `python -m bench.run`."""
    try:
        asyncio.run(bench(_options()))
    except asyncio.CancelledError:
        raise SystemExit("benchmark interrupted") from None


if __name__ == "__main__":
    main()
