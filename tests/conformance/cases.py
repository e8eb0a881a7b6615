"""Conformance cases: reading the YAML files and deciding which server configuration runs each.

The case format is ../shared/conformance/case.schema.json; the server
configurations are HARNESS.md section 2. Option names are PostgREST's in
snake_case, which is also how sessiongate's Settings name them; the one
exception is the anonymous role (`db_anon_role` there, `anonymous_role` here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.config import PROJECT_ROOT

SHARED_DIR = PROJECT_ROOT.parent / "shared" / "conformance"
CASES_ENV = "CONFORMANCE_CASES"

# HARNESS.md 2.1, the "bulk" instance; sessiongate names kept identical.
BULK_OPTIONS: dict[str, Any] = {
    "db_schemas": [
        "test",
        "operators",
        "ordering",
        "pagination",
        "representations",
        "mutations",
        "rpc",
        "headers",
        "config",
        "openapi",
        "domain_representations",
        "observability",
        "auth",
        "v1",
        "v2",
        'SPECIAL "@/\\#~_-',
        "تست",
    ],
    "db_schema_aliases": {"unicode": "تست"},
    "db_profile_default": "v1",
    "db_profile_schemas": ["v1", "v2", 'SPECIAL "@/\\#~_-'],
    "db_extra_search_path": ["public"],
    "db_max_rows": None,
    "db_max_rows_by_schema": {"config": 2},
    "db_plan_enabled": True,
    "db_tx_end": "rollback",
    "db_safe_update_tables": ["safe_update_items", "safe_delete_items"],
    "jwt_aud": None,
    "server_cors_allowed_origins": "http://example.com, http://example2.com",
    "server_timing_enabled": True,
    "server_trace_header": "X-Request-Id",
    "log_level": "error",
    # Not in the harness: sessiongate refuses unsafe requests from origins it
    # does not trust (CSRF); PostgREST has no such check, and the origins the
    # harness allows for CORS are the ones its cases send.
    "trusted_origins": ["http://example.com", "http://example2.com"],
    # Not in the harness: sessiongate always switches to its anonymous role,
    # so cookie-less requests run as a role holding every fixture privilege.
    "anonymous_role": "conformance_bulk",
}

JWT_SECRET = "reallyreallyreallyreallyverysafe"

# HARNESS.md 2.2, the "auth" instance.
AUTH_OPTIONS: dict[str, Any] = {
    **BULK_OPTIONS,
    "anonymous_role": "postgrest_test_anonymous",
    "db_pre_request": "auth.switch_role",
    "jwt_secret": JWT_SECRET,
}

# HARNESS.md 2.6: the public half of upstream's test RS256 key.
ASYMMETRIC_JWK = (
    '{"alg":"RS256","e":"AQAB","key_ops":["verify"],"kty":"RSA","n":"0etQ2Tg187jb04MWfpuogYGV75IFr'
    "QQBxQaGH75eq_FpbkyoLcEpRUEWSbECP2eeFya2yZ9vIO5ScD-lPmovePk4Aa4SzZ8jdjhmAbNykleRPCxMg0481kz6PQhn"
    "HRUv3nF5WP479CnObJKqTVdEagVL66oxnX9VhZG9IZA7k0Th5PfKQwrKGyUeTGczpOjaPqbxlunP73j9AfnAt4XCS8epa-n3"
    "WGz1j-wfpr_ys57Aq-zBCfqP67UYzNpeI1AoXsJhD9xSDOzvJgFRvc3vm2wjAW4LEMwi48rCplamOpZToIHEPIaPzpveYQw"
    'DnB1HFTR1ove9bpKJsHmi-e2uzQ","use":"sig"}'
)
_SYMBOLIC = {
    "asymmetric_jwk_public_key": ASYMMETRIC_JWK,
    "asymmetric_jwks_public_key": '{"keys":[' + ASYMMETRIC_JWK + "]}",
}
# HARNESS.md 2.5: options some cases need that their YAML does not say.
_EXTRA_OPTIONS: dict[int, dict[str, Any]] = {
    1654: {"db_schemas": ["openapi_no_comment"]},
    1764: {"jwt_secret": None},
}
# PostgREST option name -> sessiongate Settings field, where they differ.
_RENAMED = {"db_anon_role": "anonymous_role"}


@dataclass(frozen=True)
class Case:
    """One conformance case, as read from its YAML file."""

    id: int
    feature: str
    schema: str
    request: dict[str, Any]
    expect: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    file: str = ""

    @property
    def area(self) -> str:
        """The area: the first segment of `feature` (HARNESS.md section 7)."""
        return self.feature.split("/", 1)[0]

    @property
    def uses_auth_instance(self) -> bool:
        """Auth and OpenAPI cases, and the root path, run on the auth instance (HARNESS.md 2.2)."""
        path = str(self.request.get("path", ""))
        return self.schema in ("auth", "openapi") or path.split("?", 1)[0] == "/"

    @property
    def is_write(self) -> bool:
        """True for methods that may change rows, which run one at a time."""
        return str(self.request.get("method", "GET")).upper() not in ("GET", "HEAD", "OPTIONS")


def cases_dir() -> Path:
    """The folder of cases: $CONFORMANCE_CASES, else the shared suite's."""
    override = os.environ.get(CASES_ENV)
    return Path(override) if override else SHARED_DIR / "cases"


def load_case(path: Path) -> Case:
    """Read one YAML case; a malformed one raises with the file's name."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: not a YAML mapping")
    try:
        return Case(
            id=int(data["id"]),
            feature=str(data["feature"]),
            schema=str(data["schema"]),
            request=dict(data["request"]),
            expect=dict(data["expect"]),
            config=dict(data.get("config") or {}),
            file=path.name,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path.name}: {error!r}") from error


def load_cases(folder: Path) -> list[Case]:
    """Every case in `folder`, ordered by id; duplicate ids are an error."""
    cases = [load_case(path) for path in sorted(folder.glob("*.yaml"))]
    seen: dict[int, str] = {}
    for case in cases:
        if case.id in seen:
            raise ValueError(f"case id {case.id} appears in {seen[case.id]} and {case.file}")
        seen[case.id] = case.file
    return sorted(cases, key=lambda case: case.id)


def _translate(config: dict[str, Any]) -> dict[str, Any]:
    """A case's `config:` block as server options (HARNESS.md 2.4)."""
    options: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("env", "file", "preconditions_sql"):
            continue  # CLI-only keys; CLI cases are not run.
        name = key.replace("-", "_")
        if name == "db_schemas" and isinstance(value, str):
            value = [value]
        elif isinstance(value, str):
            value = _SYMBOLIC.get(value, value)
        options[_RENAMED.get(name, name)] = value
    return options


def server_options(case: Case) -> dict[str, Any]:
    """The full option set the case's server needs (HARNESS.md 2.3)."""
    base = AUTH_OPTIONS if case.uses_auth_instance else BULK_OPTIONS
    return {**base, **_translate(case.config), **_EXTRA_OPTIONS.get(case.id, {})}


def config_key(options: dict[str, Any]) -> str:
    """A stable key for an option set, so cases with equal configs share one server."""
    return repr(sorted(options.items()))
