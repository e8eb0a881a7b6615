"""One data API request: its profile, parameters, preferences, range and body."""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from starlette.responses import Response
from starlette.types import Scope

from app.dataapi.identifiers import qualified, quote_ident
from app.dataapi.negotiation import Media, negotiate
from app.dataapi.plan import Node
from app.dataapi.preferences import Preferences, parse_prefer
from app.dataapi.prelude import Prelude
from app.dataapi.responses import Outcome, range_not_satisfiable
from app.dataapi.schema import Relation
from app.errors import ApiError
from app.gateway import Gateway, get_gateway
from app.rls import request_transaction

RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict"}
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


class DataRequest:
    """One data API request: its parsed headers, parameters and target schema."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.gateway: Gateway = get_gateway(request)
        self.settings = self.gateway.settings
        self.method = request.method
        self.path = url_path(request.scope)
        self.params = parse_qsl(url_query(request.scope), keep_blank_values=True)
        self.prefs: Preferences = parse_prefer(request.headers.getlist("prefer"))
        self.schema = self._profile()

    @property
    def api_path(self) -> str:
        """The path relative to the data API root (/todos), as PostgREST's is to its root."""
        return self.path.removeprefix("/api")

    def _profile(self) -> str:
        """The schema chosen by Accept-Profile (reads) or Content-Profile (writes)."""
        header = "content-profile" if self.method in WRITES else "accept-profile"
        wanted = self.request.headers.get(header)
        schemas = self.settings.db_schemas
        if wanted is None:
            return schemas[0]
        wanted = self.settings.db_schema_aliases.get(wanted, wanted)
        if wanted not in schemas:
            raise ApiError(
                406,
                "PGRST106",
                f"Invalid schema: {wanted}",
                hint="Only the following schemas are exposed: " + ", ".join(schemas),
            )
        return wanted

    def first(self, name: str) -> str | None:
        """The first value of a reserved query parameter."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def relation(self, name: str) -> Relation:
        """The exposed relation `name` in the request's schema, or PGRST205."""
        relation = self.gateway.schema.find(self.schema, name)
        if relation is None:
            raise ApiError(
                404,
                "PGRST205",
                f"Could not find the table '{self.schema}.{name}' in the schema cache",
            )
        return relation

    def max_rows(self) -> int | None:
        """db_max_rows for this schema."""
        return self.settings.db_max_rows_by_schema.get(self.schema, self.settings.db_max_rows)

    def rollback(self) -> bool:
        """Whether the transaction ends in ROLLBACK (db_tx_end and Prefer: tx)."""
        mode = self.settings.db_tx_end
        wanted = self.prefs.get("tx")
        if mode.endswith("allow-override") and wanted is not None:
            return wanted == "rollback"
        return mode.startswith("rollback")

    def applied(self, names: set[str]) -> str | None:
        """Preference-Applied for this request."""
        names = set(names) | {"handling"}
        if "timezone" in self.prefs.values:
            names.add("timezone")
        if self.settings.db_tx_end.endswith("allow-override"):
            names.add("tx")
        if self.prefs.get("handling") != "strict":
            names.discard("max-affected")
        return self.prefs.applied(names)

    def prelude(self) -> Prelude:
        """Settings for the request's transaction: search_path, request.*, timezone, pre-request."""
        # The session cookie is the caller's credential: SQL never sees it
        # (auth.authenticate() has already turned it into the role and claims).
        # Nor the device cookie, which only login reads.
        hidden = (self.gateway.cookie.name, self.gateway.device.name)
        cookies = {k: v for k, v in self.request.cookies.items() if k not in hidden}
        headers = {k.lower(): v for k, v in self.request.headers.items()}
        if "cookie" in headers:
            kept = "; ".join(f"{k}={v}" for k, v in cookies.items())
            if kept:
                headers["cookie"] = kept
            else:
                del headers["cookie"]
        settings = [
            ("search_path", _search_path(self.schema, tuple(self.settings.db_extra_search_path))),
            ("request.method", self.method),
            # Relative to the data API root, as PostgREST's is to its own root.
            ("request.path", self.api_path),
            ("request.headers", orjson.dumps(headers).decode()),
            ("request.cookies", orjson.dumps(cookies).decode()),
        ]
        timezone = self.prefs.get("timezone")
        # Lenient (the default): a zone PostgreSQL does not know is skipped
        # rather than failing the request. Strict: PostgreSQL refuses it.
        if timezone is not None and (
            self.prefs.strict or self.gateway.schema.knows_timezone(timezone)
        ):
            settings.append(("timezone", timezone))
        call = None
        pre = self.settings.db_pre_request
        if pre:
            schema, _, name = pre.rpartition(".")
            call = qualified(schema, name) if schema else quote_ident(name)
        return Prelude(
            tuple(settings),
            self.settings.anonymous_role,
            call,
            limits=self.gateway.schema.role_limits,
        )

    def transaction(self, *, readonly: bool) -> Any:
        """The request transaction with this request's prelude and tx end."""
        return request_transaction(
            self.gateway,
            self.request,
            readonly=readonly,
            prelude=self.prelude(),
            rollback=self.rollback(),
        )

    def finish(self, outcome: Outcome) -> Response:
        """Headers every data response carries."""
        if len(self.settings.db_schemas) > 1:
            outcome.headers.insert(0, ("Content-Profile", self.schema))
        return outcome.response()


