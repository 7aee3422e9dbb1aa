r"""Results files and the manifest: what every figure's experiment writes and the CLI reads.

Every experiment is a pure function of its *config* (a JSON-able dict built by the figure module's
``config(quick)``) and its seed, and writes ``<results>/<name>.json``::

    {"name": ..., "provenance": {"git_sha", "git_dirty", "versions", "seed", "config", "quick",
                                 "created", "seconds"},
     "data": {...}}

so that the figure's ``plot`` only loads and draws. The same config and seed give the same
``data`` (replications use ``SeedSequence(seed).spawn(n)`` through
:func:`numerics.sim.replicate`). :func:`load_or_run` reuses an existing file whose config, seed and
``quick`` flag match, unless told to recompute. The provenance record is
:func:`numerics.provenance.provenance` with the versions of :data:`PACKAGES`.

``<out>/manifest.json`` lists, per figure, its files, its results file and that file's SHA-256,
the experiment and plot seconds (:func:`manifest_entry`, :func:`read_manifest`,
:func:`write_manifest`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from numerics.errors import FlowstabError
from numerics.provenance import provenance, utc_now

__all__ = [
    "BASE_SEED",
    "PACKAGES",
    "ResultsError",
    "as_floats",
    "clean",
    "experiment_config",
    "file_sha256",
    "load_or_run",
    "load_results",
    "manifest_entry",
    "read_manifest",
    "results_provenance",
    "run_experiment",
    "write_manifest",
]

#: Root seed of every experiment; figure ``fig_<name>.py`` runs with ``BASE_SEED + SEED_OFFSET``
#: (each figure its own offset, so that the random streams differ).
BASE_SEED = 20260413
#: The packages whose versions a results file records (Python's is always recorded).
PACKAGES = ("numpy", "scipy", "pandas", "numba", "matplotlib", "flowstab")


class ResultsError(FlowstabError):
    """A results file is missing, unreadable or not from this experiment."""


def results_provenance(config: dict, seed: int, quick: bool) -> dict:
    """Where a result came from: git sha (and whether the tree was dirty), the versions of
    :data:`PACKAGES`, seed, config, the ``quick`` flag and the UTC creation time, in that order."""
    rec = provenance(config, seed, packages=PACKAGES)
    created = rec.pop("created")
    return rec | {"quick": bool(quick), "created": created}


def clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, tuples to lists, non-finite floats to None
    (dict keys to ``str``)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def as_floats(values) -> np.ndarray:
    """The inverse of :func:`clean` on a list of numbers: a float array with ``None`` → NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def experiment_config(name: str, quick: bool) -> tuple[dict, int]:
    """(config, seed) of experiment ``name`` in quick or full mode: the figure module's
    ``config(quick)`` made JSON-ready, and ``BASE_SEED + SEED_OFFSET``."""
    from paper_figs import FIGURES, figure_module

    if name not in FIGURES:
        raise ResultsError(f"unknown experiment {name!r}; known: {', '.join(FIGURES)}")
    mod = figure_module(name)
    return clean(mod.config(quick)), BASE_SEED + mod.SEED_OFFSET


def run_experiment(name: str, quick: bool, results_dir: str | Path) -> Path:
    """Compute experiment ``name`` and write ``<results_dir>/<name>.json``; return the path."""
    from paper_figs import figure_module

    config, seed = experiment_config(name, quick)
    start = time.perf_counter()
    data = figure_module(name).experiment(config, seed)
    seconds = time.perf_counter() - start
    prov = results_provenance(config, seed, quick)
    prov["seconds"] = round(seconds, 3)
    doc = {"name": name, "provenance": prov, "data": clean(data)}
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def load_results(path: str | Path) -> dict:
    """Read a results file written by :func:`run_experiment`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such results file; run `python -m paper_figs` to create it") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{p}: cannot read the results file ({exc}); delete it and rerun") from None
    if not isinstance(doc, dict) or not {"name", "provenance", "data"} <= set(doc):
        raise ResultsError(f"{p}: not a paper_figs results file (needs name, provenance, data)")
    return doc


def load_or_run(name: str, quick: bool, results_dir: str | Path, rerun: bool = False) -> tuple[Path, bool]:
    """The results file of ``name``: reused when its config, seed and quick flag match (and
    ``rerun`` is False), else recomputed. Returns (path, reused)."""
    path = Path(results_dir) / f"{name}.json"
    if not rerun and path.is_file():
        config, seed = experiment_config(name, quick)
        try:
            prov = load_results(path)["provenance"]
        except ResultsError:
            prov = {}
        if prov.get("config") == config and prov.get("seed") == seed and prov.get("quick") == quick:
            return path, True
    return run_experiment(name, quick, results_dir), False


# ------------------------------------------------------------------------------ manifest
def read_manifest(out_dir: str | Path) -> dict[str, dict]:
    """The per-figure entries of ``<out_dir>/manifest.json`` (empty when it is missing or
    unreadable), so that a partial run keeps the other figures' entries."""
    path = Path(out_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        manifest = {}
    figures = manifest.get("figures", {}) if isinstance(manifest, dict) else {}
    return figures if isinstance(figures, dict) else {}


def manifest_entry(files: list[Path], results_path: Path, doc: dict, reused: bool,
                   experiment_seconds: float, plot_seconds: float) -> dict:
    """One figure's manifest entry: its files, results file and SHA-256, whether the results were
    reused, the experiment seconds (the results file's own when it records them) and plot seconds,
    the quick flag and git sha of the results."""
    prov = doc["provenance"]
    return {
        "files": [str(f) for f in files],
        "results": str(results_path),
        "results_sha256": file_sha256(results_path),
        "results_reused": reused,
        "experiment_seconds": round(prov.get("seconds", experiment_seconds), 3),
        "plot_seconds": round(plot_seconds, 3),
        "quick": prov["quick"],
        "git_sha": prov["git_sha"],
    }


def write_manifest(out_dir: str | Path, figures: dict[str, dict]) -> Path:
    """Write ``<out_dir>/manifest.json`` (creation time and the entries of ``figures``, in the
    order of :data:`paper_figs.FIGURES`); return its path."""
    from paper_figs import FIGURES

    out = Path(out_dir)
    manifest = {
        "created": utc_now(),
        "figures": {k: figures[k] for k in FIGURES if k in figures},
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path
