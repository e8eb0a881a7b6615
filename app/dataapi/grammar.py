"""PostgREST's URL grammar: select, filters, logic trees, order, ranges.

The parser turns query-string text into plain data (the classes below). It
never decides whether a name exists; the planner checks every name against
the schema cache before anything reaches SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as _default

from app.errors import ApiError

OPERATORS = {
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "like",
    "ilike",
    "match",
    "imatch",
    "in",
    "is",
    "isdistinct",
    "fts",
    "plfts",
    "phfts",
    "wfts",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxr",
    "nxl",
    "adj",
}
QUANTIFIABLE = {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"}
FTS = {"fts", "plfts", "phfts", "wfts"}
IS_VALUES = {"null", "not_null", "true", "false", "unknown"}
RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict", "and", "or"}
_NAME_CHARS = re.compile(r"[^\s,.:()!\"'\-\>]", re.UNICODE)
# How deeply embeds in `select=` and and()/or() groups may nest. Each level is
# a recursive call in the parser and the planner and a subquery or a pair of
# parentheses in SQL, so without a cap a long enough query string exhausts
# Python's stack (a 500, or a dropped connection). PostgREST sets no limit;
# 32 is far beyond any request a person writes and far below the stack.
MAX_DEPTH = 32
# In a logic tree: an item that opens a nested group, [not.](and|or)( ; the
# operator of a condition, [not.]op[(modifier)]. ; the next brace.
_SUBTREE = re.compile(r"(not\.)?(and|or)\s*\(")
_TREE_OPERATION = re.compile(r"(?:not\.)?([a-z]+)(?:\([^,)]*\))?\.")
_BRACE = re.compile(r"[{}]")


class ParseError(ApiError):
    """PGRST100: the query string does not follow the grammar."""

    def __init__(self, what: str, text: str, column: int, details: str) -> None:
        # A NUL the request sent is shown as it was sent, never echoed raw.
        super().__init__(
            400,
            "PGRST100",
            f'"failed to parse {what} ({text})" (line 1, column {column})'.replace("\x00", "%00"),
            details=details.replace("\x00", "%00"),
        )


@dataclass(frozen=True)
class JsonStep:
    """One `->key` or `->>key` step of a JSON path."""

    arrow: str  # "->" or "->>"
    key: str


@dataclass(frozen=True)
class Field:
    """A column (or computed field) with an optional JSON path."""

    name: str
    path: tuple[JsonStep, ...] = ()

    @property
    def output_name(self) -> str:
        """The key PostgREST gives the value in a row: the last JSON key, else the column."""
        for step in reversed(self.path):
            if not re.fullmatch(r"-?\d+", step.key):
                return step.key
        return self.name


@dataclass
class SelectItem:
    """One entry of `select=`: a field, `*`, or an embedded resource."""

    field: Field | None = None  # None with star=False: an embed
    star: bool = False
    alias: str | None = None
    cast: str | None = None
    embed: str | None = None
    hints: list[str] = _default(default_factory=list)
    children: list[SelectItem] = _default(default_factory=list)
    spread: bool = False

    @property
    def key(self) -> str:
        """The name this item has in the output and in `embed.filter` parameters."""
        if self.alias:
            return self.alias
        if self.embed is not None:
            return self.embed
        assert self.field is not None
        return self.field.output_name


@dataclass(frozen=True)
class Condition:
    """`field=[not.]op[(quantifier)][(lang)].value`."""

    field: Field
    operator: str
    value: str | list[str]
    negated: bool = False
    quantifier: str | None = None  # any | all
    language: str | None = None


@dataclass
class LogicTree:
    """and(...) / or(...), possibly negated, over conditions and subtrees."""

    operator: str  # and | or
    items: list[Condition | LogicTree]
    negated: bool = False


@dataclass(frozen=True)
class OrderTerm:
    """One `order=` term: a field or `embed(field)`, direction, nulls placement."""

    field: Field
    relation: str | None = None
    direction: str | None = None  # asc | desc
    nulls: str | None = None  # first | last


class _Scanner:
    """A cursor over text, reporting errors with PostgREST's column numbers."""

    def __init__(self, text: str, what: str, shown: str | None = None, offset: int = 0) -> None:
        self.text = text
        self.pos = 0
        self.what = what
        self.shown = text if shown is None else shown
        self.offset = offset
        self.unclosed_quote = len(text)  # from here on no `"` has a closing one (_value_end)

    def error(self, expecting: str, quote: str = '"') -> ParseError:
        """A PGRST100 at the cursor, worded like PostgREST (parsec) words it."""
        if self.pos >= len(self.text):
            unexpected = "end of input"
        else:
            unexpected = f"unexpected {quote}{self.text[self.pos]}{quote}"
        return ParseError(
            self.what, self.shown, self.pos + 1 + self.offset, f"{unexpected} expecting {expecting}"
        )

    def peek(self, n: int = 1) -> str:
        """The next `n` characters, without consuming them."""
        return self.text[self.pos : self.pos + n]

    def eat(self, token: str) -> bool:
        """Consume `token` if it comes next."""
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def skip_spaces(self) -> None:
        """Consume spaces."""
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def done(self) -> bool:
        """True at the end of the text."""
        return self.pos >= len(self.text)

    def name(self, expecting: str = "field name (* or [a..z0..9_$])") -> str:
        """An identifier: a quoted name or a run of name characters."""
        if self.peek() == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                raise self.error(expecting)
            value = self.text[self.pos + 1 : end]
            self._refuse_nul(value, self.pos + 1)
            self.pos = end + 1
            return value
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == " " and self.pos > start:
                # Spaces inside names are allowed, trailing ones are not:
                # look past the whole run once, not once per space.
                after = self.pos
                while after < len(self.text) and self.text[after] == " ":
                    after += 1
                if after < len(self.text) and _NAME_CHARS.match(self.text[after]):
                    self.pos = after
                    continue
                break
            if not _NAME_CHARS.match(ch):
                break
            self.pos += 1
        if self.pos == start:
            raise self.error(expecting)
        value = self.text[start : self.pos]
        self._refuse_nul(value, start)
        return value

    def too_deep(self, what: str) -> ParseError:
        """The PGRST100 for one level of nesting more than MAX_DEPTH (the cursor
        is just past its opening parenthesis)."""
        return ParseError(
            self.what,
            self.shown,
            self.pos + self.offset,
            f'unexpected "(": {what} nest at most {MAX_DEPTH} levels deep',
        )

    def _refuse_nul(self, value: str, start: int) -> None:
        """PGRST100 for a NUL in a name: names become SQL text, and PostgreSQL's
        protocol ends a query at NUL (the server drops it as malformed)."""
        at = value.find("\x00")
        if at >= 0:
            raise ParseError(
                self.what,
                self.shown,
                start + at + 1 + self.offset,
                "unexpected NUL character (%00) in a name",
            )

    def json_path(self) -> tuple[JsonStep, ...]:
        """Zero or more `->key`/`->>key` steps; negative array indexes need digits."""
        steps: list[JsonStep] = []
        while True:
            if self.eat("->>"):
                arrow = "->>"
            elif self.peek(2) == "->":
                self.pos += 2
                arrow = "->"
            else:
                return tuple(steps)
            if self.peek() == "-":
                self.pos += 1
                start = self.pos
                while self.peek().isdigit():
                    self.pos += 1
                if self.pos == start:
                    raise self.error("digit")
                steps.append(JsonStep(arrow, self.text[start - 1 : self.pos]))
                continue
            steps.append(JsonStep(arrow, self.name("json key")))

    def field(self) -> Field:
        """A name and its JSON path."""
        name = self.name()
        return Field(name, self.json_path())


