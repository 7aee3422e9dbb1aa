"""Speed of the exact-tail and rate-region solvers (measured and reported, never asserted).

Run: ``.venv/bin/python benchmarks/bench_tail.py [--quick]`` — prints one line per case (best of
``n`` wall-clock runs on this machine) and writes ``benchmarks/results/bench_tail.json``.

Cases: the exact saturated tail P(U > M) by the main-lobe inversion (``lobe``, the default) and by
the full-window FFT (``fft``) where that is affordable; issue 4's scale target (M = 10⁶ tokens,
decode support 10⁴); r*(ε) under the exact tail; the two-class region solvers; and (issue 15)
every preset and trace at M = 131 072 and 0.05, 0.2, 0.5, 0.9 λ_max, and r*(1e-6) there (what
``plan --exact`` computes), with an alarm per tail (180 s per rate) so that a hang is reported
instead of stalling the run. Where the inversion would exceed its budget (the mooncake trace's
lumpy empirical prompts) the row is the lattice bracket: its b, both ends and relative width, and
a rate certified by its upper end. ``--light-only`` re-runs just that section and replaces its rows
in the results file.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
from _common import best_of

from numerics.analysis.exact import exact_flow_rate, exact_tail, exact_tail_per_class
from numerics.analysis.regions import alg1_randomized_boundary, alg1_staircase, flow_region_boundary
from numerics.data.presets import load_preset
from numerics.model.specs import parse_law
from numerics.model.workload import RequestClass, Workload

RESULTS = Path(__file__).parent / "results" / "bench_tail.json"


def tail_cases(quick: bool):
    geom = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
    yield "geometric row (docs/theory.md §8.2), M=16000, det r=16", geom, 16000, 16, "deterministic", True
    big1 = Workload.single(parse_law("500"), parse_law("geom:mean=2000,max=10000"))
    big2 = Workload.single(parse_law("lognormal:median=800,sigma=0.8,max=8000"),
                           parse_law("uniform:1,10000"))
    for name, wl in (("S=500, O~geom(2000) max 1e4", big1),
                     ("S~lognormal max 8000, O~uniform 1..1e4", big2)):
        yield f"{name}, M=1e6, r=0.8 λ_max", wl, 10**6, 0.8 * 10**6 / wl.mean_memory_time, \
            "randomized", False
    if not quick:
        conv = load_preset("azure-conv")
        yield "azure-conv, M=131072, r=0.9 λ_max", conv, 131072, \
            0.9 * 131072 / conv.mean_memory_time, "randomized", False


def light_load_cases(quick: bool):
    """Issue 15: every preset and, where the data folder is present, every trace, at M = 131 072."""
    from numerics.data.loaders import load_workload
    from numerics.data.paths import data_file
    from numerics.data.presets import PRESETS

    for name in PRESETS:
        yield f"preset {name}", load_preset(name)
    if quick:
        return
    for name in sorted({p.data_file for p in PRESETS.values()}):
        path = data_file(name)
        if path is not None:
            yield f"trace {name}", load_workload(f"trace:{path}")


def _with_alarm(fn, seconds: int):
    """fn() or the string 'TIMEOUT' after ``seconds`` (a hang is reported, not waited out)."""
    import signal

    def alarm(*_args):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn()
    except TimeoutError:
        return "TIMEOUT"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def light_load_section(report, quick: bool) -> None:
    """Issue 15: exact_tail at 0.05, 0.2, 0.5 and 0.9 λ_max and r*(ε = 1e-6) (what ``plan --exact``
    runs) on every preset and trace, M = 131 072; the goal is ≤ 5 s each. A hang past the alarm
    is reported as ``> N s``, an exact tail past its own budget as its ``SettingError``."""
    import time

    from numerics.errors import SettingError

    m, limit = 131_072, 30 if quick else 60
    for case, wl in light_load_cases(quick):
        top = m / wl.mean_memory_time
        for load in (0.5, 0.05) if quick else (0.05, 0.2, 0.5, 0.9):
            t0 = time.perf_counter()
            try:
                res = _with_alarm(lambda wl=wl, r=load * top: exact_tail(wl, m, r), limit + 10)
            except SettingError as exc:
                res = exc
            t = time.perf_counter() - t0
            if res == "TIMEOUT":
                value = f"> {limit + 10} s"
            elif isinstance(res, SettingError):
                value = f"SettingError: {str(res)[:60]}"
            elif res.method == "bracket":  # the lattice bracket: both ends and the width
                value = (f"P≤{res.prob:.4g} (bracket:b={res.lattice}, {res.lower:.4g} ≤ P ≤ "
                         f"{res.prob:.4g}, relative width {(res.prob - res.lower) / res.prob:.2g})")
            else:
                err = f", |err| ≤ {res.abs_error:.2g}" if res.abs_error else ""
                value = f"P={res.prob:.4g} ({res.method}{err})"
            report(f"{case}, M=131072, r={load} λ_max", "exact_tail", t, value)
        t0 = time.perf_counter()
        try:
            fr = _with_alarm(lambda wl=wl: exact_flow_rate(wl, m, 1e-6), 3 * limit)
        except SettingError as exc:
            fr = exc
        t = time.perf_counter() - t0
        if fr == "TIMEOUT":
            value = f"> {3 * limit} s"
        elif isinstance(fr, SettingError):
            value = f"SettingError: {str(fr)[:60]}"
        else:
            value = f"r*={fr.rate_per_slot / top:.6g} λ_max"
            if "bracket:b=" in getattr(fr, "description", ""):
                b = fr.description.split("bracket:b=")[1].split(",")[0]
                value += f" (certified by the bracket's upper end, b={b})"
        report(f"{case}, M=131072, ε=1e-6", "exact_flow_rate", t, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, one run each")
    parser.add_argument("--light-only", action="store_true",
                        help="re-run only the issue-15 section (every preset and trace) and replace "
                             "its rows in the results file, keeping the others")
    args = parser.parse_args()
    n = 1 if args.quick else 3
    rows = []

    def report(case: str, method: str, seconds: float, value) -> None:
        rows.append({"case": case, "method": method, "seconds": seconds, "value": value})
        print(f"{case:<52} {method:<22} {seconds:8.3f} s   {value}")

    if args.light_only:
        light_load_section(report, args.quick)
        old = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
        kept = [r for r in old if not r["case"].startswith(("preset ", "trace "))]
        RESULTS.write_text(json.dumps({
            "machine": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "quick": args.quick, "rows": kept + rows}, indent=1))
        print(f"wrote {RESULTS}")
        return

    for case, wl, memory, rate, budget, with_fft in tail_cases(args.quick):
        for method in ("lobe", "fft") if with_fft else ("lobe",):
            t, res = best_of(lambda wl=wl, m=memory, r=rate, b=budget, me=method:
                             exact_tail(wl, m, r, b, method=me), n)
            report(case, f"exact_tail[{method}]", t, f"P={res.prob:.6g} ({res.method})")
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
    t, fr = best_of(lambda: exact_flow_rate(wl, 50_000, 1e-6), 1)
    report("worked example S=100, geom(200), M=5e4, ε=1e-6", "exact_flow_rate", t,
           f"r*={fr.rate_per_slot:.6g}")
    two = Workload((RequestClass.independent(parse_law("10"), parse_law("20"), 1.0, "a"),
                    RequestClass.independent(parse_law("10"), parse_law("40"), 1.0, "b")))
    t, res = best_of(lambda: exact_tail_per_class(two, 16492, [10.3, 9.6]), n)
    report("§4.1 classes (10,20),(10,40), M=16492", "exact_tail_per_class", t, f"P={res.prob:.3g}")
    t, st = best_of(lambda: alg1_staircase(two.mean_memory_times, 10**6), n)
    report("staircase, w=(410,1220), M=1e6", "alg1_staircase", t, f"{len(st)} corners")
    dirs = 5 if args.quick else 17
    t, _ = best_of(lambda: alg1_randomized_boundary(two, 16492, 1e-6, dirs), 1)
    report(f"§4.1 classes, M=16492, {dirs} directions", "alg1_randomized_boundary", t, "")
    mixed = Workload((RequestClass.independent(parse_law("100"), parse_law("geom:mean=200,max=2000"),
                                               1.0, "chat"),
                      RequestClass.independent(parse_law("1000"), parse_law("geom:mean=50,max=500"),
                                               1.0, "rag")))
    t, _ = best_of(lambda: flow_region_boundary(mixed, 200_000, 1e-6, dirs), 1)
    report(f"chat+rag geometric, M=2e5, {dirs} directions", "flow_region_boundary", t, "")
    light_load_section(report, args.quick)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "quick": args.quick, "rows": rows}, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
