"""Where the front ends write, and how: checked before the work, never over a file unless asked, atomic.

Every command that writes a file follows the same three rules, through the helpers here:

1. **Checked before the work.** :func:`check_destination` fails at once when a file could not be
   written where the user asked: a folder given for a file, a wrong suffix, a folder that cannot
   be created or is not writable, or a file that exists (rule 2). A long computation never ends in
   "cannot write".
2. **Nothing is overwritten unless asked.** An existing file is replaced only with ``overwrite``
   (the ``--overwrite`` flag of the command); the message says so.
3. **Written atomically.** :func:`~numerics.files.atomic_path` hands the writer a temporary name
   in the destination folder and renames it over the destination only once the writer has
   finished, so a full disk, a kill or an error leaves the previous file (or none), never a partial
   one. The temporary file is removed on failure.

Files the user does not name go under :data:`RESULTS_DIR` (``results/`` of the current folder):
``results/report/report.html``, ``results/check/REPORT.md``, ``results/calibration/...``.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> p = check_destination(folder / "sub" / "table.csv", "--out", suffixes=(".csv",), create=True)
>>> write_text_atomic(p, "a,b\\n1,2\\n", "--out").read_text()
'a,b\\n1,2\\n'
>>> try:
...     check_destination(p, "--out")
... except OutputError as exc:
...     print(str(exc)[-62:])
exists; pass --overwrite to replace it, or choose another name
>>> check_destination(p, "--out", overwrite=True) == p
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from numerics.errors import OutputError
from numerics.files import atomic_path, write_text_atomic

__all__ = ["RESULTS_DIR", "atomic_path", "check_destination", "check_folder", "write_text_atomic"]

#: The folder (relative to the current one) under which commands write what the user did not name.
RESULTS_DIR = Path("results")


def _existing_ancestor(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` that exists (the one a mkdir would start from)."""
    here = folder.absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def check_folder(folder: str | os.PathLike, what: str, *, create: bool = True) -> Path:
    """Fail (:class:`OutputError`) unless ``folder`` is a writable folder, or (with ``create``)
    can be created.

    Nothing is created here; :func:`~numerics.files.atomic_path` creates the folders when it
    writes. Without ``create`` a missing folder is an error (a folder the user named, where a typo
    should not create a new tree).
    """
    f = Path(folder)
    if f.exists() and not f.is_dir():
        raise OutputError(f"{what} {f}: {str(f)!r} exists and is not a folder")
    if not create and not f.is_dir():
        raise OutputError(f"{what}: folder {str(f)!r} does not exist")
    base = _existing_ancestor(f)
    if not base.is_dir():
        raise OutputError(f"{what} {f}: {str(base)!r} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {f}: folder {str(base)!r} is not writable")
    return f


def check_destination(path: str | os.PathLike, what: str, *, overwrite: bool = False,
                      suffixes: Sequence[str] | None = None, create: bool = False) -> Path:
    """Fail before any work when a file could not be written at ``path``.

    Parameters
    ----------
    path : path-like
        The destination file.
    what : str
        The option that named it (``"--plot"``, ``"--out"``, ...), for the message.
    overwrite : bool
        Whether an existing file may be replaced (else :class:`OutputError`).
    suffixes : sequence of str, optional
        The allowed file suffixes (lower case, with the dot).
    create : bool
        Whether a missing folder may be created (the defaults under :data:`RESULTS_DIR`); False:
        the folder must exist (a path the user typed).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        Wrong suffix, a folder, an existing file without ``overwrite``, an existing file that is not
        writable, or a folder that is not writable or cannot be created.
    """
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        listed = ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]
        raise OutputError(f"{what} {p}: the file name must end in {listed}")
    if p.is_dir():
        raise OutputError(f"{what} {p} is a directory; give a file name")
    if p.exists():
        if not overwrite:
            raise OutputError(f"{what} {p} exists; pass --overwrite to replace it, or choose another name")
        if not os.access(p, os.W_OK):
            raise OutputError(f"{what} {p}: the file is not writable")
    check_folder(p.parent, what, create=create)
    return p
