"""Sweep results on disk: per-cell JSON checkpoints, the manifest, and the Parquet table.

A finished cell is written to ``<out>.cells/<key>.json`` (to a temporary file first, then renamed:
a killed sweep leaves either the whole file or none). :func:`load_checkpoints` reads back those of
the current cells (a resumed sweep runs only the rest); unreadable or stray files are noted, never
used. The table is assembled from the records in cell order, so it does not depend on the order in
which cells finished, on the backend, or on interruptions. The Parquet file's ``flowstab.sweep``
metadata holds the config, the package version, the schema and the cell count, and the parts of
the provenance record (:mod:`numerics.provenance`) that do not change from run to run: the git
revision, whether the tree was dirty, and the package versions (no creation time, so the same
sweep from the same checkout writes the same bytes).

Examples
--------
>>> checkpoint_dir("runs/grid.parquet").as_posix()
'runs/grid.parquet.cells'
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from numerics.provenance import git_dirty, git_revision, package_version, versions
from numerics.sweep.cells import KEY_HEX_DIGITS, SWEEP_SCHEMA, SweepCell
from numerics.sweep.config import SweepConfig, SweepError

__all__ = ["CELLS_SUFFIX", "MANIFEST", "check_output", "checkpoint_dir", "load_checkpoints",
           "results_table", "save_checkpoint", "write_manifest", "write_parquet"]

#: Suffix of the checkpoint folder next to the results file.
CELLS_SUFFIX = ".cells"
#: The manifest in the checkpoint folder: schema, config and cell count of the sweep.
MANIFEST = "_sweep.json"
_KEY_RE = re.compile(rf"^[0-9a-f]{{{KEY_HEX_DIGITS}}}\.json$")


def checkpoint_dir(out_path: str | os.PathLike) -> Path:
    """The folder of per-cell checkpoints of a results file: ``<out>.cells``."""
    p = Path(out_path)
    return p.with_name(p.name + CELLS_SUFFIX)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _record(cell: SweepCell, summary: dict) -> dict:
    return {"schema": SWEEP_SCHEMA, "key": cell.key, "cell": dataclasses.asdict(cell),
            "summary": summary}


def save_checkpoint(folder: Path, cell: SweepCell, summary: dict) -> dict:
    """Write the cell's record atomically; return it as a resumed sweep will read it back."""
    text = json.dumps(_record(cell, summary), sort_keys=False)
    _write_atomic(folder / f"{cell.key}.json", text.encode())
    return json.loads(text)  # exactly what a resumed sweep will read back


def load_checkpoints(folder: Path, cells: Sequence[SweepCell], notes: list[str]) -> dict[str, dict]:
    """Finished cells' records by key; unreadable ones are noted and will run again."""
    wanted = {c.key for c in cells}
    done: dict[str, dict] = {}
    stray = 0
    for p in sorted(folder.iterdir()):
        if p.name.endswith(".tmp"):  # a write cut short by a kill: the cell did not finish
            p.unlink(missing_ok=True)
            continue
        if not _KEY_RE.match(p.name):
            continue
        key = p.name[: -len(".json")]
        if key not in wanted:
            stray += 1
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
            ok = rec.get("key") == key and isinstance(rec.get("summary"), dict)
        except (OSError, ValueError, AttributeError):
            ok = False
        if ok:
            done[key] = rec
        else:
            notes.append(f"checkpoint {p.name} is unreadable; its cell runs again")
    if stray:
        notes.append(f"{stray} checkpoint(s) in {folder} belong to no cell of this config "
                     "(changed grid or settings); they are kept but not used")
    return done



