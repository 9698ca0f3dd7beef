"""The status words of an audit run and of its chapters: one vocabulary for findings.json,
manifest.json, the summary page and :class:`auditkit.runner.RunResult`."""

from __future__ import annotations

__all__ = ["CHAPTER_STATUSES", "COMPLETE", "FAILED", "NO_INPUT", "RUN_STATUSES", "SKIPPED"]

#: The one vocabulary of a run's status, the same word in findings.json (``status``),
#: manifest.json (``status``), the summary page (``data-status`` of its status line) and
#: :attr:`RunResult.status`; chapters (findings.json ``chapters``, manifest ``notebooks``,
#: :attr:`NotebookRun.status`) use the same words, plus ``skipped``.
COMPLETE = "complete"
FAILED = "failed"
NO_INPUT = "no_input"
SKIPPED = "skipped"
RUN_STATUSES: dict[str, str] = {
    COMPLETE: "every page of the report was produced",
    FAILED: "a chapter (or the whole client) failed: its page says what failed, the rest is written",
    NO_INPUT: "nothing in the client folder could be read: no report is written, and an earlier "
    "report in the same folder is marked as not refreshed",
}
CHAPTER_STATUSES: dict[str, str] = {
    COMPLETE: "the chapter's notebook ran and its page was written",
    FAILED: "the notebook or its page failed; the page says what failed",
    SKIPPED: "not run: the client folder could not be audited",
}