# -- select ----------------------------------------------------------------


def parse_select(text: str) -> list[SelectItem]:
    """`select=` as a tree of items."""
    scanner = _Scanner(text, "select parameter")
    items = _select_list(scanner, depth=0)
    if not scanner.done():
        raise scanner.error('"," or end of input')
    return items


def _select_list(s: _Scanner, *, depth: int) -> list[SelectItem]:
    """Items at `depth` embeds down (0: the top level)."""
    items: list[SelectItem] = []
    if depth and s.peek() == ")":
        return items
    while True:
        s.skip_spaces()
        items.append(_select_item(s, depth))
        s.skip_spaces()
        if not s.eat(","):
            return items


def _select_item(s: _Scanner, depth: int) -> SelectItem:
    if s.eat("*"):
        return SelectItem(star=True)
    spread = s.eat("...")
    first = s.name()
    alias: str | None = None
    if s.peek() == ":" and s.peek(2) != "::":
        s.pos += 1
        alias = first
        first = s.name()
    if s.peek() in ("!", "("):
        hints: list[str] = []
        while s.eat("!"):
            hints.append(s.name("embed hint"))
        if not s.eat("("):
            raise s.error('"("')
        if depth >= MAX_DEPTH:
            raise s.too_deep("embedded resources")
        children = _select_list(s, depth=depth + 1)
        if not s.eat(")"):
            raise s.error('")"')
        return SelectItem(alias=alias, embed=first, hints=hints, children=children, spread=spread)
    if spread:
        raise s.error('"("')
    path = s.json_path()
    cast: str | None = None
    if s.eat("::"):
        start = s.pos
        while s.pos < len(s.text) and (s.text[s.pos].isalnum() or s.text[s.pos] in "_ []"):
            s.pos += 1
        cast = s.text[start : s.pos].strip()
        if not cast:
            raise s.error("cast type")
    return SelectItem(field=Field(first, path), alias=alias, cast=cast)


