"""A CPU-bound map split with a forked child: the first pass of a one-shot listing (one
engine run per operation, no I/O) on a machine with a second core.

The child inherits the parent's model (copy on write), computes the second half of the items
and writes its results, pickled a chunk at a time, to an unlinked temporary file; the parent
computes the first half meanwhile, then reads them. Chunks keep the child small: it holds one
chunk of results, not its whole half. The answer is always ``[fn(x) for x in items]``:
whatever goes wrong in the child (an exception, a result that does not pickle, a signal, a
full disk) only costs time, the parent then computes that half itself, so an error ``fn``
raises is raised by the parent as the serial map would.

Only for processes without threads (the CLI's one-shot commands): a forked child of a
threaded server could inherit a lock held by another thread.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items the fork (page tables, pickling) eats what the second core saves:
# a listing of 500 one-span operations took 0.253 s with it and 0.268 s without, one of
# 2000 took 0.524 s against 0.619 s (best of 5).
MIN_ITEMS = 500
CHUNK = 1000  # results pickled and written at a time
_LENGTH = 8  # bytes of a chunk's length prefix


def can_fork() -> bool:
    """A second core, ``os.fork`` (not on Windows) and no other thread running."""
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2 and threading.active_count() == 1


def split_map(
    fn: Callable[[T], R], items: Sequence[T], *, min_items: int | None = None
) -> list[R]:
    """``[fn(x) for x in items]``, the second half computed by a forked child when there are
    at least ``min_items`` (default ``MIN_ITEMS``) and ``can_fork()``; the results must
    pickle to equal copies."""
    if len(items) < (MIN_ITEMS if min_items is None else min_items) or not can_fork():
        return [fn(x) for x in items]
    half = len(items) // 2
    first, second = items[:half], items[half:]
    child = _Child.start(fn, second)
    if child is None:
        return [fn(x) for x in items]
    with child:
        out = [fn(x) for x in first]
        theirs = child.results()
    if theirs is not None and len(theirs) == len(second):
        out.extend(theirs)
    else:
        out.extend(fn(x) for x in second)
    return out


class _Child:
    """A forked child computing ``fn`` over its items; a context that never leaves it
    behind (on Ctrl-C, or when ``fn`` fails in the parent, it is killed and reaped)."""

    __slots__ = ("file", "pid")

    def __init__(self, pid: int, file: IO[bytes]) -> None:
        self.pid: int | None = pid
        self.file = file

    @classmethod
    def start(cls, fn: Callable[[T], R], items: Sequence[T]) -> _Child | None:
        try:
            file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by results() or __exit__
        except OSError:
            return None
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            file.close()
            return None
        if pid == 0:  # the child: never returns
            _serve(fn, items, file.fileno(), parent)
        return cls(pid, file)

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid is not None:  # the parent did not get to results()
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            _reap(self.pid)
            self.pid = None
        self.file.close()

    def results(self) -> list[R] | None:
        """The child's results once it has exited, or None when it did not finish cleanly
        or they do not unpickle."""
        pid, self.pid = self.pid, None
        if pid is None or _reap(pid) != 0:
            return None
        out: list[R] = []
        try:
            self.file.seek(0)
            for chunk in _chunks(self.file):
                out.extend(pickle.loads(chunk))
        except Exception:  # whatever it is, the parent computes them
            return None
        finally:
            self.file.close()
        return out


def _serve(fn: Callable[[T], R], items: Sequence[T], fd: int, parent: int) -> None:
    """The child's whole life: compute, pickle and write chunk by chunk, leave without
    running the parent's exit handlers or flushing its buffers (``os._exit``); a child whose
    parent is gone (killed) stops at the next chunk instead of working for nobody."""
    status = 1
    try:
        for start in range(0, len(items), CHUNK):
            if os.getppid() != parent:
                return
            data = pickle.dumps(
                [fn(x) for x in items[start : start + CHUNK]], protocol=pickle.HIGHEST_PROTOCOL
            )
            _write_all(fd, len(data).to_bytes(_LENGTH, "big") + data)
        status = 0
    except BaseException:  # the parent computes these itself
        status = 1
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    """The length-prefixed chunks, to the end of the file; a cut chunk raises."""
    while head := file.read(_LENGTH):
        size = int.from_bytes(head, "big")
        data = file.read(size)
        if len(head) != _LENGTH or len(data) != size:
            raise EOFError("a chunk was cut short")
        yield data


def _reap(pid: int) -> int:
    """The child's exit status (a signal counts as failure); -1 when it cannot be had."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return -1
        return os.waitstatus_to_exitcode(status)
