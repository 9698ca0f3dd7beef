"""What a statement asks of each table: the columns an index could serve, found by parsing.

The index advisor needs, per table, the columns a statement compares for equality, the ones
it bounds by a range, the join keys, the ORDER BY and GROUP BY keys, and the *expressions* it
wraps columns in — because ``UPPER("email"::text) = UPPER(?)`` (Django's ``__iexact``) needs an
expression index, and ``"email"::text LIKE 'ab%'`` (``__startswith``) a pattern-ops index: a
plain index on ``email`` serves neither. Statements are parsed with sqlglot in the dialect of
their source (``postgres`` or ``mysql``), each distinct fingerprint once.

* :func:`analyze_sql` — one statement → :class:`StatementAnalysis` (its scopes and column uses).
  Aliases are resolved to tables, Django's quoted ``"table"."column"`` form included, in every
  SELECT scope (subqueries and correlated references too); UPDATE and DELETE are analysed on
  their target table. A statement sqlglot cannot parse yields an analysis whose ``error`` says
  why — it is reported, never raised.
* :func:`analyze_workload` — a ``statement_stats`` frame → :class:`WorkloadAnalysis` with a
  ``uses`` frame (one row per fingerprint × scope × table × column × role), the tables of each
  statement, and the failures.
* :func:`parse_index_definition` — ``pg_indexes.indexdef`` → :class:`IndexDefinition` (keys with
  their expressions, operator classes and order; INCLUDE columns; partial-index predicate).
* :func:`expression_key` — the normal form used to compare a query's expression with an index
  expression (``UPPER(CAST("t"."email" AS TEXT))`` and ``upper((email)::text)`` → ``upper(email)``).

Fingerprints replace literals with ``?``, so a LIKE pattern's shape (prefix or contains) and a
``date_trunc`` unit are read from the statement's ``sample_sql`` when it is available.

Example::

    >>> a = analyze_sql('SELECT "u"."id" FROM "app_user" "u" WHERE UPPER("u"."email"::text) = UPPER(?)')
    >>> [(u.table, u.column, u.role, u.key) for u in a.uses]
    [('app_user', 'email', 'eq', 'upper(email)')]
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd
import sqlglot
from sqlglot import exp

from auditkit.lazy_re import compile_later
from auditkit.sql.fingerprint import Dialect

# sqlglot logs a warning for every statement it reads as an opaque command (DDL it does not
# model, SET CONSTRAINTS…): the analysis already records that as the statement's error, and a
# consultant's terminal is no place for a line per statement
logging.getLogger("sqlglot").setLevel(logging.ERROR)

__all__ = [
    "ROLES",
    "ColumnUse",
    "IndexDefinition",
    "IndexKey",
    "Scope",
    "StatementAnalysis",
    "WorkloadAnalysis",
    "analyze_sql",
    "analyze_workload",
    "expression_key",
    "parse_index_definition",
]

#: What a column does in a statement. ``eq``/``in``/``null`` can lead a btree index, ``range``
#: follows them, ``order``/``group`` can spare a sort; ``like`` needs a pattern-ops index
#: (``pattern`` says prefix/contains/unknown); ``ilike`` and ``or`` are recorded but no btree
#: index serves them; ``join`` is a join key.
ROLES: dict[str, str] = {
    "eq": "compared for equality with a value (or a correlated outer column)",
    "in": "IN (list or subquery)",
    "null": "IS NULL",
    "range": "<, <=, >, >=, BETWEEN",
    "like": "LIKE pattern (prefix patterns can use a pattern-ops index)",
    "ilike": "ILIKE pattern (no btree index serves it)",
    "join": "equality with a column of another table in the same scope",
    "order": "ORDER BY key",
    "group": "GROUP BY key",
    "or": "inside an OR: a single btree index does not serve it",
}

_UNIT_WORDS = {"day", "week", "month", "year", "hour", "minute", "second", "quarter", "decade"}


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ColumnUse:
    """One use of one column (or of an expression on it) by one statement scope."""

    table: str
    column: str
    role: str
    scope: int = 0
    alias: str | None = None
    #: normal form of the indexed key: the column name, or the expression (``upper(email)``)
    key: str = ""
    #: SQL of the key for DDL, unqualified and quoted (``UPPER("email")``); None for a column
    expression_sql: str | None = None
    #: the outermost function of an expression key (upper, lower, date_trunc, date, …)
    function: str | None = None
    #: date_trunc unit when known ('day', 'month', …)
    unit: str | None = None
    #: LIKE pattern shape: prefix, contains, suffix, exact or unknown
    pattern: str | None = None
    descending: bool = False
    #: position of an ORDER BY / GROUP BY key (0-based)
    position: int | None = None

    @property
    def is_expression(self) -> bool:
        return self.expression_sql is not None


@dataclass(frozen=True, slots=True)
class Scope:
    """One SELECT (or the target of an UPDATE/DELETE): its table references and LIMIT."""

    id: int
    tables: Mapping[str, str]
    limit: bool = False
    kind: str = "select"


@dataclass
class StatementAnalysis:
    """What one statement asks of its tables."""

    sql: str
    kind: str = "other"
    tables: tuple[str, ...] = ()
    scopes: list[Scope] = field(default_factory=list)
    uses: list[ColumnUse] = field(default_factory=list)
    #: why the statement could not be analysed (None when it was)
    error: str | None = None
    #: table references whose columns could not be attributed (unqualified in a join)
    unresolved: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


_USE_COLUMNS = [
    "fingerprint_id",
    "scope",
    "alias",
    "table",
    "column",
    "role",
    "key",
    "expression_sql",
    "function",
    "unit",
    "pattern",
    "descending",
    "position",
    "limit",
    "kind",
]


@dataclass
class WorkloadAnalysis:
    """Every distinct statement of a workload, analysed once.

    ``uses``: one row per fingerprint × scope × column use (columns: fingerprint_id, scope,
    alias, table, column, role, key, expression_sql, function, unit, pattern, descending,
    position, limit, kind). ``tables``: fingerprint_id, table, kind (one row per table a
    statement touches). ``failures``: fingerprint_id, fingerprint, error.
    """

    uses: pd.DataFrame
    tables: pd.DataFrame
    failures: pd.DataFrame
    statements: dict[str, StatementAnalysis] = field(default_factory=dict)

    @property
    def parsed(self) -> int:
        return sum(1 for s in self.statements.values() if s.ok)

    def summary(self) -> str:
        return f"{len(self.statements)} distinct statements: {self.parsed} analysed, {len(self.failures)} not parsed"


# --------------------------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------------------------
_TEXT_TYPES = {
    exp.DataType.Type.TEXT,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.NCHAR,
}


def _is_text_cast(node: exp.Expression) -> bool:
    if not isinstance(node, exp.Cast):
        return False
    to = node.args.get("to")
    return isinstance(to, exp.DataType) and to.this in _TEXT_TYPES


def _unwrap(node: exp.Expression) -> exp.Expression:
    """Strip parentheses and casts to text (``"email"::text`` is the column for an index)."""
    while True:
        if isinstance(node, exp.Paren) or (
            _is_text_cast(node)
            and isinstance(_strip_parens(node.this), exp.Column | exp.Cast | exp.Paren)
        ):
            node = node.this
        else:
            return node


def _strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _normalise(node: exp.Expression) -> exp.Expression:
    """A copy of ``node`` in the normal form used to compare expressions."""

    def rule(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Paren):
            return n.this
        if isinstance(n, exp.Cast) and (
            _is_text_cast(n) or isinstance(_strip_parens(n.this), exp.Literal)
        ):
            inner = _strip_parens(n.this)
            if isinstance(inner, exp.Literal | exp.Column) or _is_text_cast(n):
                return n.this
        if isinstance(n, exp.Column):
            name = n.this
            ident = exp.to_identifier(name.this if isinstance(name, exp.Identifier) else str(name))
            return exp.column(ident.this.lower() if not ident.quoted else ident.this)
        if (
            isinstance(n, exp.Anonymous)
            and str(n.this).lower() == "timezone"
            and len(n.expressions) == 2
        ):
            return exp.AtTimeZone(this=n.expressions[1], zone=n.expressions[0])
        if isinstance(n, exp.Literal) and n.is_string:
            return exp.Literal.string(n.this.lower())
        if isinstance(n, exp.Var) and n.this.lower() in _UNIT_WORDS:
            return exp.Literal.string(n.this.lower())
        return n

    out = node.copy()
    for _ in range(3):  # unwrapping can expose another layer
        out = out.transform(rule)
    return out


def expression_key(node: exp.Expression | str, dialect: Dialect = "postgres") -> str:
    """Normal form of a column or expression for comparing query keys with index keys.

    Parentheses, table qualifiers and casts to text are dropped, names and string literals are
    lower-cased, ``timezone(z, x)`` is ``x AT TIME ZONE z``::

        >>> expression_key('upper((email)::text)')
        'upper(email)'
        >>> expression_key('UPPER(CAST("app_user"."email" AS TEXT))')
        'upper(email)'
    """
    tree: exp.Expression
    if isinstance(node, str):
        try:
            tree = cast(exp.Expression, sqlglot.parse_one(node, dialect=dialect))
        except Exception:
            return re.sub(r"\s+", " ", node.strip().lower())
    else:
        tree = node
    norm = _normalise(tree)
    if isinstance(norm, exp.Column):
        return norm.name
    text = norm.sql(dialect="postgres").lower()
    return text.replace('"', "")


def _ddl_sql(node: exp.Expression, dialect: Dialect) -> str:
    """The expression for CREATE INDEX: unqualified, quoted identifiers, text casts dropped."""

    def strip_casts(n: exp.Expression) -> exp.Expression:
        if _is_text_cast(n) and isinstance(_strip_parens(n.this), exp.Column):
            return _strip_parens(n.this).copy()
        return n

    def unqualify(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column):
            return exp.column(exp.to_identifier(n.name, quoted=True))
        return n

    return node.copy().transform(strip_casts).transform(unqualify).sql(dialect=dialect)


# --------------------------------------------------------------------------------------------
# statement analysis
# --------------------------------------------------------------------------------------------
@dataclass
class _Term:
    """A side of a comparison: a column, an expression over one table's columns, or a value."""

    kind: str  # column | expression | value | mixed
    alias: str | None = None
    table: str | None = None
    column: str | None = None
    node: exp.Expression | None = None
    outer: bool = False


