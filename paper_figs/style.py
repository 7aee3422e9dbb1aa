"""One figure style for every paper figure: sizes, fonts, the Okabe–Ito palette, unit labels.

Sizes follow a two-column paper (a column is 3.35 in wide, the page 7 in); fonts are 8 pt so that
they match 9–10 pt body text after no scaling. Colours are the Okabe–Ito palette
(:data:`flowstab.plotting.OKABE_ITO`), distinguishable under the common colour-vision deficiencies, and
every series also differs in line style or marker so that the figures survive greyscale printing.
Each policy and each bound has one fixed colour across all figures (:func:`policy_style`,
:data:`BOUND_STYLE`).

matplotlib is imported inside the functions (Agg canvas), never at import time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flowstab.plotting import OKABE_ITO
from paper_figs.io import as_floats

__all__ = [
    "BOUND_STYLE",
    "COLUMN_WIDTH_IN",
    "OKABE_ITO",
    "PAGE_WIDTH_IN",
    "QUICK_MARK",
    "RC_PARAMS",
    "UNITS",
    "figure_legend",
    "label",
    "mark_quick",
    "new_figure",
    "plot_policy_bands",
    "plotting",
    "png_bytes",
    "policy_style",
    "rate_comparison",
    "save_figure",
]

#: Width of one column of a two-column paper, and of the full page (inches).
COLUMN_WIDTH_IN = 3.35
PAGE_WIDTH_IN = 7.0

BLUE, VERMILION, GREEN, PURPLE, ORANGE, SKY, BLACK, YELLOW = OKABE_ITO

RC_PARAMS: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical output on every machine
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "legend.handlelength": 2.2,
    "axes.prop_cycle": None,  # set in _rc() from OKABE_ITO
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.4,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "savefig.dpi": 200,
    "figure.dpi": 100,
    "pdf.fonttype": 42,  # TrueType in PDFs (editable text, accepted by publishers)
    "svg.hashsalt": "flowstab",
    "path.simplify": True,
}

#: Units of the quantities the figures plot (one place, so every axis says the same thing).
UNITS = {
    "rate": "requests/slot",
    "token_rate": "tokens/slot",
    "memory": "tokens",
    "time": "slots",
    "latency": "slots",
    "memory_time": "token·slots",
    "count": "",
    "fraction": "",
}

#: Colour, line style and marker of each tail bound / approximation in F2.
BOUND_STYLE = {
    "exact": {"color": BLACK, "ls": "-", "marker": None, "label": "exact (tilted inversion)"},
    "chernoff": {"color": BLUE, "ls": "--", "marker": None, "label": "Chernoff bound"},
    "bernstein": {"color": VERMILION, "ls": "-.", "marker": None, "label": "Bernstein bound"},
    "hoeffding": {"color": GREEN, "ls": ":", "marker": None, "label": "Hoeffding bound"},
    "cantelli": {"color": PURPLE, "ls": (0, (5, 1, 1, 1, 1, 1)), "marker": None,
                 "label": "Cantelli bound"},
    "gaussian": {"color": ORANGE, "ls": (0, (1, 1)), "marker": None,
                 "label": "Gaussian approx. (not a bound)"},
    "simulation": {"color": SKY, "ls": "none", "marker": "o", "label": "simulation"},
}

_POLICY_STYLE = {
    "flow": {"color": BLUE, "ls": "-", "marker": "o"},
    "greedy": {"color": VERMILION, "ls": "--", "marker": "s"},
    "alpha": {"color": GREEN, "ls": "-.", "marker": "^"},
    "reserve": {"color": PURPLE, "ls": ":", "marker": "D"},
    "mcsf": {"color": ORANGE, "ls": (0, (5, 1)), "marker": "v"},
    "budgets": {"color": BLACK, "ls": "-", "marker": "x"},
}


def policy_style(spec: str, label: str = "") -> dict[str, Any]:
    """Colour, line style and marker of a policy spec (by its family: ``flow:rate=…`` → flow).

    Flow control at a fraction of λ_max (its ``label`` says "λ_max"), drawn beside flow at the
    certified r*(ε), gets a style of its own.
    """
    family = spec.split(":", 1)[0].strip().lower()
    if family == "flow" and "λ_max" in label:
        return {"color": SKY, "ls": (0, (3, 1)), "marker": "P"}
    return dict(_POLICY_STYLE.get(family, {"color": SKY, "ls": "-", "marker": "."}))


def plot_policy_bands(ax, x, policies: list[dict], metric: str, mark: float, mark_label: str,
                      log: bool = False) -> None:
    """One line per policy of ``metric``'s mean against ``x`` with its (low, high) band, and a
    dotted vertical line at ``mark`` (a capacity) labelled ``mark_label``."""
    for pol in policies:
        st = policy_style(pol["spec"], pol["label"])
        m = pol["metrics"][metric]
        y, lo, hi = (as_floats(m[k]) for k in ("mean", "low", "high"))
        ax.plot(x, y, color=st["color"], ls=st["ls"], marker=st["marker"], ms=2.5, label=pol["label"])
        ax.fill_between(x, lo, hi, color=st["color"], alpha=0.2, lw=0)
    ax.axvline(mark, color="0.3", lw=0.8, ls=":")
    ax.text(mark, 1.0, f" {mark_label}", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
    if log:
        ax.set_yscale("log")


def rate_comparison(x, policies: list[dict], panels: tuple[tuple[str, str, bool], ...], *,
                    mark: float, mark_label: str, xlabel: str, offered, offered_label: str,
                    height_in: float, nrows: int, ncols: int, legend_ncol: int, **subplot_kw):
    """A page-wide figure of policy metrics against the offered rate ``x``: (Figure, axes).

    One panel per ``(metric, y label, log y)`` of ``panels``, in row-major order, each with
    :func:`plot_policy_bands` of every policy and the capacity ``mark``; ``xlabel`` under the
    bottom row; the offered load ``offered`` against ``x`` (dotted grey, labelled
    ``offered_label``) on the first panel; and that panel's legend below the figure
    (:func:`figure_legend`). Call inside :func:`plotting`.
    """
    fig, axes = new_figure("page", height_in, nrows, ncols, **subplot_kw)
    for ax, (metric, ylabel, log) in zip(axes.flat, panels, strict=True):
        plot_policy_bands(ax, x, policies, metric, mark, mark_label, log)
        ax.set_ylabel(ylabel)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    axes[0, 0].plot(x, offered, color="0.5", lw=0.7, ls=":", label=offered_label)
    figure_legend(fig, axes[0, 0], legend_ncol)
    return fig, axes


def figure_legend(fig, ax, ncol: int) -> None:
    """The legend of ``ax``'s labelled artists below the figure's panels, in ``ncol`` columns."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol)


