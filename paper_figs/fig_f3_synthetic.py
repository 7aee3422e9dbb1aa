"""F3 — Dong & Cao §4.1: Algorithm 1 with budgets b = (4, 4, 4) on three known-length classes.

Plots ``results/f3_synthetic.json`` (:func:`paper_figs.experiments.exp_f3_synthetic`): per-class
waiting queues (top) and the KV usage (bottom) per slot, at a stable rate (λ < b_k) and at the
paper's overloaded λ = 5 per class, with Σ b_k w_k and M marked. Saturated, the KV usage equals
Σ b_k w_k exactly and never exceeds M; the queues then grow like (λ − b_k) per slot.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BLACK, BLUE, GREEN, VERMILION, label, new_figure, plotting

__all__ = ["plot"]

_CLASS_STYLE = ((BLUE, "-"), (VERMILION, "--"), (GREEN, "-."))


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    m = cfg["memory_tokens"]
    bw = d["budget_memory"]
    with plotting():
        fig, axes = new_figure("page", 3.6, 2, len(d["runs"]), sharex=True)
        for j, run in enumerate(d["runs"]):
            ax_q, ax_kv = axes[0, j], axes[1, j]
            t = np.arange(len(run["kv_tokens"]))
            for (color, ls), q, name in zip(_CLASS_STYLE, run["queues"], run["class_names"], strict=False):
                ax_q.plot(t, q, color=color, ls=ls, lw=0.9, label=name)
            lam = run["rate_per_class"]
            drift = [max(0.0, lam - b) for b in cfg["budgets"]]
            if max(drift) > 0:
                ax_q.plot(t, max(drift) * t, color="0.5", lw=0.7, ls=":",
                          label=f"drift (λ − b)⁺ = {max(drift):g} per slot")
            stable = "stable" if lam < min(cfg["budgets"]) else "overloaded"
            ax_q.set_title(f"λ = {lam:g} per class ({stable}; λ* = M/Σw = {d['lambda_star']:.4g})")
            ax_q.set_ylabel(label("waiting requests", "count"))
            ax_q.legend(loc="upper left")
            ax_kv.plot(t, run["kv_tokens"], color=BLUE, lw=0.6, label="KV usage U_t")
            ax_kv.axhline(m, color=VERMILION, lw=0.9, ls="--", label=f"M = {m:,}")
            ax_kv.axhline(bw, color=BLACK, lw=0.9, ls=":", label=f"Σ b_k w_k = {bw:,}")
            ax_kv.set_ylim(0, 1.08 * m)
            ax_kv.set_xlabel(label("time", "time"))
            ax_kv.set_ylabel(label("KV cache in use", "memory"))
            ax_kv.legend(loc="lower right")
            ax_kv.set_xlim(0, t[-1])
    return fig