@lru_cache(maxsize=64)
def _search_path(schema: str, extra: tuple[str, ...]) -> str:
    """The request's search_path: its schema, the extra schemas, then pg_temp.

    pg_temp last: unlisted, PostgreSQL searches it first for table and type
    names, so a temporary table that an exposed function left on the pooled
    connection (named `text`, say) would stand in for the type in every
    statement planned there afterwards, for every user.
    """
    return ", ".join([*(quote_ident(name) for name in (schema, *extra)), "pg_temp"])


def _without_tab_cr_lf(text: str) -> str:
    # urllib.parse.urlsplit, which Starlette's URL calls, removes these anywhere.
    return text.replace("\t", "").replace("\r", "").replace("\n", "")


def url_path(scope: Scope) -> str:
    """request.url.path without building a URL: Starlette escapes ?, # and \\
    before it splits the URL."""
    path: str = scope["path"]
    return _without_tab_cr_lf(path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C"))


def url_query(scope: Scope) -> str:
    """request.url.query without building a URL: the query string as UTF-8,
    without a fragment."""
    raw: bytes = scope.get("query_string", b"")
    try:
        query = raw.decode()
    except UnicodeDecodeError as error:
        raise ApiError(
            400,
            "PGRST100",
            "The query string is not valid UTF-8",
            hint="Percent-encode the query string's bytes as UTF-8.",
        ) from error
    return _without_tab_cr_lf(query).partition("#")[0]


def apply_range(data: DataRequest, node: Node) -> None:
    """limit/offset and the Range header, intersected; db_max_rows applied."""
    if node.limit is not None and node.limit < 0:
        raise range_not_satisfiable("Limit should be greater than or equal to zero.")
    header = data.request.headers.get("range")
    if header and data.method in ("GET", "HEAD"):
        match = re.fullmatch(r"\s*(?:items=)?(\d{1,18})-(\d{0,18})\s*", header)
        if match:
            lower = int(match.group(1))
            upper = int(match.group(2)) if match.group(2) else None
            if upper is not None and lower > upper:
                raise range_not_satisfiable(
                    "The lower boundary must be lower than or equal to the upper boundary"
                    " in the Range header."
                )
            q_lower = node.offset
            q_upper = None if node.limit is None else node.offset + node.limit - 1
            new_lower = max(lower, q_lower)
            uppers = [u for u in (upper, q_upper) if u is not None]
            new_upper = min(uppers) if uppers else None
            node.offset = new_lower
            node.limit = None if new_upper is None else max(new_upper - new_lower + 1, 0)
    cap = data.max_rows()
    if cap is not None:
        node.limit = cap if node.limit is None else min(node.limit, cap)


def media_for(data: DataRequest) -> Media:
    """The representation the Accept header asks for."""
    return negotiate(data.request.headers.get("accept"))


def csv_body(node: Node, body: str) -> str:
    """A CSV body: the header line from the output keys, then the rows PostgreSQL rendered."""
    header = ",".join(
        '"' + k.replace('"', '""') + '"' if re.search(r'[,"\s]', k) else k
        for k in node.output_keys()
    )
    return header + ("\n" + body if body else "")


def not_one(rows: int) -> ApiError:
    """PGRST116: a singular response needs exactly one row."""
    return ApiError(
        406,
        "PGRST116",
        "JSON object requested, multiple (or no) rows returned",
        details=f"The result contains {rows} rows",
    )


def json_body(raw: bytes) -> Any:
    """The request body as JSON, or PGRST102."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "PGRST102", "Empty or invalid json") from None


def csv_rows(raw: bytes) -> list[dict[str, str | None]]:
    """A text/csv body as objects: the first line names the columns; NULL is null."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "PGRST102", "Empty or invalid CSV") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        rows = [
            {
                key: (None if value == "NULL" else value)
                for key, value in zip(header, line, strict=True)
            }
            for line in reader
            if line
        ]
    except (StopIteration, ValueError, csv.Error):
        raise ApiError(400, "PGRST102", "Empty or invalid CSV") from None
    return rows


def check_max_affected(data: DataRequest, rows: int) -> None:
    """PGRST124 when handling=strict and more rows than max-affected were touched."""
    cap = data.prefs.max_affected
    if data.prefs.strict and cap is not None and rows > cap:
        raise ApiError(
            400,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
            details=f"The query affects {rows} rows",
        )
