"""sessiongate: HttpOnly session cookies in front of PostgreSQL Row Level Security."""

__version__ = "0.1.0"
