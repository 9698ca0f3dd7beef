"""The native stderr reader (:mod:`auditkit.loaders._pg_native`) against the reference parser.

For every block it takes, the native reader must give exactly what the reference gives a digest:
the same count of server events, parse report and pending records, and the same profile of its
statements (a digest builds no frame: both profile their statements from their columns, and
the reference's columns are checked against its query-events frame below); the blocks it
does not take go to the reference. Checked on every PostgreSQL stderr log of the peer corpus
and of the fixtures (cut in blocks of several sizes, so that some blocks avoid their
multi-line entries), and on logs written by a real server with three ``log_line_prefix``
settings; the digest profile is compared with and without the native reader.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.digest import Digest, digest
from auditkit.loaders._pg_native import Unsupported, parse_native
from auditkit.loaders.base import BlockResult
from auditkit.loaders.detect import detect
from auditkit.loaders.postgres_log import StderrParser
from auditkit.loaders.registry import get_loader
from auditkit.loaders.stream import iter_blocks
from auditkit.profile import ProfilePartial, executions

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "postgres"
PEER = ROOT.parent / "shared" / "peer-data"
BLOCK_SIZES = (1 << 11, 1 << 15, 1 << 23)


def _stderr_logs() -> list[Path]:
    """Every PostgreSQL stderr log of the fixtures and of the peer corpus (when present)."""
    found = []
    for root in (FIXTURES, PEER):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix in (".md", ".json", ".csv", ".tsv"):
                continue
            try:
                if detect(path).format == "postgres_stderr":
                    found.append(path)
            except Exception:  # not a log at all
                continue
    return found


LOGS = _stderr_logs()


def _parser(path: Path, **options: object) -> StderrParser:
    parser = get_loader("postgres_stderr").make_parser(path, **options)
    assert isinstance(parser, StderrParser)
    parser.digest = True
    return parser


def _facts(part: ProfilePartial) -> dict[str, object]:
    """Everything a profile partial holds, comparable with ``==`` (durations in file order)."""
    out: dict[str, object] = {"events": part.events, "groups": list(part.accs)}
    for fid, acc in part.accs.items():
        facts = dict(vars(acc))
        facts["exact"] = np.concatenate(acc.exact).tolist() if acc.exact else []
        out[fid] = facts
    return out


def _compare(parser: StderrParser, block: object) -> bool:
    """Whether the native reader took ``block``; when it did, its result is the reference's
    in a digest: the same count of server events, parse report and pending records, and the
    same profile of its statements."""
    assert parser._plan is not None
    reference = parser._parse(block)  # type: ignore[arg-type]
    _check_lean(parser, block, reference)
    try:
        native = parse_native(
            parser._plan,
            block,
            parser.fmt,
            parser.tz,
            parser._parse,
            parser.bind_samples,  # type: ignore[arg-type]
        )
    except Unsupported:
        return False
    assert native.frames == reference.frames == {}
    assert native.counts == reference.counts
    assert native.report.to_dict() == reference.report.to_dict()
    assert repr(native.pending) == repr(reference.pending)
    assert native.profile is not None and reference.profile is not None
    assert _facts(native.profile) == _facts(reference.profile)
    return True


def _check_lean(parser: StderrParser, block: object, lean: BlockResult) -> None:
    """The reference's digest result of ``block`` (``lean``) is what its frames give: the
    profile of its query events, as many server events, the same report and pending records."""
    parser.digest = False
    try:
        full = parser._parse(block)  # type: ignore[arg-type]
    finally:
        parser.digest = True
    events = full.frames["query_events"]
    expected = ProfilePartial.from_events(executions(events), "postgres", parser.bind_samples)
    assert lean.profile is not None
    assert _facts(lean.profile) == _facts(expected)
    assert lean.counts == {"server_events": len(full.frames["server_events"])}
    report = full.report.to_dict()
    # a load counts the extended protocol's parse and bind steps among its query events too
    report["events"] = lean.report.to_dict()["events"]
    assert lean.report.to_dict() == report
    assert repr(lean.pending) == repr(full.pending)


def _blocks(path: Path, parser: StderrParser, size: int) -> Iterator[object]:
    return iter_blocks(path, parser.boundary, size)


def _assert_same(one: Digest, other: Digest) -> None:
    """The same profile, exactly, and the same parse reports (their timings aside)."""
    pd.testing.assert_frame_equal(one.profile, other.profile, check_exact=True)
    for a, b in zip(one.reports, other.reports, strict=True):
        da, db = a.to_dict(), b.to_dict()
        da.pop("elapsed_s", None)
        db.pop("elapsed_s", None)
        assert da == db


def _same_digest(path: Path, **options: object) -> None:
    """The digest of ``path`` is the same with and without the native reader."""
    native = digest([path], workers=1, format="postgres_stderr", **options)
    reference = digest([path], workers=1, format="postgres_stderr", native=False, **options)
    _assert_same(native, reference)


def test_the_corpus_holds_stderr_logs() -> None:
    assert len([p for p in LOGS if p.is_relative_to(FIXTURES)]) >= 5
    if PEER.is_dir():
        assert len([p for p in LOGS if p.is_relative_to(PEER)]) >= 10


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_native_blocks_equal_the_reference(path: Path) -> None:
    parser = _parser(path)
    if parser._plan is None:
        pytest.skip(f"prefix {parser.prefix!r}: read by the reference only")
    total = sum(len(b.data) for b in _blocks(path, parser, BLOCK_SIZES[-1]))  # type: ignore[attr-defined]
    # at most about forty blocks a size: a large log is cut in larger blocks
    for size in BLOCK_SIZES:
        for block in _blocks(path, parser, max(size, total // 40)):
            _compare(parser, block)
    _same_digest(path)


def _server_log(tmp_path: Path, prefix: str) -> Path:
    """A statement log written by a real server with ``prefix``: simple and extended protocol
    statements with parameters, an error with its STATEMENT line, checkpoints, connections."""
    from devtools.postgres import ThrowawayPostgres, available

    settings = {
        "log_line_prefix": prefix,
        "log_min_duration_statement": 0,
        "log_checkpoints": True,
        "log_connections": True,
        "log_disconnections": True,
        "shared_preload_libraries": None,
        "pg_stat_statements.track": None,
    }
    reason = available(settings)
    if reason:
        pytest.skip(f"no PostgreSQL cluster: {reason}")
    import psycopg

    with ThrowawayPostgres(settings) as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE item (id serial PRIMARY KEY, name text, price numeric)")
            for i in range(300):
                conn.execute(
                    "INSERT INTO item (name, price) VALUES (%s, %s)", (f"näme {i}", i * 1.5)
                )
                conn.execute(f"SELECT * FROM item WHERE id = {i} AND name <> 'x'")  # literals
                conn.execute("SELECT count(*) FROM item WHERE price > %s", (i,))
                if i % 50 == 0:
                    conn.execute("CHECKPOINT")
                    with pytest.raises(psycopg.errors.DivisionByZero):
                        conn.execute("SELECT 1 / %s", (0,))
            conn.execute("SELECT name\n  FROM item\n WHERE id = 1")  # a multi-line statement
        pg.sync_log()
        saved = pg.stop(save_logs_to=tmp_path / "logs")
    return Path(shutil.move(str(saved[0]), tmp_path / "postgresql.log"))


@pytest.mark.parametrize(
    "prefix",
    [
        "%m [%p] %q%u@%d ",
        "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
        "%m %u@%d [%p] ",
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",  # pgBadger's: a line number
        "%m [%p-%l] %q%u@%d ",
    ],
)
def test_native_on_a_real_server_log(tmp_path: Path, prefix: str) -> None:
    path = _server_log(tmp_path, prefix)
    parser = _parser(path, prefix=prefix)
    assert parser._plan is not None
    for size in BLOCK_SIZES:
        taken = [_compare(parser, block) for block in _blocks(path, parser, size)]
        if size == 1 << 15:
            # most blocks are statements only: the native reader takes them
            assert sum(taken) * 2 > len(taken), (prefix, taken)
    _same_digest(path, prefix=prefix)


def test_native_falls_back_on_what_it_does_not_read(tmp_path: Path) -> None:
    """Blocks with what only the reference reads are parsed by it, with the same digest."""
    lines = [
        "2024-05-01 10:00:00.001 UTC [10] app@shop LOG:  duration: 1.5 ms  statement: SELECT 1",
        "2024-05-01 10:00:00.002 UTC [10] app@shop LOG:  statement: SELECT 2",  # untimed
        "2024-05-01 10:00:00.003 UTC [10] app@shop LOG:  duration: 2.5 ms",
        "2024-05-01 10:00:00.004 UTC [11] app@shop LOG:  duration: 0.5 ms  execute S_1: SELECT $1",
        "2024-05-01 10:00:00.004 UTC [11] app@shop DETAIL:  parameters: $1 = 'a'",
        "2024-05-01 10:00:00.005 UTC [12] app@shop ERREUR:  la relation « x » n'existe pas",
    ]
    path = tmp_path / "postgresql.log"
    path.write_text("\n".join(lines) + "\n")
    parser = _parser(path, prefix="%m [%p] %q%u@%d ")
    block = next(iter(_blocks(path, parser, 1 << 20)))
    assert not _compare(parser, block)
    _same_digest(path, prefix="%m [%p] %q%u@%d ")


def test_blocks_read_in_parts_give_the_reference_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block whose only obstacle is a statement written over several lines is read natively
    around it, the statement (with its secondary lines) by the reference: the digest of every
    log is unchanged, with pieces down to 1 KiB, and some logs do get cut."""
    from auditkit.loaders import _pg_native

    monkeypatch.setattr(_pg_native, "_MIN_NATIVE", 1024)
    cut = []
    for path in LOGS:
        parser = _parser(path)
        if parser._plan is None:
            continue
        for block in _blocks(path, parser, 1 << 23):
            parts = parser.parse_parts(block)  # type: ignore[arg-type]
            if len(parts) > 1:
                cut.append(path.name)
                assert sum(r.report.lines for r in parts) == block.data.count(b"\n")  # type: ignore[attr-defined]
        _same_digest(path)
    assert cut, "no log has a multi-line statement among single-line ones"


