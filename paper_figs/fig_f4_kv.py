"""F4 — KV-cache utilisation over time per policy on the azure-conv workload near capacity.

Plots ``results/f4_kv.json`` (:func:`paper_figs.experiments.exp_f4_kv`): every policy sees the
same arrivals (one seed) at λ = 0.9 λ_max; the top panel is the KV cache in use as a fraction of
M (block means over a few slots), the bottom panel the waiting queue.
"""

from __future__ import annotations

from paper_figs.style import label, new_figure, plotting, policy_style

__all__ = ["plot"]


def plot(results: dict):
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
