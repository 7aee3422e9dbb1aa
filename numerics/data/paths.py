"""Where the third-party data lives: the one setting for it.

The traces and measurements flowstab reads (Azure LLM inference 2023, Mooncake, ShareGPT lengths,
splitwise-sim step times) are third-party files, never copied into the repository. Their folder is
``$FLOWSTAB_DATA`` when that variable is set, else ``shared/data`` beside the checkout
(``<checkout>/../shared/data``). Everything that reads them asks :func:`data_dir` or
:func:`data_file`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "data_dir", "data_file", "default_data_dir"]

#: The environment variable naming the data folder.
DATA_ENV = "FLOWSTAB_DATA"


def default_data_dir() -> Path:
    """``shared/data`` beside the checkout that holds this package."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def data_dir() -> Path | None:
    """The folder holding the third-party data, or None when it is absent."""
    env = os.environ.get(DATA_ENV)
    folder = Path(env) if env else default_data_dir()
    return folder if folder.is_dir() else None


def data_file(name: str) -> Path | None:
    """The path of data file ``name``, or None when the folder or the file is absent."""
    folder = data_dir()
    if folder is None:
        return None
    path = folder / name
    return path if path.is_file() else None
