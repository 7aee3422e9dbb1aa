"""The one plotting module: palette, figure files and the policy lines shared by the front ends.

``flowstab compare --plot``, the HTML report and ``paper_figs`` all draw with the Okabe–Ito palette
(distinguishable under the common colour-vision deficiencies) and save through :func:`savefig`,
which turns an unwritable path into :class:`numerics.errors.OutputError`. matplotlib is imported
inside the functions that draw, never when this module is imported.

Examples
--------
Block means: 10 points drawn as 5, each the mean of two neighbours.

>>> x, y = downsample(range(10), range(10, 20), points=5)
>>> x.tolist(), y.tolist()
([0.5, 2.5, 4.5, 6.5, 8.5], [10.5, 12.5, 14.5, 16.5, 18.5])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowstab.outputs import atomic_path, check_destination

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from numerics.sim import SimResult

__all__ = [
    "LINE_STYLES",
    "OKABE_ITO",
    "PLOT_SUFFIXES",
    "check_plot_path",
    "downsample",
    "draw_policy_lines",
    "plot_compare",
    "savefig",
]

#: The Okabe–Ito palette (blue, vermilion, green, purple, orange, sky blue, black, yellow).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: The figure file types the front ends write.
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
#: Line styles, cycled so that series stay apart in greyscale and when colours repeat.
LINE_STYLES = ("-", "--", "-.", ":")


def check_plot_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Fail before any work when a figure could not be saved at ``path``.

    The name must end in one of :data:`PLOT_SUFFIXES`, must not be a folder, its folder must be
    writable (or creatable), and an existing file is replaced only with ``overwrite``
    (:func:`flowstab.outputs.check_destination`). Raises :class:`OutputError` otherwise.
    """
    return check_destination(path, "--plot", overwrite=overwrite, suffixes=PLOT_SUFFIXES)


def savefig(fig: Figure, path: str | os.PathLike, *, dpi: float = 150, what: str = "--plot",
            **kwargs: Any) -> Path:
    """``fig.savefig(path, dpi=dpi, **kwargs)``, atomically (:func:`flowstab.outputs.atomic_path`).

    An :class:`OSError` becomes :class:`OutputError` (``"{what} {path}: cannot write ..."``,
    ``what`` naming the option that gave the path) and leaves no partial file. Returns ``path`` as
    a :class:`~pathlib.Path`.
    """
    out = Path(path)
    with atomic_path(out, what) as tmp:
        fig.savefig(tmp, dpi=dpi, **kwargs)
    return out


def downsample(x: Sequence[float], y: Sequence[float], points: int = 2000,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Block means so that a long time series draws as at most about ``points`` points.

    With ``k = max(1, len(x) // points)``, consecutive blocks of ``k`` samples are replaced by their
    means (a trailing partial block is dropped); ``k = 1`` returns the data as float arrays.
    """
    import numpy as np

    k = max(1, len(x) // points)
    if k == 1:
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    m = (len(x) // k) * k
    return (np.asarray(x[:m], dtype=float).reshape(-1, k).mean(axis=1),
            np.asarray(y[:m], dtype=float).reshape(-1, k).mean(axis=1))


def draw_policy_lines(ax_kv: Axes, ax_cdf: Axes, results: Sequence[tuple[str, SimResult]],
                      colors: Sequence[str], *, count_requests: bool = False,
                      cdf_points: int = 4000, lw_cdf: float = 1.2) -> bool:
    """One line per ``(label, SimResult)``: KV utilisation over time on ``ax_kv`` and the latency
    CDF of requests arriving after warm-up on ``ax_cdf``, with the axis labels of those quantities.

    KV utilisation is the KV tokens in use over M, block-averaged by :func:`downsample`; the CDF is
    the empirical one, F(x) = (number of latencies ≤ x) / n, drawn at no more than ``cdf_points``
    evenly spaced order statistics, on y ∈ [0, 1.02]. When the latencies span more than two decades
    the CDF's x-axis is logarithmic, and the function returns True. Titles, the CDF's y label and
    the KV axis limits are the caller's. Shared by ``compare --plot`` and the report.
    """
    import numpy as np

    log_x = False
    for i, (label, res) in enumerate(results):
        color = colors[i % len(colors)]
        ls = LINE_STYLES[(i // len(colors) + i) % len(LINE_STYLES)]
        cfg = res.config
        ts = res.timeseries
        x, y = downsample(ts["slot"].to_numpy(), ts["kv_tokens"].to_numpy() / cfg.memory_tokens)
        ax_kv.plot(x, y, color=color, ls=ls, lw=1.0, label=label)
        rec = res.records
        lat = rec.loc[(rec.arrival_slot >= cfg.warmup) & rec.completion_slot.notna(), "latency_slots"]
        lat = np.sort(lat.to_numpy(dtype=float))
        if lat.size:
            frac = np.arange(1, lat.size + 1) / lat.size
            keep = np.unique(np.linspace(0, lat.size - 1, min(lat.size, cdf_points)).astype(np.int64))
            text = f"{label} ({lat.size:,} requests)" if count_requests else label
            ax_cdf.step(lat[keep], frac[keep], where="post", color=color, ls=ls, lw=lw_cdf, label=text)
            log_x = log_x or lat[-1] > 100 * max(lat[0], 1.0)
        else:
            ax_cdf.plot([], [], color=color, ls=ls, label=f"{label} (none finished)")
    ax_kv.set_xlabel("time (slots)")
    ax_kv.set_ylabel("KV-cache utilisation (fraction of M)")
    ax_cdf.set_xlabel("latency, arrival to last token (slots)")
    if log_x:
        ax_cdf.set_xscale("log")
    ax_cdf.set_ylim(0, 1.02)
    return log_x


def plot_compare(results: Sequence[tuple[str, SimResult]], path: str | os.PathLike,
                 title: str = "") -> Path:
    """Two panels — KV utilisation over time per policy, latency CDFs — saved at 150 dpi.

    ``results`` is a list of ``(label, SimResult)``. matplotlib is imported here (Agg canvas),
    never at import time. Raises :class:`OutputError` when the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_kv, ax_cdf = fig.subplots(1, 2)
    draw_policy_lines(ax_kv, ax_cdf, results, OKABE_ITO, count_requests=True)
    if results:
        cfg = results[0][1].config
        ax_kv.axhline(1.0, color="0.4", lw=0.8, ls=":", label="M")
        if cfg.warmup:
            ax_kv.axvline(cfg.warmup, color="0.6", lw=0.8, ls="--", label="end of warm-up")
    ax_kv.set_title("KV-cache utilisation over time")
    ax_kv.set_ylim(bottom=0)
    ax_cdf.set_ylabel("fraction of requests with latency ≤ x")
    ax_cdf.set_title("Latency CDF (requests arriving after warm-up)")
    # one legend for both panels (the same policies, in the same colours), below them: inside a
    # panel it covered the data
    handles, labels = ax_kv.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4),
                   fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    return savefig(fig, path, dpi=150)
