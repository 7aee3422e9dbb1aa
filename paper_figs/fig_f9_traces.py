"""F9 — real traces: λ_max and the flow-control rate r*(ε) per preset across KV-cache sizes.

The experiment (:func:`experiment`): λ_max and r*(ε) for each trace preset across KV-cache sizes,
with the sizes of common GPUs (:data:`GPUS`) recorded in the config.

The figure (:func:`plot`, from ``results/f9_traces.json``): left, λ_max = M/E[W] (solid) and
r*(ε) (dashed, certified by the tightest valid tail bound) per slot against M; right, the fraction
r*/λ_max that the overflow guarantee costs. Vertical lines mark the KV cache a GPU leaves for
Llama-3-8B in fp16 (128 KiB per token, 90 % of device memory minus the weights). Sizes where some
request of the trace cannot fit (P(S + O > M) > 0) are left out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from paper_figs.io import as_floats
from paper_figs.lineup import EPS_CERTIFIED
from paper_figs.style import BLACK, BLUE, GREEN, PURPLE, VERMILION, label, new_figure, plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GPUS", "GPU_MEMORY_UTILIZATION", "KV_BYTES_PER_TOKEN", "SEED_OFFSET", "WEIGHTS_BYTES", "config",
           "experiment", "plot"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 9
#: Bytes of KV cache per token for the GPU-size axis (Llama-3-8B in fp16: 2 × 32 layers × 8 KV
#: heads × 128 dims × 2 bytes), and the weights it leaves out (8.0 B parameters × 2 bytes).
KV_BYTES_PER_TOKEN = 131_072
WEIGHTS_BYTES = 16.06e9
#: GPUs marked on the memory axis: name → device memory in GB (10^9 bytes).
GPUS = {"L4 24GB": 24, "A100 40GB": 40, "L40S 48GB": 48, "A100/H100 80GB": 80, "H200 141GB": 141}
#: Fraction of device memory a server gives to weights + KV cache (vLLM's default
#: gpu_memory_utilization).
GPU_MEMORY_UTILIZATION = 0.9


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the small run of CI."""
    n = 4 if quick else 17
    mem = np.unique(np.round(np.logspace(np.log10(2**15), np.log10(2**22), n)).astype(int))
    gpus = {}
    for name, gb in GPUS.items():
        kv = GPU_MEMORY_UTILIZATION * gb * 1e9 - WEIGHTS_BYTES
        gpus[name] = int(kv // KV_BYTES_PER_TOKEN)
    return {
        # mooncake's prompts reach 126k tokens: each r*(ε) takes ~7 s there, so quick leaves it out
        "presets": ["azure-code", "azure-conv", "sharegpt"] + ([] if quick else ["mooncake"]),
        "memory_tokens": mem.tolist(),
        "epsilon": EPS_CERTIFIED,
        "budget": "randomized",
        "gpus_memory_tokens": gpus,
        "kv_bytes_per_token": KV_BYTES_PER_TOKEN,
        "weights_bytes": WEIGHTS_BYTES,
        "gpu_memory_utilization": GPU_MEMORY_UTILIZATION,
    }


def experiment(cfg: dict, seed: int) -> dict:
    """λ_max and r*(ε) per trace preset across KV-cache sizes."""
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.plan import HARD_CAP_TOL
    from numerics.data.presets import PRESETS, load_preset

    out = []
    for name in cfg["presets"]:
        wl = load_preset(name)
        lam, rstar, bound, cap = [], [], [], []
        for m in cfg["memory_tokens"]:
            p_cap = wl.prob_total_exceeds(m)
            cap.append(p_cap)
            if p_cap > HARD_CAP_TOL:  # some request cannot fit at all: no rate is stable
                lam.append(math.nan)
                rstar.append(math.nan)
                bound.append(None)
                continue
            tails = FlowTails(wl, int(m))
            fr = tails.flow_rate(cfg["epsilon"], cfg["budget"])
            lam.append(tails.lambda_max)
            rstar.append(fr.rate_per_slot)
            bound.append(fr.bound)
        out.append({
            "preset": name,
            "mean_memory_time": wl.mean_memory_time,
            "max_request_tokens": float(wl.max_prompt + wl.max_decode),
            "rate_per_s": PRESETS[name].rate_per_s,
            "lambda_max": lam,
            "flow_rate": rstar,
            "bound": bound,
            "hard_cap_violation": cap,
        })
    return {"memory_tokens": cfg["memory_tokens"], "presets": out}


_STYLE = {"azure-code": (BLUE, "o"), "azure-conv": (VERMILION, "s"), "sharegpt": (GREEN, "^"),
          "mooncake": (PURPLE, "D")}


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    d = results["data"]
    cfg = results["provenance"]["config"]
    m = np.asarray(d["memory_tokens"], dtype=float)
    with plotting():
        fig, axes = new_figure("page", 2.7, 1, 2)
        ax, ax_ratio = axes[0]
        for p in d["presets"]:
            color, marker = _STYLE.get(p["preset"], (BLACK, "."))
            lam, r = as_floats(p["lambda_max"]), as_floats(p["flow_rate"])
            ax.plot(m, lam, color=color, marker=marker, ms=2.5, label=f"{p['preset']}: λ_max")
            ax.plot(m, r, color=color, ls="--", lw=0.9, label=f"{p['preset']}: r*(ε)")
            ax_ratio.plot(m, r / lam, color=color, marker=marker, ms=2.5, label=p["preset"])
        for a in (ax, ax_ratio):
            a.set_xscale("log", base=2)
            for name, tokens in cfg["gpus_memory_tokens"].items():
                if m.min() <= tokens <= m.max():
                    a.axvline(tokens, color="0.7", lw=0.6, ls=":")
                    if a is ax_ratio:  # the name beside its line (× 1.04 on the log axis), not on it
                        a.text(tokens * 1.04, 0.98, name, rotation=90, fontsize=5.5, va="top",
                               ha="left", transform=a.get_xaxis_transform(), color="0.35")
            a.set_xlabel(label("KV-cache size M", "memory"))
        ax.set_yscale("log")
        ax.set_ylabel(label("rate", "rate"))
        ax.set_title("necessary limit λ_max (solid) and flow control r*(ε) (dashed), "
                     f"ε = {cfg['epsilon']:g}\ndotted: the KV caches of common GPUs (named on the right)",
                     fontsize=7)
        ax.legend(loc="upper left", ncol=2, fontsize=5.5)
        ax_ratio.set_ylim(0, 1.02)
        ax_ratio.set_ylabel(label("r*(ε) / λ_max", "fraction"))
        ax_ratio.set_title("share of the capacity that flow control certifies", fontsize=7)
        ax_ratio.legend(loc="lower right")
    return fig
