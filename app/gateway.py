"""The running service's shared state: settings, engine, cookie codec, keys, schema cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.addresses import AddressKeys
from app.config import Settings
from app.cookies import SessionCookie
from app.dataapi.schema import SchemaCache
from app.devices import DeviceCookie
from app.leases import ConnectionLeases
from app.passwords import PasswordPolicy
from app.sessions import Toucher


@dataclass
class Gateway:
    """Everything a request handler needs that outlives the request."""

    settings: Settings
    engine: AsyncEngine
    cookie: SessionCookie
    device: DeviceCookie
    # Keys typed e-mail addresses for the throttle and the audit log.
    address_keys: AddressKeys
    toucher: Toucher
    schema: SchemaCache
    passwords: PasswordPolicy = field(default_factory=PasswordPolicy)
    # The data API's request connections (an asyncpg pool underneath),
    # opened by the app's lifespan; without them (the CLI) request
    # transactions borrow from `engine`.
    leases: ConnectionLeases | None = None

    @classmethod
    def build(cls, settings: Settings, engine: AsyncEngine) -> Gateway:
        """Wire the pieces from settings and a ready engine."""
        cookie = SessionCookie(
            keys=tuple(settings.signing_keys),
            name=settings.session_cookie_name,
            secure=settings.secure_cookies,
        )
        return cls(
            settings=settings,
            engine=engine,
            cookie=cookie,
            device=DeviceCookie(
                keys=tuple(settings.signing_keys),
                name=settings.device_cookie_name,
                secure=settings.secure_cookies,
                lifetime=settings.device_cookie_lifetime,
            ),
            address_keys=AddressKeys.from_settings(settings),
            toucher=Toucher(engine, settings),
            schema=SchemaCache(settings.db_schemas),
            passwords=PasswordPolicy(settings.password_min_length, settings.password_max_length),
        )


def get_gateway(connection: HTTPConnection) -> Gateway:
    """The Gateway of the app serving this request."""
    gateway: Gateway = connection.app.state.gateway
    return gateway
