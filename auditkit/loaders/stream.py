"""Reading client files: transparent decompression, bounded-memory blocks, safe decoding.

Compression is recognised by magic bytes, not by the file name: gzip, bzip2, xz and
Zstandard. Large text logs are read in blocks of ``block_size`` bytes cut at a *record*
boundary (a line where a new log entry starts, given by the loader as a regular expression),
so a multi-line entry never straddles two blocks and each block can be parsed on its own —
by this process, a local worker or a Dask worker — and the partial results merged.

Decoding never raises: a block is decoded as UTF-8; lines that are not valid UTF-8 are decoded
with U+FFFD replacement characters and reported by line number, so a statement with one bad
byte in a literal is kept rather than lost.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import os
import re
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
    "compression_of",
    "decode_block",
    "iter_block_refs",
    "iter_blocks",
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


def compression_of(path: str | Path) -> str | None:
    """'gzip', 'bzip2', 'xz', 'zstd' or None, from the file's first bytes."""
    with open(path, "rb") as fh:
        start = fh.read(6)
    for magic, name in _MAGIC:
        if start.startswith(magic):
            return name
    return None


def open_binary(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing transparently."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if kind == "zstd":
        fh = open(path, "rb")  # noqa: SIM115 - closed by the reader
        return zstandard.ZstdDecompressor().stream_reader(fh, closefd=True)  # type: ignore[return-value]
    return open(path, "rb")


def read_head(path: str | Path, size: int = 65536) -> bytes:
    """The first ``size`` decompressed bytes of ``path`` (for sniffing). Never raises on junk."""
    try:
        with open_binary(path) as fh:
            return fh.read(size)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError):
        return b""


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
    offset: int | None = 0 if compression_of(path) is None else None
    with open_binary(path) as fh:
        # decompressors are raw streams: buffer them so reads of block_size are cheap
        reader: BinaryIO = (
            fh
            if isinstance(fh, io.BufferedReader)
            else io.BufferedReader(cast(Any, fh), buffer_size=1 << 20)
        )
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
