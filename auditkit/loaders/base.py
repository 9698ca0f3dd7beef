"""The loader contract.

A loader knows one file format and nothing about checks. It answers two questions:

* :meth:`Loader.sniff` — how sure am I (0–1) that this file is mine, from its first bytes?
* :meth:`Loader.load` — the file as canonical frames plus a parse report.

Line-oriented logs that may be large subclass :class:`BlockLoader`: they only say how to
recognise the start of a record and how to parse one block of whole records (a pure function
on a :class:`BlockParser`, which must pickle). The base class streams the file in blocks,
parses them in order — here, on local worker processes, or on a Dask cluster, through
:mod:`auditkit.executors` — and merges the partial results. State that spans blocks (a
statement logged apart from its duration, a timestamp inherited by later entries) is handed
back as ``pending`` records and resolved once, in order, by :meth:`BlockParser.finish`.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from auditkit.errors import InputError, NothingParsedError
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import (
    DEFAULT_BLOCK_SIZE,
    Block,
    BlockRef,
    collect_notes,
    is_plain,
    iter_block_refs,
    iter_blocks,
    read_head,
)
from auditkit.schemas import FRAMES, QUERY_EVENTS, conform, empty, out_of_range_counts
from auditkit.sql.fingerprint import Dialect, fingerprint_many

if TYPE_CHECKING:
    from auditkit.profile import ProfilePartial

__all__ = ["BlockLoader", "BlockParser", "BlockResult", "Loader", "add_fingerprints", "finalise"]


class Loader:
    """One file format. Subclasses set the class attributes and implement sniff and load.

    Every subclass's :meth:`load` is wrapped once (:meth:`__init_subclass__`), so that no loader
    can forget the common duties: what the reader noticed (a compressed stream cut short, a
    UTF-16 file transcoded) becomes a warning of the parse report — or part of the error's hint
    when nothing could be parsed —, and the report is checked to add up.
    """

    #: stable format name, used in reports, audit.yaml and ``--format``
    name: ClassVar[str] = ""
    #: the canonical frame this loader mainly produces
    frame: ClassVar[str] = "query_events"
    #: one line for humans
    description: ClassVar[str] = ""
    #: what a file of this format looks like (for 'nothing parsed' errors)
    expected: ClassVar[str] = ""
    #: SQL dialect of statements in this format (for fingerprints)
    dialect: ClassVar[Dialect] = "postgres"

    def sniff(self, head: str, path: Path) -> float:
        """Confidence in [0, 1] that ``path`` (whose decoded start is ``head``) is this format."""
        raise NotImplementedError

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        """Read ``path`` into canonical frames and a parse report."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<loader {self.name}>"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "load" in cls.__dict__ and not getattr(cls.__dict__["load"], "_checked", False):
            cls.load = _checked_load(cls.__dict__["load"])  # type: ignore[method-assign]


def _checked_load(load: Any) -> Any:
    """Wrap a loader's ``load``: read notes into its report, then check the report adds up."""

    @functools.wraps(load)
    def wrapper(self: Loader, path: str | Path, *args: Any, **options: Any) -> LoadResult:
        outer = _IN_LOAD.get()
        if outer:  # a loader delegating to another: the outermost call does the bookkeeping
            return load(self, path, *args, **options)  # type: ignore[no-any-return]
        token = _IN_LOAD.set(True)
        try:
            with collect_notes() as notes, out_of_range_counts() as nulled:
                try:
                    result: LoadResult = load(self, path, *args, **options)
                except InputError as exc:
                    if notes:
                        exc.hint = "; ".join([*notes, *([exc.hint] if exc.hint else [])])
                        exc.args = (exc._render(),)
                    raise
        finally:
            _IN_LOAD.reset(token)
        for message in notes:
            result.report.warn(message)
        _flag_negative_durations(result)
        if nulled:
            counts = ", ".join(f"{col}: {n}" for col, n in sorted(nulled.items()))
            result.report.warn(
                f"{sum(nulled.values())} value(s) out of range set to null ({counts})"
            )
        result.report.check()
        return result

    wrapper._checked = True  # type: ignore[attr-defined]
    return wrapper


