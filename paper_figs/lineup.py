"""What the policy-comparison figures (F4, F5, F6, F10) share: the azure-conv workload at its
KV-cache size, the policy line-up, and replicated metrics with 95 % Student-t intervals.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AZURE_MEMORY_TOKENS",
    "CI_METRICS",
    "EPS_CERTIFIED",
    "azure",
    "ci_series",
    "policy_lineup",
    "replicated",
    "replication_run",
]

#: Target overflow probability whose flow-control rate r*(ε) the policy line-ups use: the
#: certified one ``flowstab compare`` runs (COMPARE_EPSILON).
EPS_CERTIFIED = 1e-6
#: KV-cache size of the azure-conv experiments: 2^19 tokens (64 GiB of KV at 128 KiB per token,
#: Llama-3-8B in fp16: 2 × 32 layers × 8 KV heads × 128 dims × 2 bytes).
AZURE_MEMORY_TOKENS = 2**19

#: The simulation summaries that :func:`replicated` reports with intervals.
CI_METRICS = (
    "throughput_tokens_per_slot",
    "throughput_requests_per_slot",
    "latency_mean_slots",
    "latency_p95_slots",
    "evictions",
    "wasted_tokens",
    "kv_util_mean",
    "kv_util_std",
    "queue_slope",
)


def azure(memory_tokens: int = AZURE_MEMORY_TOKENS):
    """The azure-conv preset and its :class:`numerics.analysis.bounds.FlowTails` at
    ``memory_tokens`` (λ_max = M / E[W], the flow rates r*(ε))."""
    from numerics.analysis.bounds import FlowTails
    from numerics.data.presets import load_preset

    wl = load_preset("azure-conv")
    return wl, FlowTails(wl, memory_tokens)


def policy_lineup(lam_max: float, r_certified: float, cfg: dict,
                  epsilon: float = EPS_CERTIFIED) -> list[dict[str, str]]:
    """The policies a comparison runs, as ``{"label", "spec"}``, in drawing order.

    The default line-up of ``flowstab compare`` — flow control at the certified rate
    r*(ε) = ``r_certified``, greedy, α-protection with α = 0.1, and ``reserve:max=L`` where the
    config gives ``reserve_max`` = L — plus flow control at the fixed fraction
    ``cfg["flow_fraction"]`` of ``lam_max`` (an uncertified, stable-at-high-load setting), and
    MC-SF where ``cfg["mcsf"]`` is true.
    """
    out = [
        {"label": f"flow, r = r*({epsilon:g})", "spec": f"flow:rate={r_certified:.6g}"},
        {"label": f"flow, r = {cfg['flow_fraction']:g} λ_max",
         "spec": f"flow:rate={cfg['flow_fraction'] * lam_max:.6g}"},
        {"label": "greedy (vLLM)", "spec": "greedy"},
        {"label": "α-protection, α = 0.1", "spec": "alpha:0.1"},
    ]
    if cfg.get("reserve_max"):
        out.append({"label": f"reserve (max = {cfg['reserve_max']})",
                    "spec": f"reserve:max={cfg['reserve_max']}"})
    if cfg.get("mcsf"):
        out.append({"label": "MC-SF (clairvoyant)", "spec": "mcsf"})
    return out


def replication_run(quick: bool) -> dict[str, int]:
    """The replications and run length of the replicated comparisons (config keys
    ``replications``, ``slots``, ``warmup``): 2 runs of 4 000 slots with 1 000 of warm-up when
    ``quick``, else 6 of 30 000 with 3 000."""
    return {
        "replications": 2 if quick else 6,
        "slots": 4_000 if quick else 30_000,
        "warmup": 1_000 if quick else 3_000,
    }


def replicated(config, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Mean and 95 % Student-t interval ``{"mean", "low", "high"}`` of each of
    :data:`CI_METRICS` over ``n`` replications of the simulation ``config`` (root seed ``seed``)."""
    from numerics.sim import ci, replicate

    table = ci(replicate(config, n, seed=seed, processes=1))
    out = {}
    for metric in CI_METRICS:
        row = table.loc[metric]
        out[metric] = {"mean": float(row["mean"]), "low": float(row["low"]),
                       "high": float(row["high"])}
    return out


def ci_series(points: list[dict[str, dict[str, Any]]],
              metrics: tuple[str, ...] = CI_METRICS) -> dict[str, dict[str, list]]:
    """Per-point intervals (a list of :func:`replicated` outputs, one per x value) as series:
    ``{metric: {"mean": [...], "low": [...], "high": [...]}}``."""
    return {m: {k: [p[m][k] for p in points] for k in ("mean", "low", "high")} for m in metrics}
