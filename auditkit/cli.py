"""The ``auditkit`` command line: thin over the library.

Exit codes scripts can rely on:

* 0 — success;
* 1 — the work ran but something failed (a batch with a failed client, a benchmark bar missed);
* 2 — usage error (bad option, unknown format or preset);
* 3 — input error (a file that cannot be read or yields nothing).

Errors print as one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from auditkit.errors import AuditkitError, ConfigError, InputError

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3


class _Group(click.Group):
    """Turns auditkit errors into one clear line and a meaningful exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditkitError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"auditkit: error: {exc}", err=True)
            code = (
                EXIT_USAGE
                if isinstance(exc, ConfigError)
                else EXIT_INPUT
                if isinstance(exc, InputError)
                else EXIT_FAILED
            )
            ctx.exit(code)
        except (OSError, ValueError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"auditkit: error: {exc}", err=True)
            ctx.exit(EXIT_INPUT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="auditkit")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """auditkit: Django performance audits from logs, statistics, plans and traces."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _is_na(v: Any) -> bool:
    """pandas' NA without importing pandas for commands that never made one."""
    return type(v).__name__ == "NAType"


def _fmt_ms(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or _is_na(v):
        return "-"
    v = float(v)
    if v >= 1000:
        return f"{v / 1000:.2f}s"
    return f"{v:.2f}ms" if v < 10 else f"{v:.1f}ms"


@cli.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--top", default=20, show_default=True, help="How many statements to show.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the profile rows as JSON (for scripts)."
)
@click.option("--format", "fmt", default=None, help="Format of the files (detected when omitted).")
@click.option(
    "--prefix", default=None, help="PostgreSQL log_line_prefix, when detection needs help."
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Parallel parsers: threads below 256 MiB of input, worker processes from there on  [default: every core for inputs of 48 MiB and more].",
)
@click.option("--scheduler", default=None, help="Dask scheduler address: parse on a cluster.")
@click.option(
    "--show-literals", is_flag=True, help="Show sample statements with their literal values."
)
def digest(
    files: tuple[Path, ...],
    top: int,
    as_json: bool,
    fmt: str | None,
    prefix: str | None,
    workers: int | None,
    scheduler: str | None,
    show_literals: bool,
) -> None:
    """The query profile of query logs: statements ranked by total time.

    Like pt-query-digest and pgBadger: calls, total and share of time, mean, p50/p95/p99,
    rows and a sample per normalised statement, from Django, PostgreSQL or MySQL logs.
    """
    from auditkit.executors import (
        executor_for,
        no_blas_threads,
        quiet_imports,
        retain_freed_memory,
    )
    from auditkit.lazy_modules import PANDAS_SCALARS, defer

    defer("pandas", PANDAS_SCALARS)  # imported only if a file needs it: most never do
    no_blas_threads()  # nothing here multiplies matrices: no spinning BLAS threads
    retain_freed_memory()  # blocks reuse what the blocks before them freed
    with quiet_imports():
        from auditkit.digest import digest as run_digest

    options: dict[str, Any] = {"prefix": prefix} if prefix else {}
    executor = executor_for(scheduler=scheduler) if scheduler else None
    try:
        result = run_digest(files, workers=workers, executor=executor, format=fmt, **options)
    finally:
        if executor is not None:
            executor.close()
    from auditkit.redact import Redactor

    redactor = Redactor(show_literals=show_literals)  # literals when asked, secrets never
    _LEAVE_AT_ONCE.append(True)  # the pool is closed; the rest is printing
    if as_json:
        click.echo(
            json.dumps(
                {
                    "statements": [
                        _digest_json(r, redactor.sql if show_literals else None)
                        for r in result.records[:top]
                    ],
                    "groups": len(result.records),
                    "files": [redactor.value(r.to_dict()) for r in result.reports],
                    "elapsed_s": round(result.elapsed_s, 3),
                },
                indent=1,
            )
        )
        return
    _print_profile(result.records[:top], result)


#: the columns of a statement in ``auditkit digest --json``, in order
_DIGEST_JSON = (
    "rank", "fingerprint_id", "fingerprint", "calls", "total_ms", "share", "mean_ms", "p50_ms",
    "p95_ms", "p99_ms", "percentiles_exact", "max_ms", "rows", "first_seen", "last_seen",
    "sample_sql",
)  # fmt: skip


