"""paper_figs — every figure of the paper, regenerated from results files by one command.

``python -m paper_figs [--quick] [--only NAME[,NAME]] [--out DIR] [--results DIR] [--rerun]``

Each figure module ``fig_<name>.py`` holds the figure's whole pipeline: ``config(quick)`` (the
quick and full parameters), ``experiment(config, seed) -> dict`` (what is computed, with the
toolkit) and ``plot(results: dict) -> Figure``, a pure function of the results file
``results/<name>.json`` that :mod:`paper_figs.io` writes (with provenance: git sha, versions, seed,
config). Shared pieces: :mod:`paper_figs.io` (results files, reuse, manifest),
:mod:`paper_figs.lineup` (the azure-conv policy comparisons) and :mod:`paper_figs.style`. The
figures are written to ``paper_figs/out/<name>.pdf|.png`` with a ``manifest.json``. This package is
repository-local (run it from the repository root).
"""

from __future__ import annotations

__all__ = ["FIGURES", "figure_module"]

#: Figure names, in order (``fig_<name>.py`` plots ``results/<name>.json``). ``--only`` also
#: accepts the short label before the underscore (``f1``, ``f2``, ...).
FIGURES = (
    "f1_region",
    "f2_tails",
    "f3_synthetic",
    "f4_kv",
    "f5_rates",
    "f6_sensitivity",
    "f7_greedy",
    "f8_heavy",
    "f9_traces",
    "f10_seconds",
    "f11_phase",
    "f12_section42",
)


def figure_module(name: str):
    """The module ``paper_figs.fig_<name>`` (imported on demand: it imports matplotlib)."""
    import importlib

    return importlib.import_module(f"paper_figs.fig_{name}")
