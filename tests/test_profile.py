"""The query profile: exact statistics, mergeable partials, the sketch, digest over workers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import auditkit
from auditkit import profile as profile_mod
from auditkit.profile import ProfilePartial, query_profile


def _events(durations: list[float], sql: str = "SELECT * FROM t WHERE id = {i}") -> pd.DataFrame:
    return pd.DataFrame({
        "sql": [sql.format(i=i) for i in range(len(durations))],
        "duration_ms": durations,
        "ts": pd.date_range("2024-01-01", periods=len(durations), freq="s", tz="UTC"),
        "source_file": "a.log",
    })


def test_statistics_are_exact() -> None:
    d = [1.0, 2.0, 3.0, 4.0, 100.0]
    prof = query_profile(_events(d))
    row = prof.iloc[0]
    assert row["calls"] == 5 and row["total_ms"] == pytest.approx(110.0)
    assert row["mean_ms"] == pytest.approx(22.0)
    assert row["stddev_ms"] == pytest.approx(np.std(d))
    assert row["p50_ms"] == pytest.approx(3.0) and row["max_ms"] == 100.0
    assert row["percentiles_exact"] == True  # noqa: E712
    assert row["sample_sql"] == "SELECT * FROM t WHERE id = 4"  # the slowest execution
    assert row["first_seen"] == pd.Timestamp("2024-01-01", tz="UTC")


def test_ranking_and_share() -> None:
    events = pd.concat([_events([1.0] * 10, "SELECT a FROM x WHERE b = {i}"), _events([50.0], "UPDATE y SET c = {i}")])
    prof = query_profile(events)
    assert prof["fingerprint"].tolist() == ["update y set c = ?", "select a from x where b = ?"]
    assert prof["rank"].tolist() == [1, 2]
    assert prof["share"].sum() == pytest.approx(1.0)


def test_partials_merge_to_the_whole() -> None:
    rng = np.random.default_rng(7)
    d = rng.lognormal(1, 1, 1000).tolist()
    events = _events(d)
    whole = ProfilePartial.from_events(events).frame()
    parts = ProfilePartial()
    for chunk in np.array_split(np.arange(len(events)), 7):
        parts.merge(ProfilePartial.from_events(events.iloc[chunk]))
    merged = parts.frame()
    for col in ("calls", "total_ms", "mean_ms", "stddev_ms", "p95_ms", "min_ms", "max_ms"):
        assert merged.loc[0, col] == pytest.approx(whole.loc[0, col]), col


def test_sketch_beyond_kept_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_mod, "EXACT_SAMPLES", 100)
    rng = np.random.default_rng(1)
    d = rng.lognormal(2, 0.8, 5000)
    prof = query_profile(_events(d.tolist()))
    assert prof.loc[0, "percentiles_exact"] == False  # noqa: E712
    for q, col in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
        assert prof.loc[0, col] == pytest.approx(np.percentile(d, q), rel=0.03)


def test_untimed_statements_count_as_calls_only() -> None:
    events = _events([2.0, float("nan"), 4.0])
    row = query_profile(events).iloc[0]
    assert row["calls"] == 3 and row["total_ms"] == 6.0 and row["mean_ms"] == 3.0


def test_digest_with_workers_equals_serial(fixtures: Path, peer_data: Path) -> None:
    files = [peer_data / "linea-it-target/logs/sql.log", fixtures / "django/bare.log"]
    serial = auditkit.digest(files)
    parallel = auditkit.digest(files, workers=2)
    cols = ["fingerprint_id", "calls", "total_ms", "p95_ms"]
    pd.testing.assert_frame_equal(serial.profile[cols], parallel.profile[cols])
    assert [r.read for r in serial.reports] == [5448, 4]


def test_local_executor_by_input_size() -> None:
    from auditkit.executors import (
        PARALLEL_MIN_BYTES,
        PROCESS_MIN_BYTES,
        ProcessExecutor,
        SerialExecutor,
        ThreadExecutor,
        local_executor,
    )

    assert isinstance(local_executor(PARALLEL_MIN_BYTES - 1), SerialExecutor)
    threads = local_executor(PROCESS_MIN_BYTES - 1, workers=3)
    assert isinstance(threads, ThreadExecutor) and threads.workers == 3
    assert isinstance(local_executor(PROCESS_MIN_BYTES, workers=2), ProcessExecutor)
    assert isinstance(local_executor(10 * PROCESS_MIN_BYTES, workers=1), SerialExecutor)


def test_gc_pauses_nest_across_threads() -> None:
    import gc
    import threading

    from auditkit.executors import gc_paused

    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    with gc_paused():
        t.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause still runs
    release.set()
    t.join(5)
    assert gc.isenabled()


def test_digest_on_dask(fixtures: Path) -> None:
    from auditkit.executors import get_executor

    ex = get_executor("dask", workers=1)
    try:
        result = auditkit.digest([fixtures / "django/bare.log"], executor=ex)
    finally:
        ex.close()
    assert int(result.profile["calls"].sum()) == 4


def test_the_digest_command_keeps_freed_memory_for_the_next_block() -> None:
    """``auditkit digest`` asks glibc to keep what a block frees; a library call does not."""
    import subprocess
    import sys

    code = (
        "import ctypes, sys\n"
        "from click.testing import CliRunner\n"
        "from auditkit.cli import cli\n"
        "from auditkit.executors import retain_freed_memory\n"
        "calls = []\n"
        "import auditkit.executors as ex\n"
        "real = ex.retain_freed_memory\n"
        "ex.retain_freed_memory = lambda: calls.append(1) or real()\n"
        "r = CliRunner().invoke(cli, ['digest', sys.argv[1], '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(len(calls), real())\n"
    )
    log = Path(__file__).parent / "fixtures" / "django" / "bare.log"
    out = subprocess.run(
        [sys.executable, "-c", code, str(log)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "1"
    import platform

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out[1] == ("True" if glibc else "False")


def test_the_digest_command_starts_no_blas_threads() -> None:
    """``auditkit digest`` keeps OpenBLAS's spinning thread pool from starting (it multiplies
    no matrices); a count the user set is kept, and after NumPy's import nothing changes."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from click.testing import CliRunner\n"
        "from auditkit.cli import cli\n"
        "assert 'numpy' not in sys.modules\n"
        "r = CliRunner().invoke(cli, ['digest', sys.argv[1], '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "from auditkit.executors import no_blas_threads\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), no_blas_threads())\n"
    )
    log = str(Path(__file__).parent / "fixtures" / "django" / "bare.log")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = subprocess.run(
        [sys.executable, "-c", code, log], capture_output=True, text=True, check=True, env=env
    )
    assert run.stdout.split() == ["1", "False"]
    env["OPENBLAS_NUM_THREADS"] = "3"
    run = subprocess.run(
        [sys.executable, "-c", code, log], capture_output=True, text=True, check=True, env=env
    )
    assert run.stdout.split() == ["3", "False"]