def _digest_json(record: dict[str, Any], literals: Callable[[str], str] | None) -> dict[str, Any]:
    """A statement of ``auditkit digest --json`` from its profile record
    (:meth:`~auditkit.profile.ProfilePartial.records`), as ``DataFrame.to_json(orient=
    "records", date_format="iso")`` wrote it: NaN is null, times are ISO 8601 to the
    millisecond, floats have at most ten decimals. The sample is the fingerprint, or the
    logged statement passed through ``literals`` (the redactor) when literals are shown."""
    out: dict[str, Any] = {}
    for col in _DIGEST_JSON:
        value = record[col]
        if col in ("first_seen", "last_seen"):
            value = _iso_ms(value)
        elif col == "sample_sql":
            value = literals(value) if literals is not None else record["fingerprint"]
        elif isinstance(value, float):
            value = None if math.isnan(value) else round(value, 10)
        out[col] = value
    return out


def _iso_ms(ns: int | None) -> str | None:
    """UTC nanoseconds as ``2024-05-01T10:00:00.123Z`` (None stays None)."""
    if ns is None:
        return None
    ms = ns // 1_000_000
    stamp = datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _print_profile(shown: list[dict[str, Any]], result: Any) -> None:
    """The digest as a table: the ``shown`` statements' records (ranked), after a summary."""
    every = result.records
    click.echo(
        f"{sum(r['calls'] for r in every)} executions in {len(every)} statement groups, "
        f"{_fmt_ms(sum(r['total_ms'] for r in every))} in total; top {len(shown)} shown; "
        f"parsed in {result.elapsed_s:.2f}s"
    )
    for r in result.reports:
        click.echo(f"  {r}")
    click.echo("")
    header = f"{'#':>3} {'calls':>8} {'total':>9} {'share':>6} {'mean':>8} {'p95':>8} {'p99':>8}  statement"
    click.echo(header)
    click.echo("-" * min(120, len(header) + 40))
    for row in shown:
        approx = "" if row["percentiles_exact"] is not False else "~"
        fp = str(row["fingerprint"]).replace("\n", " ")
        share = row["share"] * 100 if row["share"] == row["share"] else 0  # NaN: no total
        click.echo(
            f"{row['rank']:>3} {row['calls']:>8} {_fmt_ms(row['total_ms']):>9} {share:>5.1f}% "
            f"{_fmt_ms(row['mean_ms']):>8} {approx + _fmt_ms(row['p95_ms']):>8} "
            f"{approx + _fmt_ms(row['p99_ms']):>8}  {fp[:110] + ('…' if len(fp) > 110 else '')}"
        )
    if any(r["percentiles_exact"] is False for r in shown):
        click.echo("\n~ percentile from the ±1 % sketch (more executions than kept samples)")


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the inventory as JSON.")
def inspect(folder: Path, as_json: bool) -> None:
    """List every file of a client folder with its detected format and parse report.

    For a file no loader recognises: the closest known format (or frame), what differs (a
    missing column, a column probably named otherwise) and a ready audit.yaml map: line.
    """
    from auditkit.client import load_client
    from auditkit.loaders.mapping import closest_format

    client = load_client(folder)
    closest = {
        f.path: closest_format(folder / f.path, f.path)
        for f in client.files
        if f.status == "unrecognised"
    }
    if as_json:
        files = [
            {**f.to_dict(), **({"closest": closest[f.path].to_dict()} if f.path in closest else {})}
            for f in client.files
        ]
        click.echo(json.dumps({"client": client.name, "files": files}, indent=1, default=str))
        return
    click.echo(f"{client.name}: {len(client.files)} files in {folder}")
    pad = f"  {'':<50} {'':<18}"
    for f in client.files:
        status = f.status if f.status != "loaded" else (f.format or "")
        line = f"  {f.path:<50} {status:<18}"
        if f.report:
            line += f" {f.report.summary()}"
        elif f.error:
            line += f" {f.error}"
        click.echo(line)
        if f.report:
            for w in f.report.warnings[:3]:
                click.echo(f"{pad} warning: {w}")
        near = closest.get(f.path)
        if near is not None and near.suggestion:
            click.echo(f"{pad} closest: {near.target} ({'; '.join(near.differs)})")
            click.echo(f"{pad} {near.suggestion}")
        elif near is not None and near.reason:
            click.echo(f"{pad} closest: none ({near.reason})")
    if any(c.suggestion for c in closest.values()):
        click.echo("\nAdd the map: lines you agree with to audit.yaml (docs/formats/mapping.md).")


