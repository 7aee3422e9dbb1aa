"""Speed of the planner and the tail bounds (measured and reported, never asserted).

Run: ``.venv/bin/python benchmarks/bench_plan.py`` — prints one line per case with the best of
three wall-clock times on this machine, then the *cold* ``flowstab plan`` commands of issue 15
(a fresh interpreter each: imports, workload, plan and printing; the last one with the waste
certificate's rate search), the median and the spread of three runs each, and the import of
``flowstab.cli`` alone. ``--cold`` runs only those.

The length-law specs build the geom, uniform, poisson and nbinom laws (every preset's family)
without scipy.stats, bit for bit the laws scipy.stats gives, so a cold plan no longer pays for
``import scipy.stats`` (~0.6 s); poisson and nbinom masses and the Gaussian approximation still
import scipy.special (~0.2 s). Recorded on the 2-core development machine (issue 15; medians of
five cold runs, others sharing the machine):

==========================================================================  ========  =======
cold ``flowstab``                                                           before    after
==========================================================================  ========  =======
``plan --prompt 100 --decode geom:mean=200 --memory 50000 --step-time ...``  0.96 s    0.44 s
``plan --workload azure-conv --memory 131072``                              0.85 s    0.33 s
``plan --workload mooncake --memory 131072``                                1.02 s    0.47 s
``plan --workload mooncake --memory 131072 --target waste:0.01``            14–28 s   2.5–4.6 s
==========================================================================  ========  =======

The waste search evaluates ~27 certificates; each needed log E[e^{θS}] on a 241-point θ grid
over mooncake's 125 k-point prompt support (30 M exps, ~0.5 s); the blocked sum of
:func:`numerics.analysis.waste._prompt_log_mgf` takes ~0.005–0.02 s. The Chernoff rate searches
themselves take 0.02–0.15 s in the plain cases.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import best_of, provenance

#: The cold commands of issue 15 (``flowstab ARGS``).
COLD_PLANS = (
    "plan --prompt 100 --decode geom:mean=200 --memory 50000 --step-time const:0.05",
    "plan --workload mooncake --memory 131072",
    "plan --workload azure-conv --memory 131072",
    "plan --workload sharegpt --memory 131072",
    "plan --workload azure-code --memory 131072",
    "plan --workload mooncake --memory 131072 --target waste:0.01",
)
ROOT = Path(__file__).resolve().parents[1]


def cold_seconds(argv: list[str], n: int = 3) -> list[float]:
    """Wall-clock seconds of ``n`` runs of ``python ARGV`` in a fresh interpreter each."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def cold() -> None:
    """The cold ``flowstab plan`` times and the import time of ``flowstab.cli``."""
    cases = {"import flowstab.cli": ["-c", "import flowstab.cli"]}
    cases |= {f"flowstab {c}": ["-m", "flowstab.cli", *shlex.split(c)] for c in COLD_PLANS}
    for name, argv in cases.items():
        t = cold_seconds(argv)
        print(f"cold {name:<86} median {statistics.median(t):6.3f} s  "
              f"[{', '.join(f'{x:.3f}' for x in t)}]")


def warm() -> None:
    """In-process times: the best-bound rate search and the full plan, per case."""
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.plan import make_plan
    from numerics.data.presets import load_preset
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    cases = {
        "geom mean 200 (138k stored ages), M=5e4": (
            lambda: Workload.single(parse_law("100"), parse_law("geom:mean=200")), 50_000),
        "uniform 1..100, s=20, M=65536": (
            lambda: Workload.single(parse_law("20"), parse_law("uniform:1,100")), 65_536),
        "preset azure-conv, M=131072": (lambda: load_preset("azure-conv"), 131_072),
        "preset mooncake, M=1e6": (lambda: load_preset("mooncake"), 1_000_000),
    }
    for name, (build, memory) in cases.items():
        wl = build()
        t_rate, _ = best_of(lambda wl=wl, memory=memory: FlowTails(wl, memory).flow_rate(1e-6))
        t_plan, _ = best_of(lambda wl=wl, memory=memory: make_plan(wl, memory), n=1)
        print(f"{name:<45} r*(1e-6) best-bound search {t_rate:7.3f} s   full plan {t_plan:7.3f} s")


def main() -> None:
    print(provenance("scipy"))
    if "--cold" not in sys.argv[1:]:
        warm()
    cold()


if __name__ == "__main__":
    main()
