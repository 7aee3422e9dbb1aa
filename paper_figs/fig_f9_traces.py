"""F9 — real traces: λ_max and the flow-control rate r*(ε) per preset across KV-cache sizes.

Plots ``results/f9_traces.json`` (:func:`paper_figs.experiments.exp_f9_traces`): left, λ_max =
M/E[W] (solid) and r*(ε) (dashed, certified by the tightest valid tail bound) per slot against M;
right, the fraction r*/λ_max that the overflow guarantee costs. Vertical lines mark the KV cache a
GPU leaves for Llama-3-8B in fp16 (128 KiB per token, 90 % of device memory minus the weights).
Sizes where some request of the trace cannot fit (P(S + O > M) > 0) are left out.
"""

from __future__ import annotations

import numpy as np

from paper_figs.style import BLACK, BLUE, GREEN, PURPLE, VERMILION, label, new_figure, plotting

__all__ = ["plot"]

_STYLE = {"azure-code": (BLUE, "o"), "azure-conv": (VERMILION, "s"), "sharegpt": (GREEN, "^"),
          "mooncake": (PURPLE, "D")}


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def plot(results: dict):
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    m = np.asarray(d["memory_tokens"], dtype=float)
    with plotting():
        fig, axes = new_figure("page", 2.7, 1, 2)
        ax, ax_ratio = axes[0]
        for p in d["presets"]:
            color, marker = _STYLE.get(p["preset"], (BLACK, "."))
            lam, r = _arr(p["lambda_max"]), _arr(p["flow_rate"])
            ax.plot(m, lam, color=color, marker=marker, ms=2.5, label=f"{p['preset']}: λ_max")
            ax.plot(m, r, color=color, ls="--", lw=0.9, label=f"{p['preset']}: r*(ε)")
            ax_ratio.plot(m, r / lam, color=color, marker=marker, ms=2.5, label=p["preset"])
        for a in (ax, ax_ratio):
            a.set_xscale("log", base=2)
            for name, tokens in cfg["gpus_memory_tokens"].items():
                if m.min() <= tokens <= m.max():
                    a.axvline(tokens, color="0.7", lw=0.6, ls=":")
                    if a is ax_ratio:
                        a.text(tokens, 0.02, f" {name}", rotation=90, fontsize=5.5, va="bottom",
                               transform=a.get_xaxis_transform(), color="0.35")
            a.set_xlabel(label("KV-cache size M", "memory"))
        ax.set_yscale("log")
        ax.set_ylabel(label("rate", "rate"))
        ax.set_title("necessary limit λ_max (solid) and flow control r*(ε) (dashed), "
                     f"ε = {cfg['epsilon']:g}", fontsize=7)
        ax.legend(loc="upper left", ncol=2, fontsize=5.5)
        ax_ratio.set_ylim(0, 1.02)
        ax_ratio.set_ylabel(label("r*(ε) / λ_max", "fraction"))
        ax_ratio.set_title("share of the capacity that flow control certifies", fontsize=7)
        ax_ratio.legend(loc="lower right")
    return fig
