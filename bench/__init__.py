"""Load benchmarks: sessiongate against a bare FastAPI + asyncpg baseline."""