def label(quantity: str, unit: str | None = None) -> str:
    """An axis label with its unit: ``label("arrival rate λ", "rate")`` → ``arrival rate λ
    (requests/slot)``; ``unit`` is a key of :data:`UNITS` or a literal unit string."""
    u = UNITS.get(unit, unit) if unit is not None else ""
    return f"{quantity} ({u})" if u else quantity


def _rc() -> dict[str, Any]:
    from cycler import cycler

    rc = dict(RC_PARAMS)
    rc["axes.prop_cycle"] = cycler(color=list(OKABE_ITO))
    return rc


def new_figure(width: str | float = "column", height_in: float = 2.4, nrows: int = 1,
               ncols: int = 1, **subplot_kw):
    """A Figure (Agg canvas, constrained layout, the paper style) and its axes.

    ``width`` is ``"column"`` (3.35 in), ``"page"`` (7 in) or inches. The style is applied to the
    figure's artists as they are created, so call this inside :func:`plotting` — or simply use
    the returned objects inside a ``with plotting():`` block (every ``plot`` function does).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w = {"column": COLUMN_WIDTH_IN, "page": PAGE_WIDTH_IN}.get(width, width)
    fig = Figure(figsize=(float(w), float(height_in)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def plotting():
    """Context manager applying :data:`RC_PARAMS` (``with plotting(): fig = ...``)."""
    import matplotlib

    return matplotlib.rc_context(_rc())


_METADATA = {
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "png": {"Software": None},
}


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, without timestamps or version strings (byte-reproducible)."""
    buf = io.BytesIO()
    with plotting():
        fig.savefig(buf, format="png", dpi=RC_PARAMS["savefig.dpi"], metadata=_METADATA["png"])
    return buf.getvalue()


#: The mark :func:`mark_quick` puts on a figure drawn from a quick (small-config) experiment.
QUICK_MARK = "quick run (small config): not the paper's numbers"


def mark_quick(fig) -> None:
    """Mark ``fig`` as drawn from a ``--quick`` experiment, so that a smoke-test figure is never
    mistaken for the real one: a grey line in the super-title (the constrained layout makes room
    for it above the panels), after the figure's own super-title if it has one."""
    own = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    if own:
        fig.suptitle(f"{own}\n[{QUICK_MARK}]", fontsize=fig._suptitle.get_fontsize())
    else:
        fig.suptitle(f"[{QUICK_MARK}]", fontsize=6, color="0.45", style="italic")


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``<out_dir>/<name>.pdf`` and ``.png`` (no timestamps in either); return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with plotting():
        for ext in ("pdf", "png"):
            path = out / f"{name}.{ext}"
            fig.savefig(path, format=ext, dpi=RC_PARAMS["savefig.dpi"], metadata=_METADATA[ext])
            paths.append(path)
    return paths
