"""From parsed request to SQL fragments: the select list, WHERE and ORDER BY of a read.

A `Node` is one relation of the request (the target, or an embedded
resource) with its fields, conditions, order and range. Every name is looked
up in the schema cache and quoted from there; every value becomes a bind
parameter in `Params`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.dataapi.grammar import (
    Condition,
    Field,
    LogicTree,
    OrderTerm,
    SelectItem,
    parse_condition,
    parse_logic,
    parse_nonnegative,
    parse_order,
    parse_select,
)
from app.dataapi.identifiers import qualified, quote_ident
from app.dataapi.schema import Relation, Relationship, SchemaCache
from app.errors import ApiError

_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PATTERN = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
_RANGE = {
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_FTS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_AGGREGATES = {"count", "sum", "avg", "max", "min"}
_IS = {
    "null": "NULL",
    "not_null": "NOT NULL",
    "true": "TRUE",
    "false": "FALSE",
    "unknown": "UNKNOWN",
}


class Params:
    """Bind parameters of one statement, numbered in the order they are added."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str) -> str:
        """`$n::cast` for `value`."""
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


@dataclass
class Node:
    """One relation in the request tree."""

    relation: Relation
    alias: str
    key: str = ""
    items: list[SelectItem] = field(default_factory=list)
    embeds: dict[str, Node] = field(default_factory=dict)
    relationship: Relationship | None = None
    inner: bool = False
    conditions: list[Condition | LogicTree] = field(default_factory=list)
    null_filters: list[tuple[str, bool]] = field(default_factory=list)  # (embed key, is null)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    alias_columns: str = ""  # a column alias list after the table alias, e.g. ("num")

    def output_keys(self) -> list[str]:
        """The keys of each output row, in order (for CSV headers)."""
        keys: list[str] = []
        for item in self.items:
            if item.star:
                keys.extend(self.relation.columns)
            elif item.spread:
                keys.extend(self.embeds[item.key].output_keys())
            elif item.embed is None or item.children:
                keys.append(item.key)
        return keys


def not_embedded(name: str) -> ApiError:
    """PGRST108: a parameter names an embedded resource the select does not have."""
    return ApiError(
        400,
        "PGRST108",
        f"'{name}' is not an embedded resource in this request",
        hint=f"Verify that '{name}' is included in the 'select' query parameter.",
    )


