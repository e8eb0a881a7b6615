"""Cross-cutting request helpers shared by the route modules."""

from __future__ import annotations

from ipaddress import ip_address

from starlette.requests import Request

USER_AGENT_MAX = 512


def client_ip(request: Request) -> str | None:
    """The peer address (uvicorn applies X-Forwarded-For only from trusted proxies)."""
    if request.client is None:
        return None
    try:
        return str(ip_address(request.client.host))
    except ValueError:
        return None


def user_agent(request: Request) -> str | None:
    """The User-Agent, truncated to what the sessions table keeps."""
    value = request.headers.get("user-agent")
    return None if value is None else value[:USER_AGENT_MAX]
