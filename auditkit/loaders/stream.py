"""Reading client files: transparent decompression, bounded-memory blocks, safe decoding.

Compression is recognised by magic bytes, not by the file name: gzip, bzip2, xz and
Zstandard. Large text logs are read in blocks of ``block_size`` bytes cut at a *record*
boundary (a line where a new log entry starts, given by the loader as a regular expression),
so a multi-line entry never straddles two blocks and each block can be parsed on its own —
by this process, a local worker or a Dask worker — and the partial results merged.

Decoding never raises: a block is decoded as UTF-8; lines that are not valid UTF-8 are decoded
with U+FFFD replacement characters and reported by line number, so a statement with one bad
byte in a literal is kept rather than lost. UTF-16 and UTF-32 files (a Windows tool's export,
with a byte-order mark or without) are recognised and transcoded to UTF-8 as they are read, so
every loader sees the same text.

Damage never raises either: a compressed stream that is cut short or corrupt is read up to the
damage and then ends. What was noticed on the way (damage, a transcoding) is a *read note*:
:func:`collect_notes` gathers the notes of everything read in its ``with`` block, and
:class:`~auditkit.loaders.base.Loader` puts them into the parse report of each load.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import contextvars
import gzip
import io
import lzma
import mmap
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import zstandard

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "Block",
    "BlockRef",
    "collect_notes",
    "compression_of",
    "decode_block",
    "encoding_of",
    "iter_block_refs",
    "iter_blocks",
    "is_plain",
    "note",
    "open_binary",
    "read_head",
    "read_text",
]

DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
#: a record longer than this is cut at a line boundary anyway (bounded memory)
MAX_RECORD_BYTES = 256 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


#: byte-order marks of the encodings other than UTF-8 a file may come in (longest first)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

#: errors a damaged compressed stream raises while it is read
_DAMAGE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError)

_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "auditkit_read_notes", default=None
)


@contextlib.contextmanager
def collect_notes() -> Iterator[list[str]]:
    """Collect the read notes (damage, transcoding) of everything read inside the block."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def note(message: str) -> None:
    """Record a read note for the load in progress (ignored outside :func:`collect_notes`)."""
    notes = _NOTES.get()
    if notes is not None and message not in notes:
        notes.append(message)


def compression_of(path: str | Path) -> str | None:
    """'gzip', 'bzip2', 'xz', 'zstd' or None, from the file's first bytes."""
    with open(path, "rb") as fh:
        start = fh.read(6)
    for magic, name in _MAGIC:
        if start.startswith(magic):
            return name
    return None


