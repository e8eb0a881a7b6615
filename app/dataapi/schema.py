"""The schema cache: what the exposed schemas hold, read from the catalog.

Every identifier the data API puts into SQL comes from here, never from the
URL: a request names a relation, column or function, and the name is only
used if it matches one the catalog listed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from app.dataapi.view_defaults import ViewDefaults

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """One column of an exposed relation."""

    name: str
    type: str  # format_type(), safe to paste: it comes from the catalog
    nullable: bool
    has_default: bool
    base: str = ""  # the type under a domain (or the type itself), e.g. "tsvector"
    default: str | None = None  # the default expression, from the catalog (missing=default)
    # Whether `default` is what an INSERT leaving the column out would store.
    # False for a view column whose base column is unknown (missing=default
    # then refuses to guess) or is an identity or generated column.
    default_known: bool = True

    @property
    def is_json(self) -> bool:
        """json or jsonb, possibly under a domain."""
        return self.base in ("json", "jsonb")


@dataclass(frozen=True)
class ComputedField:
    """A function f(row) that reads like a column of the relation it takes."""

    schema: str
    function: str
    type: str
    base: str
    returns_set: bool


@dataclass(frozen=True)
class Junction:
    """The relation in the middle of a many-to-many relationship."""

    relation: tuple[str, str]
    source_columns: tuple[str, ...]  # junction columns pointing at the source
    target_columns: tuple[str, ...]  # junction columns pointing at the target


@dataclass(frozen=True)
class Relationship:
    """A foreign key seen from one end: `source.columns` pair with `target.columns`."""

    constraint: str
    target: tuple[str, str]
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    to_one: bool  # the target side holds at most one row per source row
    junction: Junction | None = None  # set for many-to-many


@dataclass
class Relation:
    """A table or view in an exposed schema."""

    schema: str
    name: str
    kind: str  # r table, v view, m materialized view, f foreign table, p partitioned
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    insertable: bool
    updatable: bool = True
    deletable: bool = True
    base: tuple[str, str] | None = None  # the one table a simple view reads
    # Row level security may hide some of its rows: the table's own flag, for a
    # view its base table's, and always for a view whose base is unknown or
    # that calls a function.
    row_security: bool = False
    uniques: list[tuple[str, ...]] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    computed: dict[str, ComputedField] = field(default_factory=dict)

    @property
    def is_table(self) -> bool:
        """A real table (system columns such as xmax exist)."""
        return self.kind in ("r", "p")


@dataclass(frozen=True)
class Parameter:
    """One input parameter of a function."""

    name: str
    type: str
    has_default: bool
    variadic: bool


@dataclass(frozen=True)
class Function:
    """A function callable at /rpc/<name>."""

    schema: str
    name: str
    params: tuple[Parameter, ...]
    return_type: str
    returns_set: bool
    # "void", "scalar" (one value), or "composite" (rows with named columns)
    shape: str
    volatility: str  # i, s or v
    out_columns: tuple[tuple[str, str], ...]  # (name, type) of OUT/TABLE columns
    returns_relation: tuple[str, str] | None = None  # SETOF an exposed table or view

    @property
    def required(self) -> set[str]:
        """Names of the parameters without a default."""
        return {p.name for p in self.params if not p.has_default}

    @property
    def single_unnamed_json(self) -> bool:
        """One unnamed json/jsonb parameter: the whole body is the argument."""
        return (
            len(self.params) == 1
            and self.params[0].name == ""
            and self.params[0].type in ("json", "jsonb")
        )

    def signature(self) -> str:
        """schema.name(a, b) as PostgREST prints it."""
        return f"{self.schema}.{self.name}({', '.join(p.name for p in self.params)})"


# SQL-standard spellings of built-in types, accepted in select casts.
_TYPE_ALIASES = {
    "integer": "int4",
    "int": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "boolean": "bool",
    "character varying": "varchar",
    "character": "bpchar",
    "decimal": "numeric",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
}


@dataclass
class SchemaCache:
    """Relations and functions per exposed schema; replaced wholesale by `load`."""

    schemas: list[str]
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    # (role, setting, value): the request roles' statement_timeout and
    # lock_timeout, sent with every data request's settings (app/dataapi/prelude.py).
    # None until loaded: requests then leave them to auth.authenticate().
    role_limits: tuple[tuple[str, str, str], ...] | None = None
    # pg_timezone_names, for Prefer: timezone in lenient mode. Read once per
    # load: the view reads the time zone files, ~20 ms, far too much per request.
    timezones: frozenset[str] | None = None

    def find(self, schema: str, name: str) -> Relation | None:
        """The relation `schema.name`, if it is exposed."""
        return self.relations.get((schema, name))

    def find_functions(self, schema: str, name: str) -> list[Function]:
        """Every overload of `schema.name`."""
        return self.functions.get((schema, name), [])

    def knows_timezone(self, name: str) -> bool:
        """Whether PostgreSQL lists `name` as a time zone (True before the first load)."""
        return self.timezones is None or name in self.timezones

    def cast_type(self, name: str) -> str | None:
        """The catalog's name for a type a request asked to cast to, or None."""
        array = name.endswith("[]")
        bare = name[:-2] if array else name
        bare = _TYPE_ALIASES.get(bare.lower(), bare)
        if bare not in self.types:
            return None
        return bare + ("[]" if array else "")

    async def load(self, conn: asyncpg.Connection) -> None:
        """Read the catalog. On failure the previous contents stay."""
        async with conn.transaction(readonly=True):
            # With only pg_catalog on the path, format_type() qualifies every
            # other type, so the names stay valid under any request's path.
            await conn.execute("SET LOCAL search_path = pg_catalog")
            raw = await conn.fetchval(_CATALOG_SQL, self.schemas)
            limits = await conn.fetch("SELECT role, name, value FROM auth.role_limits()")
            zones = await conn.fetch("SELECT name FROM pg_timezone_names")
        catalog = orjson.loads(raw)
        relations: dict[tuple[str, str], Relation] = {}
        oids: dict[int, tuple[str, str]] = {}
        for item in catalog["relations"]:
            columns = {
                c["name"]: Column(
                    c["name"], c["type"], c["nullable"], c["has_default"], c["base"], c["default"]
                )
                for c in item["columns"] or []
            }
            relation = Relation(
                schema=item["schema"],
                name=item["name"],
                kind=item["kind"],
                columns=columns,
                primary_key=tuple(item["pk"] or ()),
                insertable=item["insertable"],
                updatable=item["updatable"],
                deletable=item["deletable"],
                uniques=[tuple(u) for u in item["uniques"] or []],
                row_security=item["rls"],
            )
            relations[(relation.schema, relation.name)] = relation
            oids[item["oid"]] = (relation.schema, relation.name)
        all_oids: dict[int, tuple[str, str]] = {
            r["oid"]: (r["schema"], r["name"]) for r in catalog["all_relations"]
        }
        base_of = _view_bases(catalog["view_deps"], all_oids)
        rls_of = {(r["schema"], r["name"]): bool(r["rls"]) for r in catalog["all_relations"]}
        calling = _function_readers(catalog["view_deps"], catalog["function_views"])
        defaults = ViewDefaults(catalog["view_queries"], catalog["view_columns"])
        numbers = {
            (item["schema"], item["name"]): {c["name"]: c["num"] for c in item["columns"] or []}
            for item in catalog["relations"]
        }
        for oid, key in oids.items():
            relation = relations[key]
            if relation.kind not in ("r", "p", "f"):
                relation.base = base_of.get(key)
            if relation.kind == "v":
                relation.columns = {
                    name: defaults.column(int(oid), numbers[key][name], column, relation.base)
                    for name, column in relation.columns.items()
                }
                # A view reads with its base table's policies. One whose base
                # is unknown, or that calls a function (which may read any
                # table), counts as filtered.
                base = relation.base
                relation.row_security = base is None or oid in calling or rls_of.get(base, True)
        self._derive_view_keys(relations, catalog["tables"])
        self._link(relations, catalog["fks"], catalog["tables"])
        functions: dict[tuple[str, str], list[Function]] = {}
        for item in catalog["functions"]:
            params = tuple(
                Parameter(p["name"] or "", p["type"], p["has_default"], p["variadic"])
                for p in item["params"] or []
            )
            function = Function(
                schema=item["schema"],
                name=item["name"],
                params=params,
                return_type=item["return_type"],
                returns_set=item["returns_set"],
                shape=item["shape"],
                volatility=item["volatility"],
                out_columns=tuple((c["name"], c["type"]) for c in item["out_columns"] or ()),
                returns_relation=oids.get(item["ret_relation"]) if item["ret_relation"] else None,
            )
            functions.setdefault((function.schema, function.name), []).append(function)
            row_of = item.get("row_relation")
            if (
                row_of is not None
                and len(params) == 1
                and row_of in oids
                and function.shape != "void"
            ):
                target = relations[oids[row_of]]
                if function.schema == target.schema and function.name not in target.columns:
                    target.computed[function.name] = ComputedField(
                        function.schema,
                        function.name,
                        function.return_type,
                        item["return_base"],
                        function.returns_set,
                    )
        self.relations = relations
        self.functions = functions
        self.types = set(catalog["types"])
        self.role_limits = tuple((r["role"], r["name"], r["value"]) for r in limits)
        self.timezones = frozenset(r["name"] for r in zones)
        log.info(
            "schema cache: %d relations, %d functions in %s",
            len(relations),
            sum(len(f) for f in functions.values()),
            ", ".join(self.schemas),
        )

    @staticmethod
    def _derive_view_keys(
        relations: dict[tuple[str, str], Relation], tables: dict[str, dict[str, Any]]
    ) -> None:
        """A simple view over one table inherits its primary key and unique keys."""
        for relation in relations.values():
            if relation.base is None or relation.primary_key:
                continue
            info = tables.get(".".join(relation.base))
            if info is None:
                continue
            pk = tuple(info.get("pk") or ())
            if pk and all(col in relation.columns for col in pk):
                relation.primary_key = pk
            for unique in info.get("uniques") or ():
                if all(col in relation.columns for col in unique):
                    relation.uniques.append(tuple(unique))

    @staticmethod
    def _link(
        relations: dict[tuple[str, str], Relation],
        fks: list[dict[str, Any]],
        tables: dict[str, dict[str, Any]],
    ) -> None:
        """Attach each foreign key to every exposed relation that reads its tables."""
        readers: dict[tuple[str, str], list[Relation]] = {}
        for relation in relations.values():
            base = relation.base or (relation.schema, relation.name)
            readers.setdefault(base, []).append(relation)
        for fk in fks:
            source = (str(fk["schema"]), str(fk["table"]))
            target = (str(fk["fschema"]), str(fk["ftable"]))
            cols = tuple(fk["columns"])
            fcols = tuple(fk["fcolumns"])
            source_info = tables.get(".".join(source), {})
            source_keys = [tuple(source_info.get("pk") or ())]
            source_keys += [tuple(u) for u in source_info.get("uniques") or ()]
            one_to_one = any(set(key) == set(cols) for key in source_keys if key)
            for left in readers.get(source, []):
                for right in readers.get(target, []):
                    if left.schema != right.schema:
                        continue
                    if not all(c in left.columns for c in cols) or not all(
                        c in right.columns for c in fcols
                    ):
                        continue
                    name = str(fk["name"])
                    left.relationships.append(
                        Relationship(name, (right.schema, right.name), cols, fcols, True)
                    )
                    right.relationships.append(
                        Relationship(name, (left.schema, left.name), fcols, cols, one_to_one)
                    )
        # Many-to-many: a relation whose primary key holds two foreign keys
        # joins the two relations they point at.
        for junction in relations.values():
            pk = set(junction.primary_key)
            outgoing = [
                r
                for r in junction.relationships
                if r.to_one
                and r.junction is None
                and set(r.source_columns) <= pk
                and r.target != (junction.schema, junction.name)
            ]
            for first in outgoing:
                for second in outgoing:
                    if first is second or first.constraint == second.constraint:
                        continue
                    origin = relations.get(first.target)
                    if origin is None:
                        continue
                    origin.relationships.append(
                        Relationship(
                            second.constraint,
                            second.target,
                            first.target_columns,
                            second.target_columns,
                            False,
                            junction=Junction(
                                (junction.schema, junction.name),
                                first.source_columns,
                                second.source_columns,
                            ),
                        )
                    )


