"""Unknown and known e-mails at login: indistinguishable answers, statistically similar timing.

No timing is asserted: the test asks whether the two samples could come from
one distribution (a rank test, Mann-Whitney U), and fails only on a clear
separation, such as a login that skips the password hash for unknown
addresses (every unknown answer then beats every known one).
"""

from __future__ import annotations

import math
import time

import httpx

from tests.conftest import LiveServer, sign_up, unique_email
from tests.security.conftest import client_from, loopback_address

SAMPLES = 14  # per group; a complete separation then has p below 1e-5


def mann_whitney_p(first: list[float], second: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected)."""
    pooled = sorted(
        (value, group) for group, values in enumerate((first, second)) for value in values
    )
    ranks: list[float] = [0.0] * len(pooled)
    i = 0
    ties = 0.0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    n1, n2 = len(first), len(second)
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    z = (u - n1 * n2 / 2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def test_rank_test_detects_a_separation() -> None:
    # The detector itself must be able to fail the test below.
    fast = [0.001 + i * 1e-5 for i in range(SAMPLES)]
    slow = [0.05 + i * 1e-5 for i in range(SAMPLES)]
    assert mann_whitney_p(fast, slow) < 1e-4
    mixed = [0.01 * (i % 7) for i in range(SAMPLES)]
    assert mann_whitney_p(mixed, list(reversed(mixed))) > 0.5


async def _timed_login(http: httpx.AsyncClient, email: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    response = await http.post("/api/login", json={"email": email, "password": "wrong password"})
    return time.perf_counter() - started, response.status_code, response.text


async def test_unknown_and_known_emails_cannot_be_told_apart(live_server: LiveServer) -> None:
    async with client_from(live_server.url, loopback_address()) as http:
        known = (await sign_up(http))["email"]
        await _timed_login(http, known)  # warm-up: pools, caches
        known_times: list[float] = []
        unknown_times: list[float] = []
        answers: set[tuple[int, str]] = set()
        for _ in range(SAMPLES):
            # Interleaved, so drifts in machine load hit both groups alike.
            for email, sink in ((known, known_times), (unique_email("nobody"), unknown_times)):
                elapsed, status, text = await _timed_login(http, email)
                sink.append(elapsed)
                answers.add((status, text))
    assert len(answers) == 1  # byte-identical answers
    assert mann_whitney_p(known_times, unknown_times) > 1e-4