@cli.command()
def formats() -> None:
    """List the file formats auditkit reads."""
    from auditkit.loaders.registry import all_loaders

    for name, loader in all_loaders().items():
        click.echo(f"{name:<22} {loader.frame:<16} {loader.description}")


@cli.command()
@click.argument("sql", required=False)
def fingerprint(sql: str | None) -> None:
    """Print the fingerprint and id of a statement (read from stdin when omitted)."""
    from auditkit.sql.fingerprint import fingerprint as fp
    from auditkit.sql.fingerprint import fingerprint_id

    text = sql if sql is not None else sys.stdin.read()
    f = fp(text)
    click.echo(f"{fingerprint_id(f)}  {f}")


@cli.group()
def cache() -> None:
    """The parse cache: parsed client files kept between runs (private, secrets removed).

    It lives in the user's cache folder ($AUDITKIT_CACHE_DIR when set), or in the folder
    `auditkit run --cache-dir` names; never beside the reports.
    """


_CACHE_DIR_OPTION = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The cache folder (default: the user's cache folder).",
)


@cache.command("info")
@_CACHE_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def cache_info(cache_dir: Path | None, as_json: bool) -> None:
    """Where the cache is, how many entries it holds, their size and age."""
    from auditkit.parse_cache import ParseCache, default_cache_dir

    info = ParseCache(cache_dir or default_cache_dir()).info()
    click.echo(json.dumps(info.to_dict(), indent=1) if as_json else info.summary())


@cache.command("clear")
@_CACHE_DIR_OPTION
@click.option(
    "--stale", is_flag=True, help="Remove only entries this version of auditkit cannot use."
)
def cache_clear(cache_dir: Path | None, stale: bool) -> None:
    """Delete the cached parses (only auditkit's own entries; the folder stays)."""
    from auditkit.parse_cache import ParseCache, default_cache_dir

    store = ParseCache(cache_dir or default_cache_dir())
    removed = store.clear(stale_only=stale)
    click.echo(f"{store.root}: removed {removed.entries} entries ({removed.bytes / 2**20:.1f} MiB)")


@cli.command("compare")
@click.argument("old", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the comparison as one JSON object (for tools)."
)
@click.option("--top", default=10, show_default=True, help="Statements and endpoints shown.")
def compare_command(old: Path, new: Path, as_json: bool, top: int) -> None:
    """What changed between two audits of a client: OLD and NEW are report folders or
    findings.json files.

    Each finding is new, resolved, persisting, better or worse, with the change in the time its
    fix saves (per request, else per hour: never totals of different windows); statements are
    compared by fingerprint, endpoints by route. See docs/compare.md.
    """
    from auditkit.compare import compare

    result = compare(old, new)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, ensure_ascii=False, default=str))
        return
    for line in result.lines(top=top):
        click.echo(line)


class _Interval(click.ParamType):
    """``500ms``, ``5s``, ``2m``, ``1h`` or plain seconds."""

    name = "interval"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from auditkit.collect.timing import parse_interval

        try:
            return parse_interval(value)
        except AuditkitError as exc:
            self.fail(str(exc), param, ctx)


def _collected(out: Path, files: list[Path], skipped: dict[str, str]) -> None:
    """Print what a collector wrote, and what it could not collect and why."""
    click.echo(f"wrote {len(files)} files to {out}")
    for path in files:
        click.echo(f"  {path.relative_to(out) if path.is_relative_to(out) else path}")
    if skipped:
        click.echo("not collected:")
        for name, why in skipped.items():
            click.echo(f"  {name}: {why}")


@cli.group()
def collect() -> None:
    """Read-only collectors: write a live server's statistics as files auditkit reads.

    Credentials come from environment variables only (--dsn-env / --url-env name one); no file
    written holds a password or a connection string.
    """


_OUT = click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (created if missing), e.g. data/acme/postgres.",
)


