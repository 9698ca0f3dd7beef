"""The two frames the PostgreSQL log parsers build, from columns of plain values.

:func:`query_frame` and :func:`server_frame` turn the columns a parser gathered for a block
(lists of texts, NumPy arrays, Arrow arrays, or lazy :class:`Taken` selections of them) into
typed, Arrow-backed frames. Frames leave the workers *compact* — no all-null columns — and
:func:`complete` adds those after the merge, where Arrow-backed nulls cost nothing. The
helpers (``_strings``, ``_ints``, ``_times`` …) are shared with the native reader
(:mod:`auditkit.loaders._pg_native`), so both build the same columns the same way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditkit.arrow import numbers, scalar, strings
from auditkit.lazy_modules import is_deferred
from auditkit.profile import EXECUTION_PHASES, Labels, ProfileColumns
from auditkit.schemas import QUERY_EVENTS, SERVER_EVENTS, cast
from auditkit.sql.fingerprint import fingerprint_codes, spread

__all__ = [
    "PHASES",
    "phase_dtype",
    "PROFILE_PHASES",
    "QUERY_EXTRAS",
    "SERVER_EXTRAS",
    "Taken",
    "complete",
    "query_frame",
    "server_frame",
]

#: phases of a query event; the query profile counts only the last two
PHASES = ("parse", "bind", "execute", "statement")
#: the phases a query profile counts (the profile's own definition)
PROFILE_PHASES = EXECUTION_PHASES
QUERY_EXTRAS = ("phase", "sql_template", "statement_name")
SERVER_EXTRAS = ("event", "application", "client", "session_id")


@dataclass(frozen=True)
class Taken:
    """``values`` at positions ``sel``, selected lazily: Arrow takes them in C++ when the
    column is built, instead of a Python loop over the rows."""

    values: Sequence[Any]
    sel: np.ndarray

    def __len__(self) -> int:
        """Number of selected values."""
        return len(self.sel)

    def __getitem__(self, k: int) -> Any:
        """The ``k``-th selected value."""
        return self.values[int(self.sel[k])]

    @classmethod
    def of(cls, values: Sequence[Any], sel: np.ndarray) -> Taken:
        """``values`` at ``sel``; a selection of a selection is composed, not nested."""
        if isinstance(values, Taken):
            return cls(values.values, values.sel[sel])
        return cls(values, sel)

    def arrow(self, type_: pa.DataType | None = None) -> pa.Array:
        """The selected values as an Arrow array (converted whole, then taken in C++)."""
        return pc.take(_plain(self.values, type_), numbers(self.sel))


def _plain(values: Any, type_: pa.DataType | None = None) -> pa.Array:
    """An Arrow array from a :class:`Taken` or a sequence of plain values. While pandas is
    deferred (a digest), texts are built from buffers as ``large_string`` unless ``type_``
    says otherwise (see :mod:`auditkit.arrow`)."""
    if isinstance(values, Taken):
        return values.arrow(type_)
    seq = values if isinstance(values, (list, tuple)) else list(values)
    if not is_deferred("pandas"):
        return pa.array(seq, type_)
    texts = (
        _is_text(type_)
        if type_ is not None
        else bool(seq) and isinstance(seq[0], str) and all(type(v) is str for v in seq)
    )
    if not texts:
        return pa.array(seq, type_)
    arr = strings(seq)
    return arr if type_ is None or arr.type == type_ else arr.cast(type_)


def _is_text(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def _arrow(values: Any) -> pa.Array:
    """A pyarrow string array from an Arrow array, a :class:`Taken` or a sequence of str/None."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return _plain(values, pa.large_string())


def _strings(values: Any, null_too: str = "") -> pd.arrays.ArrowStringArray:
    """An Arrow-backed ``string`` column; empty strings (and ``null_too``) become <NA>.

    (A query id of 0 means ``compute_query_id`` is off: no id.) A column holding one value
    throughout — one user, one database, as in most logs — is built without converting
    every row.
    """
    whole = values.values if isinstance(values, Taken) else values
    if isinstance(whole, (list, tuple)) and whole and whole.count(whole[0]) == len(whole):
        value = whole[0]
        n = len(values)
        return _null_strings(n) if value in ("", null_too) else _repeat(value, n)
    arr = _arrow(values)
    if len(arr):
        blank = pc.equal(arr, "")
        if null_too:
            blank = pc.or_(blank, pc.equal(arr, null_too))
        arr = pc.if_else(blank, pa.scalar(None, pa.large_string()), arr)
    return pd.arrays.ArrowStringArray(arr)