class _Analyzer:
    def __init__(
        self, sql: str, dialect: Dialect, known_columns: Mapping[str, Iterable[str]] | None
    ) -> None:
        self.sql = sql
        self.dialect = dialect
        self.known = {t: set(c) for t, c in (known_columns or {}).items()}
        self.result = StatementAnalysis(sql)
        self.cte_names: set[str] = set()
        #: an execution of the statement with its literals, parsed when first needed
        self.sample: str | None = None
        self._sample_tree: exp.Expression | bool | None = None
        self.tree: exp.Expression | None = None

    # -- entry ---------------------------------------------------------------------------------
    def run(self, tree: exp.Expression) -> StatementAnalysis:
        res = self.result
        res.kind = _kind_of(tree)
        self.cte_names = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        res.tables = tuple(
            dict.fromkeys(
                t.name for t in tree.find_all(exp.Table) if t.name and t.name not in self.cte_names
            )
        )
        self.tree = tree
        if isinstance(tree, exp.Update | exp.Delete):
            target = tree.this
            if isinstance(target, exp.Table) and target.name:
                aliases = {target.alias_or_name: target.name}
                extras: list[exp.Expression] = []
                from_ = tree.args.get("from_") or tree.args.get("from")
                if isinstance(from_, exp.From):
                    extras.append(from_.this)
                extras += [j.this for j in tree.args.get("joins") or []]
                extras += list(tree.args.get("using") or [])
                for extra in extras:
                    if isinstance(extra, exp.Table) and extra.name:
                        aliases[extra.alias_or_name] = extra.name
                scope = Scope(len(res.scopes), aliases, False, res.kind)
                res.scopes.append(scope)
                where = tree.args.get("where")
                if where is not None:
                    for conj in _conjuncts(where.this):
                        self._predicate(conj, scope, {})
        for select in tree.find_all(exp.Select):
            if not _has_select_ancestor(select):
                self._select(select, {})
        return res

    # -- scopes ---------------------------------------------------------------------------------
    def _select(self, select: exp.Select, outer: Mapping[str, str]) -> None:
        res = self.result
        local: dict[str, str] = {}
        derived: set[str] = set()
        from_ = select.args.get("from_") or select.args.get("from")
        sources = [from_.this] if isinstance(from_, exp.From) else []
        sources += [j.this for j in select.args.get("joins") or []]
        for src in sources:
            if isinstance(src, exp.Table) and src.name and src.name not in self.cte_names:
                local[src.alias_or_name] = src.name
            elif src is not None:
                derived.add(src.alias_or_name)
        limit = select.args.get("limit") is not None or select.args.get("fetch") is not None
        scope = Scope(len(res.scopes), dict(local), limit, "select")
        res.scopes.append(scope)
        outer_only = {k: v for k, v in outer.items() if k not in local and k not in derived}
        conditions: list[exp.Expression] = []
        where = select.args.get("where")
        if where is not None:
            conditions.append(where.this)
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                conditions.append(on)
        for cond in conditions:
            for conj in _conjuncts(cond):
                self._predicate(conj, scope, outer_only)
        self._keys(select, scope, "order")
        self._keys(select, scope, "group")
        # nested selects of this scope see its tables as outer references
        visible = {**outer_only, **local}
        for sub in select.find_all(exp.Select):
            if sub is not select and sub.parent_select is select:
                self._select(sub, visible)

    # -- predicates -----------------------------------------------------------------------------
    def _predicate(self, node: exp.Expression, scope: Scope, outer: Mapping[str, str]) -> None:
        node = _strip_parens(node)
        if isinstance(node, exp.Or):
            for col in node.find_all(exp.Column):
                if _inside_subquery(col, node):
                    continue
                term = self._term(col, scope, outer)
                if term.kind == "column" and not term.outer:
                    self._add(scope, term, "or")
            return
        if isinstance(node, (exp.Not, exp.NEQ)):
            return
        if isinstance(node, exp.EQ | exp.NullSafeEQ):
            self._comparison(node.this, node.expression, scope, outer, "eq")
        elif isinstance(node, exp.Is):
            if isinstance(node.expression, exp.Null):
                term = self._term(node.this, scope, outer)
                if term.kind in ("column", "expression") and not term.outer:
                    self._add(scope, term, "null")
        elif isinstance(node, exp.In):
            term = self._term(node.this, scope, outer)
            if term.kind in ("column", "expression") and not term.outer:
                self._add(scope, term, "in")
        elif isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
            self._comparison(node.this, node.expression, scope, outer, "range")
        elif isinstance(node, exp.Between):
            term = self._term(node.this, scope, outer)
            if term.kind in ("column", "expression") and not term.outer:
                self._add(scope, term, "range")
        elif isinstance(node, exp.Escape) and isinstance(node.this, exp.Like | exp.ILike):
            self._predicate(node.this, scope, outer)
        elif isinstance(node, exp.Like):
            term = self._term(node.this, scope, outer)
            if term.kind in ("column", "expression") and not term.outer:
                self._add(scope, term, "like", pattern=self._like_pattern(node))
        elif isinstance(node, exp.ILike):
            term = self._term(node.this, scope, outer)
            if term.kind in ("column", "expression") and not term.outer:
                self._add(scope, term, "ilike")

    def _comparison(
        self,
        left: exp.Expression,
        right: exp.Expression,
        scope: Scope,
        outer: Mapping[str, str],
        role: str,
    ) -> None:
        lt, rt = self._term(left, scope, outer), self._term(right, scope, outer)
        indexable = ("column", "expression")
        if lt.kind in indexable and rt.kind in indexable:
            if lt.outer and rt.outer:
                return
            if lt.outer or rt.outer:
                # correlated subquery: the local side is looked up once per outer row
                local = rt if lt.outer else lt
                self._add(scope, local, role)
                return
            if lt.alias != rt.alias and role == "eq":
                self._add(scope, lt, "join")
                self._add(scope, rt, "join")
            return
        if lt.kind in indexable and rt.kind == "value" and not lt.outer:
            self._add(scope, lt, role)
        elif rt.kind in indexable and lt.kind == "value" and not rt.outer:
            self._add(scope, rt, role)

    def _term(self, node: exp.Expression, scope: Scope, outer: Mapping[str, str]) -> _Term:
        node = _unwrap(node)
        cols = [c for c in node.find_all(exp.Column) if not _inside_subquery(c, node)]
        if isinstance(node, exp.Subquery | exp.Select):
            return _Term("value")
        if not cols:
            return _Term("value")
        refs = {self._resolve(c, scope, outer) for c in cols}
        if len(refs) != 1 or None in refs:
            if None in refs:
                self.result.unresolved += 1
            return _Term("mixed")
        alias, table, is_outer = next(iter(refs))  # type: ignore[misc]
        if isinstance(node, exp.Column):
            return _Term("column", alias, table, node.name, None, is_outer)
        return _Term("expression", alias, table, cols[0].name, node, is_outer)

    def _resolve(
        self, col: exp.Column, scope: Scope, outer: Mapping[str, str]
    ) -> tuple[str, str, bool] | None:
        qualifier = col.table
        if qualifier:
            if qualifier in scope.tables:
                return qualifier, scope.tables[qualifier], False
            if qualifier in outer:
                return qualifier, outer[qualifier], True
            return None
        if len(scope.tables) == 1:
            alias, table = next(iter(scope.tables.items()))
            return alias, table, False
        owners = [(a, t) for a, t in scope.tables.items() if col.name in self.known.get(t, ())]
        if len(owners) == 1:
            return owners[0][0], owners[0][1], False
        return None

    # -- ORDER BY / GROUP BY ----------------------------------------------------------------------
    def _keys(self, select: exp.Select, scope: Scope, which: str) -> None:
        clause = select.args.get(which)
        if clause is None:
            return
        items = clause.expressions
        projections = select.expressions
        by_alias = {p.alias: p.this for p in projections if isinstance(p, exp.Alias)}
        for pos, item in enumerate(items):
            desc = False
            node = item
            if isinstance(item, exp.Ordered):
                desc = bool(item.args.get("desc"))
                node = item.this
            if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
                i = int(node.this) - 1
                if 0 <= i < len(projections):
                    p = projections[i]
                    node = p.this if isinstance(p, exp.Alias) else p
            elif isinstance(node, exp.Column) and not node.table and node.name in by_alias:
                node = by_alias[node.name]
            term = self._term(node, scope, {})
            if term.kind in ("column", "expression"):
                self._add(scope, term, which, descending=desc, position=pos)

    # -- details from the sample ------------------------------------------------------------------
    def _like_pattern(self, node: exp.Like) -> str:
        value = _literal_of(node.expression)
        if value is None:
            twin = self._from_sample(node)
            value = _literal_of(twin.expression) if twin is not None else None
        return _pattern_shape(value)

    def _from_sample(self, node: exp.Expression) -> exp.Expression | None:
        """The node of the sample statement that stands where ``node`` stands in the fingerprint
        (same type, same ordinal), when it holds no placeholder; None otherwise."""
        if self._sample_tree is None:
            self._sample_tree = False
            if self.sample and self.sample != self.sql:
                with contextlib.suppress(Exception):
                    self._sample_tree = _parse(self.sample, self.dialect)
        if self._sample_tree is False or self.tree is None:
            return None
        assert isinstance(self._sample_tree, exp.Expression)
        mine = list(self.tree.find_all(type(node)))
        theirs = list(self._sample_tree.find_all(type(node)))
        if len(mine) != len(theirs):
            return None
        i = next((k for k, n in enumerate(mine) if n is node), None)
        if i is None or theirs[i].find(exp.Placeholder, exp.Parameter) is not None:
            return None
        return theirs[i]

    # -- recording --------------------------------------------------------------------------------
    def _add(
        self,
        scope: Scope,
        term: _Term,
        role: str,
        *,
        pattern: str | None = None,
        descending: bool = False,
        position: int | None = None,
    ) -> None:
        assert term.table is not None and term.column is not None
        if term.node is None:
            use = ColumnUse(
                term.table,
                term.column,
                role,
                scope.id,
                term.alias,
                term.column,
                None,
                None,
                None,
                pattern,
                descending,
                position,
            )
        else:
            node = term.node
            if node.find(exp.Placeholder, exp.Parameter) is not None:
                # the fingerprint hid a literal of the expression (a date_trunc unit, a time
                # zone): take the expression from the sample, or give it up — an index
                # definition cannot hold a placeholder
                twin = self._from_sample(node)
                if twin is None:
                    self.result.unresolved += 1
                    return
                node = twin
            function, unit = _function_of(node), None
            if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
                unit = _unit_text(node.args.get("unit"))
                if unit:
                    node = node.copy()
                    node.set("unit", exp.Literal.string(unit))
            use = ColumnUse(
                term.table,
                term.column,
                role,
                scope.id,
                term.alias,
                expression_key(node, self.dialect),
                _ddl_sql(node, self.dialect),
                function,
                unit,
                pattern,
                descending,
                position,
            )
        self.result.uses.append(use)