# -- filters and logic trees -----------------------------------------------


def parse_condition(field_text: str, value: str) -> Condition:
    """A horizontal filter `field=value` from the query string."""
    scanner = _Scanner(field_text, "filter field")
    column = scanner.field()
    if not scanner.done():
        raise scanner.error("end of input")
    return _operation(column, value, in_tree=False)


def looks_like_filter(value: str) -> bool:
    """True when `value` starts with an operator (used to tell RPC arguments apart)."""
    head = value[4:] if value.startswith("not.") else value
    op = re.match(r"([a-z]+)(\([a-z]+\))?\.", head)
    return bool(op and op.group(1) in OPERATORS)


def _operation(column: Field, text: str, *, in_tree: bool) -> Condition:
    negated = False
    rest = text
    if rest.startswith("not."):
        negated = True
        rest = rest[4:]
    match = re.match(r"([a-z]+)(?:\(([^)]*)\))?\.", rest, re.DOTALL)
    if not match or match.group(1) not in OPERATORS:
        raise ApiError(
            400,
            "PGRST100",
            f'"failed to parse filter ({text})" (line 1, column 1)',
            details="unexpected operator; expecting one of: " + ", ".join(sorted(OPERATORS)),
        )
    op, modifier = match.group(1), match.group(2)
    raw = rest[match.end() :]
    quantifier = language = None
    if modifier is not None:
        if op in FTS:
            language = modifier
        elif op in QUANTIFIABLE and modifier in ("any", "all"):
            quantifier = modifier
        else:
            raise ApiError(
                400,
                "PGRST100",
                f'"failed to parse filter ({text})" (line 1, column {len(op) + 2})',
                details=f"unexpected modifier '{modifier}' for operator '{op}'",
            )
    if op == "in":
        return Condition(column, op, _list(raw, text), negated)
    if op == "is":
        if raw.lower() not in IS_VALUES:
            raise ApiError(
                400,
                "PGRST100",
                f'"failed to parse filter ({text})" (line 1, column {len(text) - len(raw) + 1})',
                details="unexpected value; expecting null, not_null, true, false or unknown",
            )
        return Condition(column, op, raw.lower(), negated)
    value = _unquote(raw) if in_tree else raw
    return Condition(column, op, value, negated, quantifier, language)


def _unquote(value: str) -> str:
    value = value.strip() if value.strip().startswith('"') else value
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _list(raw: str, text: str) -> list[str]:
    """`(a,b,"c,d")` as a list of strings."""
    inner = raw.strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        raise ApiError(
            400,
            "PGRST100",
            f'"failed to parse filter ({text})" (line 1, column {len(text) - len(raw) + 1})',
            details='unexpected value; expecting "("',
        )
    body = inner[1:-1]
    if not body.strip():
        return []
    return [_unquote(part.strip()) for part in _split(body)]


