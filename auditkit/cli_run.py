"""``auditkit run``: full audits of client folders into offline HTML reports.

Attach to the main command group with ``cli.add_command(run)`` (see :mod:`auditkit.cli`)::

    auditkit run data/acme                       # → reports/acme/index.html
    auditkit run data/* --workers 2              # a batch on two local processes
    auditkit run data/* --scheduler tcp://10.0.0.5:8786   # the same batch on a Dask cluster
    auditkit run data/acme --preset n_plus_one=sentry --preset index=dexter
    auditkit run data/acme --previous reports-2026-01/acme   # what changed since that audit
    auditkit run data/* --previous reports-2026-01            # a batch: each client's own

Exit status: 0 when every audit succeeded, 1 when any client or chapter failed (its report
shows the error; the others are complete), 2 for a usage error, 3 when every failure is a
folder from which nothing could be read (one line per such folder on stderr, no report; an
earlier report in its output folder is kept, its pages marked as not refreshed).
"""

from __future__ import annotations

from pathlib import Path

import click

from auditkit.errors import AuditkitError

__all__ = ["run"]


def _presets(values: tuple[str, ...]) -> dict[str, str]:
    from auditkit.config import AuditConfig

    out: dict[str, str] = {}
    for value in values:
        family, sep, name = value.partition("=")
        if not sep or not family or not name:
            raise click.BadParameter(
                f"{value!r}: use FAMILY=NAME, e.g. n_plus_one=sentry", param_hint="--preset"
            )
        out[family.strip()] = name.strip()
    try:
        AuditConfig(presets=out)  # unknown families or presets: one clear message
    except AuditkitError as exc:
        raise click.BadParameter(str(exc), param_hint="--preset") from None
    return out


@click.command("run")
@click.argument(
    "data_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder the reports go to: one sub-folder per client.",
)
@click.option(
    "--workers",
    "-w",
    default=None,
    type=click.IntRange(min=1),
    help="Local processes: clients audited in parallel, or one client's files and chapters  "
    "[default: every core].",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Run the batch on this Dask scheduler instead of local processes.",
)
@click.option(
    "--show-literals",
    is_flag=True,
    help="Keep literal values (e-mails, names, ids) in SQL; secrets are removed regardless.",
)
@click.option(
    "--preset",
    "presets",
    multiple=True,
    metavar="FAMILY=NAME",
    help="Threshold preset of a family, e.g. n_plus_one=sentry (repeatable).",
)
@click.option(
    "--dsn-env",
    default="AUDITKIT_DSN",
    show_default=True,
    metavar="VAR",
    help="Name of the environment variable holding a live database DSN (the DSN itself is never a parameter).",
)
@click.option(
    "--notebooks",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Folder of audit notebooks (default: the bundled ones).",
)
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    type=float,
    help="Seconds one notebook cell may run.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the parse cache (default: the user's cache folder; see `auditkit cache info`).",
)
@click.option("--no-cache", is_flag=True, help="Parse every file afresh and keep nothing.")
@click.option(
    "--single-file",
    is_flag=True,
    help="Also write the whole report as one self-contained page, OUT/<client>/<client>.html, for e-mailing.",
)
@click.option(
    "--previous",
    "previous",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    metavar="OLD_REPORT",
    help="The previous audit: a client's report folder or findings.json, or for a batch the "
    "folder of previous reports (one sub-folder per client). The summary page and "
    "findings.json then say what changed since.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the summary.")
@click.pass_context
def run(
    ctx: click.Context,
    data_dirs: tuple[Path, ...],
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    show_literals: bool,
    presets: tuple[str, ...],
    dsn_env: str,
    notebooks: Path | None,
    timeout: float,
    cache_dir: Path | None,
    no_cache: bool,
    single_file: bool,
    previous: Path | None,
    quiet: bool,
) -> None:
    """Audit each client folder DATA_DIR… into OUT/<client>/ (index.html, one page per chapter,
    findings.json, manifest.json, the executed notebooks)."""
    from tqdm import tqdm

    from auditkit.executors import default_workers
    from auditkit.runner import RunResult, run_batch

    chosen = _presets(presets)
    bar = tqdm(  # one client needs no progress bar (and stderr stays for errors)
        total=len(data_dirs),
        unit="client",
        desc="auditing",
        disable=quiet or len(data_dirs) == 1,
        leave=False,
    )

    def progress(result: RunResult) -> None:
        bar.update(1)
        if not quiet and result.status != "no_input":
            bar.write(("✓ " if result.ok else "✗ ") + result.summary())

    try:
        batch = run_batch(
            list(data_dirs),
            out_dir,
            workers=workers or default_workers(),
            scheduler=scheduler,
            on_result=progress,
            show_literals=show_literals,
            presets=chosen,
            dsn_env=dsn_env or None,
            notebooks=notebooks,
            timeout=timeout,
            cache_dir=cache_dir,
            no_cache=no_cache,
            single_file=single_file,
            **({"previous": previous} if previous is not None else {}),
        )
    except AuditkitError as exc:
        bar.close()
        raise click.UsageError(str(exc)) from None
    bar.close()
    from auditkit.cli import _LEAVE_AT_ONCE

    _LEAVE_AT_ONCE.append(True)  # every report is written and every process and kernel ended
    if batch.exit_code == 3:  # nothing readable: an input error, one line each, no report
        for r in batch.failed:
            click.echo(f"auditkit: {r.error}", err=True)
            if r.earlier_report:  # a report of an earlier run is in the folder: say it is old
                click.echo(
                    f"auditkit: the earlier report in {r.report_dir} ({r.earlier_report[:10]}) "
                    "is marked as not refreshed",
                    err=True,
                )
        ctx.exit(3)
    failed = batch.failed
    click.echo(
        f"{len(batch.results) - len(failed)} of {len(batch.results)} audits succeeded in {batch.seconds:.1f} s."
    )
    for r in batch.results:
        click.echo(
            f"  {'ok    ' if r.ok else 'FAILED'} {r.client}: {r.index}"
            + (f"  ({r.error})" if r.error else "")
            + (f"  — {r.since_previous}" if r.since_previous else "")
            + ("  — no previous audit found" if previous and r.ok and not r.since_previous else "")
        )
    if len(batch.results) == 1 and batch.ok:
        click.echo(f"Open {batch.results[0].index} in a browser.")
    ctx.exit(batch.exit_code)