def _strings_keep(values: Any) -> pd.arrays.ArrowStringArray:
    """An Arrow-backed ``string`` column, empty strings kept (SQL may be empty)."""
    return pd.arrays.ArrowStringArray(_arrow(values))


def _null_strings(n: int) -> pd.arrays.ArrowStringArray:
    """An all-null ``string`` column (Arrow-backed, costs next to nothing)."""
    return pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string()))


def _repeat(value: str, n: int) -> pd.arrays.ArrowStringArray:
    """A ``string`` column holding ``value`` ``n`` times."""
    return pd.arrays.ArrowStringArray(pa.repeat(pa.scalar(value, pa.large_string()), n))


def _ints(values: Sequence[Any] | None, n: int) -> pd.arrays.IntegerArray:
    """A nullable ``Int64`` column from texts, numbers or a :class:`Taken`; empty means <NA>."""
    if values is None:
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    if isinstance(values, np.ndarray) and values.dtype.kind == "i":
        return pd.arrays.IntegerArray(values.astype(np.int64, copy=False), np.zeros(n, dtype=bool))
    arr = _plain(values)
    if _is_text(arr.type):
        arr = pc.if_else(pc.equal(arr, scalar("", arr.type)), scalar(None, arr.type), arr)
    try:
        arr = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # fractions, junk, or numbers past int64 (nulled and counted by the schema cast)
        raw = pd.Series(arr.to_pylist(), dtype=object)
        return cast(raw, "Int64").array  # type: ignore[return-value]
    mask = arr.is_null().to_numpy(zero_copy_only=False)
    data = arr.fill_null(scalar(0)).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return pd.arrays.IntegerArray(data, mask)


def _floats(values: Sequence[Any] | None, n: int) -> np.ndarray:
    """A ``float64`` column from texts, numbers or a :class:`Taken`; empty means NaN."""
    if values is None:
        return np.full(n, np.nan)
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values
    arr = _plain(values)
    if _is_text(arr.type):
        arr = pc.if_else(pc.equal(arr, scalar("", arr.type)), scalar(None, arr.type), arr)
    try:
        arr = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raw = pd.Series(arr.to_pylist(), dtype=object)
        return cast(raw, "float64").to_numpy()
    return arr.fill_null(scalar(math.nan)).to_numpy(zero_copy_only=False)


def _times(ts: np.ndarray) -> pd.arrays.DatetimeArray:
    """A ``datetime64[ns, UTC]`` column from UTC nanoseconds."""
    return pd.DatetimeIndex(ts.astype("datetime64[ns]", copy=False)).tz_localize("UTC").array


def first_rows(codes: np.ndarray, k: int) -> np.ndarray:
    """The first row holding each of the codes ``0..k-1`` (-1 for a code no row holds)."""
    first = np.full(k, -1, dtype=np.int64)
    rows = np.arange(len(codes) - 1, -1, -1, dtype=np.int64)
    first[codes[::-1]] = rows  # the last write wins: the first row
    return first


