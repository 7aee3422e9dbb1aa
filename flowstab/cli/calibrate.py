"""``flowstab calibrate``: probe a device, fit the step time, optionally check the theory on it.

::

    flowstab calibrate [--device cpu|cuda] [--out FILE.json] [--quick] [--check]
                       [--model tiny|small|llama-1b|llama2-7b] [--memory-fraction F] [--seed S]
                       [--check-memory M] [--requests N] [--prompt SPEC --decode SPEC | --workload W]
                       [--splitwise perf_model.csv]

Writes the calibration JSON (default ``results/calibration/<device>-<model>.json`` under the
current folder) and a residual plot beside it; ``--check`` also runs the real-hardware comparison
and writes ``<stem>_check.json``, ``<stem>_check_rates.csv``, ``<stem>_check_max_rate.csv`` and
``<stem>_check.png``. ``--splitwise`` fits splitwise-sim's measured A100/H100 table instead of
probing and prints the fits (``--out FILE.csv`` also writes them).

``--check`` ends with a verdict against the 10 % target on the maximum stable rate (PASS, FAIL
or INCONCLUSIVE, with the diagnostics in words; :func:`numerics.calibration.compare.check_verdict`)
and exits with status 1 on FAIL, 0 otherwise (2 for bad input).

Nothing is overwritten unless ``--overwrite`` is given: a named ``--out`` whose files exist is
refused before the probe runs; at the default place (whose name depends on the device found) the
files get the first free numbered stem instead (``...-2.json``), and the command says where.
"""

from __future__ import annotations

import argparse
import sys

from flowstab.cli._args import (
    add_overwrite_arg,
    add_workload_args,
    memory,
    nonnegative_int,
    positive_float,
    positive_int,
    resolve_workload,
)

__all__ = ["CHECK_DEFAULTS", "DEFAULT_FOLDER", "output_files", "register"]

#: Where calibrations go when ``--out`` is not given (relative to the current folder).
DEFAULT_FOLDER = "results/calibration"
#: The files a calibration writes beside ``<stem>.json`` (``--check`` adds the last four).
COMPANIONS = ("_residuals.png", "_check.json", "_check_rates.csv", "_check_max_rate.csv", "_check.png")

#: The check's defaults per device: M, block size, prompt and decode laws, requests per run.
#: CPU: the tiny numpy model with ~50 concurrent requests, so a quick check takes seconds.
#: CUDA: the llama-1b shape with ~90 concurrent requests (E[W] ≈ 49k tokens for M = 65,536).
CHECK_DEFAULTS = {
    "cpu": {"memory": 2048, "block": 4, "prompt": "geom:mean=16,max=64", "decode": "geom:mean=24,max=128",
            "requests": 200, "quick_requests": 60},
    "cuda": {"memory": 65_536, "block": 16, "prompt": "lognormal:median=256,sigma=0.6,max=2048",
             "decode": "geom:mean=128,max=1024", "requests": 800, "quick_requests": 300},
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("calibrate", help="time a Llama-style decoder on a device, fit τ, check the theory")
    p.add_argument("--device", default="cuda", help="cuda (torch, bf16; the gpu extra) or cpu "
                   "(numpy float32 tiny model; default cuda)")
    p.add_argument("--out", metavar="FILE.json", help="calibration file (default "
                   f"{DEFAULT_FOLDER}/<device>-<model>.json; with --splitwise: FILE.csv)")
    p.add_argument("--quick", action="store_true", help="a small grid and short check runs")
    p.add_argument("--check", action="store_true",
                   help="also compare the real engine with the simulator (throughput, latency, max rate)")
    p.add_argument("--model", help="tiny, small, llama-1b or llama2-7b "
                   "(default: llama-1b on cuda, tiny on cpu)")
    p.add_argument("--backend", choices=("numpy", "torch"), help="default: numpy on cpu, torch on cuda")
    p.add_argument("--memory-fraction", type=positive_float, default=0.9,
                   help="share of device memory for weights + KV pool (default 0.9)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--check-memory", type=memory, metavar="M", help="KV tokens M for the check")
    p.add_argument("--requests", type=positive_int, help="requests per check run")
    p.add_argument("--splitwise", metavar="CSV", help="fit splitwise-sim's perf_model.csv and print the fits")
    add_workload_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=_cmd_calibrate)