def _view_bases(
    deps: list[dict[str, int]], oids: dict[int, tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """For each view that reads exactly one relation, the table underneath it."""
    reads: dict[int, set[int]] = {}
    for dep in deps:
        reads.setdefault(dep["view"], set()).add(dep["ref"])
    resolved: dict[tuple[str, str], tuple[str, str]] = {}
    for view, refs in reads.items():
        seen = {view}
        current = refs
        while len(current) == 1:
            (only,) = current
            if only in seen:
                break
            seen.add(only)
            if only not in reads:
                if view in oids and only in oids:
                    resolved[oids[view]] = oids[only]
                break
            current = reads[only]
    return resolved


def _function_readers(deps: list[dict[str, int]], calls: list[int]) -> set[int]:
    """The views that call a function of their own or through the views they read."""
    found = set(calls)
    grown = True
    while grown:
        grown = False
        for dep in deps:
            if dep["ref"] in found and dep["view"] not in found:
                found.add(dep["view"])
                grown = True
    return found


# One round trip: relations with columns and keys, foreign keys, views'
# dependencies, functions and the type names casts may use.
_CATALOG_SQL = r"""
WITH RECURSIVE rels AS (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
         c.relrowsecurity AS rls,
         c.relkind IN ('r', 'p', 'f')
           OR pg_relation_is_updatable(c.oid, true) & 8 = 8 AS insertable,
         c.relkind IN ('r', 'p', 'f')
           OR pg_relation_is_updatable(c.oid, true) & 4 = 4 AS updatable,
         c.relkind IN ('r', 'p', 'f')
           OR pg_relation_is_updatable(c.oid, true) & 16 = 16 AS deletable
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ANY ($1::text[])
     AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
),
keys AS (
  SELECT con.conrelid,
         (SELECT json_agg(a.attname ORDER BY array_position(con.conkey, a.attnum))
            FROM pg_attribute a
           WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)) AS cols,
         con.contype
    FROM pg_constraint con
   WHERE con.contype IN ('p', 'u')
),
-- The exposed views and every view they read, down to the tables.
view_chain AS (
  SELECT r.oid FROM rels r WHERE r.kind = 'v'
  UNION
  SELECT d.refobjid
    FROM view_chain ch
    JOIN pg_rewrite rw ON rw.ev_class = ch.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                    AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class c ON c.oid = d.refobjid AND c.relkind = 'v'
),
-- Their columns and the relation columns their queries read.
view_columns AS (
  SELECT a.attrelid AS rel, a.attnum AS num
    FROM view_chain ch JOIN pg_attribute a ON a.attrelid = ch.oid
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT d.refobjid, d.refobjsubid
    FROM view_chain ch
    JOIN pg_rewrite rw ON rw.ev_class = ch.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
)
SELECT json_build_object(
  'relations', (SELECT coalesce(json_agg(json_build_object(
      'oid', r.oid, 'schema', r.schema, 'name', r.name, 'kind', r.kind,
      'insertable', r.insertable, 'updatable', r.updatable, 'deletable', r.deletable,
      'rls', r.rls,
      'columns', (SELECT json_agg(json_build_object(
                    'name', a.attname, 'num', a.attnum,
                    'type', format_type(a.atttypid, a.atttypmod),
                    'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULL)
                                 ELSE format_type(a.atttypid, NULL) END,
                    'nullable', NOT a.attnotnull,
                    'has_default', a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
                    'default', CASE WHEN a.attgenerated <> '' THEN NULL
                                    WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid)
                                                          FROM pg_attrdef d
                                                         WHERE d.adrelid = a.attrelid
                                                           AND d.adnum = a.attnum)
                                    WHEN t.typtype = 'd' THEN t.typdefault END)
                  ORDER BY a.attnum)
                    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'pk', (SELECT k.cols FROM keys k WHERE k.conrelid = r.oid AND k.contype = 'p'),
      'uniques', (SELECT json_agg(k.cols) FROM keys k WHERE k.conrelid = r.oid AND k.contype = 'u')
    ) ORDER BY r.schema, r.name), '[]') FROM rels r),
  'all_relations', (SELECT coalesce(json_agg(json_build_object(
      'oid', c.oid, 'schema', n.nspname, 'name', c.relname, 'rls', c.relrowsecurity)), '[]')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')),
  'tables', (SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname, json_build_object(
      'pk', (SELECT k.cols FROM keys k WHERE k.conrelid = c.oid AND k.contype = 'p'),
      'uniques', (SELECT json_agg(k.cols) FROM keys k
                   WHERE k.conrelid = c.oid AND k.contype = 'u'))),
      '{}')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')),
  'view_deps', (SELECT coalesce(json_agg(DISTINCT jsonb_build_object(
                    'view', r.ev_class, 'ref', d.refobjid)), '[]')
      FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
      JOIN pg_class rc ON rc.oid = d.refobjid AND rc.relkind IN ('r', 'v', 'm', 'f', 'p')
      JOIN pg_class vc ON vc.oid = r.ev_class AND vc.relkind IN ('v', 'm')
      JOIN pg_namespace vn ON vn.oid = vc.relnamespace
     WHERE vn.nspname NOT IN ('pg_catalog', 'information_schema')),
  'view_queries', (SELECT coalesce(json_agg(json_build_object(
      'view', rw.ev_class, 'query', rw.ev_action::text)), '[]')
      FROM view_chain ch JOIN pg_rewrite rw ON rw.ev_class = ch.oid AND rw.rulename = '_RETURN'),
  'view_columns', (SELECT coalesce(json_agg(json_build_object(
      'rel', vc.rel, 'num', vc.num,
      'default', (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum),
      'type_default', CASE WHEN t.typtype = 'd' THEN t.typdefault END,
      'automatic', a.attidentity <> '' OR a.attgenerated <> '')), '[]')
      FROM view_columns vc
      JOIN pg_attribute a ON a.attrelid = vc.rel AND a.attnum = vc.num AND NOT a.attisdropped
      JOIN pg_type t ON t.oid = a.atttypid),
  'function_views', (SELECT coalesce(json_agg(DISTINCT r.ev_class), '[]')
      FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_proc'::regclass
      JOIN pg_class vc ON vc.oid = r.ev_class AND vc.relkind IN ('v', 'm')
      JOIN pg_namespace vn ON vn.oid = vc.relnamespace
     WHERE vn.nspname NOT IN ('pg_catalog', 'information_schema')),
  'fks', (SELECT coalesce(json_agg(json_build_object(
      'name', con.conname,
      'schema', n.nspname, 'table', c.relname,
      'fschema', fn.nspname, 'ftable', fc.relname,
      'columns', (SELECT json_agg(a.attname ORDER BY k.i)
                    FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
      'fcolumns', (SELECT json_agg(a.attname ORDER BY k.i)
                     FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum)
    )), '[]')
      FROM pg_constraint con
      JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_class fc ON fc.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace
     WHERE con.contype = 'f'),
  'functions', (SELECT coalesce(json_agg(json_build_object(
      'schema', n.nspname, 'name', p.proname,
      'params', (SELECT json_agg(json_build_object(
                    'name', coalesce(p.proargnames[a.i], ''),
                    'type', format_type(a.t, NULL),
                    'has_default', a.k > p.pronargs - p.pronargdefaults,
                    'variadic', p.provariadic <> 0 AND a.k = p.pronargs)
                  ORDER BY a.i)
                   FROM (SELECT x.t, x.i, row_number() OVER (ORDER BY x.i) AS k
                           FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                                WITH ORDINALITY x(t, i)
                          WHERE p.proargmodes IS NULL OR p.proargmodes[x.i] IN ('i', 'b', 'v')) a),
      'out_columns', coalesce(
          (SELECT json_agg(json_build_object(
                    'name', p.proargnames[x.i], 'type', format_type(p.proallargtypes[x.i], NULL))
                    ORDER BY x.i)
             FROM generate_subscripts(p.proargmodes, 1) x(i)
            WHERE p.proargmodes[x.i] IN ('o', 'b', 't')),
          (SELECT json_agg(json_build_object(
                    'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                    ORDER BY a.attnum)
             FROM pg_attribute a
            WHERE a.attrelid = rt.typrelid AND a.attnum > 0 AND NOT a.attisdropped)),
      'return_type', format_type(p.prorettype, NULL),
      'return_base', CASE WHEN rt.typtype = 'd' THEN format_type(rt.typbasetype, NULL)
                          ELSE format_type(p.prorettype, NULL) END,
      'returns_set', p.proretset,
      'shape', CASE WHEN p.prorettype = 'void'::regtype THEN 'void'
                    WHEN rt.typtype = 'c' OR p.prorettype = 'record'::regtype
                         OR EXISTS (SELECT 1 FROM unnest(p.proargmodes) m
                                     WHERE m IN ('o', 'b', 't'))
                      THEN 'composite'
                    ELSE 'scalar' END,
      'volatility', p.provolatile,
      'ret_relation', nullif(rt.typrelid, 0),
      'row_relation', (SELECT t.typrelid FROM pg_type t
                        WHERE t.oid = p.proargtypes[0] AND t.typrelid <> 0 AND p.pronargs = 1)
    )), '[]')
      FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      JOIN pg_type rt ON rt.oid = p.prorettype
     WHERE n.nspname = ANY ($1::text[]) AND p.prokind = 'f'),
  'types', (SELECT json_agg(DISTINCT t.typname) FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = 'pg_catalog' AND t.typtype IN ('b', 'r', 'm', 'e', 'd')
              AND t.typname NOT LIKE '\_%')
)::text
"""
