"""Sniffing: which format is this file?

Every registered loader rates the file's first 64 KiB (decompressed and decoded) from 0 to 1;
the best rating at or above :data:`MIN_CONFIDENCE` wins. Binary files, empty files and files
no loader recognises raise :class:`~auditkit.errors.UnknownFormatError` naming what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditkit.errors import UnknownFormatError
from auditkit.loaders.registry import all_loaders
from auditkit.loaders.stream import compression_of, read_head

__all__ = ["MIN_CONFIDENCE", "Detection", "detect", "looks_binary"]

MIN_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class Detection:
    """The format chosen for a file, how sure the sniffer was, and the runners-up."""

    path: str
    format: str
    confidence: float
    compression: str | None
    scores: tuple[tuple[str, float], ...]


def looks_binary(head: bytes) -> bool:
    """True for data that is not text: NUL bytes or mostly control characters."""
    if not head:
        return False
    sample = head[:8192]
    # a few NUL bytes happen in real logs (a crash pads the file); binary data is full of them
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control / len(sample) > 0.1 or sample.count(b"\x00") > max(8, len(sample) // 100)


def detect(path: str | Path) -> Detection:
    """Sniff ``path`` and return the most likely format, or raise UnknownFormatError."""
    p = Path(path)
    raw = read_head(p)
    loaders = all_loaders()
    if not raw:
        raise UnknownFormatError(
            "the file is empty (or could not be decompressed)", path=p, candidates=tuple(loaders)
        )
    head = raw.decode("utf-8", errors="replace")
    scores = []
    for name, loader in loaders.items():
        try:
            score = float(loader.sniff(head, p))
        except Exception:  # a sniffer must never break detection of other formats
            score = 0.0
        scores.append((name, score))
    scores.sort(key=lambda kv: kv[1], reverse=True)
    best, confidence = scores[0] if scores else ("", 0.0)
    if confidence < MIN_CONFIDENCE:
        # binary is the explanation of a failure, not a gate: a log with a few control bytes
        # in a literal is still a log when a loader recognises it
        if looks_binary(raw):
            raise UnknownFormatError(
                "the file is binary, not a text log or export",
                path=p,
                candidates=tuple(loaders),
                hint="decompress it or export it as text (CSV, JSON or the server's log format)",
            )
        raise UnknownFormatError(
            "no loader recognises this file",
            path=p,
            candidates=tuple(loaders),
            hint=f"known formats: {', '.join(loaders)}; name one with format= (or in audit.yaml) if detection needs help",
        )
    return Detection(str(p), best, confidence, compression_of(p), tuple(scores[:3]))