def output_files(out) -> list:
    """The calibration file ``out`` and the companion files written beside it."""
    from pathlib import Path

    out = Path(out)
    stem = out.with_suffix("")
    return [out, *(stem.with_name(stem.name + tail) for tail in COMPANIONS)]


def _free_stem(out):
    """``out``, or the first ``<stem>-k.json`` (k = 2, 3, ...) none of whose files exist."""
    k, path = 1, out
    while any(p.exists() for p in output_files(path)):
        k += 1
        path = out.with_name(f"{out.stem}-{k}{out.suffix}")
    return path


def _say(text: str) -> None:
    print(f"[calibrate] {text}", file=sys.stderr, flush=True)


def _cmd_splitwise(args: argparse.Namespace) -> int:
    from numerics.calibration.fit import fit_splitwise, load_splitwise

    table = fit_splitwise(load_splitwise(args.splitwise))
    cols = ["model", "hardware", "tensor_parallel", "phase", "kind", "n", "r2", "rmse_ms", "spec"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        from numerics.files import atomic_path

        table.attrs = {}
        with atomic_path(args.out, "--out") as tmp:
            table.to_csv(tmp, index=False)
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flowstab.outputs import check_destination, check_folder
    from numerics.calibration.backends import make_backend
    from numerics.calibration.fit import CalibrationError, FitResult, fit_slot, fit_step_time, plot_residuals
    from numerics.calibration.probe import PHASE_FEATURES, default_out_path, run_probe, write_calibration

    # every file this run would write, checked before it runs
    if args.splitwise:
        if args.out:
            check_destination(args.out, "--out", overwrite=args.overwrite, suffixes=(".csv",))
        return _cmd_splitwise(args)
    if args.out:
        check_destination(args.out, "--out", overwrite=args.overwrite, suffixes=(".json",))
        for path in output_files(args.out)[1:]:
            check_destination(path, "--out", overwrite=args.overwrite)
    else:
        check_folder(DEFAULT_FOLDER, "the calibration folder")
    device = args.device
    if not (device == "cpu" or device.startswith("cuda")):
        raise CalibrationError(f"--device must be cpu or cuda, got {device!r}")
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if not 0 < args.memory_fraction <= 1:
        raise CalibrationError(f"--memory-fraction must lie in (0, 1], got {args.memory_fraction}")
    defaults = CHECK_DEFAULTS[kind]
    if args.check and args.check_memory is not None and args.check_memory % defaults["block"]:
        raise CalibrationError(f"--check-memory must be a multiple of the block size {defaults['block']}")
    grid = kind + ("-quick" if args.quick else "")
    block = defaults["block"] if args.check else 16
    res = run_probe(device, grid, args.model, args.memory_fraction, args.seed, block_size=block,
                    backend=args.backend, progress=_say)
    if args.out:
        out = Path(args.out)
    else:  # the name depends on the device found: the first free one unless --overwrite
        out = default_out_path(res, DEFAULT_FOLDER)
        out = out if args.overwrite else _free_stem(out)
    stem = out.with_suffix("")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalibrationError(f"--out {out}: cannot make the folder ({exc.strerror or exc})") from None
    import pandas as pd

    points = pd.DataFrame(res["measurements"]["points"])
    figs: dict[str, FitResult] = {}
    for phase, feats in PHASE_FEATURES.items():
        sub = points[points.phase == phase]
        if len(sub) > len(feats):
            figs[f"{phase} (linear)"] = fit_step_time(sub, "linear", feats)
    figs["slot (linear, all points)"] = fit_slot(points[points.phase == "decode"],
                                                 points[points.phase != "decode"])
    title = f"step-time fits on {res['device'].get('gpu_name', device)}"
    res["residual_plot"] = str(plot_residuals(figs, stem.with_name(stem.name + "_residuals.png"), title))
    if args.check:
        from numerics.calibration.compare import (
            CHECK_TARGET,
            CheckConfig,
            check_verdict,
            plot_check,
            run_check,
            write_check,
        )
        from numerics.calibration.probe import step_time_from_calibration

        if args.workload or args.prompt or args.decode:
            workload = resolve_workload(args)
        else:
            from numerics.model.specs import parse_law
            from numerics.model.workload import Workload

            workload = Workload.single(parse_law(defaults["prompt"]), parse_law(defaults["decode"]),
                                       name=f"check-{kind}")
        m = args.check_memory or defaults["memory"]
        if m > res["memory"]["memory_tokens"]:
            raise CalibrationError(
                f"--check-memory {m} exceeds the KV pool of {res['memory']['memory_tokens']} tokens"
            )
        n_req = args.requests or defaults["quick_requests" if args.quick else "requests"]
        cfg = CheckConfig(workload, m, n_requests=n_req, rate_rtol=0.05 if args.quick else 0.02,
                          rate_fractions=(0.5, 0.8) if args.quick else (0.5, 0.7, 0.9),
                          block_size=block, seed=args.seed)
        step = step_time_from_calibration(res)
        backend = make_backend(device, _model_of(res), m // block, block, args.seed, args.backend)
        check = run_check(backend, step, cfg, progress=_say)
        cstem = stem.with_name(stem.name + "_check")
        paths = write_check(check, cstem)
        paths["figure"] = plot_check(check, cstem.with_suffix(".png"))
        measured = [r for r in check["rates"] if r.get("side") == "measured"]
        verdict, diagnostics = check_verdict(check)
        res["check"] = {"files": {k: str(v) for k, v in paths.items()}, "max_rate": check["max_rate"],
                        "verdict": verdict, "diagnostics": diagnostics, "target": CHECK_TARGET,
                        "slot_model_ratio": {
                            phase: [r[f"slot_model_ratio_{phase}"] for r in measured]
                            for phase in ("decode", "prefill")}}
    write_calibration(res, out)
    _report(res, out)
    return 1 if res.get("check", {}).get("verdict") == "FAIL" else 0


def _model_of(res: dict):
    from numerics.calibration.backends import ModelConfig

    cfg = {k: v for k, v in res["model_config"].items() if k not in ("head_dim", "n_params")}
    return ModelConfig(**cfg)


def _report(res: dict, out) -> None:
    dev = res["device"]
    slot = res["fits"]["slot"]
    lines = [
        f"flowstab calibrate — {dev.get('gpu_name') or dev['backend'] + ' on ' + dev['requested']}, "
        f"model {res['model_config']['name']} ({res['model_config']['n_params']:,} weights)",
        f"KV pool M                 {res['memory']['memory_tokens']:,} tokens "
        f"({res['memory']['kv_bytes_per_token']:,} bytes/token)",
        f"slot model                {res['step_time']}  "
        f"(R² {slot['r2']:.4f}, RMSE {1000 * slot['rmse_s']:.3g} ms)",
    ]
    for phase in ("decode", "prefill"):
        for kind, fit in res["fits"][phase].items():
            if "error" not in fit:
                lines.append(f"  {phase:<8} {kind:<10} R² {fit['r2']:.4f}  {fit['spec']}")
    if "check" in res:
        lines.append("maximum stable rate (requests/s): policy, theory, simulator, engine, difference")
        for r in res["check"]["max_rate"]:
            lines.append(f"  {r['policy']:<40} {r['theory_rps']:.4g}  {r['predicted_rps']:.4g}  "
                         f"{r['measured_rps']:.4g}  {100 * r['rel_diff']:+.1f}%")
        ratios = res["check"].get("slot_model_ratio", {})
        dec, pre = ratios.get("decode") or [], ratios.get("prefill") or []
        if dec and pre:
            lines.append("step-time model / measured, on the engine's own slots (1 = exact): "
                         f"decode {min(dec):.3g}–{max(dec):.3g}, prefill {min(pre):.3g}–{max(pre):.3g}")
        lines.append(f"verdict: {res['check']['verdict']} (maximum stable rate within "
                     f"±{100 * res['check']['target']:g} % of the engine's)")
        lines += [f"  {line}" for line in res["check"]["diagnostics"]]
    lines.append(f"wrote {out}")
    print("\n".join(lines))
