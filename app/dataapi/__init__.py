"""The PostgREST-style data API over the exposed schemas."""