class Planner:
    """Builds the Node tree for one request against one schema."""

    def __init__(self, cache: SchemaCache, schema: str) -> None:
        self.cache = cache
        self.schema = schema
        self.counter = 0

    def alias(self) -> str:
        """A fresh table alias."""
        name = f"_t{self.counter}"
        self.counter += 1
        return name

    def root(self, relation: Relation, select: str | None) -> Node:
        """The target relation with its select tree resolved."""
        node = Node(relation, self.alias())
        items = parse_select(select) if select else [SelectItem(star=True)]
        self.resolve(node, items)
        return node

    def resolve(self, node: Node, items: list[SelectItem]) -> None:
        """Check fields and embeds of `node` against the cache."""
        for item in items:
            if item.star:
                node.items.append(item)
            elif item.embed is not None:
                if item.embed in _AGGREGATES and not item.children and not item.hints:
                    # PostgREST's default (db-aggregates-enabled = false).
                    raise ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")
                child = self.embed(node, item)
                assert child.relationship is not None
                if item.spread and not child.relationship.to_one:
                    raise ApiError(
                        400,
                        "PGRST119",
                        f"A spread operation on '{item.embed}' is not possible",
                        details=f"'{node.relation.name}' and '{item.embed}' do not form a"
                        " many-to-one or one-to-one relationship",
                    )
                node.embeds[item.key] = child
                node.items.append(item)
            else:
                assert item.field is not None
                self.check_field(node.relation, item.field)
                if item.cast is not None and self.cache.cast_type(item.cast) is None:
                    raise ApiError(400, "42704", f'type "{item.cast}" does not exist')
                node.items.append(item)

    def embed(self, parent: Node, item: SelectItem) -> Node:
        """The embedded resource `item` under `parent`, joined by a foreign key."""
        assert item.embed is not None
        hints = [h for h in item.hints if h not in ("inner", "left")]
        inner = "inner" in item.hints
        candidates: list[Relationship] = []
        for rel in parent.relation.relationships:
            if rel.target[0] != parent.relation.schema:
                continue
            named = item.embed in (rel.target[1], rel.constraint) or rel.source_columns == (
                item.embed,
            )
            if not named:
                continue
            if hints and not any(
                h == rel.constraint
                or h in rel.source_columns
                or h in rel.target_columns
                or h == rel.target[1]
                for h in hints
            ):
                continue
            candidates.append(rel)
        exact = [r for r in candidates if r.target[1] == item.embed]
        if exact:
            candidates = exact
        direct = [r for r in candidates if r.junction is None]
        if direct:
            candidates = direct
        if not candidates:
            raise ApiError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{parent.relation.name}' and "
                f"'{item.embed}' in the schema cache",
                details=f"Searched for a foreign key relationship between '{parent.relation.name}'"
                f" and '{item.embed}' in the schema '{parent.relation.schema}', but no matches"
                " were found.",
                hint="Perhaps you meant a different relation, or the foreign key is missing.",
            )
        unique = {(r.constraint, r.target, r.source_columns) for r in candidates}
        if len(unique) > 1:
            raise ApiError(
                300,
                "PGRST201",
                f"Could not embed because more than one relationship was found for "
                f"'{parent.relation.name}' and '{item.embed}'",
                hint=f"Try changing '{item.embed}' to one of the relationships' constraint names,"
                f" e.g. '{item.embed}!{candidates[0].constraint}'.",
            )
        rel = candidates[0]
        target = self.cache.find(*rel.target)
        assert target is not None
        child = Node(target, self.alias(), key=item.key, relationship=rel, inner=inner)
        self.resolve(child, item.children or [])
        return child

    def check_field(self, relation: Relation, column: Field) -> None:
        """42703 unless `column` names a column or computed field of `relation`."""
        if column.name not in relation.columns and column.name not in relation.computed:
            raise ApiError(
                400,
                "42703",
                f"column {relation.name}.{column.name} does not exist",
            )

    def node_at(self, root: Node, path: list[str]) -> Node:
        """The embedded node a dotted parameter prefix names."""
        node = root
        for name in path:
            child = node.embeds.get(name)
            if child is None:
                raise not_embedded(name)
            node = child
        return node

    def apply(self, root: Node, params: list[tuple[str, str]], *, skip: set[str]) -> None:
        """Attach filters, logic trees, order and ranges from query parameters."""
        for key, value in params:
            if key in skip:
                continue
            parts = key.split(".")
            last = parts[-1]
            if last in ("order", "limit", "offset"):
                node = self.node_at(root, parts[:-1])
                if last == "order":
                    node.order = self.check_order(node, parse_order(value))
                elif last == "limit":
                    node.limit = parse_nonnegative("limit", value)
                else:
                    node.offset = parse_nonnegative("offset", value)
            elif last in ("or", "and"):
                negated = len(parts) >= 2 and parts[-2] == "not"
                node = self.node_at(root, parts[: -2 if negated else -1])
                tree = parse_logic(last, value, negated)
                self.check_tree(node, tree)
                node.conditions.append(tree)
            else:
                field_text = parts[-1]
                path = parts[:-1]
                # `a.b->c` style keys never split a JSON path.
                if "->" in key:
                    head, arrow, tail = key.partition("->")
                    head_parts = head.split(".")
                    path, field_text = head_parts[:-1], head_parts[-1] + arrow + tail
                node = self.node_at(root, path)
                if field_text in node.embeds and field_text not in node.relation.columns:
                    condition = parse_condition("x", value)
                    if condition.operator != "is" or condition.value not in ("null", "not_null"):
                        raise ApiError(
                            400, "PGRST100", "Only is.null or not.is.null filters an embed"
                        )
                    is_null = (condition.value == "null") != condition.negated
                    node.null_filters.append((field_text, is_null))
                    continue
                condition = parse_condition(field_text, value)
                self.check_field(node.relation, condition.field)
                node.conditions.append(condition)

    def check_tree(self, node: Node, tree: LogicTree) -> None:
        """Every field of a logic tree exists."""
        for item in tree.items:
            if isinstance(item, LogicTree):
                self.check_tree(node, item)
            else:
                self.check_field(node.relation, item.field)

    def check_order(self, node: Node, terms: list[OrderTerm]) -> list[OrderTerm]:
        """Order terms name fields of the node, or of a to-one embed of it."""
        for term in terms:
            if term.relation is None:
                self.check_field(node.relation, term.field)
                continue
            child = node.embeds.get(term.relation)
            if child is None:
                raise not_embedded(term.relation)
            assert child.relationship is not None
            if not child.relationship.to_one:
                raise ApiError(
                    400,
                    "PGRST118",
                    f"A related order on '{term.relation}' is not possible",
                    details=f"'{node.relation.name}' and '{term.relation}' do not form a"
                    " many-to-one or one-to-one relationship",
                )
            self.check_field(child.relation, term.field)
        return terms