def _flag_negative_durations(result: LoadResult) -> None:
    """Warn about negative durations: kept as written (a clock step, a counter reset, an
    unsigned underflow upstream), but no figure should rest on them unnoticed."""
    for name, df in result.frames.items():
        for col in df.columns:
            if not str(col).endswith("_ms") or not pd.api.types.is_numeric_dtype(df[col]):
                continue
            negative = int((df[col] < 0).sum())
            if negative:
                result.report.warn(
                    f"{negative} {name} row(s) with a negative {col} (kept as written; "
                    "check the server clock or counters)"
                )


_IN_LOAD: contextvars.ContextVar[bool] = contextvars.ContextVar("auditkit_in_load", default=False)


@dataclass
class BlockResult:
    """What parsing one block (or finishing a file) produced."""

    frames: dict[str, pd.DataFrame]
    report: ParseReport
    pending: list[Any] = field(default_factory=list)
    #: the profile of the block's statements, when the parser built it itself rather than
    #: a query-events frame (the PostgreSQL log parsers in a digest; see :mod:`auditkit.digest`)
    profile: ProfilePartial | None = None
    #: rows of frames the parser counted without building them (a digest only counts what
    #: is not a statement), by frame name
    counts: dict[str, int] = field(default_factory=dict)


class BlockParser:
    """Parses blocks of one file. Holds only settings detected up front (prefix, timezone…).

    Must be picklable: it travels to worker processes. Must not change while it parses: a
    digest's threads share one parser (:class:`~auditkit.executors.ThreadExecutor`).
    """

    #: bytes regex matching at the start of a line that begins a record; None = every line
    boundary: re.Pattern[bytes] | None = None
    #: set by :mod:`auditkit.digest` before blocks are dispatched: the frames only feed a query
    #: profile, so a parser may leave out the query-event columns a profile never reads and
    #: leave ``sql`` unbound, with the parameters in ``params`` (the profile then binds the
    #: few samples it keeps through :meth:`bind_samples`). Parsers that ignore it stay correct.
    digest: bool = False

    def parse(self, block: Block) -> BlockResult:
        raise NotImplementedError

    def parse_parts(self, block: Block) -> list[BlockResult]:
        """The block's results in file order, for a digest: one, unless the parser reads parts
        of the block in different ways (see ``StderrParser``); their ``pending`` records are
        in file order, as if the parts had been blocks of their own."""
        return [self.parse(block)]

    def bind_samples(self, sql: list[str], params: list[str]) -> list[str]:
        """The sample statements ``sql`` with their logged ``params`` bound (digest frames).

        Only parsers that leave ``sql`` unbound when :attr:`digest` is set need to override
        this; the default returns the statements as they are.
        """
        return sql

    def finish(self, pending: list[Any], report: ParseReport) -> dict[str, pd.DataFrame]:
        """Resolve records left pending at block edges (default: nothing to resolve)."""
        return {}


def add_fingerprints(df: pd.DataFrame, dialect: Dialect = "postgres") -> pd.DataFrame:
    """Fill ``fingerprint`` and ``fingerprint_id`` of a query-events frame (vectorised)."""
    if len(df) == 0 or "sql" not in df:
        return df
    fps, ids = fingerprint_many(df["sql"], dialect)
    df = df.copy()
    df["fingerprint"] = fps.to_numpy()
    df["fingerprint_id"] = ids.to_numpy()
    return df


def finalise(
    frames: dict[str, list[pd.DataFrame]], loader: Loader, report: ParseReport
) -> dict[str, pd.DataFrame]:
    """Concatenate per-block frames, conform them to their schemas, count events."""
    out: dict[str, pd.DataFrame] = {}
    for name, all_parts in frames.items():
        parts = [p for p in all_parts if len(p)]
        schema = FRAMES[name]
        if parts:
            df = conform(pd.concat(parts, ignore_index=True), schema)
        else:  # keep the loader's extra columns on an empty frame too
            df = conform(all_parts[0].iloc[0:0], schema) if all_parts else empty(schema)
        if name == QUERY_EVENTS.name and len(df) and df["fingerprint"].isna().all():
            df = add_fingerprints(df, loader.dialect)
        out[name] = df
        report.events[name] = len(df)
    if loader.frame not in out:
        out[loader.frame] = empty(FRAMES[loader.frame])
        report.events[loader.frame] = 0
    return out


