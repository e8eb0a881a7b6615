"""The schema cache: what the exposed schemas hold, read from the catalog.

Every identifier the data API puts into SQL comes from here, never from the
URL: a request names a relation or column, and the name is only used if it
matches one the catalog listed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg
import orjson

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """One column of an exposed relation."""

    name: str
    type: str
    nullable: bool
    has_default: bool


@dataclass(frozen=True)
class Relation:
    """A table or view in an exposed schema."""

    schema: str
    name: str
    kind: str  # r table, v view, m materialized view, f foreign table, p partitioned
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    insertable: bool


@dataclass
class SchemaCache:
    """Relations per exposed schema; replaced wholesale by `load`."""

    schemas: list[str]
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)

    def find(self, schema: str, name: str) -> Relation | None:
        """The relation `schema.name`, if it is exposed."""
        return self.relations.get((schema, name))

    async def load(self, conn: asyncpg.Connection) -> None:
        """Read the catalog. On failure the previous contents stay."""
        raw = await conn.fetchval(_RELATIONS_SQL, self.schemas)
        relations: dict[tuple[str, str], Relation] = {}
        for item in orjson.loads(raw):
            columns = {
                c["name"]: Column(c["name"], c["type"], c["nullable"], c["has_default"])
                for c in item["columns"]
            }
            relation = Relation(
                schema=item["schema"],
                name=item["name"],
                kind=item["kind"],
                columns=columns,
                primary_key=tuple(item["pk"] or ()),
                insertable=item["insertable"],
            )
            relations[(relation.schema, relation.name)] = relation
        self.relations = relations
        log.info("schema cache: %d relations in %s", len(relations), ", ".join(self.schemas))


# Tables, views, materialized views, foreign and partitioned tables in the
# exposed schemas, with their columns in order and their primary keys. For a
# view, the primary key is none; later issues derive it from the base table.
_RELATIONS_SQL = """
SELECT coalesce(json_agg(rel ORDER BY rel.schema, rel.name), '[]')::text
FROM (
  SELECT n.nspname AS schema,
         c.relname AS name,
         c.relkind::text AS kind,
         c.relkind IN ('r', 'p', 'f')
           OR pg_relation_is_updatable(c.oid, true) & 8 = 8 AS insertable,
         (SELECT json_agg(json_build_object(
                    'name', a.attname,
                    'type', format_type(a.atttypid, a.atttypmod),
                    'nullable', NOT a.attnotnull,
                    'has_default', a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')
                  ORDER BY a.attnum)
            FROM pg_attribute a
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
         (SELECT json_agg(a.attname ORDER BY array_position(con.conkey, a.attnum))
            FROM pg_constraint con
            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
           WHERE con.conrelid = c.oid AND con.contype = 'p') AS pk
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ANY ($1::text[])
     AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
) rel
"""