# -- SQL -------------------------------------------------------------------


def field_sql(node: Node, column: Field, params: Params) -> tuple[str, str]:
    """The expression for a field of `node`, and its type for casting values."""
    relation = node.relation
    if column.name in relation.columns:
        col = relation.columns[column.name]
        expr = f"{node.alias}.{quote_ident(col.name)}"
        kind, base, is_json = col.type, col.base, col.is_json
    else:
        computed = relation.computed[column.name]
        expr = f"{qualified(computed.schema, computed.function)}({node.alias})"
        kind, base = computed.type, computed.base
        is_json = base in ("json", "jsonb")
    if not column.path:
        return expr, kind if base != "tsvector" else "tsvector"
    if not is_json:
        expr = f"to_jsonb({expr})"
        base = "jsonb"
    for step in column.path:
        index = int(step.key) if re.fullmatch(r"-?\d{1,9}", step.key) else None
        key = params.add(step.key, "text") if index is None else params.add(index, "int")
        expr = f"({expr}{step.arrow}{key})"
    return expr, "text" if column.path[-1].arrow == "->>" else base


def condition_sql(node: Node, cond: Condition, params: Params) -> str:
    """One filter as a boolean SQL expression."""
    expr, kind = field_sql(node, cond.field, params)
    op = cond.operator
    value = cond.value
    if op == "is":
        sql = f"{expr} IS {_IS[str(value)]}"
    elif op == "in":
        sql = f"{expr} = ANY({params.add(list(value), 'text[]')}::{kind}[])"
    elif op in _PATTERN:
        pattern = str(value).replace("*", "%") if op in ("like", "ilike") else str(value)
        if cond.quantifier:
            sql = (
                f"{expr}::text {_PATTERN[op]} {cond.quantifier.upper()}"
                f"({params.add(pattern, 'text')}::text[])"
            )
        else:
            sql = f"{expr}::text {_PATTERN[op]} {params.add(pattern, 'text')}"
    elif op in _FTS:
        language = params.add(cond.language, "text") + "::regconfig" if cond.language else None
        target = (
            expr
            if kind == "tsvector" or kind.endswith("tsvector")
            else (f"to_tsvector({language + ', ' if language else ''}{expr})")
        )
        query_args = (language + ", " if language else "") + params.add(str(value), "text")
        sql = f"{target} @@ {_FTS[op]}({query_args})"
    elif op == "isdistinct":
        sql = f"{expr} IS DISTINCT FROM {params.add(str(value), 'text')}::{kind}"
    elif op in _COMPARE:
        if cond.quantifier:
            sql = (
                f"{expr} {_COMPARE[op]} {cond.quantifier.upper()}"
                f"({params.add(str(value), 'text')}::{kind}[])"
            )
        else:
            sql = f"{expr} {_COMPARE[op]} {params.add(str(value), 'text')}::{kind}"
    else:
        sql = f"{expr} {_RANGE[op]} {params.add(str(value), 'text')}::{kind}"
    return f"NOT ({sql})" if cond.negated else sql


