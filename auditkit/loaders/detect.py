"""Sniffing: which format is this file?

Every registered loader rates the file's first 64 KiB (decompressed and decoded) from 0 to 1;
the best rating at or above :data:`MIN_CONFIDENCE` wins. Binary files, empty files and files
no loader recognises raise :class:`~auditkit.errors.UnknownFormatError` naming what was tried.

A first record longer than the head (a 200 KB statement, a JSON line holding a whole trace)
would leave the sniffers one cut line to judge. When nothing is recognised and the head holds
such a line, the sniffers get a second look at a *condensed* head: the first lines of the file
(up to :data:`CONDENSE_BYTES` read) with every line cut to :data:`CONDENSED_LINE` characters,
so the structure around the long record — prefixes, headers, the following records — shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkit.errors import UnknownFormatError
from auditkit.loaders.registry import all_loaders
from auditkit.loaders.stream import compression_of, open_binary, read_head

__all__ = ["MIN_CONFIDENCE", "Detection", "detect", "looks_binary"]

MIN_CONFIDENCE = 0.5
#: how much of a file the condensed head may read, and how much of each line it keeps
CONDENSE_BYTES = 16 * 1024 * 1024
CONDENSED_LINE = 2048
_HEAD = 65536


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
    if control / len(sample) > 0.1 or sample.count(b"\x00") > max(8, len(sample) // 100):
        return True
    # random-looking bytes: mostly not UTF-8 (a text file in a legacy code page has few such)
    invalid = sample[:-4].decode("utf-8", errors="replace").count("\ufffd")
    return invalid > len(sample) // 8


def _scores(loaders: dict[str, Any], head: str, path: Path) -> list[tuple[str, float]]:
    scores = []
    for name, loader in loaders.items():
        try:
            score = float(loader.sniff(head, path))
        except Exception:  # a sniffer must never break detection of other formats
            score = 0.0
        scores.append((name, score))
    scores.sort(key=lambda kv: kv[1], reverse=True)
    return scores


def _long_line(raw: bytes) -> bool:
    """True when the head is cut inside a line far longer than a usual record."""
    if len(raw) < _HEAD:
        return False
    lengths = [len(line) for line in raw.split(b"\n")]
    return max(lengths) > CONDENSED_LINE


def _condensed_head(path: Path) -> str:
    """The first lines of ``path``, each cut to :data:`CONDENSED_LINE` characters (≤ 64 KiB)."""
    out: list[bytes] = []
    size = read = 0
    try:
        with open_binary(path) as fh:
            while size < _HEAD and read < CONDENSE_BYTES:
                line = fh.readline(CONDENSED_LINE)
                if not line:
                    break
                read += len(line)
                ended = line.endswith(b"\n")
                while not ended and read < CONDENSE_BYTES:  # skip the rest of a long line
                    rest = fh.readline(1 << 20)
                    if not rest:
                        break
                    read += len(rest)
                    ended = rest.endswith(b"\n")
                piece = line.rstrip(b"\n") + (b"\n" if ended else b"")
                out.append(piece)
                size += len(piece)
    except OSError:
        return ""
    return b"".join(out)[:_HEAD].decode("utf-8", errors="replace")


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
    scores = _scores(loaders, head, p)
    best, confidence = scores[0] if scores else ("", 0.0)
    if confidence < MIN_CONFIDENCE and _long_line(raw):
        condensed = _condensed_head(p)
        if condensed and condensed != head:
            again = _scores(loaders, condensed, p)
            if again and again[0][1] > confidence:
                scores = again
                best, confidence = scores[0]
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
