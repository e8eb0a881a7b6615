"""Sending one case's request the way HARNESS.md section 3 says: raw path, verbatim headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import httpx

from tests.conformance.assertions import Response
from tests.conformance.cases import JWT_SECRET, Case

# sessiongate serves the data API under /api; cases are written without it.
API_PREFIX = "/api"
# HARNESS.md 3.2: the only signing key the suite names.
SIGNING_KEYS = {"hs256_test_secret": JWT_SECRET}
# Bytes h11 refuses in a request target (it accepts only visible ASCII),
# and a "%" that does not start a valid escape.
_UNSENDABLE = re.compile(rb"[^\x21-\x7e]|%(?![0-9A-Fa-f]{2})")


def request_target(path: str) -> bytes:
    """The case's path under /api, percent-encoding only what HTTP/1.1 cannot carry.

    Existing %XX escapes, "+" and reserved delimiters stay as written, so the
    server decodes exactly the request the case describes.
    """
    raw = (API_PREFIX + path).encode("utf-8")
    return _UNSENDABLE.sub(lambda match: b"%%%02X" % match.group(0)[0], raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(sign_with: str, payload: dict[str, Any]) -> str:
    """An HS256 token over `payload` exactly as given.

    Hand-rolled on purpose: several cases carry claims a JWT library would
    refuse to sign (a string `exp`), and the server, not the runner, must be
    the one to reject them.
    """
    if sign_with not in SIGNING_KEYS:
        raise ValueError(f"unknown sign_with {sign_with!r}")
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    digest = hmac.new(SIGNING_KEYS[sign_with].encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(digest)}"


def request_headers(case: Case) -> list[tuple[str, str]]:
    """Headers to send: the case's own, then Accept-Profile and Authorization if it set none."""
    # Leading and trailing whitespace is not part of a field value (RFC 9110
    # 5.5) and h11 refuses to send it ("Bearer " in case 1455).
    headers = [
        (str(name), str(value).strip())
        for name, value in (case.request.get("headers") or {}).items()
    ]
    names = {name.lower() for name, _ in headers}
    if case.schema not in ("public", "test") and "accept-profile" not in names:
        headers.append(("Accept-Profile", case.schema))
    jwt = case.request.get("jwt")
    if jwt is not None and "authorization" not in names:
        token = mint_jwt(str(jwt.get("sign_with", "hs256_test_secret")), dict(jwt["payload"]))
        headers.append(("Authorization", f"Bearer {token}"))
    return headers


def request_body(case: Case) -> bytes | None:
    """The body: body_raw verbatim, else body_json encoded, else body (strings as-is)."""
    request = case.request
    if "body_raw" in request:
        return str(request["body_raw"]).encode("utf-8")
    if "body_json" in request:
        return json.dumps(request["body_json"]).encode("utf-8")
    if "body" in request:
        body = request["body"]
        if isinstance(body, str):
            return body.encode("utf-8")
        return json.dumps(body).encode("utf-8")
    return None


async def send(http: httpx.AsyncClient, case: Case) -> Response:
    """Send the case's request and collect the response without decoding anything."""
    method = str(case.request["method"]).upper()
    target = request_target(str(case.request["path"]))
    request = http.build_request(method, "/", content=request_body(case))
    # httpx's defaults would change the request: no Accept (servers read its
    # absence as */*), no Accept-Encoding (the response must come uncompressed).
    for name in ("accept", "accept-encoding"):
        if name in request.headers:
            del request.headers[name]
    for name, value in request_headers(case):
        request.headers[name] = value
    # The "target" extension puts these bytes on the wire as the request
    # line, bypassing httpx's URL normalisation.
    request.extensions["target"] = target
    response = await http.send(request)
    body = await response.aread()
    return Response(
        status=response.status_code,
        reason=response.reason_phrase,
        headers=[
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in response.headers.raw
        ],
        body=body,
    )