def _split(text: str) -> list[str]:
    """Split on commas outside quotes and parentheses."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            current.append(ch)
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            current.append(ch)
        elif ch in "({":
            depth += 1
            current.append(ch)
        elif ch in ")}":
            depth -= 1
            current.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def parse_logic(key_op: str, value: str, negated: bool) -> LogicTree:
    """`or=(...)`/`and=(...)` (key_op is the operator, value the parenthesised list).

    One pass over `value` with one scanner: each character is read once, so
    the time is linear in the length, and groups nest at most MAX_DEPTH deep.
    """
    shown_prefix = ("not." if negated else "") + key_op
    scanner = _Scanner(value, "logic tree", value, len(shown_prefix))
    tree = _tree(scanner, key_op, negated, depth=1)
    _skip_whitespace(scanner)
    if not scanner.done():
        raise scanner.error("end of input")
    return tree


def _skip_whitespace(s: _Scanner) -> None:
    while s.pos < len(s.text) and s.text[s.pos].isspace():
        s.pos += 1


def _tree(s: _Scanner, op: str, negated: bool, depth: int) -> LogicTree:
    """A parenthesised list of conditions and groups, from the cursor."""
    _skip_whitespace(s)
    if not s.eat("("):
        raise ParseError(
            "logic tree", s.shown, s.pos + 1 + s.offset, 'unexpected input expecting "("'
        )
    if depth > MAX_DEPTH:
        raise s.too_deep("logic trees")
    _skip_whitespace(s)
    if s.peek() == ")":
        raise s.error(
            "field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)"
        )
    items: list[Condition | LogicTree] = []
    while True:
        _skip_whitespace(s)
        sub = _SUBTREE.match(s.text, s.pos)
        if sub:
            s.pos = sub.end(2)
            items.append(_tree(s, sub.group(2), sub.group(1) is not None, depth + 1))
        else:
            column = s.field()
            if not s.eat("."):
                raise s.error('"."')
            end = _value_end(s)
            items.append(_operation(column, s.text[s.pos : end].strip(), in_tree=True))
            s.pos = end
        _skip_whitespace(s)
        if s.eat(")"):
            return LogicTree(op, items, negated)
        if not s.eat(","):
            raise s.error('"," or ")"')


def _value_end(s: _Scanner) -> int:
    """Where the condition value at the cursor (after `field.`) ends, read as
    PostgREST reads it: past the operator, an in-list `(...)`, a value in
    double quotes or an array `{...}` may hold commas; anything else ends at
    the first "," or ")". Linear: no character is looked at twice, except
    while searching for a closing quote, which happens at most once per
    parse when none is found (s.unclosed_quote).
    """
    text = s.text
    i = s.pos
    operation = _TREE_OPERATION.match(text, i)
    if operation:
        i = operation.end()
        while i < len(text) and text[i].isspace():
            i += 1
        ch = text[i] if i < len(text) else ""
        if operation.group(1) == "in" and ch == "(":
            i = _list_end(s, i + 1)
        elif ch == '"':
            i = _quoted_end(s, i)
        elif ch == "{":
            brace = _BRACE.search(text, i + 1)
            if brace and brace.group() == "}":
                i = brace.end()
    while i < len(text) and text[i] not in ",)":
        i += 1
    return i


def _list_end(s: _Scanner, i: int) -> int:
    """Just past the ")" closing an in-list whose items start at `i`."""
    text = s.text
    while i < len(text):
        if text[i] == '"':
            i = _quoted_end(s, i)
            continue
        if text[i] == ")":
            return i + 1
        i += 1
    return i


def _quoted_end(s: _Scanner, i: int) -> int:
    """Just past the double-quoted text opening at `i`; a quote that is never
    closed is an ordinary character."""
    if i < s.unclosed_quote:
        close = _closing_quote(s.text, i + 1)
        if close >= 0:
            return close + 1
        # No quote after this one closes either: never search again.
        s.unclosed_quote = i
    return i + 1


def _closing_quote(text: str, pos: int) -> int:
    """The index of the `"` closing a quote opened just before `pos` (a backslash
    escapes the next character), or -1."""
    i = pos
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i
        else:
            i += 1
    return -1


# -- order -----------------------------------------------------------------


def parse_order(text: str) -> list[OrderTerm]:
    """`order=a.desc.nullslast,b,rel(c).asc`."""
    s = _Scanner(text, "order")
    terms: list[OrderTerm] = []
    while True:
        s.skip_spaces()
        name = s.name()
        relation: str | None = None
        if s.eat("("):
            relation = name
            column = s.field()
            if not s.eat(")"):
                raise s.error('")"')
        else:
            column = Field(name, s.json_path())
        direction = nulls = None
        if s.eat("."):
            direction, nulls = _order_modifiers(s)
        terms.append(OrderTerm(column, relation, direction, nulls))
        if s.done():
            return terms
        if not s.eat(","):
            raise s.error('"," or end of input', quote="'")


def _order_modifiers(s: _Scanner) -> tuple[str | None, str | None]:
    direction = nulls = None
    if s.eat("desc"):
        direction = "desc"
    elif s.eat("asc"):
        direction = "asc"
    if direction is not None and not s.eat("."):
        return direction, None
    if s.eat("nullsfirst"):
        nulls = "first"
    elif s.eat("nullslast"):
        nulls = "last"
    elif direction is None:
        raise s.error('"asc", "desc", "nullsfirst" or "nullslast"', quote="'")
    else:
        raise s.error('"nullsfirst" or "nullslast"', quote="'")
    return direction, nulls


def parse_columns(text: str) -> list[str]:
    """`columns=a,b` for inserts."""
    s = _Scanner(text, "columns")
    names: list[str] = []
    while True:
        s.skip_spaces()
        names.append(s.name())
        s.skip_spaces()
        if s.done():
            return names
        if not s.eat(","):
            raise s.error('"," or end of input')


def parse_nonnegative(name: str, text: str) -> int:
    """An integer query parameter such as limit or offset."""
    try:
        value = int(text)
    except ValueError:
        raise ParseError(name, text, 1, "unexpected input expecting an integer") from None
    if abs(value) >= 2**63:
        raise ParseError(name, text, 1, "integer out of range")
    return value
