"""`python -m app` is the `sessiongate` command."""

from app.cli import main

main()