def _function_of(node: exp.Expression) -> str:
    node = _strip_parens(node)
    if isinstance(node, exp.Upper):
        return "upper"
    if isinstance(node, exp.Lower):
        return "lower"
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return "date_trunc"
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        if isinstance(to, exp.DataType) and to.this == exp.DataType.Type.DATE:
            return "date"
        return "cast"
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def _pattern_shape(value: str | None) -> str:
    if value is None:
        return "unknown"
    v = value.strip("'")
    if not v:
        return "exact"
    leading = v[0] in "%_"
    trailing = v.endswith("%") and not v.endswith("\\%")
    wild = any(ch in v for ch in "%_")
    if not wild:
        return "exact"
    if leading:
        return "contains" if trailing else "suffix"
    return "prefix"


def _inside_subquery(col: exp.Column, root: exp.Expression) -> bool:
    if col is root:
        return False
    parent = col.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Select | exp.Subquery):
            return True
        parent = parent.parent
    return False


def _has_select_ancestor(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Select):
            return True
        parent = parent.parent
    return False


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = _strip_parens(node)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _kind_of(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Select | exp.Union | exp.Intersect | exp.Except):
        return "select"
    for cls, name in ((exp.Insert, "insert"), (exp.Update, "update"), (exp.Delete, "delete")):
        if isinstance(tree, cls):
            return name
    if isinstance(tree, exp.Merge):
        return "merge"
    return "other"