def tree_sql(node: Node, tree: LogicTree, params: Params) -> str:
    """An and/or tree as one parenthesised expression."""
    joiner = " AND " if tree.operator == "and" else " OR "
    parts = [
        tree_sql(node, item, params)
        if isinstance(item, LogicTree)
        else condition_sql(node, item, params)
        for item in tree.items
    ]
    sql = "(" + joiner.join(parts) + ")"
    return f"NOT {sql}" if tree.negated else sql


def join_sql(parent_alias: str, child: Node) -> list[str]:
    """Equalities tying an embedded node's rows to its parent row."""
    rel = child.relationship
    assert rel is not None
    if rel.junction is not None:
        junction = rel.junction
        link = f"{child.alias}_j"
        pairs = [
            f"{link}.{quote_ident(j)} = {parent_alias}.{quote_ident(s)}"
            for s, j in zip(rel.source_columns, junction.source_columns, strict=True)
        ] + [
            f"{link}.{quote_ident(j)} = {child.alias}.{quote_ident(t)}"
            for t, j in zip(rel.target_columns, junction.target_columns, strict=True)
        ]
        return [
            f"EXISTS (SELECT 1 FROM {qualified(*junction.relation)} AS {link}"
            f" WHERE {' AND '.join(pairs)})"
        ]
    return [
        f"{child.alias}.{quote_ident(target)} = {parent_alias}.{quote_ident(source)}"
        for source, target in zip(rel.source_columns, rel.target_columns, strict=True)
    ]


def where_sql(node: Node, params: Params, parent_alias: str | None = None) -> list[str]:
    """The conditions restricting `node`'s rows (joined to its parent, if any)."""
    clauses: list[str] = []
    if parent_alias is not None:
        clauses.extend(join_sql(parent_alias, node))
    for cond in node.conditions:
        clauses.append(
            tree_sql(node, cond, params)
            if isinstance(cond, LogicTree)
            else condition_sql(node, cond, params)
        )
    for child in node.embeds.values():
        if child.inner:
            clauses.append(exists_sql(node, child, params))
    for key, is_null in node.null_filters:
        clause = exists_sql(node, node.embeds[key], params)
        clauses.append(f"NOT {clause}" if is_null else clause)
    return clauses


def exists_sql(parent: Node, child: Node, params: Params) -> str:
    """EXISTS (a row of `child` matches this `parent` row and its filters)."""
    where = where_sql(child, params, parent.alias)
    source = qualified(child.relation.schema, child.relation.name)
    return f"EXISTS (SELECT 1 FROM {source} AS {child.alias} WHERE {' AND '.join(where)})"


def order_sql(node: Node, params: Params) -> str:
    """ORDER BY terms, or an empty string."""
    terms: list[str] = []
    for term in node.order:
        if term.relation is None:
            expr, _ = field_sql(node, term.field, params)
        else:
            child = node.embeds[term.relation]
            inner, _ = field_sql(child, term.field, params)
            source = qualified(child.relation.schema, child.relation.name)
            where = " AND ".join(join_sql(node.alias, child))
            expr = f"(SELECT {inner} FROM {source} AS {child.alias} WHERE {where})"
        piece = expr
        if term.direction:
            piece += " " + term.direction.upper()
        if term.nulls:
            piece += " NULLS " + term.nulls.upper()
        terms.append(piece)
    return (" ORDER BY " + ", ".join(terms)) if terms else ""


