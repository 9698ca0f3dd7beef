"""The query profile: statement statistics per fingerprint, built from query events.

This is pt-query-digest's and pgBadger's ranked report as a DataFrame (the
``statement_stats`` frame): rank, fingerprint, calls, total and share of time, mean, min, max,
standard deviation, p50/p95/p99, rows, first and last seen, the slowest sample, and the files
the statement came from.

It is built from :class:`ProfilePartial` objects — one per block of a log, computed where the
block was parsed — that merge exactly: counts, sums and sums of squares add; minima, maxima and
first/last timestamps combine; percentiles come from the kept durations while a fingerprint has
at most :data:`EXACT_SAMPLES` executions (exact), else from a mergeable logarithmic sketch with
±1 % relative accuracy (``percentiles_exact`` says which). So a 1 GB log never has to be held in
memory as events, and the same code runs in one process, on local workers or on Dask. A partial
is made from a query-events frame (:meth:`ProfilePartial.from_events`) or, by a parser that
profiles its own blocks, from the columns a profile reads (:class:`ProfileColumns`), without
building the frame; both go through :meth:`ProfilePartial.from_columns`.

Statements without a duration (DDL from Django's schema editor, ``statement:`` lines without
``duration:``) count as calls but not in the time statistics.

Example::

    >>> import pandas as pd
    >>> events = pd.DataFrame({"sql": ["SELECT 1", "SELECT 2"], "duration_ms": [1.0, 3.0]})
    >>> query_profile(events)[["fingerprint", "calls", "total_ms"]].to_dict("records")
    [{'fingerprint': 'select ?', 'calls': 2, 'total_ms': 4.0}]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from auditkit.schemas import STATEMENT_STATS, conform
from auditkit.sql.fingerprint import fingerprint_many

__all__ = [
    "EXACT_SAMPLES",
    "EXECUTION_PHASES",
    "SKETCH_ACCURACY",
    "Labels",
    "ProfileColumns",
    "ProfilePartial",
    "executions",
    "query_profile",
    "statement_frame",
]

#: per fingerprint, durations kept for exact percentiles (beyond: the sketch)
EXACT_SAMPLES = 200_000
#: relative accuracy of the percentile sketch
SKETCH_ACCURACY = 0.01
_GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_MS = 1e-6
#: NaT as int64 nanoseconds
_NAT = np.iinfo(np.int64).min


def _buckets(values: np.ndarray) -> np.ndarray:
    return np.ceil(np.log(np.maximum(values, _MIN_MS)) / _LOG_GAMMA).astype(np.int32)


def _sketch_quantiles(buckets: dict[int, int], qs: tuple[float, ...]) -> list[float]:
    keys = np.array(sorted(buckets), dtype=np.int64)
    counts = np.array([buckets[k] for k in keys], dtype=np.int64)
    cum = np.cumsum(counts)
    total = cum[-1]
    out = []
    for q in qs:
        rank = q * (total - 1)
        i = int(np.searchsorted(cum, rank + 1, side="left"))
        i = min(i, len(keys) - 1)
        out.append(float(2 * _GAMMA ** keys[i] / (_GAMMA + 1)))
    return out


@dataclass
class _Acc:
    fingerprint: str
    calls: int = 0
    timed: int = 0
    total: float = 0.0
    sumsq: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    rows: int = 0
    rows_seen: bool = False
    #: the first and last execution's time, UTC nanoseconds (None: no time known)
    first: int | None = None
    last: int | None = None
    sample_sql: str | None = None
    sample_ms: float = -math.inf
    databases: Counter[str] = field(default_factory=Counter)
    users: Counter[str] = field(default_factory=Counter)
    sources: set[str] = field(default_factory=set)
    query_id: str | None = None
    #: every duration while there are at most EXACT_SAMPLES (``overflow`` False), else their
    #: ``sketch`` (bucket → count) and no list: one or the other holds all of them
    exact: list[np.ndarray] = field(default_factory=list)
    exact_n: int = 0
    overflow: bool = False
    sketch: Counter[int] = field(default_factory=Counter)

    def merge(self, o: _Acc) -> None:
        self.calls += o.calls
        self.timed += o.timed
        self.total += o.total
        self.sumsq += o.sumsq
        self.min = min(self.min, o.min)
        self.max = max(self.max, o.max)
        self.rows += o.rows
        self.rows_seen |= o.rows_seen
        if o.first is not None and (self.first is None or o.first < self.first):
            self.first = o.first
        if o.last is not None and (self.last is None or o.last > self.last):
            self.last = o.last
        if o.sample_ms > self.sample_ms or self.sample_sql is None:
            self.sample_sql, self.sample_ms = o.sample_sql, o.sample_ms
        self.databases.update(o.databases)
        self.users.update(o.users)
        self.sources |= o.sources
        self.query_id = self.query_id or o.query_id
        if self.overflow:
            self.sketch.update(o.sketch if o.overflow else _sketch(o.exact))
        elif o.overflow:
            self.sketch = _sketch(self.exact) + o.sketch
            self.overflow, self.exact, self.exact_n = True, [], 0
        else:
            self.exact.extend(o.exact)
            self.exact_n += o.exact_n
            self._spill()

    def _spill(self) -> None:
        """Past :data:`EXACT_SAMPLES` durations, keep the sketch of them instead."""
        if self.exact_n > EXACT_SAMPLES:
            self.sketch = _sketch(self.exact)
            self.overflow, self.exact, self.exact_n = True, [], 0


def _sketch(values: list[np.ndarray]) -> Counter[int]:
    """The logarithmic sketch of some durations: how many fall in each bucket."""
    if not values:
        return Counter()
    b, c = np.unique(_buckets(np.concatenate(values)), return_counts=True)
    return Counter(dict(zip(b.tolist(), c.tolist(), strict=True)))


@dataclass
class ProfilePartial:
    """Mergeable statistics of the statements of one block (or of a whole load)."""

    accs: dict[str, _Acc] = field(default_factory=dict)
    events: int = 0

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        dialect: str = "postgres",
        bind: Callable[[list[str], list[str]], list[str]] | None = None,
    ) -> ProfilePartial:
        """Aggregate a query-events frame (fingerprints are computed when missing).

        ``bind`` is for frames whose ``sql`` was left unbound, its parameters in ``params`` (a
        parser in digest mode, :attr:`~auditkit.loaders.base.BlockParser.digest`): only the
        sample kept per group is bound, with ``bind(statements, params)``, once per block.
        """
        if len(events) == 0:
            return cls()
        return cls.from_columns(ProfileColumns.of(events, dialect, params=bind is not None), bind)

    @classmethod
    def from_columns(
        cls,
        cols: ProfileColumns,
        bind: Callable[[list[str], list[str]], list[str]] | None = None,
    ) -> ProfilePartial:
        """Aggregate the statements ``cols`` describes (see :class:`ProfileColumns`).

        Rows are grouped by one stable sort of their group numbers; every statistic is then
        one NumPy reduction over the groups, and only the few groups of a block (a few
        dozen) are visited in Python.
        """
        part = cls()
        n = len(cols.group)
        if n == 0:
            return part
        part.events = n
        dur = cols.dur
        k_groups = len(cols.ids)
        order = np.argsort(cols.group, kind="stable")
        starts = np.searchsorted(cols.group[order], np.arange(k_groups))
        g = _Groups(order, starts, n)
        d = dur[order]
        timed = ~np.isnan(d)
        n_timed = np.add.reduceat(timed.astype(np.int64), starts)
        vals = np.where(timed, d, 0.0)
        total = np.add.reduceat(vals, starts)
        sumsq = np.add.reduceat(vals * vals, starts)
        lo = np.minimum.reduceat(np.where(timed, d, np.inf), starts)
        hi = np.maximum.reduceat(np.where(timed, d, -np.inf), starts)
        # the slowest execution (the first of equals), else the group's first row
        slow = g.first_where(timed & (d == g.spread(hi)))
        sample = np.where(n_timed > 0, slow, order[starts])
        exact = np.split(d[timed], np.cumsum(n_timed)[:-1])  # each group's, in file order
        rows_sum = (
            np.add.reduceat(np.nan_to_num(cols.rows[order]), starts).astype(np.int64)
            if cols.rows is not None
            else None
        )
        first_ns = last_ns = None
        if cols.ts_ns is not None:
            v = cols.ts_ns[order]
            valid = v != _NAT
            if valid.any():
                seen = np.add.reduceat(valid.astype(np.int64), starts) > 0
                first_ns = np.where(seen, _reduce(np.minimum, v, valid, starts), _NAT).tolist()
                last_ns = np.where(seen, _reduce(np.maximum, v, valid, starts), _NAT).tolist()
        labels = cols.labels
        none = Labels(np.full(n, -1, dtype=np.intp), [])
        counts = {
            name: labels.get(name, none).per_group(g)
            for name in ("database", "user", "source_file")
        }
        query_ids = labels.get("query_id", none).first_per_group(g)
        unbound: list[tuple[_Acc, str]] = []  # samples whose parameters are still to bind
        for k, (fid, head, calls, nt) in enumerate(
            zip(cols.ids, cols.fingerprints, g.sizes().tolist(), n_timed.tolist(), strict=True)
        ):
            at = int(sample[k])
            acc = _Acc(head)
            acc.calls = calls
            acc.timed = nt
            acc.sample_sql = cols.sql(at)
            if nt:
                acc.total, acc.sumsq = float(total[k]), float(sumsq[k])
                acc.min, acc.max = float(lo[k]), float(hi[k])
                acc.sample_ms = float(dur[at])
                acc.exact, acc.exact_n = [exact[k]], nt
                acc._spill()
            params = cols.params(at) if cols.params is not None else None
            if params:
                unbound.append((acc, params))
            if rows_sum is not None:
                acc.rows, acc.rows_seen = int(rows_sum[k]), True
            if first_ns is not None and last_ns is not None and first_ns[k] != _NAT:
                acc.first, acc.last = first_ns[k], last_ns[k]
            acc.databases = counts["database"][k]
            acc.users = counts["user"][k]
            acc.sources = set(counts["source_file"][k])
            acc.query_id = query_ids[k]
            part.accs[fid] = acc
        if unbound and bind is not None:
            texts = bind([str(acc.sample_sql) for acc, _ in unbound], [p for _, p in unbound])
            for (acc, _), text in zip(unbound, texts, strict=True):
                acc.sample_sql = text
        return part

    def merge(self, other: ProfilePartial) -> ProfilePartial:
        """Fold ``other`` into this partial and return it."""
        self.events += other.events
        for fid, acc in other.accs.items():
            mine = self.accs.get(fid)
            if mine is None:
                self.accs[fid] = acc
            else:
                mine.merge(acc)
        return self

    def records(self, top: int | None = None) -> list[dict[str, Any]]:
        """The rows of :meth:`frame` as plain Python values, ranked by total time (then
        calls): for a caller that prints them without pandas (``auditkit digest --json``).

        ``first_seen`` and ``last_seen`` are UTC nanoseconds; None and NaN where the frame
        has nulls (no rows logged, no duration).
        """
        rows: list[dict[str, Any]] = []
        for fid, a in self.accs.items():
            mean = a.total / a.timed if a.timed else math.nan
            var = max(a.sumsq / a.timed - mean * mean, 0.0) if a.timed else math.nan
            if a.timed and not a.overflow:
                values = np.concatenate(a.exact)
                p50, p95, p99 = (float(x) for x in np.percentile(values, [50, 95, 99]))
                exact: bool | None = True
            elif a.timed:
                p50, p95, p99 = _sketch_quantiles(dict(a.sketch), (0.5, 0.95, 0.99))
                exact = False
            else:
                p50 = p95 = p99 = math.nan
                exact = None
            rows.append(
                {
                    "fingerprint_id": fid,
                    "fingerprint": a.fingerprint,
                    "calls": a.calls,
                    "total_ms": a.total,
                    "mean_ms": mean,
                    "min_ms": a.min if a.timed else math.nan,
                    "max_ms": a.max if a.timed else math.nan,
                    "stddev_ms": math.sqrt(var) if a.timed else math.nan,
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "p99_ms": p99,
                    "percentiles_exact": exact,
                    "rows": a.rows if a.rows_seen else None,
                    "first_seen": a.first,
                    "last_seen": a.last,
                    "sample_sql": a.sample_sql,
                    "query_id": a.query_id,
                    "database": a.databases.most_common(1)[0][0] if a.databases else None,
                    "user": a.users.most_common(1)[0][0] if a.users else None,
                    "sources": ", ".join(sorted(a.sources)),
                }
            )
        rows.sort(key=lambda r: (-r["total_ms"], -r["calls"]))  # stable: ties keep their order
        grand = float(np.array([r["total_ms"] for r in rows], dtype=np.float64).sum())
        for rank, r in enumerate(rows, start=1):
            r["share"] = r["total_ms"] / grand if grand > 0 else math.nan
            r["rank"] = rank
        return rows[:top] if top else rows

    def frame(self, top: int | None = None) -> pd.DataFrame:
        """The statement_stats frame, ranked by total time (then calls)."""
        return statement_frame(self.records(top))


def statement_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The statement_stats frame of :meth:`ProfilePartial.records`."""
    if not rows:
        return conform(pd.DataFrame(columns=STATEMENT_STATS.names), STATEMENT_STATS)
    df = pd.DataFrame(rows)
    for col in ("first_seen", "last_seen"):
        ns = np.array([_NAT if r[col] is None else r[col] for r in rows], dtype=np.int64)
        df[col] = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    return conform(df, STATEMENT_STATS)


