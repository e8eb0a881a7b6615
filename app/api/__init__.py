"""HTTP routes and their shared dependencies."""