def first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of small non-negative integer codes (a block's fingerprint codes):
    per row the number of its code, 0, 1, … in order of first appearance, and the codes in
    that order. In O(n), without pandas (a digest defers it, :mod:`auditkit.lazy_modules`)."""
    if not len(codes):
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=codes.dtype)
    k = int(codes.max()) + 1
    first = first_rows(codes, k)
    seen = np.flatnonzero(first >= 0)
    used = seen[np.argsort(first[seen])]  # first rows are distinct: no ties
    number = np.empty(k, dtype=np.intp)
    number[used] = np.arange(len(used), dtype=np.intp)
    return number[codes], used.astype(codes.dtype, copy=False)


@functools.cache
def phase_dtype() -> pd.CategoricalDtype:
    """The dtype of the ``phase`` extra column (fixed categories, so blocks concatenate
    cheaply); made on first use, so importing this module does not import pandas."""
    return pd.CategoricalDtype(list(PHASES))


def _phases(values: Any) -> pd.Categorical:
    """The ``phase`` column; anything but a known phase (an empty text) is null.

    Arrow finds the codes: building a Categorical from a list of Python strings makes pandas
    factorise them, four times slower, and warns about the empty texts.
    """
    codes = pc.index_in(_plain(values, pa.string()), value_set=pa.array(PHASES, pa.string()))
    codes = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int8)
    return pd.Categorical.from_codes(codes, dtype=phase_dtype())


def _fingerprints(texts: pa.Array) -> tuple[pd.arrays.ArrowStringArray, pd.arrays.ArrowStringArray]:
    """Fingerprints and ids of ``texts``: computed once per group of texts that differ only in
    their numbers (see :func:`~auditkit.sql.fingerprint.fingerprint_codes`), spread by Arrow."""
    fp_values, id_values, rows = fingerprint_codes(texts)
    return (
        pd.arrays.ArrowStringArray(spread(fp_values, rows)),
        pd.arrays.ArrowStringArray(spread(id_values, rows)),
    )


def query_frame(c: dict[str, Any], source: str, fmt: str) -> pd.DataFrame:
    """A compact query-events frame from columns of plain values (see :func:`complete`).

    ``c`` keys: ts (datetime64[ns] UTC), duration_ms, sql, sql_template, params, database,
    user, application, client, pid, session_id, query_id, phase, statement_name, source_line.
    ``sql`` and ``sql_template`` may be Arrow arrays. Fingerprints are computed here from
    the template form (``sql_template`` where set, else ``sql``). Columns that would be all
    null are left out: they are cheap to add after blocks are merged and costly to ship back
    from worker processes. (The provenance columns stay: :mod:`auditkit.digest` aggregates
    block frames where they are parsed and reports the files each statement came from.)
    """
    sql = pc.utf8_rtrim_whitespace(_arrow(c["sql"]))
    n = len(sql)
    template = c.get("sql_template")
    if template is not None:
        template = pc.utf8_rtrim_whitespace(_arrow(template))
        template = pc.if_else(pc.equal(template, ""), pa.scalar(None, pa.large_string()), template)
        source_text = pc.coalesce(template, sql)
    else:
        source_text = sql
    fps, ids = _fingerprints(source_text)
    cols: dict[str, Any] = {
        "ts": _times(c["ts"]),
        "duration_ms": _floats(c.get("duration_ms"), n),
        "sql": pd.arrays.ArrowStringArray(sql),
        "fingerprint": fps,
        "fingerprint_id": ids,
    }
    for name in ("params", "database", "user", "application", "client", "session_id", "query_id"):
        values = c.get(name)
        if values is not None:
            cols[name] = _strings(values, "0" if name == "query_id" else "")
    if c.get("pid") is not None:
        cols["pid"] = _ints(c["pid"], n)
    cols["source_line"] = _ints(c["source_line"], n)
    cols["source_file"] = _repeat(source, n)
    cols["source_format"] = _repeat(fmt, n)
    cols["phase"] = _phases(c["phase"])
    if template is not None:
        cols["sql_template"] = pd.arrays.ArrowStringArray(template)
    if c.get("statement_name") is not None:
        cols["statement_name"] = _strings(c["statement_name"])
    return pd.DataFrame(cols)


def profile_columns(c: dict[str, Any], source: str) -> ProfileColumns:
    """What a profile reads of the lean query columns ``c`` (a digest's; see
    :func:`query_frame`), without the frame: the same right-trimmed statements, fingerprints,
    durations, times and labels as the frame's, so the profile is the one it would give.
    Lean columns hold executions only and their ``sql`` unbound, its ``params`` apart."""
    sql = pc.utf8_rtrim_whitespace(_arrow(c["sql"]))
    params = c.get("params")
    return statement_columns(
        sql,
        _floats(c.get("duration_ms"), len(sql)),
        np.asarray(c["ts"]),
        {
            name: text_labels(values, null_too)
            for name, null_too in (("database", ""), ("user", ""), ("query_id", "0"))
            if (values := c.get(name)) is not None
        },
        source,
        None if params is None else lambda row: params[row] or None,
    )


def statement_columns(
    sql: pa.Array,
    dur: np.ndarray,
    ts: np.ndarray,
    labels: dict[str, Labels],
    source: str,
    params: Callable[[int], str | None] | None,
) -> ProfileColumns:
    """The :class:`~auditkit.profile.ProfileColumns` of statements whose columns a parser
    holds (the reference's lean columns, the native reader's spans): their right-trimmed
    texts ``sql``, durations, UTC times (``datetime64[ns]``), ``database``/``user``/
    ``query_id`` labels and parameters; grouped by fingerprint in order of first
    appearance, the file ``source`` as every row's label."""
    fp_values, id_values, codes = fingerprint_codes(sql)
    group, used = first_appearance(codes)
    taken = numbers(used)
    ts_ns = ts.astype("datetime64[ns]", copy=False).view(np.int64)
    dated = bool((ts_ns != np.iinfo(np.int64).min).any())  # a prefix without %m/%t: all NaT
    return ProfileColumns(
        group=group,
        ids=id_values.take(taken).to_pylist(),
        fingerprints=fp_values.take(taken).to_pylist(),
        dur=dur,
        sql=lambda row: sql[row].as_py(),
        labels={**labels, "source_file": Labels(np.zeros(len(sql), dtype=np.intp), [source])},
        ts_ns=ts_ns if dated else None,
        params=params,
    )


def text_labels(values: Sequence[str] | Taken, null_too: str = "") -> Labels:
    """A text column as profile labels; ``''`` and ``null_too`` are no value, as in the
    frame (:func:`_strings`)."""
    whole = values.values if isinstance(values, Taken) else values
    found: dict[str, int] = {}
    codes = np.fromiter(
        (-1 if v in ("", null_too) else found.setdefault(v, len(found)) for v in whole),
        dtype=np.intp,
        count=len(whole),
    )
    return Labels(codes[values.sel] if isinstance(values, Taken) else codes, list(found))


def server_frame(c: dict[str, Any], source: str, fmt: str) -> pd.DataFrame:
    """A compact server-events frame from columns of plain values (see :func:`complete`)."""
    n = len(c["message"])
    cols: dict[str, Any] = {}
    for col in SERVER_EVENTS.columns:
        name = col.name
        if name == "source_file":
            cols[name] = _repeat(source, n)
        elif name == "source_format":
            cols[name] = _repeat(fmt, n)
        elif name == "ts":
            cols[name] = _times(c["ts"])
        elif col.dtype == "float64":
            cols[name] = _floats(c.get(name), n)
        elif col.dtype == "Int64":
            cols[name] = _ints(c.get(name), n)
        elif name == "message":
            cols[name] = _strings_keep(c[name])
        else:
            values = c.get(name)
            cols[name] = _null_strings(n) if values is None else _strings(values)
    for name in SERVER_EXTRAS:
        values = c.get(name)
        cols[name] = _null_strings(n) if values is None else _strings(values)
    return pd.DataFrame(cols)


def complete(df: pd.DataFrame, frame: str, source: str, fmt: str) -> pd.DataFrame:
    """Add the columns :func:`query_frame` / :func:`server_frame` left out, as typed nulls.

    Run on the merged frame (in the calling process), so :func:`~auditkit.schemas.conform`
    finds every canonical column at its dtype. Arrow-backed nulls cost next to nothing.
    """
    schema = QUERY_EVENTS if frame == QUERY_EVENTS.name else SERVER_EVENTS
    n = len(df)
    extras = QUERY_EXTRAS if schema is QUERY_EVENTS else SERVER_EXTRAS
    out: dict[str, Any] = {}
    for col in schema.columns:
        name = col.name
        if name in df.columns:
            out[name] = df[name].array
        elif name == "source_file":
            out[name] = _repeat(source, n)
        elif name == "source_format":
            out[name] = _repeat(fmt, n)
        elif col.dtype == "float64":
            out[name] = np.full(n, np.nan)
        elif col.dtype == "Int64":
            out[name] = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
        else:
            out[name] = _null_strings(n)
    for name in extras:
        if name in df.columns:
            out[name] = df[name].array
        elif name == "phase":
            out[name] = pd.Categorical.from_codes(
                np.full(n, -1, dtype=np.int8), dtype=phase_dtype()
            )
        else:
            out[name] = _null_strings(n)
    for name in df.columns:
        if name not in out:
            out[str(name)] = df[name].array
    return pd.DataFrame(out)


_QUERY_KEYS = (
    "ts", "duration_ms", "sql", "sql_template", "params", "database", "user", "application",
    "client", "pid", "session_id", "query_id", "phase", "statement_name", "source_line",
)  # fmt: skip
_SERVER_KEYS = (
    "ts", "kind", "severity", "sqlstate", "message", "detail", "statement", "database", "user",
    "pid", "duration_ms", "size_bytes", "relation", "source_line", "event", "application",
    "client", "session_id",
)  # fmt: skip


def _rows_to_columns(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Row dicts (pending events) back to the columns the frame builders take."""
    cols: dict[str, Any] = {k: [r.get(k) for r in rows] for k in keys}
    cols["ts"] = np.array([r["ts"] for r in rows], dtype="datetime64[ns]")
    for k in ("duration_ms",):
        cols[k] = np.array([np.nan if r.get(k) is None else r[k] for r in rows], dtype=np.float64)
    for k in keys:
        if k not in ("ts", "duration_ms", "size_bytes", "pid", "source_line"):
            cols[k] = ["" if v is None else v for v in cols[k]]
    return cols