@dataclass(frozen=True)
class _Groups:
    """Rows grouped by one stable sort: group ``k`` is ``order[starts[k]:starts[k + 1]]``."""

    order: np.ndarray
    starts: np.ndarray
    n: int

    def sizes(self) -> np.ndarray:
        """How many rows each group has."""
        return np.diff(np.append(self.starts, self.n))

    def spread(self, per_group: np.ndarray) -> np.ndarray:
        """A per-group value on each (sorted) row."""
        return np.repeat(per_group, self.sizes())

    def first_where(self, mask: np.ndarray) -> np.ndarray:
        """Per group, the row of its first (sorted) position where ``mask`` holds, else -1."""
        pos = np.minimum.reduceat(np.where(mask, np.arange(self.n), self.n), self.starts)
        found = pos < self.n
        return np.where(found, self.order[np.minimum(pos, self.n - 1)], -1)


def _reduce(op: np.ufunc, v: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``op`` (minimum or maximum) of each group's valid values of ``v``."""
    fill = np.iinfo(v.dtype).max if op is np.minimum else np.iinfo(v.dtype).min
    return op.reduceat(np.where(valid, v, fill), starts)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Labels:
    """A text column factorised once, so each group's counts are one ``bincount``: per row
    the number of its value (-1: no value), and the values."""

    codes: np.ndarray
    values: list[str]

    @classmethod
    def of(cls, df: pd.DataFrame, column: str) -> Labels:
        """The column ``column`` of ``df`` (no labels when it is missing or all null)."""
        if column not in df:
            return cls(np.full(len(df), -1, dtype=np.intp), [])
        codes, uniques = pd.factorize(df[column])  # nulls: code -1, not among the uniques
        return cls(codes, [str(v) for v in uniques])

    def per_group(self, g: _Groups) -> list[Counter[str]]:
        """How often each value occurs in each group (nulls left out), keys in sorted order."""
        k = len(g.starts)
        if not self.values:
            return [Counter() for _ in range(k)]
        c = self.codes[g.order]
        group = g.spread(np.arange(k))
        ok = c >= 0
        n = np.bincount(group[ok] * len(self.values) + c[ok], minlength=k * len(self.values))
        table = n.reshape(k, len(self.values))
        names = sorted(range(len(self.values)), key=lambda i: self.values[i])
        out = []
        for row in table.tolist():
            out.append(Counter({self.values[i]: row[i] for i in names if row[i]}))
        return out

    def first_per_group(self, g: _Groups) -> list[str | None]:
        """The first non-null value of each group (None where there is none)."""
        if not self.values:
            return [None] * len(g.starts)
        at = g.first_where(self.codes[g.order] >= 0)
        return [self.values[self.codes[r]] if r >= 0 else None for r in at.tolist()]


@dataclass
class ProfileColumns:
    """What a profile reads of a block's statements: ``n`` rows, column by column.

    :meth:`ProfilePartial.from_columns` aggregates it. :meth:`of` takes it from a query-events
    frame; a parser that profiles its own blocks (the native stderr reader, in a digest)
    builds it straight from what it parsed, without a frame.
    """

    #: per row, the number of its statement group: 0, 1, … in order of first appearance
    group: np.ndarray
    #: per group: its fingerprint id and fingerprint
    ids: list[str]
    fingerprints: list[str]
    #: per row, in ms (NaN: logged without a duration)
    dur: np.ndarray
    #: the statement of a row (as logged: unbound where ``params`` holds its parameters)
    sql: Callable[[int], str]
    #: ``database``, ``user``, ``source_file``, ``query_id`` (each optional)
    labels: dict[str, Labels] = field(default_factory=dict)
    #: per row, its time as UTC nanoseconds (NaT: the smallest int64), None without times
    ts_ns: np.ndarray | None = None
    #: per row, rows returned (NaN: not logged), None when no row has any
    rows: np.ndarray | None = None
    #: the logged parameters of a row (None or '' without), for binding the kept samples
    params: Callable[[int], str | None] | None = None

    @classmethod
    def of(
        cls, events: pd.DataFrame, dialect: str = "postgres", params: bool = False
    ) -> ProfileColumns:
        """The columns of a query-events frame (fingerprints computed when missing);
        ``params``: read the ``params`` column, for binding samples."""
        df = events.reset_index(drop=True)
        if "fingerprint_id" not in df or df["fingerprint_id"].isna().any():
            fps, ids = fingerprint_many(df["sql"], dialect)  # type: ignore[arg-type]
            df = df.assign(fingerprint=fps.to_numpy(), fingerprint_id=ids.to_numpy())
        if "duration_ms" in df:
            dur = pd.to_numeric(df["duration_ms"], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        else:
            dur = np.full(len(df), np.nan)
        codes, uniques = pd.factorize(df["fingerprint_id"])
        fingerprint = df["fingerprint"].array
        heads = []
        found, first = np.unique(codes, return_index=True)  # each group's first row
        first = first[found >= 0]  # -1: no fingerprint (a null statement), in no group
        for k, r in enumerate(first.tolist()):
            head = fingerprint[r]
            if pd.isna(head):  # rare: look further (a group's id comes from a fingerprint)
                head = next(f for f in fingerprint[codes == k] if not pd.isna(f))
            heads.append(str(head))
        rows = None
        if "rows" in df and df["rows"].notna().any():
            rows = pd.to_numeric(df["rows"], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        ts = df.get("ts")
        ts_ns = None
        if ts is not None and ts.notna().any():
            if not isinstance(ts.dtype, pd.DatetimeTZDtype):  # a frame not made by a loader
                ts = pd.to_datetime(ts, utc=True, errors="coerce", format="mixed")
            ts_ns = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view(np.int64)
        sql = df["sql"].array
        param_texts = df["params"].array if params and "params" in df else None
        return cls(
            group=codes,
            ids=[str(u) for u in uniques],
            fingerprints=heads,
            dur=dur,
            sql=lambda i: str(sql[i]),
            labels={
                name: Labels.of(df, name)
                for name in ("database", "user", "source_file", "query_id")
            },
            ts_ns=ts_ns,
            rows=rows,
            params=(
                None
                if param_texts is None
                else lambda i: None if pd.isna(param_texts[i]) else str(param_texts[i])
            ),
        )


#: the phases of a query event a profile counts: executions, not the extended protocol's
#: parse and bind steps
EXECUTION_PHASES = ("statement", "execute")


def executions(events: pd.DataFrame, phases: tuple[str, ...] = EXECUTION_PHASES) -> pd.DataFrame:
    """``events`` without the rows of other ``phases`` (rows without a phase stay); the
    frame itself when nothing goes — a parser in digest mode leaves those phases out already,
    and this runs once per block there."""
    phase = events.get("phase")
    if phase is None:
        return events
    if isinstance(phase.dtype, pd.CategoricalDtype):
        # on the category codes: label comparisons cost more than a block's profile
        allowed = np.append(phase.cat.categories.get_indexer(pd.Index(phases)), -1)
        keep = np.isin(phase.cat.codes.to_numpy(), allowed)  # -1: no phase
    else:
        keep = (phase.isna() | phase.isin(phases)).to_numpy(dtype=bool)
    return events if keep.all() else events[keep]


def query_profile(
    events: pd.DataFrame,
    top: int | None = None,
    *,
    phases: tuple[str, ...] = EXECUTION_PHASES,
) -> pd.DataFrame:
    """The query profile (statement_stats frame) of a query-events frame.

    Events of an extended-protocol ``parse``/``bind`` phase (an extra ``phase`` column written by
    the PostgreSQL log loader) are left out: their time is not execution time, and counting
    them would triple the calls of every prepared statement.
    """
    return ProfilePartial.from_events(executions(events, phases)).frame(top)
