r"""The probe: time a Llama-style decoder's iterations and fit the step-time model.

On a device (``cpu`` with the numpy backend, ``cuda`` with torch in bf16) the probe

1. sizes the paged KV pool: :math:`M = \lfloor f\,\cdot\,\text{memory} - \text{weights}\rfloor`
   bytes (f the memory fraction, vLLM's ``gpu_memory_utilization``, less an activation reserve on
   a GPU) divided by the KV bytes per token :math:`2\,L\,h_{kv}\,d_h\,\text{(dtype bytes)}`, in
   whole blocks;
2. times decode iterations over a grid of batch sizes B × context lengths L (B sequences whose
   caches hold L tokens each; cache *contents* are not computed, since timing does not depend on
   them), prefill iterations over prompt lengths P, and a few mixed iterations (B decodes and one
   P-token prefill in one forward pass): ``warmup`` untimed then ``repeats`` timed iterations per
   point, the median kept;
3. fits every :class:`~numerics.model.steptime.StepTimeModel` form to the decode and prefill points,
   and the linear *slot model* :math:`\tau = c_0 + c_b B + c_k K + c_p P` that the simulator and
   ``plan`` use (it prices a mixed iteration): c0, cb, ck from the decode points, then cp from what
   the prefill and mixed points cost beyond them (:func:`~numerics.calibration.fit.fit_slot`).

Every timed iteration is described as the simulator sees a slot: B the sequences in it, K =
Σ (cached tokens after the iteration + 1) (the simulator's usage Σ (S + g + 1)), P the prefill
tokens.

The result is a JSON-ready dict (schema ``flowstab.calibration/1``): device and library versions,
model config, pool size, the grid, raw and median measurements, fits, and ``step_time`` (the slot
model's spec). ``python -m numerics.calibration.probe --device cpu --quick`` runs it.

Examples
--------
>>> res = run_probe("cpu", GRIDS["tiny-test"], "tiny", memory_tokens=512, block_size=4, seed=0)
>>> res["memory"]["memory_tokens"], res["fits"]["slot"]["kind"]
(512, 'linear')
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from numerics.calibration.backends import MODEL_PRESETS, ModelConfig, make_backend, torch_available
from numerics.calibration.fit import KINDS, CalibrationError, fit_slot, fit_step_time
from numerics.files import write_text_atomic
from numerics.model.steptime import StepTimeModel

__all__ = [
    "CPU_KV_BUDGET_BYTES",
    "GPU_ACTIVATION_RESERVE_BYTES",
    "GRIDS",
    "PHASE_FEATURES",
    "SCHEMA",
    "ProbeGrid",
    "default_out_path",
    "load_calibration",
    "run_probe",
    "step_time_from_calibration",
    "write_calibration",
]

SCHEMA = "flowstab.calibration/1"
#: The CPU has no fixed KV budget; the numpy probe sizes its pool from this many bytes × fraction.
CPU_KV_BUDGET_BYTES = 64 * 2**20
#: GPU memory kept out of the KV pool for activations, the gathered K/V of decode attention
#: (≤ 2 × 512 MiB, see TORCH_ATTN_CHUNK_TOKENS), the CUDA context and the allocator's slack.
GPU_ACTIVATION_RESERVE_BYTES = 4 * 2**30


#: Linear fits per phase: decode τ in B and K; prefill τ in P alone (K = P + 1 there, collinear).
PHASE_FEATURES = {"decode": ("batch", "kv_tokens"), "prefill": ("prefill_tokens",)}


@dataclass(frozen=True)
class ProbeGrid:
    """What the probe times: decode B × L, prefill P, mixed (B, L, P); repeats per point."""

    batch_sizes: tuple[int, ...]
    context_lengths: tuple[int, ...]
    prompt_lengths: tuple[int, ...]
    mixed: tuple[tuple[int, int, int], ...] = ()
    repeats: int = 5
    warmup: int = 2

    def __post_init__(self) -> None:
        vals = [*self.batch_sizes, *self.context_lengths, *self.prompt_lengths,
                *(v for m in self.mixed for v in m)]
        if not self.batch_sizes or not self.context_lengths or not self.prompt_lengths:
            raise CalibrationError("a probe grid needs batch sizes, context lengths and prompt lengths")
        if any(int(v) != v or v < 1 for v in vals):
            raise CalibrationError(f"probe grid values must be positive integers, got {vals}")
        if self.repeats < 1 or self.warmup < 0:
            raise CalibrationError("probe grid: repeats ≥ 1 and warmup ≥ 0")


GRIDS = {
    # the doctest and unit tests: a handful of iterations
    "tiny-test": ProbeGrid((1, 4), (8, 32), (8, 32), ((2, 8, 8),), repeats=2, warmup=1),
    "cpu-quick": ProbeGrid((1, 4, 16, 32), (16, 64, 128), (16, 64, 128),
                           ((4, 32, 32), (16, 32, 64)), repeats=5, warmup=2),
    "cpu": ProbeGrid((1, 2, 4, 8, 16, 32, 64), (16, 64, 256, 512), (16, 64, 256, 512, 1024),
                     ((4, 64, 64), (16, 64, 256), (32, 256, 128)), repeats=7, warmup=2),
    "cuda-quick": ProbeGrid((1, 8, 32, 128), (256, 1024, 4096), (128, 512, 2048),
                            ((32, 1024, 512), (128, 256, 1024)), repeats=5, warmup=3),
    "cuda": ProbeGrid((1, 4, 16, 32, 64, 128, 256), (128, 512, 1024, 2048, 4096),
                      (64, 256, 512, 1024, 2048, 4096),
                      ((16, 1024, 256), (64, 1024, 1024), (128, 512, 2048), (256, 256, 512)),
                      repeats=10, warmup=3),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def default_out_path(result: dict, folder: str | os.PathLike = "results/calibration") -> Path:
    """``<folder>/<device>-<model>.json``, e.g. ``nvidia-h100-80gb-hbm3-llama-1b.json``."""
    dev = result["device"].get("gpu_name") or f"cpu-{result['device']['backend']}"
    return Path(folder) / f"{_slug(dev)}-{_slug(result['model_config']['name'])}.json"


def _pool_size(device: str, backend: str | None, config: ModelConfig, memory_fraction: float,
               memory_tokens: int | None, block_size: int) -> tuple[int, dict]:
    """(n_blocks, memory description) for the device."""
    on_gpu = device.startswith("cuda")
    dtype_bytes = 2 if on_gpu else 4  # bf16 on a GPU, float32 on the CPU
    kv_tok = config.kv_bytes_per_token(dtype_bytes)
    info = {"memory_fraction": memory_fraction, "kv_bytes_per_token": kv_tok, "block_size": block_size,
            "weights_bytes": config.n_params * dtype_bytes}
    if memory_tokens is not None:
        tokens = int(memory_tokens)
        info["sized_by"] = "memory_tokens"
    elif on_gpu:  # pragma: no cover - needs torch and a GPU
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        budget = memory_fraction * total - info["weights_bytes"] - GPU_ACTIVATION_RESERVE_BYTES
        budget = min(budget, free - info["weights_bytes"] - GPU_ACTIVATION_RESERVE_BYTES)
        info |= {"device_total_bytes": int(total), "device_free_bytes": int(free),
                 "activation_reserve_bytes": GPU_ACTIVATION_RESERVE_BYTES}
        tokens = int(budget // kv_tok)
        info["sized_by"] = "memory_fraction of device memory"
    else:
        tokens = int(memory_fraction * CPU_KV_BUDGET_BYTES // kv_tok)
        info |= {"cpu_budget_bytes": CPU_KV_BUDGET_BYTES, "sized_by": "memory_fraction of CPU budget"}
    n_blocks = tokens // block_size
    if n_blocks < 1:
        raise CalibrationError(
            f"no room for a KV pool: {tokens} tokens at {kv_tok} bytes each; raise the memory fraction "
            "or pick a smaller model"
        )
    info["memory_tokens"] = n_blocks * block_size
    info["kv_pool_bytes"] = n_blocks * block_size * kv_tok
    return n_blocks, info


def _time_step(backend, prefill: dict, decode: dict) -> float:
    backend.synchronize()
    t0 = time.perf_counter()
    backend.step(prefill, decode)
    backend.synchronize()
    return time.perf_counter() - t0


def _measure(backend, rng, kind: str, b: int, ctx: int, p: int, grid: ProbeGrid) -> list[dict]:
    """Time one grid point; one row per timed iteration."""
    vocab = backend.config.vocab
    rows = []
    for rep in range(grid.warmup + grid.repeats):
        for sid in range(b):
            if rep == 0 or kind == "prefill":
                backend.fake_fill(sid, ctx)
        decode = {sid: int(rng.integers(vocab)) for sid in range(b)} if kind != "prefill" else {}
        prefill = {b: rng.integers(vocab, size=p)} if kind != "decode" else {}
        kv = sum(backend.length(s) + 2 for s in decode) + sum(p + 1 for _ in prefill)
        dt = _time_step(backend, prefill, decode)
        if rep >= grid.warmup:
            rows.append({"phase": kind, "point_batch": b, "point_context": ctx, "point_prompt": p,
                         "batch": len(decode) + len(prefill), "kv_tokens": kv,
                         "prefill_tokens": p if prefill else 0, "seconds": dt})
        backend.free(b)
    for sid in range(b):
        backend.free(sid)
    return rows


def run_probe(device: str = "cpu", grid: ProbeGrid | str | None = None,
              model_config: ModelConfig | str | None = None, memory_fraction: float = 0.9,
              seed: int = 0, memory_tokens: int | None = None, block_size: int = 16,
              backend: str | None = None, progress=None) -> dict:
    """Run the probe (see the module docstring) and return the calibration dict.

    Parameters
    ----------
    device : "cpu" or "cuda[:i]"
    grid : ProbeGrid or a key of :data:`GRIDS`
        Default: ``"cuda"`` on a GPU, ``"cpu"`` on the CPU.
    model_config : ModelConfig or a key of ``MODEL_PRESETS``
        Default: ``"llama-1b"`` on a GPU, ``"tiny"`` on the CPU.
    memory_fraction : float in (0, 1]
        Fraction of device memory (weights included, as vLLM's ``gpu_memory_utilization``).
    seed : int
        Weights and token ids.
    memory_tokens : int, optional
        Size the pool in tokens directly instead.
    block_size : int
        Tokens per KV block.
    backend : {"numpy", "torch"}, optional
        Default: numpy on the CPU, torch on CUDA.
    progress : callable, optional
        ``progress(text)`` is called once per grid point.
    """
    on_gpu = device.startswith("cuda")
    if isinstance(grid, str) or grid is None:
        key = grid or ("cuda" if on_gpu else "cpu")
        if key not in GRIDS:
            raise CalibrationError(f"unknown probe grid {key!r}; choose from {', '.join(GRIDS)}")
        grid = GRIDS[key]
    if isinstance(model_config, str) or model_config is None:
        key = model_config or ("llama-1b" if on_gpu else "tiny")
        if key not in MODEL_PRESETS:
            raise CalibrationError(f"unknown model {key!r}; choose from {', '.join(MODEL_PRESETS)}")
        model_config = MODEL_PRESETS[key]
    if not (isinstance(memory_fraction, float | int) and 0 < memory_fraction <= 1):
        raise CalibrationError(f"memory fraction must lie in (0, 1], got {memory_fraction!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise CalibrationError(f"block size must be a positive integer, got {block_size!r}")
    if (on_gpu or backend == "torch") and not torch_available():
        raise CalibrationError(
            "torch is not installed; the GPU probe needs the optional extra: pip install 'flowstab[gpu]' "
            "(or run the numpy backend with --device cpu)"
        )
    n_blocks, memory = _pool_size(device, backend, model_config, memory_fraction, memory_tokens, block_size)
    be = make_backend(device, model_config, n_blocks, block_size, seed, backend)
    m = memory["memory_tokens"]
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    skipped = []

    def fits_pool(b, ctx, p):
        per_seq = -(-(ctx + grid.warmup + grid.repeats + 1) // block_size)
        return per_seq * b + -(-(p + 1) // block_size) <= n_blocks

    points = [("decode", b, ctx, 0) for b in grid.batch_sizes for ctx in grid.context_lengths]
    points += [("prefill", 0, 0, p) for p in grid.prompt_lengths]
    points += [("mixed", b, ctx, p) for b, ctx, p in grid.mixed]
    t_start = time.perf_counter()
    for kind, b, ctx, p in points:
        if not fits_pool(b, ctx, p):
            skipped.append({"phase": kind, "batch": b, "context": ctx, "prompt": p})
            continue
        if progress is not None:
            progress(f"probe {kind}: batch {b}, context {ctx}, prompt {p}")
        rows.extend(_measure(be, rng, kind, b, ctx, p, grid))
    raw = pd.DataFrame(rows)
    if raw.empty:
        raise CalibrationError(f"no grid point fits the {m}-token KV pool; use a smaller grid")
    keys = ["phase", "point_batch", "point_context", "point_prompt"]
    med = raw.groupby(keys, sort=False).agg(
        batch=("batch", "first"), kv_tokens=("kv_tokens", "mean"),
        prefill_tokens=("prefill_tokens", "first"), seconds=("seconds", "median"),
        seconds_min=("seconds", "min"), seconds_max=("seconds", "max"), repeats=("seconds", "size"),
    ).reset_index()
    fits: dict = {}
    for phase, feats in PHASE_FEATURES.items():
        sub = med[med.phase == phase]
        fits[phase] = {}
        for kind in KINDS:
            try:
                fits[phase][kind] = fit_step_time(sub, kind, feats if kind == "linear" else None).to_dict()
            except CalibrationError as exc:
                fits[phase][kind] = {"kind": kind, "error": str(exc)}
    slot = fit_slot(med[med.phase == "decode"], med[med.phase != "decode"])
    fits["slot"] = slot.to_dict()
    info = be.info()
    return {
        "schema": SCHEMA,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "device": info | {"requested": device, "python": sys.version.split()[0],
                          "machine": platform.machine()},
        "model_config": model_config.to_dict(),
        "memory": memory,
        "grid": asdict(grid),
        "skipped_points": skipped,
        "probe_seconds": time.perf_counter() - t_start,
        "measurements": {"raw": raw.to_dict(orient="records"), "points": med.to_dict(orient="records")},
        "fits": fits,
        "step_time": slot.spec,
    }


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def write_calibration(result: dict, path: str | os.PathLike) -> Path:
    """Write the calibration dict as JSON (non-finite numbers as null), atomically; makes the
    folder. A file that cannot be written is an :class:`~numerics.errors.OutputError`."""
    return write_text_atomic(path, json.dumps(_clean(result), indent=1) + "\n", "the calibration file")


def load_calibration(path: str | os.PathLike) -> dict:
    """Read a calibration JSON written by :func:`write_calibration`."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise CalibrationError(f"cannot read the calibration file {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{p} is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CalibrationError(f"{p} is not a flowstab calibration file (schema {SCHEMA})")
    return data


def step_time_from_calibration(source) -> StepTimeModel:
    """The slot model of a calibration (a dict or a JSON path) as a ``StepTimeModel``."""
    data = source if isinstance(source, dict) else load_calibration(source)
    try:
        return StepTimeModel.from_spec(data["step_time"])
    except KeyError:
        raise CalibrationError("the calibration has no 'step_time' entry") from None


def main(argv=None) -> int:
    """``python -m numerics.calibration.probe [--device cpu|cuda] [--out FILE] [--quick]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m numerics.calibration.probe",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    dev = args.device
    grid = ("cuda" if dev.startswith("cuda") else "cpu") + ("-quick" if args.quick else "")
    res = run_probe(dev, grid, args.model, seed=args.seed, progress=lambda s: print(s, file=sys.stderr))
    out = write_calibration(res, args.out or default_out_path(res))
    print(f"{out}: step time {res['step_time']} (R² {res['fits']['slot']['r2']:.4f})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
