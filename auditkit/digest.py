"""Digest: the query profile of log files, streamed, in bounded memory.

``auditkit digest FILE…`` and :func:`digest` parse each file block by block and turn every
block into a :class:`~auditkit.profile.ProfilePartial` *where it was parsed* (this process, a
local worker, or a Dask worker), so only small partial aggregates travel and no file is ever
held whole in memory. Files whose format has no block parser (pg_stat_statements exports,
JSON traces) are loaded whole and profiled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.executors import Executor, local_executor
from auditkit.loaders.base import BlockLoader, BlockParser, nothing_parsed
from auditkit.loaders.detect import detect
from auditkit.loaders.registry import get_loader
from auditkit.loaders.result import ParseReport
from auditkit.loaders.stream import Block, BlockRef
from auditkit.profile import ProfilePartial, executions, statement_frame

__all__ = ["Digest", "digest"]


@dataclass
class Digest:
    """The profile of some files and the parse report of each.

    ``records`` are the profile's rows as plain values, ranked
    (:meth:`~auditkit.profile.ProfilePartial.records`); :attr:`profile` is their
    statement_stats frame, built when first read — printing the records needs no pandas.
    """

    records: list[dict[str, Any]]
    reports: list[ParseReport] = field(default_factory=list)
    elapsed_s: float = 0.0

    @cached_property
    def profile(self) -> pd.DataFrame:
        """The statement_stats frame, ranked by total time (then calls)."""
        return statement_frame(self.records)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.reports)

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.reports)


def _profile_block(
    parser: BlockParser, block: Block | BlockRef, dialect: str
) -> tuple[ProfilePartial, ParseReport, list[Any]]:
    parts = parser.parse_parts(block.read() if isinstance(block, BlockRef) else block)
    part = ProfilePartial()
    report = parts[0].report
    pending: list[Any] = []
    for k, res in enumerate(parts):
        if res.profile is not None:  # profiled by the parser itself, without a frame
            part.merge(res.profile)
            res.report.events["query_events"] += res.profile.events
        events = res.frames.get("query_events")
        if events is not None:
            part.merge(ProfilePartial.from_events(executions(events), dialect, parser.bind_samples))
            res.report.events["query_events"] += len(events)
        for name, df in res.frames.items():
            if name != "query_events":
                res.report.events[name] += len(df)
        for name, n in res.counts.items():
            res.report.events[name] += n
        if k:
            report.merge(res.report)
        pending.extend(res.pending)
    return part, report, pending


def _tasks(
    loader: BlockLoader, path: Path, parser: BlockParser, executor: Executor
) -> Iterator[Block | BlockRef]:
    """What to send to the executor: places in the file when its workers can read the file
    themselves (the parent then reads nothing but the cut points), else the blocks' bytes."""
    if getattr(executor, "shares_files", False):  # an executor from outside may not say
        refs = loader.block_refs(path, parser)
        if refs is not None:
            return refs
    return loader.blocks(path, parser)


def _digest_file(
    path: Path, executor: Executor, fmt: str | None, options: dict[str, Any]
) -> tuple[ProfilePartial, ParseReport]:
    start = time.perf_counter()
    loader = get_loader(fmt or detect(path).format)
    if not isinstance(loader, BlockLoader):
        result = loader.load(path, **options)
        events = result.frames.get("query_events")
        if events is None:
            result.report.warn(
                "no statement events in this file (statistics only): read it with auditkit.load()"
            )
        part = (
            ProfilePartial.from_events(executions(events), loader.dialect)
            if events is not None
            else ProfilePartial()
        )
        return part, result.report
    parser = loader.make_parser(path, **options)
    # only a profile reads the frames: let the parser skip what a profile never reads
    parser.digest = True
    report = ParseReport(str(path), loader.name)
    total = ProfilePartial()
    pending: list[Any] = []
    tasks = ((parser, block, loader.dialect) for block in _tasks(loader, path, parser, executor))
    for part, rep, pend in executor.map(_profile_block, tasks):
        total.merge(part)
        report.merge(rep)
        pending.extend(pend)
    tail = ParseReport(str(path), loader.name)
    frames = parser.finish(pending, tail)
    report.merge(tail)
    if "query_events" in frames:
        total.merge(
            ProfilePartial.from_events(
                executions(frames["query_events"]), loader.dialect, parser.bind_samples
            )
        )
        report.events["query_events"] += len(frames["query_events"])
    report.elapsed_s = time.perf_counter() - start
    report.check()
    if report.parsed == 0:
        raise nothing_parsed(loader, path, report)
    return total, report


def digest(
    paths: Iterable[str | Path],
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    format: str | None = None,
    top: int | None = None,
    **options: Any,
) -> Digest:
    """The query profile of ``paths`` (formats detected unless ``format`` is given).

    Blocks are parsed on ``workers`` threads, or worker processes for inputs of 256 MiB and
    more — by default every core once the input is large enough to repay it
    (:func:`auditkit.executors.local_executor`); ``workers=1`` keeps everything in this
    thread. Pass ``executor`` for Dask.
    """
    start = time.perf_counter()
    files = [Path(p) for p in paths]
    own = executor is None
    if executor is None:
        size = sum(p.stat().st_size for p in files if p.is_file())
        executor = local_executor(size, workers)
    ex = executor
    try:
        total = ProfilePartial()
        reports = []
        for p in files:
            part, report = _digest_file(p, ex, format, options)
            total.merge(part)
            reports.append(report)
    finally:
        if own:
            ex.close()
    return Digest(total.records(top), reports, time.perf_counter() - start)