def _statement_log(tmp_path: Path, with_statement: bool) -> Path:
    """Timed single-line statements around an autovacuum report (continuation lines) and,
    with ``with_statement``, a prepared statement written over two lines with its parameters."""
    pre = "2024-05-01 10:00:{:02d}.{:03d} UTC [{}] "
    lines = []
    for i in range(400):
        lines.append(
            pre.format(i // 100, i % 1000, 10 + i % 3)
            + f"app@shop LOG:  duration: 0.{i % 9 + 1} ms  statement: SELECT * FROM item WHERE id = {i}"
        )
        if i == 150:
            lines += [
                pre.format(1, 500, 20) + 'LOG:  automatic vacuum of table "shop.public.item": '
                "index scans: 0",
                "\tpages: 0 removed, 10 remain, 10 scanned (100.00% of total)",
                "\ttuples: 0 removed, 100 remain, 0 are dead but not yet removable",
            ]
        if i == 250 and with_statement:
            lines += [
                pre.format(2, 500, 11)
                + "app@shop LOG:  duration: 0.5 ms  execute S_1: SELECT name",
                "\t  FROM item WHERE id = $1",
                pre.format(2, 500, 11) + "app@shop DETAIL:  parameters: $1 = '7'",
            ]
    path = tmp_path / "postgresql.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_multi_line_statements_are_cut_out_before_the_block_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement written over several lines is found from the first lines of the entries
    around it — with its DETAIL, without the autovacuum report, which the native reader
    reads itself — and the digest is the reference's."""
    from auditkit.loaders import _pg_native

    monkeypatch.setattr(_pg_native, "_MIN_NATIVE", 1024)
    found: list[object] = []
    spans = _pg_native._statement_spans

    def spy(*args: object) -> object:
        found.append(spans(*args))  # type: ignore[arg-type]
        return found[-1]

    monkeypatch.setattr(_pg_native, "_statement_spans", spy)
    prefix = "%m [%p] %q%u@%d "
    path = _statement_log(tmp_path, with_statement=True)
    parser = _parser(path, prefix=prefix)
    block = next(iter(_blocks(path, parser, 1 << 20)))
    parts = parser.parse_parts(block)  # type: ignore[arg-type]
    assert len(parts) == 3
    (cut,) = found[0]  # type: ignore[misc]
    text = block.data[cut[0] : cut[1]].decode()  # type: ignore[attr-defined]
    assert text.startswith("2024-05-01 10:00:02.500 UTC [11] app@shop LOG:  duration: 0.5 ms")
    assert text.endswith("DETAIL:  parameters: $1 = '7'\n")
    _same_digest(path, prefix=prefix)

    # without it, the autovacuum report alone does not cut the block: read whole, natively
    found.clear()
    path = _statement_log(tmp_path, with_statement=False)
    parser = _parser(path, prefix=prefix)
    block = next(iter(_blocks(path, parser, 1 << 20)))
    assert _compare(parser, block)
    assert found[-1] is None
    _same_digest(path, prefix=prefix)


def test_line_numbers_do_not_stop_the_native_reader() -> None:
    """``%l`` (the session's line number, in pgBadger's recommended prefix) changes on every
    line; the native reader reads it when the text before it fixes where it stands, and
    leaves the prefix to the reference when a free-text field comes first."""
    from auditkit.loaders._pg_native import native_plan

    rx = re.compile("x")
    cases = {
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ": r"^(.*? \[[0-9]+\]: \[)[0-9]+",
        "%m [%p-%l] %q%u@%d ": r"^(.*? \[[0-9]+-)[0-9]+",
        "[%p]: [%l-1] db=%d,user=%u ": r"^(\[[0-9]+\]: \[)[0-9]+",
    }
    for prefix, pattern in cases.items():
        plan = native_plan(prefix, rx)
        assert plan is not None and plan.line_number == pattern, prefix
    for prefix in ("%t %u [%p] %l ", "%t [%p]%l%l ", "%m [%p] %c %l ", "%t [%x] %l "):
        assert native_plan(prefix, rx) is None, prefix


def test_blocks_side_by_side_give_the_serial_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads share one parser, processes each get a copy: both give the serial digest of
    every stderr log; blocks of 64 KiB put many of them in flight at once."""
    from auditkit.executors import get_executor
    from auditkit.loaders.postgres_log import PostgresStderrLoader

    monkeypatch.setattr(PostgresStderrLoader, "block_size", 64 * 1024)
    serial = digest(LOGS, workers=1)
    for name, workers in (("thread", 4), ("process", 2)):
        ex = get_executor(name, workers=workers)
        try:
            other = digest(LOGS, executor=ex)
        finally:
            ex.close()
        _assert_same(other, serial)


@pytest.mark.parametrize("two_blanks", [True, False])
def test_a_colon_found_near_its_place_is_the_one_the_block_search_finds(two_blanks: bool) -> None:
    """The windowed colon search answers what searching all of the block's colons answers:
    colons of the other kind first, none in the window, lines longer than the window."""
    from auditkit.loaders._pg_native import _after, _Bytes

    rng = np.random.default_rng(7)
    alphabet = np.frombuffer(b":: \n" + b"a" * 12, dtype=np.uint8)
    data = rng.choice(alphabet, size=20_000).tobytes() + b"\n"
    b = _Bytes(data)
    pos = np.sort(rng.choice(len(data) - 1, size=3_000, replace=False)).astype(np.int64)
    nl = b.occurrences(10)
    limit = nl[np.searchsorted(nl, pos)] + rng.integers(0, 2, size=len(pos))
    for width in (8, 32, 64):
        hit, found = b.first_colon(pos, limit, two_blanks, width)
        want_hit, want_found = _after(b.colons(two_blanks), pos, limit)
        assert (found == want_found).all()
        assert (hit[found] == want_hit[want_found]).all()
