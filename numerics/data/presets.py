r"""Named workloads fitted to public LLM-serving traces, stored as spec strings.

Each preset is a one-class workload with *independent* prompt and decode laws, fitted by
:func:`numerics.data.fitting.fit_preset` (maximum likelihood over lognormal, shifted negative-binomial
and geometric laws, each clipped at the trace's largest value, lowest AIC wins). The fitted specs
and their quality numbers are stored literally below, so presets work with no data present; the
test suite refits them from ``../shared/data`` when it is there and checks they agree.

==============  =================================  =============================================
preset          trace                              upstream (repository @ commit, license)
==============  =================================  =============================================
``azure-conv``  AzureLLMInferenceTrace_conv.csv    Azure/AzurePublicDataset @ b469a11, CC-BY 4.0
``azure-code``  AzureLLMInferenceTrace_code.csv    Azure/AzurePublicDataset @ b469a11, CC-BY 4.0
``sharegpt``    sharegpt_8k_lengths_llama2.csv     microsoft/sarathi-serve @ 72339db, Apache-2.0
``mooncake``    mooncake_conversation_trace.jsonl  kvcache-ai/Mooncake @ 3b5a594, Apache-2.0
==============  =================================  =============================================

The quality numbers say how far to trust a preset: ``ks_prompt`` / ``ks_decode`` are Kolmogorov
distances of the fitted laws from the trace's marginals, and ``rel_err_memory_time`` is
:math:`E[W]_{fit} / E[W]_{data} - 1` with :math:`W = S\,O + O(O+1)/2`; it includes the effect of
treating S and O as independent (the trace's correlation is ``so_correlation``). For the exact
trace, joint law included, use ``trace:PATH`` (:func:`numerics.data.loaders.load_workload`).

Examples
--------
>>> wl = load_preset("azure-conv")
>>> wl.name, wl.classes[0].rate_per_s
('azure-conv', 5.53014)
>>> PRESETS["azure-conv"].decode_spec
'nbinom:n=1.496,p=0.007273,shift=7,max=1000'
>>> round(wl.mean_decode, 1)
210.9
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from numerics.data.paths import data_dir
from numerics.errors import WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths, RequestClass, Workload

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "data_dir", "load_preset"]

DEFAULT_PRESET = "azure-conv"


@dataclass(frozen=True)
class Preset:
    """A workload fitted to a trace, with where the trace came from and how good the fit is.

    Attributes
    ----------
    name : str
    prompt_spec, decode_spec : str
        :func:`~numerics.model.specs.parse_law` specs of the prompt and decode laws.
    data_file : str
        The trace's file name in the data folder (:func:`data_dir`).
    data_sha256 : str or None
        SHA-256 of that file, from the data folder's README where it lists one.
    source : str
        Upstream repository @ commit / path, and license.
    n_requests : int
        Rows of the trace.
    rate_per_s : float or None
        The trace's mean arrival rate (n − 1) / span; None when it has no timestamps.
    ks_prompt, ks_decode : float
        Kolmogorov distances of the fitted laws from the trace's marginals.
    mean_memory_time_data, mean_memory_time_fit : float
        E[W] = E[S·O + O(O+1)/2] over the trace rows, and for the fitted (independent) laws.
    rel_err_memory_time : float
        mean_memory_time_fit / mean_memory_time_data − 1.
    so_correlation : float
        Pearson correlation of prompt and decode lengths in the trace.
    """

    name: str
    prompt_spec: str
    decode_spec: str
    data_file: str
    data_sha256: str | None
    source: str
    n_requests: int
    rate_per_s: float | None
    ks_prompt: float
    ks_decode: float
    mean_memory_time_data: float
    mean_memory_time_fit: float
    rel_err_memory_time: float
    so_correlation: float

    def describe(self) -> str:
        """One line: what was fitted to what, and how well."""
        return (
            f"preset {self.name}: fitted to {self.data_file} ({self.source}), "
            f"{self.n_requests} requests; S ~ {self.prompt_spec}, O ~ {self.decode_spec}; "
            f"KS prompt {self.ks_prompt:.3f}, decode {self.ks_decode:.3f}; "
            f"E[W] fit vs data {self.rel_err_memory_time:+.1%}"
        )


_AZURE = "Azure/AzurePublicDataset@b469a113cedca53ddc3bdea71a143dc4b7d8700c"
#: Static facts per preset: the data file, its checksum (the data folder's README.md, see
#: numerics.data.paths) and its source.
_META: dict[str, dict[str, Any]] = {
    "azure-conv": {
        "data_file": "AzureLLMInferenceTrace_conv.csv",
        "data_sha256": "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
        "source": f"{_AZURE}/data/AzureLLMInferenceTrace_conv.csv, CC-BY 4.0 "
        "(Patel et al., Splitwise, ISCA 2024)",
    },
    "azure-code": {
        "data_file": "AzureLLMInferenceTrace_code.csv",
        "data_sha256": "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
        "source": f"{_AZURE}/data/AzureLLMInferenceTrace_code.csv, CC-BY 4.0 "
        "(Patel et al., Splitwise, ISCA 2024)",
    },
    "sharegpt": {
        "data_file": "sharegpt_8k_lengths_llama2.csv",
        "data_sha256": None,
        "source": "microsoft/sarathi-serve@72339db/data/processed_traces/"
        "sharegpt_8k_filtered_stats_llama2_tokenizer.csv, Apache-2.0",
    },
    "mooncake": {
        "data_file": "mooncake_conversation_trace.jsonl",
        "data_sha256": None,
        "source": "kvcache-ai/Mooncake@3b5a594/FAST25-release/traces/conversation_trace.jsonl, "
        "Apache-2.0 (Qin et al., Mooncake, FAST 2025)",
    },
}

# BEGIN FITTED (regenerate with `python -m numerics.data.fitting` and paste the block here)
# Written by `python -m numerics.data.fitting` (numpy 2.4.6, scipy 1.17.1).
_FITTED: dict[str, dict[str, Any]] = {
    "azure-conv": {
        "prompt_spec": "nbinom:n=1.329,p=0.001152,shift=2,max=14050",
        "decode_spec": "nbinom:n=1.496,p=0.007273,shift=7,max=1000",
        "n_requests": 19366,
        "rate_per_s": 5.53014,
        "ks_prompt": 0.136752,
        "ks_decode": 0.181432,
        "mean_memory_time_data": 259153.0,
        "mean_memory_time_fit": 279477.0,
        "rel_err_memory_time": 0.0784257,
        "so_correlation": -0.112353,
    },
    "azure-code": {
        "prompt_spec": "nbinom:n=0.9169,p=0.0004472,shift=3,max=7437",
        "decode_spec": "nbinom:n=0.5094,p=0.02275,shift=6,max=1899",
        "n_requests": 8819,
        "rate_per_s": 2.5664,
        "ks_prompt": 0.0368194,
        "ks_decode": 0.127043,
        "mean_memory_time_data": 59429.5,
        "mean_memory_time_fit": 56254.8,
        "rel_err_memory_time": -0.0534207,
        "so_correlation": 0.00115248,
    },
    "sharegpt": {
        "prompt_spec": "nbinom:n=0.7872,p=0.0003364,shift=1,max=8141",
        "decode_spec": "nbinom:n=1.704,p=0.003887,shift=2,max=1024",
        "n_requests": 30731,
        "rate_per_s": None,
        "ks_prompt": 0.0587333,
        "ks_decode": 0.087743,
        "mean_memory_time_data": 1180970.0,
        "mean_memory_time_fit": 1062300.0,
        "rel_err_memory_time": -0.100482,
        "so_correlation": 0.0408067,
    },
    "mooncake": {
        "prompt_spec": "nbinom:n=0.4937,p=0.00004429,shift=891,max=126195",
        "decode_spec": "nbinom:n=1.113,p=0.003241,shift=1,max=2000",
        "n_requests": 12031,
        "rate_per_s": 3.40119,
        "ks_prompt": 0.0707874,
        "ks_decode": 0.165338,
        "mean_memory_time_data": 4497350.0,
        "mean_memory_time_fit": 4229270.0,
        "rel_err_memory_time": -0.0596098,
        "so_correlation": 0.0718782,
    },
}
# END FITTED

PRESETS: dict[str, Preset] = {
    name: Preset(name=name, **_FITTED[name], **meta) for name, meta in _META.items()
}


@functools.cache
def _build(name: str) -> Workload:
    p = PRESETS[name]
    lengths = IndependentLengths(parse_law(p.prompt_spec), parse_law(p.decode_spec))
    cls = RequestClass(lengths, None, name, p.rate_per_s)
    return Workload((cls,), name, source=p.describe())


def load_preset(name: str) -> Workload:
    """The preset's one-class workload (independent fitted laws; no per-slot rate).

    Parameters
    ----------
    name : str
        One of :data:`PRESETS` (``azure-conv``, ``azure-code``, ``sharegpt``, ``mooncake``).

    Raises
    ------
    WorkloadError
        For an unknown name, listing the known ones.
    """
    key = name.strip() if isinstance(name, str) else None
    if key not in PRESETS:
        raise WorkloadError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return _build(key)
