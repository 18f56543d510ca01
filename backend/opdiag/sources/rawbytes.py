"""Bytes before JSON: what a trace file or HTTP body really is, read within a size cap.

Why a module of its own: every format goes through the same door, so the answers to "is this
even text?" must not depend on the format. Here:

* only regular files are read (a FIFO would block ``open``; ``/dev/zero`` never ends), at most
  ``max_bytes`` of them, and a gzip stream (``.json.gz`` exports, a Jaeger answering with
  ``Content-Encoding: gzip`` through a proxy that does not undo it) is inflated within the
  same cap, so a small bomb cannot take the memory;
* UTF-16/UTF-32 text and bytes that are not UTF-8 are named for what they are instead of
  surfacing as a JSON error that says "truncated";
* a lone UTF-16 surrogate escape (``"\\ud800"``), which no UTF-8 text can hold but JSON can
  spell, is replaced by U+FFFD: one bad character in a span name must not make a whole file
  unreadable, nor reach the Markdown, HTML and SVG renderers that cannot encode it.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import zlib
from pathlib import Path

from opdiag.errors import TraceFormatError

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: about 1.4 million spans of Jaeger's compact JSON
_GZIP_MAGIC = b"\x1f\x8b"
_PIECE = 1 << 20
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
)
# A surrogate escape with the run of backslashes before it (an even run means the escape is
# real; an odd one means its backslash is itself escaped text).
_SURROGATE = re.compile(rb"(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2})")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def too_big(max_bytes: int) -> str:
    """The one wording of the cap, for files and bodies alike."""
    return (
        f"larger than the {_mib(max_bytes)} cap on one trace file "
        "(raise max_trace_file_bytes / OPDIAG_MAX_TRACE_FILE_BYTES to read it)"
    )


def read_regular_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else is refused with
    ``TraceFormatError`` naming the file (never a hang on a FIFO or a device)."""
    name = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise TraceFormatError("file does not exist", source=name) from None
    except OSError as exc:
        raise TraceFormatError(f"cannot read: {exc.strerror or exc}", source=name) from None
    if stat.S_ISDIR(info.st_mode):
        raise TraceFormatError("is a directory, not a trace file", source=name)
    if not stat.S_ISREG(info.st_mode):
        raise TraceFormatError(f"is a {_kind(info.st_mode)}, not a regular file", source=name)
    if info.st_size > max_bytes:
        raise TraceFormatError(too_big(max_bytes), source=name)
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, open
        # must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise TraceFormatError(f"cannot read: {exc.strerror or exc}", source=name) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise TraceFormatError("is not a regular file", source=name)
        data = handle.read(max_bytes + 1)  # a file that grew since the stat is still capped
    if len(data) > max_bytes:
        raise TraceFormatError(too_big(max_bytes), source=name)
    return data


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def gunzip(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Inflate gzip members (one after another, as ``cat a.gz b.gz`` makes) within the cap."""
    out: list[bytes] = []
    total = 0
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            piece = inflater.decompress(data, max_bytes + 1 - total)  # 0 would mean no cap
        except zlib.error as exc:
            raise TraceFormatError(
                f"gzip data that does not inflate: {exc}", source=source
            ) from None
        total += len(piece)
        out.append(piece)
        if total > max_bytes:
            raise TraceFormatError(
                "gzip data that inflates to something " + too_big(max_bytes),
                source=source,
            )
        if not inflater.eof:
            raise TraceFormatError(
                "gzip data that ends early (the file looks truncated)", source=source
            )
        data = inflater.unused_data.lstrip(b"\x00")  # padding some tools leave at the end
        if not data:
            return b"".join(out)
        if not data.startswith(_GZIP_MAGIC):
            raise TraceFormatError("gzip data followed by bytes that are not gzip", source=source)


def text_bytes(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """``data`` as UTF-8 JSON text: gzip inflated, a UTF-8 byte-order mark dropped, other
    encodings refused by name. The caller checks for emptiness and parses."""
    if data[:2] == _GZIP_MAGIC:
        data = gunzip(data, source, max_bytes)
    if data[:3] == b"\xef\xbb\xbf":  # UTF-8 byte-order mark from Windows editors
        return data[3:]
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise TraceFormatError(
                f"{name} text, not UTF-8: convert it first (iconv -t UTF-8)", source=source
            )
    # Without a mark, UTF-16 JSON shows as a NUL beside every ASCII character.
    head = data[:64]
    if len(head) >= 4 and head.count(0) * 3 >= len(head):
        which = "big" if head[0] == 0 else "little"
        raise TraceFormatError(
            f"UTF-16 ({which}-endian) text, not UTF-8: convert it first (iconv -t UTF-8)",
            source=source,
        )
    return data


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text, checked piece by piece (no copy of a big file). The
    typed decoder skips unknown keys without checking their text, so the reader asks."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for pos in range(0, len(data), _PIECE):
            decoder.decode(view[pos : pos + _PIECE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def utf8_problem(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 text, naming the first bad byte; ``None`` when it is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        line = data.count(b"\n", 0, exc.start) + 1
        return f"not UTF-8 text: byte 0x{bad} at offset {exc.start} (line {line}) is invalid"
    return None


def has_surrogate_escape(data: bytes) -> bool:
    """Cheap pre-check: could ``data`` spell a lone surrogate?"""
    return b"\\ud" in data or b"\\uD" in data


def repair_surrogates(data: bytes) -> bytes:
    """Replace every lone surrogate escape by ``\\ufffd``; well-formed pairs (an emoji written
    with ``ensure_ascii``) stay. ``data`` is returned as it is when there is none."""
    matches = [m for m in _SURROGATE.finditer(data) if len(m.group(1)) % 2 == 1]
    if not matches:
        return data
    lone: list[tuple[int, int]] = []
    i = 0
    while i < len(matches):
        m = matches[i]
        code = int(m.group(2), 16)
        if code <= 0xDBFF:  # high: fine when a low one follows at once
            nxt = matches[i + 1] if i + 1 < len(matches) else None
            if (
                nxt is not None
                and nxt.start() == m.end()
                and nxt.group(1) == b"\\"
                and int(nxt.group(2), 16) >= 0xDC00
            ):
                i += 2
                continue
        lone.append((m.end() - 6, m.end()))
        i += 1
    if not lone:
        return data
    pieces: list[bytes] = []
    done = 0
    for start, end in lone:
        pieces.append(data[done:start])
        pieces.append(b"\\ufffd")
        done = end
    pieces.append(data[done:])
    return b"".join(pieces)