def _postgres_logs() -> list[Path]:
    """Every PostgreSQL log of the fixtures, of each format (stderr, csvlog, jsonlog, syslog)."""
    from auditkit.loaders.detect import detect

    root = Path(__file__).parent / "fixtures" / "postgres"
    found = []
    for path in sorted(root.iterdir()):
        if path.suffix != ".md" and detect(path).format.startswith("postgres_"):
            found.append(path)
    return found


@pytest.mark.parametrize("path", _postgres_logs(), ids=lambda p: p.name)
def test_the_digest_is_the_profile_of_the_loaded_events(path: Path) -> None:
    """A digest profiles each block's statements from their columns and only counts the
    server events; what it gives is the profile of the query events a load builds, and as
    many server events."""
    from auditkit.digest import digest

    loaded = auditkit.load(path)
    expected = query_profile(loaded.frames["query_events"])
    result = digest([path], workers=1)
    cols = [
        "fingerprint_id", "fingerprint", "calls", "total_ms", "mean_ms", "min_ms", "max_ms",
        "p50_ms", "p95_ms", "p99_ms", "rows", "first_seen", "last_seen", "sample_sql",
        "database", "user", "query_id",
    ]  # fmt: skip
    pd.testing.assert_frame_equal(result.profile[cols], expected[cols], check_exact=False)
    events = result.reports[0].events
    assert events["server_events"] == len(loaded.frames.get("server_events", ()))
    assert events["query_events"] == len(loaded.frames["query_events"])