@collect.command("postgres")
@click.option(
    "--dsn-env", required=True, metavar="VAR", help="Environment variable holding the DSN."
)
@_OUT
@click.option(
    "--every", type=_Interval(), default="60s", show_default=True, help="Time between snapshots."
)
@click.option(
    "--count", type=click.IntRange(min=1), default=1, show_default=True, help="Snapshots to take."
)
@click.option(
    "--explain-top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="EXPLAIN this many top statements (0: none).",
)
@click.option(
    "--analyze",
    is_flag=True,
    help="EXPLAIN ANALYZE the top statements that are plain SELECTs without parameters (rolled back).",
)
@click.option(
    "--statement-timeout",
    type=_Interval(),
    default="30s",
    show_default=True,
    help="statement_timeout of the session.",
)
@click.option(
    "--lock-timeout",
    type=_Interval(),
    default="1s",
    show_default=True,
    help="lock_timeout of the session.",
)
def collect_postgres_command(
    dsn_env: str,
    out: Path,
    every: float,
    count: int,
    explain_top: int,
    analyze: bool,
    statement_timeout: float,
    lock_timeout: float,
) -> None:
    """pg_stat_statements, table/index statistics and I/O, pg_indexes, sizes, pg_stats,
    pg_settings and EXPLAIN plans, in read-only transactions."""
    from auditkit.collect.postgres import collect_postgres

    result = collect_postgres(
        dsn_env,
        out,
        every_s=every,
        count=count,
        explain_top=explain_top,
        explain_analyze=analyze,
        statement_timeout_ms=int(statement_timeout * 1000),
        lock_timeout_ms=int(lock_timeout * 1000),
        progress=lambda message: click.echo(message, err=True),
    )
    _collected(out, result.files, result.skipped)


@collect.command("redis")
@click.option(
    "--url-env", required=True, metavar="VAR", help="Environment variable holding the Redis URL."
)
@_OUT
@click.option(
    "--every",
    type=_Interval(),
    default="60s",
    show_default=True,
    help="Time between INFO snapshots.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="INFO snapshots to take.",
)
@click.option(
    "--slowlog",
    type=click.IntRange(min=0),
    default=128,
    show_default=True,
    help="SLOWLOG entries to read.",
)
def collect_redis_command(url_env: str, out: Path, every: float, count: int, slowlog: int) -> None:
    """INFO snapshots, CONFIG GET and SLOWLOG GET (read-only commands only)."""
    from auditkit.collect.redis import collect_redis

    result = collect_redis(
        url_env,
        out,
        every_s=every,
        count=count,
        slowlog=slowlog,
        progress=lambda message: click.echo(message, err=True),
    )
    _collected(out, result.files, result.skipped)


@collect.command("memcached")
@click.option(
    "--url-env", metavar="VAR", help="Environment variable holding memcached://host:port."
)
@click.option(
    "--server", metavar="HOST:PORT", help="The address itself (memcached has no password)."
)
@_OUT
@click.option(
    "--every",
    type=_Interval(),
    default="60s",
    show_default=True,
    help="Time between stats snapshots.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="stats snapshots to take.",
)
@click.option(
    "--metadump",
    is_flag=True,
    help="Also list every key (lru_crawler metadump): key names are client data.",
)
def collect_memcached_command(
    url_env: str | None, server: str | None, out: Path, every: float, count: int, metadump: bool
) -> None:
    """stats snapshots, stats items/slabs/settings and detail dump (read-only commands only)."""
    from auditkit.collect.memcached import collect_memcached

    if bool(url_env) == bool(server):
        raise click.UsageError("give exactly one of --url-env and --server")
    result = collect_memcached(
        out,
        url_env=url_env,
        server=server,
        every_s=every,
        count=count,
        metadump=metadump,
        progress=lambda message: click.echo(message, err=True),
    )
    _collected(out, result.files, result.skipped)


def _attach_optional_commands() -> None:
    """Commands living in their own modules (kept out of this file to keep it thin)."""
    try:
        from auditkit.cli_run import run  # the audit run: notebooks, batches, HTML

        cli.add_command(run)
    except ImportError:  # pragma: no cover - only while the run command is absent
        pass


_attach_optional_commands()


#: set by a command once its output is written and nothing is left running (``digest``,
#: ``run``): the console entry point then ends the process without tearing the interpreter
#: down, which costs some 60 ms of a one-second digest and 0.4 s of a sample audit (pandas,
#: NumPy and Arrow freeing every module and object)
_LEAVE_AT_ONCE: list[bool] = []


def main() -> None:
    """Console entry point."""
    _LEAVE_AT_ONCE.clear()
    try:
        cli(prog_name="auditkit")
    except SystemExit as exc:
        if _LEAVE_AT_ONCE:
            sys.stdout.flush()
            sys.stderr.flush()
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            os._exit(code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