def _sniff_encoding(start: bytes) -> tuple[str | None, int]:
    """The encoding of a (decompressed) file start other than UTF-8, and its BOM length.

    A BOM decides; without one, text in UTF-16 or UTF-32 shows as NUL bytes in fixed places
    (ASCII characters have a zero high byte), which neither UTF-8 text nor a crash's NUL padding
    does.
    """
    for bom, name in _BOMS:
        if start.startswith(bom):
            return name, len(bom)
    sample = start[:4096]
    n = len(sample) - len(sample) % 4
    if n < 16:
        return None, 0
    sample = sample[:n]
    lanes = [sample[i::4].count(0) / (n // 4) for i in range(4)]
    if lanes[0] < 0.3 and min(lanes[1:]) > 0.9:
        return "utf-32-le", 0
    if lanes[3] < 0.3 and min(lanes[:3]) > 0.9:
        return "utf-32-be", 0
    even, odd = (lanes[0] + lanes[2]) / 2, (lanes[1] + lanes[3]) / 2
    if odd > 0.6 and even < 0.1:
        return "utf-16-le", 0
    if even > 0.6 and odd < 0.1:
        return "utf-16-be", 0
    return None, 0


def encoding_of(path: str | Path) -> str | None:
    """The encoding of ``path`` when it is UTF-16 or UTF-32 (after decompression), else None."""
    try:
        with _open_decompressed(path) as fh:
            start = fh.read(4096)
    except _DAMAGE_ERRORS:
        return None
    return _sniff_encoding(start)[0]


def is_plain(path: str | Path) -> bool:
    """True when the bytes on disk are the text a loader reads (not compressed, not UTF-16/32).

    Only then do offsets in the file name places in the text (see :class:`BlockRef`).
    """
    return compression_of(path) is None and encoding_of(path) is None


class _Tolerant(io.RawIOBase):
    """A decompressing stream that ends, with a read note, where the data is damaged."""

    def __init__(self, inner: BinaryIO, path: str | Path, kind: str) -> None:
        self._inner = inner
        self._where = Path(path).name
        self._kind = kind
        self._done = 0
        self._damaged = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._damaged:
            return 0
        try:
            # read1: one decompression step at a time, so what precedes the damage is returned
            # before the step that meets it raises (read(n) would lose the whole of its n)
            read1 = getattr(self._inner, "read1", None)
            data = read1(len(buffer)) if read1 is not None else self._inner.read(len(buffer))
        except _DAMAGE_ERRORS as exc:
            self._damaged = True
            what = "cut short" if isinstance(exc, EOFError) else "corrupt"
            note(
                f"the {self._kind} stream is {what} after {self._done:,} decompressed bytes "
                f"({type(exc).__name__}: {exc}); only the part before the damage was read"
            )
            return 0
        n = len(data)
        buffer[:n] = data
        self._done += n
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


class _ZstdFrames:
    """Zstandard frames decompressed one input chunk at a time; a frame cut short raises
    ``EOFError`` at the end (the library's stream reader ends silently there)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._out = b""
        self._started = False

    def read1(self, size: int = -1) -> bytes:
        while not self._out:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._started and not self._obj.eof:
                    raise EOFError("the zstd frame ended before its end marker")
                return b""
            self._started = True
            if self._obj.eof:  # a next frame (concatenated files)
                chunk = self._obj.unused_data + chunk
                self._obj = zstandard.ZstdDecompressor().decompressobj()
            self._out = self._obj.decompress(chunk)
        n = len(self._out) if size < 0 else size
        data, self._out = self._out[:n], self._out[n:]
        return data

    read = read1

    def close(self) -> None:
        self._raw.close()


class _Transcoded(io.RawIOBase):
    """A byte stream in UTF-16/32 read as UTF-8 (undecodable units become U+FFFD)."""

    def __init__(self, inner: BinaryIO, encoding: str, skip: int) -> None:
        self._inner = inner
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._pending = b""
        self._eof = False
        if skip:
            inner.read(skip)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._eof:
            raw = self._inner.read(max(len(buffer), 1 << 16))
            if not raw:
                self._eof = True
                self._pending = self._decoder.decode(b"", final=True).encode("utf-8")
            else:
                self._pending = self._decoder.decode(raw).encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


def _open_decompressed(path: str | Path) -> BinaryIO:
    kind = compression_of(path)
    inner: BinaryIO
    if kind == "gzip":
        inner = gzip.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    elif kind == "bzip2":
        inner = bz2.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    elif kind == "xz":
        inner = lzma.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    elif kind == "zstd":
        inner = cast(BinaryIO, _ZstdFrames(open(path, "rb")))  # noqa: SIM115 - closed by the reader
    else:
        return open(path, "rb")
    return io.BufferedReader(cast(Any, _Tolerant(inner, path, kind)), buffer_size=1 << 20)


def open_binary(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading bytes: decompressed, UTF-16/32 transcoded to UTF-8.

    Never raises on damage inside a compressed stream: it ends there, with a read note.
    """
    fh = _open_decompressed(path)
    try:
        start = fh.peek(4096)[:4096] if hasattr(fh, "peek") else b""
    except _DAMAGE_ERRORS:
        start = b""
    encoding, skip = _sniff_encoding(start)
    if encoding is None:
        return fh
    note(f"decoded from {encoding.upper()} (the file is not UTF-8)")
    return io.BufferedReader(cast(Any, _Transcoded(fh, encoding, skip)), buffer_size=1 << 20)


def read_head(path: str | Path, size: int = 65536) -> bytes:
    """The first ``size`` decompressed bytes of ``path`` (for sniffing). Never raises on junk.

    A file that cannot be opened or read (permissions, an I/O error) raises its ``OSError``:
    that is the disk, not the data, and the caller reports it as such.
    """
    with open_binary(path) as fh:
        return fh.read(size)


def read_text(path: str | Path, limit: int | None = None) -> tuple[str, list[int]]:
    """The whole (decompressed) file as text, and the line numbers that were not valid UTF-8.

    For small structured files (JSON, CSV, plans). ``limit`` caps the bytes read.
    """
    with open_binary(path) as fh:
        raw = fh.read() if limit is None else fh.read(limit)
    return decode_block(raw, 1)


@dataclass(frozen=True, slots=True)
class Block:
    """A run of whole records from a file: raw bytes and the line number of its first line.

    ``offset`` is where the bytes start in the file when it is not compressed (else None);
    keyword-only, so subclasses that add fields keep their positional order.
    """

    data: bytes
    first_line: int
    source: str
    offset: int | None = field(default=None, kw_only=True)

    def text(self) -> tuple[str, list[int]]:
        """Decoded text and the line numbers that held invalid UTF-8."""
        return decode_block(self.data, self.first_line)


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block named by its place in an uncompressed file, read by whoever parses it.

    Local worker processes share the file system, so sending them this instead of the bytes
    spares the parent pickling every block and piping the whole file to its workers (and each
    worker a copy on the way in): the parent, which also merges results, stays off the CPU
    the workers need.
    """

    source: str
    offset: int
    length: int
    first_line: int

    def read(self) -> Block:
        """The block itself, read from the file."""
        with open(self.source, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.length)
        if len(data) != self.length:
            raise OSError(
                f"{self.source} changed while it was read: {len(data)} of {self.length} bytes at {self.offset}"
            )
        return Block(data, self.first_line, self.source, offset=self.offset)


def decode_block(raw: bytes, first_line: int) -> tuple[str, list[int]]:
    """Decode ``raw`` as UTF-8; invalid lines get U+FFFD and their numbers are returned.

    A UTF-8 byte-order mark at the very start is dropped; CRLF line ends become LF.
    """
    if first_line == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    bad: list[int] = []
    parts = []
    for i, line in enumerate(raw.split(b"\n")):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            parts.append(line.decode("utf-8", errors="replace"))
            bad.append(first_line + i)
    return "\n".join(parts), bad


def iter_blocks(
    path: str | Path,
    boundary: re.Pattern[bytes] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[Block]:
    """Yield the file in blocks of about ``block_size`` bytes, each ending at a record boundary.

    ``boundary`` matches at the start of a line that begins a new record (for example a log
    line prefix); without it every line is a record. Memory stays bounded by ``block_size``
    (plus the longest record, capped at :data:`MAX_RECORD_BYTES`).
    """
    source = str(path)
    line = 1
    carry = b""
    # byte offsets name places in the file only when it is read as is
    offset: int | None = 0 if is_plain(path) else None
    with open_binary(path) as reader:
        while True:
            chunk = reader.read(block_size)
            if not chunk:
                break
            data = carry + chunk
            cut = _cut_point(data, boundary)
            if cut <= 0:
                if len(data) < MAX_RECORD_BYTES:
                    carry = data
                    continue
                cut = data.rfind(b"\n") + 1 or len(data)
            block, carry = data[:cut], data[cut:]
            yield Block(block, line, source, offset=offset)
            line += block.count(b"\n")
            if offset is not None:
                offset += len(block)
        if carry:
            yield Block(carry, line, source, offset=offset)


def iter_block_refs(
    path: str | Path,
    boundary: re.Pattern[bytes] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[BlockRef]:
    """The blocks :func:`iter_blocks` yields for an uncompressed file, as places in the file.

    The file is mapped, not read: finding a cut looks at the bytes before it, and counting
    lines is one NumPy comparison, so whoever hands blocks to workers copies nothing (reading
    and slicing every block cost the parent more than merging the results).
    """
    source = str(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            start, end, line = 0, 0, 1
            while end < size:
                end = min(end + block_size, size)
                cut = _cut_in(mm, boundary, start, end)
                if cut < 0:
                    if end - start < MAX_RECORD_BYTES:
                        continue
                    cut = mm.rfind(b"\n", start, end) + 1 or end
                yield BlockRef(source, start, cut - start, line)
                view = np.frombuffer(mm, dtype=np.uint8, count=cut - start, offset=start)
                line += int(np.count_nonzero(view == 10))
                del view  # the map cannot close while a view of it is alive
                # counted pages need not stay in this process's memory (the page cache keeps them)
                done = cut - cut % mmap.PAGESIZE
                if done > start - start % mmap.PAGESIZE:
                    mm.madvise(
                        mmap.MADV_DONTNEED,
                        start - start % mmap.PAGESIZE,
                        done - start + start % mmap.PAGESIZE,
                    )
                start = cut
            if start < size:
                yield BlockRef(source, start, size - start, line)


def _cut_point(data: bytes, boundary: re.Pattern[bytes] | None) -> int:
    """Offset just after the last newline that is followed by a record start (0 if none)."""
    return max(_cut_in(data, boundary, 0, len(data)), 0)


def _cut_in(data: bytes | mmap.mmap, boundary: re.Pattern[bytes] | None, lo: int, hi: int) -> int:
    """:func:`_cut_point` within ``data[lo:hi]``, as an offset into ``data`` (-1 if none)."""
    pos = hi
    while True:
        nl = data.rfind(b"\n", lo, pos)
        if nl < 0:
            return -1
        start = nl + 1
        if start == hi:
            # the window ends exactly at a newline: we cannot see the next line yet
            pos = nl
            continue
        if boundary is None or boundary.match(data, start, hi):
            return start
        pos = nl
