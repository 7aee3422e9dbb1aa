"""Writing files atomically: the writer gets a temporary name, renamed over the destination at the end.

A full disk, a kill or an error in the writer leaves the previous file (or none), never a partial
one; the temporary file is removed on failure. The front ends' rules for where they write and
when they may replace a file are in :mod:`flowstab.outputs`, which uses these.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "new" / "notes.txt"
>>> write_text_atomic(p, "hello", "--out").read_text()
'hello'
>>> sorted(q.name for q in p.parent.iterdir())  # no temporary file left behind
['notes.txt']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from numerics.errors import OutputError

__all__ = ["atomic_path", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed over ``path`` when the block succeeds.

    The temporary name keeps the suffix (writers such as ``Figure.savefig`` read the format from
    it). Folders are created as needed. An :class:`OSError` in the block or in the rename becomes
    :class:`OutputError`; on any failure the temporary file is removed and ``path`` is as it was.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp{p.suffix}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, p)
    except OSError as exc:
        raise OutputError(f"{what} {p}: cannot write ({exc.strerror or exc}); nothing was written") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, what: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns the path."""
    with atomic_path(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