def check_output(out: Path, resume: bool, config: SweepConfig | None = None) -> None:
    """Refuse an unusable results path, (without ``resume``) one that a sweep would overwrite, or
    (with ``resume`` and ``config``) checkpoints that another config made: resuming them would
    replace that config's results table with this one's."""
    if out.suffix.lower() != ".parquet":
        raise SweepError(f"{out}: the results file must end in .parquet")
    if out.is_dir():
        raise SweepError(f"{out} is a directory; give a file name such as results.parquet")
    if not out.parent.is_dir():
        raise SweepError(f"{out}: folder {str(out.parent)!r} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise SweepError(f"{out}: folder {str(out.parent)!r} is not writable")
    folder = checkpoint_dir(out)
    if not resume:
        if folder.exists():
            raise SweepError(f"checkpoints of an earlier sweep exist in {folder}; pass --resume "
                             "(resume=True) to continue it, or remove that folder to start afresh")
        if out.exists():
            raise SweepError(f"{out} exists; remove it or choose another output file (a sweep never "
                             "overwrites a table it did not build)")
    elif folder.exists() and not folder.is_dir():
        raise SweepError(f"{folder} exists and is not a folder; remove it")
    elif config is not None and (folder / MANIFEST).is_file():
        _check_same_config(folder, config)


def _check_same_config(folder: Path, config: SweepConfig) -> None:
    """Raise when the manifest in ``folder`` records a config other than ``config``."""
    try:
        earlier = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return  # an unreadable manifest: the cell keys alone decide what is reused
    now = json.loads(json.dumps(config.to_dict(), default=str))
    if not isinstance(earlier, dict) or earlier == now:
        return
    changed = sorted(k for k in set(earlier) | set(now) if earlier.get(k) != now.get(k))
    raise SweepError(
        f"the checkpoints in {folder} were made by another sweep config (it differs in "
        f"{', '.join(changed)}); resume with that config, or give this one another --out "
        "(nothing was changed)"
    )


def results_table(config: SweepConfig, cells: Sequence[SweepCell],
                  records: dict[str, dict]) -> pd.DataFrame:
    """One row per cell in cell order: coordinates, then every numeric summary metric."""
    first = ["cell", "cell_key", "policy", "policy_resolved", "flow_rate_per_slot", "load",
             "arrival_rate_per_slot", "memory_tokens", "block_size"]
    if config.replication_root is not None:
        first.append("replication")
    first.append("seed")
    rows = []
    for cell in cells:
        summary = records[cell.key]["summary"]
        row = {
            "cell": cell.index, "cell_key": cell.key, "policy": cell.policy,
            "policy_resolved": cell.policy_resolved, "flow_rate_per_slot": cell.flow_rate,
            "load": cell.load, "arrival_rate_per_slot": cell.arrival_rate,
            "memory_tokens": cell.memory_tokens, "block_size": cell.block_size,
        }
        if cell.replication is not None:
            row["replication"] = cell.replication
        row["seed"] = cell.seed
        row.update({k: v for k, v in summary.items() if k not in row})
        rows.append(row)
    df = pd.DataFrame(rows)
    rest = [c for c in df.columns if c not in first]
    df = df[first + rest]
    for col in ("cell", "memory_tokens", "block_size", "seed", "replication"):
        if col in df:
            df[col] = df[col].astype(np.int64)
    return df.reset_index(drop=True)


def write_parquet(df: pd.DataFrame, out: Path, config: SweepConfig) -> None:
    """Write ``df`` to ``out`` atomically, with the sweep's metadata and provenance (see above)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"flowstab.sweep"] = json.dumps({
        "config": config.to_dict(), "version": package_version(), "schema": SWEEP_SCHEMA,
        "cells": len(df), "git_sha": git_revision(), "git_dirty": git_dirty(), "versions": versions(),
    }, default=str).encode()
    table = table.replace_schema_metadata(meta)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)



def write_manifest(folder: Path, config: SweepConfig, n_cells: int) -> None:
    """``<folder>/_sweep.json``: the schema, the config and the number of cells."""
    _write_atomic(folder / MANIFEST, json.dumps(
        {"schema": SWEEP_SCHEMA, "config": config.to_dict(), "cells": n_cells},
        default=str, indent=1).encode())
