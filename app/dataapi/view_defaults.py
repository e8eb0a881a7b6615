"""Which default an INSERT through a view stores in a column it leaves out.

A view column has no default of its own unless one was set on it; an
insert through a simple view then leaves the column to the relation
underneath. The catalog does not say which base column a view column
shows, so it is read from the view's stored query tree (pg_rewrite), as
PostgREST reads view keys: only `resorigtbl`/`resorigcol` of the Query's
own target list, which name a relation column shown unchanged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.dataapi.schema import Column


# One token of a stored query tree (nodeToString): a bracket, or a run of
# other characters where a backslash escapes the next one.
# Whitespace is what PostgreSQL's pg_strtok splits on (space, tab, newline)
# and no more: other characters, \r or a no-break space in a name among
# them, are written out unescaped and belong to the token.
_TREE_TOKEN = re.compile(r"[(){}]|(?:\\.|[^ \t\n(){}\\])+", re.DOTALL)


def plain_columns(tree: str) -> dict[int, tuple[int, int]]:
    """The columns of a view that show one relation column unchanged.

    `tree` is the view's stored query, pg_rewrite.ev_action as text:
    `({QUERY :field value ...})`. Each TARGETENTRY of the Query's own
    targetList is an output column: `resno` its number in the view,
    `resorigtbl` and `resorigcol` the relation and column it shows as is
    (0 for an expression). Nested nodes (subqueries, expressions) sit deeper
    and are skipped. Returns {view column number: (relation oid, column number)}.
    """
    found: dict[int, tuple[int, int]] = {}
    depth = 0
    # Per depth: "type" (a node's type comes next), "name", "value" or "list".
    expect: dict[int, str] = {}
    field_name: dict[int, str] = {}
    entry: dict[str, str] = {}
    for piece in _TREE_TOKEN.findall(tree):
        if piece in ("(", "{"):
            depth += 1
            expect[depth] = "type" if piece == "{" else "list"
            entry = {} if depth == 4 else entry
            continue
        if piece in (")", "}"):
            if depth == 4 and field_name.get(2) == ":targetList":
                try:
                    if entry.get(":resjunk") == "false" and entry.get(":resorigtbl", "0") != "0":
                        found[int(entry[":resno"])] = (
                            int(entry[":resorigtbl"]),
                            int(entry[":resorigcol"]),
                        )
                except (KeyError, ValueError):
                    pass
            depth -= 1
            if expect.get(depth) == "value":  # the bracketed value of a field ended
                expect[depth] = "name"
            continue
        if depth not in (2, 4) or (depth == 4 and field_name.get(2) != ":targetList"):
            continue
        state = expect.get(depth)
        if state == "type":
            expect[depth] = "name"
        elif state == "name":
            field_name[depth] = piece
            expect[depth] = "value"
        elif state == "value":
            if depth == 4:
                entry[field_name[4]] = piece
            expect[depth] = "name"
    return found


class ViewDefaults:
    """What an INSERT through a view stores in a column it leaves out.

    PostgreSQL takes the view column's own default, else (for a simple view)
    leaves the column to the relation underneath, down to the base table's
    default, its domain's, or NULL.
    """

    def __init__(self, queries: list[dict[str, Any]], columns: list[dict[str, Any]]) -> None:
        # json_build_object writes oids as strings; the query tree as numbers.
        self.shows = {int(q["view"]): plain_columns(q["query"]) for q in queries}
        self.columns = {(int(c["rel"]), int(c["num"])): c for c in columns}

    def column(
        self, view: int, number: int, column: Column, base: tuple[str, str] | None
    ) -> Column:
        """`column` of `view` with the default a left-out value takes."""
        own = self.columns.get((view, number), {}).get("default")
        if own is not None:
            return replace(column, default=own, default_known=True)
        if base is None:
            # Not a simple view: whatever is underneath (an INSTEAD OF
            # trigger, say) would get NULL, not the base table's default.
            return replace(column, default_known=column.default is not None)
        known, default = self._underneath(view, number, set())
        return replace(column, default=default, default_known=known)

    def _underneath(
        self, rel: int, number: int, seen: set[tuple[int, int]]
    ) -> tuple[bool, str | None]:
        """(known, default) of column `number` of `rel`, following the views down."""
        info = self.columns.get((rel, number))
        if info is None:
            return False, None
        if info["default"] is not None:
            return True, info["default"]
        if rel in self.shows:
            origin = self.shows[rel].get(number)
            if origin is None or origin in seen:
                return False, None
            return self._underneath(*origin, seen | {origin})
        if info["automatic"]:
            return False, None
        return True, info["type_default"]
