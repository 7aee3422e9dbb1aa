"""``flowstab hindsight``: the total-latency optimum of one small instance, and policies on it.

::

    flowstab hindsight [--prompt LAW --decode LAW --memory M] --requests N
                       [--arrivals batch|poisson --arrival-rate λ] [--seed S]
                       [--policies "SPEC;SPEC;..."] [--time-limit SEC] [--gap G] [--lp]
                       [--eviction recompute|keep-progress] [--json]

Draws an instance of N requests — from the length laws ``--prompt``/``--decode`` with memory
``--memory``, or without them Jaillet et al.'s synthetic instance (M ~ U{30..50}, s ~ U{1..5},
o ~ U{1..M − s}) — solves the hindsight integer program with HiGHS
(:mod:`numerics.analysis.hindsight`) and runs each policy on the same requests in the simulator.
``--lp`` solves the LP relaxation instead (a lower bound, for instances too large for the
program). Policies are separated by ``;`` (or by ``,`` where each spec starts with a policy
name: ``mcsf,greedy,flow:rate=0.2,budget=deterministic``).
"""

from __future__ import annotations

import argparse
import json
import re

from flowstab.cli._args import memory, nonnegative_int, positive_float, positive_int

__all__ = ["register", "split_policies"]

_DEFAULT_POLICIES = "mcsf;mc;greedy;alpha:0.1"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``hindsight`` subcommand to the argparse sub-parsers ``sub``."""
    p = sub.add_parser("hindsight", help="the hindsight-optimal total latency of a small instance "
                       "(HiGHS), and policies on the same requests")
    p.add_argument("--prompt", metavar="LAW", help="prompt-length law, e.g. uniform:1,5 (with "
                   "--decode and --memory; default: Jaillet et al.'s synthetic instance)")
    p.add_argument("--decode", metavar="LAW", help="decode-length law, e.g. uniform:1,30")
    p.add_argument("--memory", type=memory, metavar="M", help="KV-cache tokens (with --prompt/--decode)")
    p.add_argument("--requests", type=positive_int, required=True, metavar="N",
                   help="number of requests (keep it small: ~8 solve in seconds)")
    p.add_argument("--arrivals", choices=("batch", "poisson"), default="batch",
                   help="all in slot 0 (batch, default) or Poisson per slot")
    p.add_argument("--arrival-rate", type=positive_float, metavar="λ",
                   help="requests per slot, for --arrivals poisson")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="instance and run seed")
    p.add_argument("--policies", default=_DEFAULT_POLICIES, metavar="SPEC;SPEC;...",
                   help=f"policies to run on the instance (default {_DEFAULT_POLICIES})")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SEC",
                   help="HiGHS time limit in seconds (default 60); the gap is reported")
    p.add_argument("--gap", type=float, default=1e-6, metavar="G", help="HiGHS relative MIP gap")
    p.add_argument("--lp", action="store_true", help="solve the LP relaxation (a lower bound)")
    p.add_argument("--eviction", choices=("recompute", "keep-progress"), default="recompute",
                   help="the policies' eviction mode (the optimum bounds them under recompute only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_hindsight)


def split_policies(text: str) -> list[str]:
    """Policy specs from ``a;b;c``, or from ``a,b,c`` where a piece that does not start with a
    name (``budget=..``, ``4``) continues the spec before it.

    >>> split_policies("mcsf,greedy,flow:rate=0.2,budget=deterministic")
    ['mcsf', 'greedy', 'flow:rate=0.2,budget=deterministic']
    >>> split_policies("budgets:4,4;mc:predict=over:1.5")
    ['budgets:4,4', 'mc:predict=over:1.5']
    """
    if ";" in text:
        return [s.strip() for s in text.split(";") if s.strip()]
    out: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if out and not re.match(r"^[A-Za-z_]+(:|$)", piece):
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def _cmd_hindsight(args: argparse.Namespace) -> int:
    import numpy as np

    from flowstab.jsonify import json_ready
    from numerics.analysis.hindsight import compare_policies, paper_instance, sample_instance
    from numerics.errors import SettingError, SpecError
    from numerics.model.specs import parse_law
    from numerics.sim.policies import parse_policy

    given = [x is not None for x in (args.prompt, args.decode, args.memory)]
    if any(given) and not all(given):
        raise SettingError("--prompt, --decode and --memory go together (or give none of them for "
                           "Jaillet et al.'s synthetic instance)", "prompt")
    if args.arrivals == "batch" and args.arrival_rate is not None:
        raise SettingError("--arrival-rate is for --arrivals poisson", "arrival_rate")
    if args.arrivals == "poisson" and args.arrival_rate is None:
        raise SettingError("--arrivals poisson needs --arrival-rate λ (requests per slot)", "arrival_rate")
    if not 0 <= args.gap < 1:
        raise SettingError(f"--gap must lie in [0, 1), got {args.gap}", "gap")
    specs = split_policies(args.policies)
    if not specs:
        raise SpecError("--policies: give at least one policy spec, e.g. 'mcsf;greedy'")
    policies = [parse_policy(s) for s in specs]
    rng = np.random.default_rng(args.seed)
    if all(given):
        inst = sample_instance(args.requests, args.memory, parse_law(args.prompt), parse_law(args.decode),
                               rng, args.arrivals, args.arrival_rate)
    else:
        inst = paper_instance(args.requests, rng, args.arrivals, args.arrival_rate)
    out = compare_policies(inst, policies, seed=args.seed, eviction=args.eviction,
                           time_limit=args.time_limit, mip_rel_gap=args.gap, lp=args.lp)
    out["instance"] = {"arrival": inst.arrival.tolist(), "prompt": inst.prompt.tolist(),
                       "decode": inst.decode.tolist(), "memory_tokens": inst.memory,
                       "arrivals": args.arrivals, "arrival_rate": args.arrival_rate, "seed": args.seed}
    if args.json:
        print(json.dumps(json_ready(out), indent=2))
        return 0
    sol = out["solver"]
    if args.lp:
        what, value = "LP relaxation bound", out["lower_bound"]
    elif sol["optimal"]:
        what, value = "optimal total latency", out["optimal_total_latency"]
    else:
        what, value = "best total latency found (not proven optimal)", out["optimal_total_latency"]
    bound = "none" if sol["bound"] is None else f"{sol['bound']:.6g}"
    gap = "none" if sol["gap"] is None else f"{sol['gap']:.3g}"
    print(f"instance: {inst.n} requests, M = {inst.memory} tokens, {args.arrivals} arrivals, "
          f"Σ decode = {out['sum_decode']}")
    print(f"{what}: {value:.6g}   ({sol['status']}; bound {bound}, gap {gap}, "
          f"{sol['seconds']:.2f} s, {sol['variables']:,} variables)")
    if not out["bound_valid"]:
        print("note: under keep-progress eviction a policy may beat the non-preemptive optimum")
    for row in out["policies"]:
        ratio = "unfinished" if row["ratio"] is None else f"{row['ratio']:.3f}"
        print(f"  {row['policy']:<40} total latency {row['total_latency']!s:>7}  ratio {ratio}  "
              f"evictions {row['evictions']}")
    return 0
