"""F4 — KV-cache utilisation over time per policy on the azure-conv workload near capacity.

The experiment (:func:`experiment`): one simulation per policy of the line-up
(:func:`paper_figs.lineup.policy_lineup`) on the ``azure-conv`` preset at λ = 0.9 λ_max, every
policy seeing the same arrivals (one seed); the KV cache in use and the waiting queue per slot,
as block means.

The figure (:func:`plot`, from ``results/f4_kv.json``): the top panel is the KV cache in use as a
fraction of M (block means over a few slots), the bottom panel the waiting queue.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from paper_figs import lineup
from paper_figs.style import label, new_figure, plotting, policy_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SEED_OFFSET", "config", "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 4


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    return {
        "preset": "azure-conv",
        "memory_tokens": lineup.AZURE_MEMORY_TOKENS,
        "load": 0.9,  # λ / λ_max
        "epsilon": lineup.EPS_CERTIFIED,
        "flow_fraction": 0.95,
        "reserve_max": 1000,
        "mcsf": not quick,
        "slots": 2_000 if quick else 6_000,
        "points": 600 if quick else 1500,
    }


def _downsample(y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means of y over consecutive slots so that at most ``points`` remain: (x, y)."""
    y = np.asarray(y, dtype=float)
    k = max(1, math.ceil(y.size / points))
    m = (y.size // k) * k
    x = np.arange(m).reshape(-1, k).mean(axis=1)
    return x, y[:m].reshape(-1, k).mean(axis=1)


def experiment(cfg: dict, seed: int) -> dict:
    """KV utilisation over time per policy on azure-conv near capacity (same arrivals)."""
    from numerics.sim import SimConfig, parse_policy, simulate

    wl, tails = lineup.azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    r_cert = tails.flow_rate(cfg["epsilon"]).rate_per_slot
    lam = cfg["load"] * lam_max
    series = []
    for pol in lineup.policy_lineup(lam_max, r_cert, cfg):
        res = simulate(SimConfig(wl, cfg["memory_tokens"], parse_policy(pol["spec"]),
                                 slots=cfg["slots"], arrival_rate=lam, warmup=cfg["slots"] // 10,
                                 seed=seed))
        ts = res.timeseries
        x, util = _downsample(ts.kv_tokens.to_numpy() / cfg["memory_tokens"], cfg["points"])
        _, queue = _downsample(ts.queue.to_numpy(), cfg["points"])
        s = res.summary
        series.append({**pol, "slot": x, "kv_util": util, "queue": queue,
                       "kv_util_mean": s["kv_util_mean"], "kv_util_std": s["kv_util_std"],
                       "evictions": s["evictions"]})
    return {
        "lambda_max": lam_max,
        "arrival_rate": lam,
        "flow_rate_certified": r_cert,
        "mean_memory_time": tails.mean_memory_time,
        "series": series,
    }


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    with plotting():
        fig, axes = new_figure("page", 3.4, 2, 1, sharex=True)
        ax_kv, ax_q = axes[0, 0], axes[1, 0]
        for s in d["series"]:
            st = policy_style(s["spec"], s["label"])
            text = (f"{s['label']}: mean {s['kv_util_mean']:.2f}, sd {s['kv_util_std']:.3f}, "
                    f"{s['evictions']:,} evictions")
            ax_kv.plot(s["slot"], s["kv_util"], color=st["color"], ls=st["ls"], lw=0.8, label=text)
            ax_q.plot(s["slot"], s["queue"], color=st["color"], ls=st["ls"], lw=0.8)
        ax_kv.axhline(1.0, color="0.3", lw=0.8, ls=":")
        ax_kv.text(0.0, 1.005, " M", transform=ax_kv.get_yaxis_transform(), va="bottom", fontsize=7)
        ax_kv.axvline(cfg["slots"] // 10, color="0.6", lw=0.6, ls="--")
        ax_kv.set_ylim(0, 1.12)
        ax_kv.set_ylabel(label("KV cache in use, fraction of M", "fraction"))
        ax_kv.set_title(f"azure-conv, M = {cfg['memory_tokens']:,} tokens, λ = {d['arrival_rate']:.3g} "
                        f"requests/slot = {cfg['load']:g} λ_max (statistics after the dashed line)")
        ax_kv.legend(loc="lower right", ncol=2, fontsize=6)
        ax_q.set_yscale("symlog", linthresh=10)
        ax_q.set_ylabel(label("waiting requests", "count"))
        ax_q.set_xlabel(label("time", "time"))
        ax_q.set_xlim(0, cfg["slots"])
    return fig