@contextmanager
def block_executor(
    path: str | Path, executor: Any = None, workers: int | None = None
) -> Iterator[Any]:
    """Where to parse ``path``'s blocks: ``executor`` when given, else local processes when the
    file is large enough to repay them (:func:`auditkit.executors.workers_for`), else this
    process (None). Processes started here are stopped on leaving."""
    from auditkit.executors import get_executor, workers_for

    if executor is not None:
        yield executor
        return
    n = workers_for(Path(path).stat().st_size, workers)
    if n <= 1:
        yield None
        return
    own = get_executor("process", workers=n)
    try:
        yield own
    finally:
        own.close()


def _parse_block(parser: BlockParser, block: Block | BlockRef) -> BlockResult:
    return parser.parse(block.read() if isinstance(block, BlockRef) else block)


class BlockLoader(Loader):
    """A loader for large line-oriented logs: streamed in blocks, parsed in parallel."""

    block_size: ClassVar[int] = DEFAULT_BLOCK_SIZE

    def parser(self, path: Path, head: str, **options: Any) -> BlockParser:
        """Detect what the whole file needs (prefix, timezone…) and return a block parser."""
        raise NotImplementedError

    def make_parser(self, path: str | Path, **options: Any) -> BlockParser:
        head = read_head(path).decode("utf-8", errors="replace")
        return self.parser(Path(path), head, **options)

    def blocks(self, path: str | Path, parser: BlockParser) -> Iterator[Block]:
        return iter_blocks(path, parser.boundary, self.block_size)

    def block_refs(self, path: str | Path, parser: BlockParser) -> Iterator[BlockRef] | None:
        """The same blocks as :meth:`blocks`, as places in the file, for workers that read it.

        None when the file is compressed (no offsets), or when this loader overrides
        :meth:`blocks`: its blocks may carry state a place in the file does not.
        """
        if type(self).blocks is not BlockLoader.blocks or not is_plain(path):
            return None
        return iter_block_refs(path, parser.boundary, self.block_size)

    def run(self, path: str | Path, executor: Any = None, **options: Any) -> Iterable[BlockResult]:
        """Parse every block, in file order, on ``executor`` (default: this process).

        Workers that can read this machine's files are sent places in the file, not bytes.
        """
        from auditkit.executors import get_executor

        parser = self.make_parser(path, **options)
        ex = executor or get_executor("serial")
        refs = self.block_refs(path, parser) if getattr(ex, "shares_files", False) else None
        blocks: Iterable[Block | BlockRef] = refs if refs is not None else self.blocks(path, parser)
        results = ex.map(_parse_block, ((parser, b) for b in blocks))
        return _with_finish(parser, results, self, path)

    def load(
        self, path: str | Path, executor: Any = None, workers: int | None = None, **options: Any
    ) -> LoadResult:
        """Load ``path`` in blocks; on every core when it is large
        (:func:`auditkit.executors.workers_for`), unless ``workers`` or ``executor`` say."""
        start = time.perf_counter()
        report = ParseReport(str(path), self.name)
        collected: dict[str, list[pd.DataFrame]] = {}
        with block_executor(path, executor, workers) as ex:
            for res in self.run(path, ex, **options):
                report.merge(res.report)
                for name, df in res.frames.items():
                    collected.setdefault(name, []).append(df)
        frames = finalise(collected, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        if report.parsed == 0:
            raise nothing_parsed(self, path, report)
        return LoadResult(self.name, frames, report, primary=self.frame)


def _with_finish(
    parser: BlockParser, results: Iterable[BlockResult], loader: Loader, path: str | Path
) -> Iterator[BlockResult]:
    pending: list[Any] = []
    for res in results:
        pending.extend(res.pending)
        res.pending = []
        yield res
    tail = ParseReport(str(path), loader.name)
    frames = parser.finish(pending, tail)
    yield BlockResult(frames, tail)


def nothing_parsed(loader: Loader, path: str | Path, report: ParseReport) -> NothingParsedError:
    """The error for a file that yielded nothing, naming the likely cause from the report."""
    if report.read == 0:
        hint = "the file is empty"
    elif report.warnings:
        hint = "; ".join(report.warnings)
    elif report.skipped:
        reason, count = report.skipped.most_common(1)[0]
        first = report.skip_lines(reason)[:1]
        at = f" (first at line {first[0]})" if first else ""
        hint = f"all {report.read} records were skipped, mostly '{reason}' ×{count}{at}: is this the right format?"
    else:
        hint = "is this the right format?"
    return NothingParsedError(
        f"no usable records in this {loader.name} file",
        path=path,
        expected=loader.expected or loader.description,
        report=report,
        hint=hint,
    )