_ELLIPSIS = compile_later(r"\(\s*\.\.\.\s*\)")
_NOT_ANALYSED = compile_later(
    r"^\s*(?:begin|commit|rollback|savepoint|release|set|show|reset|start|deallocate|discard|listen|notify|vacuum|analyze)\b",
    re.I,
)


def _prepare(sql: str) -> str:
    """Make a fingerprint parseable: ``in (...)`` → ``in (?)``; a trailing ``;`` dropped."""
    return _ELLIPSIS.sub("(?)", sql).strip().rstrip(";")


def _parse(sql: str, dialect: Dialect) -> exp.Expression:
    trees = [t for t in sqlglot.parse(_prepare(sql), dialect=dialect) if t is not None]
    if not trees:
        raise ValueError("empty statement")
    return cast(exp.Expression, trees[0])


def analyze_sql(
    sql: str,
    dialect: Dialect = "postgres",
    *,
    sample: str | None = None,
    known_columns: Mapping[str, Iterable[str]] | None = None,
) -> StatementAnalysis:
    """Analyse one statement (a fingerprint or a raw statement). Never raises.

    ``sample`` is an execution of the same statement with its literals (``sample_sql``): LIKE
    pattern shapes and ``date_trunc`` units are read from it when the fingerprint hides them.
    ``known_columns`` (table → column names) attributes unqualified columns in joins.
    """
    analyzer = _Analyzer(sql, dialect, known_columns)
    if _NOT_ANALYSED.match(sql):
        analyzer.result.kind = "utility"
        return analyzer.result
    try:
        tree = _parse(sql, dialect)
    except Exception as exc:  # sqlglot raises several error types; none may stop an audit
        analyzer.result.error = _error_text(exc)
        return analyzer.result
    analyzer.sample = sample
    try:
        return analyzer.run(tree)
    except Exception as exc:  # an unexpected tree shape: report, do not fail the workload
        analyzer.result.error = f"analysis failed: {_error_text(exc)}"
        analyzer.result.uses = []
        return analyzer.result


