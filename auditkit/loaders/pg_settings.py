"""PostgreSQL settings exported from ``pg_settings`` (CSV or JSON) → ``server_settings``.

Export with ``\\copy (SELECT name, setting, unit, source FROM pg_settings) TO 'pg_settings.csv'
CSV HEADER``. Sizes are converted to bytes and times to milliseconds in ``value``, using the
``unit`` column (``8kB`` pages, ``kB``, ``MB``, ``ms``, ``s``, ``min``), so checks compare
numbers, not strings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.loaders import _json
from auditkit.loaders._records import BadRecord, csv_records
from auditkit.loaders.base import Loader, finalise, nothing_parsed
from auditkit.loaders.registry import register
from auditkit.loaders.result import LoadResult, ParseReport
from auditkit.loaders.stream import read_text

__all__ = ["PgSettingsLoader", "setting_value"]

_SIZE = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


def setting_value(setting: str, unit: str | None) -> float | None:
    """``('16384', '8kB')`` → 134217728.0 bytes; ``('200', 'ms')`` → 200.0; non-numbers → None."""
    try:
        number = float(setting)
    except (TypeError, ValueError):
        return None
    if not unit:
        return number
    digits = "".join(ch for ch in unit if ch.isdigit())
    base = unit[len(digits) :]
    factor = float(digits) if digits else 1.0
    if base in _SIZE:
        return number * factor * _SIZE[base]
    if base in _TIME:
        return number * factor * _TIME[base]
    return number


@register
class PgSettingsLoader(Loader):
    """``pg_settings`` exports: name, setting, unit (and source) per row."""

    name = "pg_settings"
    frame = "server_settings"
    description = "PostgreSQL pg_settings export (CSV or JSON)"
    expected = "a CSV header or JSON keys 'name,setting,unit' (as in pg_settings)"

    def sniff(self, head: str, path: Path) -> float:
        first = head.lstrip().split("\n", 1)[0]
        if first.startswith("name,setting") and "unit" in first:
            return 0.95
        if (
            first.startswith(("[", "{"))
            and '"setting"' in head
            and '"name"' in head
            and '"unit"' in head
        ):
            return 0.8
        return 0.0

    def load(self, path: str | Path, **options: Any) -> LoadResult:
        start = time.perf_counter()
        text, bad = read_text(path)
        report = ParseReport.for_text(path, self.name, text, bad)
        stripped = text.lstrip()
        records: list[tuple[int, dict[str, Any]]]
        if stripped.startswith(("[", "{")):
            try:
                data = _json.loads(stripped)
            except json.JSONDecodeError as exc:
                report.skip(exc.lineno, "invalid JSON", str(exc))
                raise nothing_parsed(self, path, report) from None
            rows = data if isinstance(data, list) else data.get("rows", [])
            records = [(i + 1, r) for i, r in enumerate(rows)]
        else:
            records = []
            header: list[str] | None = None
            for row in csv_records(text):
                if isinstance(row, BadRecord):
                    report.skip(row.line, row.reason, row.excerpt)
                elif header is None:
                    header = row.values
                elif any(v.strip() for v in row.values):
                    records.append((row.line, dict(zip(header, row.values, strict=False))))
        out = []
        for line, rec in records:
            if not isinstance(rec, dict) or not rec.get("name") or rec.get("setting") is None:
                report.skip(line, "row without name and setting", str(rec))
                continue
            unit = rec.get("unit") or None
            out.append(
                {
                    "name": rec["name"],
                    "setting": str(rec["setting"]),
                    "unit": unit,
                    "value": setting_value(str(rec["setting"]), unit),
                    "source": rec.get("source"),
                    "source_file": str(path),
                    "source_line": line,
                }
            )
            report.ok()
        if not out:
            raise nothing_parsed(self, path, report)
        frames = finalise({"server_settings": [pd.DataFrame(out)]}, self, report)
        report.elapsed_s = time.perf_counter() - start
        report.check()
        return LoadResult(self.name, frames, report, primary=self.frame)
