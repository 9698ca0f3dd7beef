"""The data-quality check: inputs that could not be fully used, as ``data_quality`` findings.

Reads only :attr:`ClientData.files` (the loader's parse reports), so it runs on every client:

* a file that failed to load → medium (part of the picture is missing);
* a file that could not be read at all (permissions, an I/O error) → medium, with the reason;
* a file whose loader skipped records → low, with the reasons, counts and first line numbers;
* a file loaded with warnings only (e.g. non-English server messages) → info;
* an unrecognised file → info (clients send unrelated files; this is never fatal);
* no usable file at all → high (the audit has nothing to stand on).

Severity follows the kind of problem, not a numeric threshold, so there is nothing to tune.
Excerpts of skipped records are raw client text; reports redact them like any other input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auditkit.findings import Evidence, EvidenceStrength, Finding, Recommendation, Severity, Subject

if TYPE_CHECKING:
    from auditkit.client import InputFile

__all__ = ["data_quality"]

#: skipped-record samples kept as evidence per file
_SAMPLES = 5


def data_quality(files: Sequence[InputFile]) -> list[Finding]:
    """One finding per input file that was not fully used, plus one if nothing was usable."""
    out: list[Finding] = []
    for f in files:
        subject = Subject(file=f.path)
        r = f.report
        if f.status == "error":
            items = tuple(
                {"line": s.line, "reason": s.reason, "excerpt": s.excerpt}
                for s in (r.samples[:_SAMPLES] if r else [])
            )
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.MEDIUM,
                    title=f"Could not read {f.path}",
                    summary=f.error or "the loader failed on this file",
                    subject=subject,
                    metrics={
                        "read": r.read if r else None,
                        "parsed": r.parsed if r else None,
                        "size_bytes": f.size_bytes,
                    },
                    recommendation=Recommendation(
                        "Check that the file is complete and in a supported format; if detection "
                        "needs help, name its format in audit.yaml (formats: match/format)."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, items, note=f.format),
                )
            )
        elif f.status == "unreadable":
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.MEDIUM,
                    title=f"Could not open {f.path}",
                    summary=f"The file {f.error or 'could not be read'}, so it was left out of the "
                    "audit; the other files were audited.",
                    subject=subject,
                    metrics={"size_bytes": f.size_bytes},
                    recommendation=Recommendation(
                        "Check the file's permissions and copy it again from the client (an I/O "
                        "error usually means a damaged copy or disk), then re-run the audit."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.error),
                )
            )
        elif f.status == "unrecognised":
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.INFO,
                    title=f"Unrecognised file {f.path}",
                    summary="No loader recognises this file, so it was left out of the audit.",
                    subject=subject,
                    metrics={"size_bytes": f.size_bytes},
                    recommendation=Recommendation(
                        "If it holds data for the audit, name its format in audit.yaml; otherwise "
                        "list it under ignore."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.error),
                )
            )
        elif f.status == "loaded" and r is not None and r.skipped_total:
            reasons = ", ".join(f"{reason} ×{n}" for reason, n in r.skipped.most_common())
            items = tuple(
                {"line": s.line, "reason": s.reason, "excerpt": s.excerpt}
                for s in r.samples[:_SAMPLES]
            )
            metrics: dict[str, float | int | str | None] = {
                "read": r.read,
                "parsed": r.parsed,
                "skipped": r.skipped_total,
                "skipped_share": r.skipped_total / r.read if r.read else None,
            }
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.LOW,
                    title=f"{r.skipped_total} of {r.read} records skipped in {f.path}",
                    summary=f"Skipped: {reasons}."
                    + (f" Warnings: {'; '.join(r.warnings)}." if r.warnings else ""),
                    subject=subject,
                    metrics=metrics,
                    recommendation=Recommendation(
                        "Skipped records are left out of every figure. If the reasons above are not "
                        "expected, check the log format settings (log_line_prefix, logging formatter)."
                    ),
                    evidence=Evidence(EvidenceStrength.PATTERN, items, note=f.format),
                )
            )
        elif f.status == "loaded" and r is not None and r.warnings:
            out.append(
                Finding(
                    check="data_quality",
                    severity=Severity.INFO,
                    title=f"Warnings while reading {f.path}",
                    summary="; ".join(r.warnings),
                    subject=subject,
                    metrics={"read": r.read, "parsed": r.parsed},
                    evidence=Evidence(EvidenceStrength.PATTERN, (), note=f.format),
                )
            )
    if not any(f.status == "loaded" for f in files):
        out.append(
            Finding(
                check="data_quality",
                severity=Severity.HIGH,
                title="No usable input",
                summary=f"None of the {len(files)} files in the client folder could be used.",
                subject=Subject(file="."),
                metrics={"files": len(files)},
                recommendation=Recommendation(
                    "Ask the client for query logs (Django or database server), statistics exports, "
                    "plans or traces; `auditkit formats` lists what can be read."
                ),
            )
        )
    return out
