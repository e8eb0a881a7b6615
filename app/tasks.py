"""Stopping background tasks for certain."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has finished, cancelling again as needed.

    On Python 3.11 a cancellation can be swallowed by an `asyncio.wait_for`
    deep inside a library (aiosmtplib and others use it) when it races with
    the awaited result; a single cancel() then leaves the task running and
    whoever awaits it waits forever. Re-cancelling until it is done fixes that.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1)