def select_sql(node: Node, params: Params) -> str:
    """The select list of `node`, embeds rendered as jsonb like PostgREST.

    A spread's columns are read from its row, which `spread_joins_sql(node)`
    joins: the FROM clause must end with it.
    """
    parts: list[str] = []
    for item in node.items:
        if item.star:
            parts.extend(f"{node.alias}.{quote_ident(name)}" for name in node.relation.columns)
        elif item.embed is not None and item.spread:
            child = node.embeds[item.key]
            if child.output_keys():
                parts.append(f"{child.alias}_s.*")
        elif item.embed is not None:
            if item.children:
                parts.append(
                    f"{embed_sql(node, node.embeds[item.key], params)} AS {quote_ident(item.key)}"
                )
        else:
            assert item.field is not None
            expr, _ = field_sql(node, item.field, params)
            if item.cast is not None:
                expr = f"CAST({expr} AS {cast_sql(item.cast)})"
            parts.append(f"{expr} AS {quote_ident(item.key)}")
    return ", ".join(parts)


def cast_sql(name: str) -> str:
    """A cast target known to the cache, as pg_catalog.<quoted name>."""
    array = name.endswith("[]")
    bare = name[:-2] if array else name
    from app.dataapi.schema import _TYPE_ALIASES

    bare = _TYPE_ALIASES.get(bare.lower(), bare)
    return f"pg_catalog.{quote_ident(bare)}" + ("[]" if array else "")


def range_sql(limit: int | None, offset: int, params: Params) -> str:
    """LIMIT/OFFSET with bind parameters."""
    sql = ""
    if limit is not None:
        sql += f" LIMIT {params.add(limit, 'bigint')}"
    if offset:
        sql += f" OFFSET {params.add(offset, 'bigint')}"
    return sql


def spread_row_sql(parent: Node, child: Node, params: Params) -> str:
    """`...rel(a,b)`: the one row of a to-one embed whose columns join `parent`'s row.

    The spreads inside it are joined to it (spread_joins_sql) and read with
    `alias.*`, never copied into each column, so nested spreads grow the SQL
    linearly with their depth.
    """
    source = qualified(child.relation.schema, child.relation.name)
    where = where_sql(child, params, parent.alias)
    return (
        f"SELECT {select_sql(child, params)} FROM {source} AS {child.alias}"
        f"{spread_joins_sql(child, params)} WHERE {' AND '.join(where)}"
    )


def spread_joins_sql(node: Node, params: Params) -> str:
    """A LEFT JOIN LATERAL for each spread of `node`, to follow `node` in a FROM
    clause: the rows whose columns `select_sql(node, params)` reads."""
    joins: list[str] = []
    seen: set[str] = set()
    for item in node.items:
        if not item.spread:
            continue
        child = node.embeds[item.key]
        if child.alias in seen or not child.output_keys():
            continue
        seen.add(child.alias)
        joins.append(
            f" LEFT JOIN LATERAL ({spread_row_sql(node, child, params)}) AS {child.alias}_s ON true"
        )
    return "".join(joins)


def embed_sql(parent: Node, child: Node, params: Params) -> str:
    """A correlated subquery giving the embedded rows as jsonb (object or array)."""
    rel = child.relationship
    assert rel is not None
    source = qualified(child.relation.schema, child.relation.name)
    where = where_sql(child, params, parent.alias)
    inner = (
        f"SELECT {select_sql(child, params)} FROM {source} AS {child.alias}"
        f"{spread_joins_sql(child, params)} WHERE {' AND '.join(where)}{order_sql(child, params)}"
        f"{range_sql(child.limit, child.offset, params)}"
    )
    row = f"{child.alias}_r"
    if rel.to_one:
        return f"(SELECT to_jsonb({row}) FROM ({inner}) AS {row})"
    return f"COALESCE((SELECT jsonb_agg({row}) FROM ({inner}) AS {row}), '[]'::jsonb)"