def _literal_of(node: exp.Expression | None) -> str | None:
    while node is not None and isinstance(node, exp.Paren | exp.Upper | exp.Lower | exp.Cast):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    return None


def _unit_text(unit: Any) -> str | None:
    if isinstance(unit, exp.Cast):
        unit = unit.this
    if isinstance(unit, exp.Literal | exp.Var):
        text = str(unit.this).lower()
        return text if text in _UNIT_WORDS else None
    return None


def _error_text(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return f"{type(exc).__name__}: {text[:200]}"


def analyze_workload(
    stats: pd.DataFrame,
    dialect: Dialect = "postgres",
    *,
    known_columns: Mapping[str, Iterable[str]] | None = None,
) -> WorkloadAnalysis:
    """Analyse every distinct statement of a ``statement_stats`` (or query events) frame once.

    Rows are keyed by ``fingerprint_id`` (computed from ``fingerprint`` when absent);
    ``sample_sql`` fills in literals the fingerprint hides. Statements that cannot be parsed are
    listed in ``failures``; they never stop the analysis.
    """
    from auditkit.sql.fingerprint import fingerprint_id as _fid

    statements: dict[str, StatementAnalysis] = {}
    use_rows: list[dict[str, Any]] = []
    table_rows: list[dict[str, Any]] = []
    failure_rows: list[dict[str, Any]] = []
    if len(stats) and "fingerprint" in stats:
        cols = ["fingerprint"] + [c for c in ("fingerprint_id", "sample_sql") if c in stats]
        frame = stats[cols].drop_duplicates(subset=["fingerprint"])
        for rec in frame.itertuples(index=False):
            fp = str(rec.fingerprint)
            fid = getattr(rec, "fingerprint_id", None)
            fid = str(fid) if isinstance(fid, str) and fid else _fid(fp)
            if fid in statements:
                continue
            sample = getattr(rec, "sample_sql", None)
            sample = sample if isinstance(sample, str) else None
            a = analyze_sql(fp, dialect, sample=sample, known_columns=known_columns)
            statements[fid] = a
            if a.error:
                failure_rows.append({"fingerprint_id": fid, "fingerprint": fp, "error": a.error})
                continue
            limits = {s.id: s.limit for s in a.scopes}
            for t in a.tables:
                table_rows.append({"fingerprint_id": fid, "table": t, "kind": a.kind})
            for u in a.uses:
                use_rows.append(
                    {
                        "fingerprint_id": fid,
                        "scope": u.scope,
                        "alias": u.alias,
                        "table": u.table,
                        "column": u.column,
                        "role": u.role,
                        "key": u.key,
                        "expression_sql": u.expression_sql,
                        "function": u.function,
                        "unit": u.unit,
                        "pattern": u.pattern,
                        "descending": u.descending,
                        "position": u.position,
                        "limit": limits.get(u.scope, False),
                        "kind": a.kind,
                    }
                )
    uses = pd.DataFrame(use_rows, columns=_USE_COLUMNS)
    tables = pd.DataFrame(table_rows, columns=["fingerprint_id", "table", "kind"])
    failures = pd.DataFrame(failure_rows, columns=["fingerprint_id", "fingerprint", "error"])
    return WorkloadAnalysis(uses, tables, failures, statements)


# --------------------------------------------------------------------------------------------
# index definitions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IndexKey:
    """One key of an index: a column or an expression, with operator class and order."""

    column: str | None
    expression: str | None = None
    opclass: str | None = None
    descending: bool = False
    collation: str | None = None

    @property
    def key(self) -> str:
        """Normal form for comparison (see :func:`expression_key`)."""
        if self.column is not None:
            return self.column
        return expression_key(self.expression or "")

    @property
    def pattern_ops(self) -> bool:
        """True for ``text_pattern_ops``/``varchar_pattern_ops``/``bpchar_pattern_ops``."""
        return bool(self.opclass and self.opclass.endswith("_pattern_ops"))

    def label(self) -> str:
        text = self.column if self.column is not None else f"({self.expression})"
        if self.opclass:
            text += f" {self.opclass}"
        if self.descending:
            text += " DESC"
        return text


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """A parsed ``CREATE INDEX`` statement."""

    name: str
    table: str
    schema: str | None
    method: str
    unique: bool
    keys: tuple[IndexKey, ...]
    include: tuple[str, ...] = ()
    predicate: str | None = None

    @property
    def columns(self) -> str:
        """Keys as the ``schema_indexes.columns`` text: ``a, b, (upper((email)::text))``."""
        return ", ".join(
            k.column if k.column is not None else f"({k.expression})" for k in self.keys
        )


_CREATE = compile_later(
    r"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>(?:\"(?:[^\"]|\"\")+\"|[\w$]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[\w$]+))?)?\s*"
    r"ON\s+(?:ONLY\s+)?(?P<table>(?:\"(?:[^\"]|\"\")+\"|[\w$]+)(?:\.(?:\"(?:[^\"]|\"\")+\"|[\w$]+))?)\s*"
    r"(?:USING\s+(?P<method>\w+)\s*)?\(",
    re.I | re.S,
)
_TAIL_TOKEN = compile_later(r'"(?:[^"]|"")+"|\S+')


def _key_tail(tail: str) -> tuple[str | None, str | None, bool]:
    """(collation, operator class, descending) from what follows a key: ``COLLATE "C"``,
    ``varchar_pattern_ops``, ``DESC``, ``NULLS LAST`` in PostgreSQL's order."""
    tokens = _TAIL_TOKEN.findall(tail)
    collation = opclass = None
    desc = False
    i = 0
    while i < len(tokens):
        word = tokens[i].upper()
        if word == "COLLATE" and i + 1 < len(tokens):
            collation = tokens[i + 1]
            i += 2
            continue
        if word in ("ASC", "DESC"):
            desc = word == "DESC"
        elif word == "NULLS":
            i += 1  # FIRST / LAST
        elif opclass is None and re.fullmatch(r"[a-z_][\w.]*", tokens[i], re.I):
            opclass = tokens[i]
        i += 1
    return collation, opclass, desc


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _split_qualified(name: str) -> tuple[str | None, str]:
    parts = re.findall(r'"(?:[^"]|"")+"|[^.]+', name)
    if len(parts) >= 2:
        return _unquote(parts[-2]), _unquote(parts[-1])
    return None, _unquote(name)


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start`` (quotes respected), or -1."""
    depth = 0
    i = start
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    i += 1
                else:
                    quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and quotes."""
    parts: list[str] = []
    depth, quote = 0, None
    cur: list[str] = []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _parse_key(text: str) -> IndexKey:
    text = text.strip()
    if text.startswith("("):
        end = _matching_paren(text, 0)
        collation, opclass, desc = _key_tail(text[end + 1 :])
        return IndexKey(None, text[1:end].strip(), opclass, desc, collation)
    m = re.match(r'^(?P<col>"(?:[^"]|"")+"|[\w$]+)(?P<tail>.*)$', text, re.S)
    if m and "(" not in m.group("tail"):
        collation, opclass, desc = _key_tail(m.group("tail"))
        return IndexKey(_unquote(m.group("col")), None, opclass, desc, collation)
    # a function call without extra parentheses (gin: to_tsvector(...), MySQL functional keys)
    return IndexKey(None, text)


def parse_index_definition(indexdef: str) -> IndexDefinition | None:
    """Parse ``pg_indexes.indexdef`` (or any ``CREATE INDEX``); None when it is not one.

    >>> d = parse_index_definition(
    ...     'CREATE UNIQUE INDEX u ON public.app_user USING btree (upper((email)::text), tenant_id DESC)'
    ...     ' INCLUDE (name) WHERE (active IS TRUE)')
    >>> [k.key for k in d.keys], d.unique, d.include, d.predicate
    (['upper(email)', 'tenant_id'], True, ('name',), 'active IS TRUE')
    """
    m = _CREATE.match(indexdef or "")
    if not m:
        return None
    open_at = m.end() - 1
    close = _matching_paren(indexdef, open_at)
    if close < 0:
        return None
    keys = tuple(_parse_key(k) for k in split_top_level(indexdef[open_at + 1 : close]))
    rest = indexdef[close + 1 :]
    include: tuple[str, ...] = ()
    inc = re.match(r"\s*INCLUDE\s*\(", rest, re.I)
    if inc:
        start = inc.end() - 1
        end = _matching_paren(rest, start)
        include = tuple(_unquote(c) for c in split_top_level(rest[start + 1 : end]))
        rest = rest[end + 1 :]
    predicate = None
    w = re.search(r"\bWHERE\s+(.*)$", rest, re.I | re.S)
    if w:
        predicate = w.group(1).strip()
        if predicate.startswith("(") and _matching_paren(predicate, 0) == len(predicate) - 1:
            predicate = predicate[1:-1].strip()
    schema, table = _split_qualified(m.group("table"))
    _, name = _split_qualified(m.group("name") or "")
    return IndexDefinition(
        name=name,
        table=table,
        schema=schema,
        method=(m.group("method") or "btree").lower(),
        unique=bool(m.group("unique")),
        keys=keys,
        include=include,
        predicate=predicate,
    )
