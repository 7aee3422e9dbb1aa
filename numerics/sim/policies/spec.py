"""Policy spec strings: :func:`parse_policy`.

Part of :mod:`numerics.sim.policies`.
"""

from __future__ import annotations

from numerics.errors import SpecError
from numerics.model.budget import is_law_spec
from numerics.sim.policies.base import REQUEUE, Policy, _kv, _num
from numerics.sim.policies.beyond import AdaptiveFlow, FlowFit
from numerics.sim.policies.clairvoyant import MC, MCSFPredicted, Prediction
from numerics.sim.policies.lookahead import Lookahead
from numerics.sim.policies.paper import ClassBudgets, FlowControl
from numerics.sim.policies.practice import MCSF, AlphaProtection, Greedy, Reserve
from numerics.sim.policies.wait import NestedWait, Wait


def parse_policy(spec: str) -> Policy:
    """Parse a policy spec: ``flow:rate=R[,budget=..][,requeue=head|tail]`` (budget: randomized,
    deterministic, poisson or any length law in parentheses, ``budget=(uniform:0,6)``, whose mean
    is the rate: then ``rate=`` may be left out), ``budgets:4,4,4``,
    ``greedy[:watermark=0.01]``, ``reserve[:max=L]``, ``alpha:0.2``, ``mcsf[:predict=P]``,
    ``mc[:predict=P]`` (P: exact, over:C or noisy:SIGMA, the decode-length prediction),
    ``flowfit:rate=R[,budget=..]``, ``adaptive[:target=0.01][,margin=0.1]``,
    ``lookahead[:target=0.001][,horizon=H]``, ``wait[:n_1,...,n_K]``,
    ``nested-wait[:margin=0.05][,n=N]``; every one also
    takes ``max_seqs=N`` (a cap on the active requests) and ``requeue=head|tail``.

    >>> parse_policy("budgets:4,4,4,max_seqs=8").spec()
    'budgets:4,4,4,max_seqs=8'
    >>> parse_policy("flow:rate=2,max_seqs=16").max_seqs
    16
    >>> p = parse_policy("flow:budget=(uniform:0,6)")
    >>> p.rate, p.spec()
    (3.0, 'flow:budget=(uniform:0,6),requeue=head')
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"a policy spec must be a non-empty string, got {spec!r}")
    name, _, args = spec.strip().partition(":")
    name = name.lower()
    pos, kw = _kv(args, spec)
    requeue = kw.pop("requeue", "head")
    if requeue not in REQUEUE:
        raise SpecError(f"policy {spec!r}: requeue must be head or tail, got {requeue!r}")
    seqs = kw.pop("max_seqs", None)
    common = {"max_seqs": None if seqs is None else _num(seqs, spec, integer=True)}

    def no_extra(allowed: set[str], npos: int = 0) -> None:
        extra = set(kw) - allowed
        if extra or len(pos) > npos:
            raise SpecError(
                f"policy {spec!r}: unexpected {', '.join(sorted(extra)) or 'positional values'}"
            )

    if name in ("flow", "flowfit"):
        no_extra({"rate", "budget"})
        budget = kw.get("budget", "randomized")
        if "rate" not in kw and not is_law_spec(budget):
            raise SpecError(f"policy {spec!r}: {name} needs rate=R (requests per slot) or a budget "
                            "law, e.g. budget=(uniform:0,6)")
        rate = _num(kw["rate"], spec) if "rate" in kw else None
        if rate == 0:
            raise SpecError(f"policy {spec!r}: rate=0 admits nothing, ever; give a rate > 0 requests "
                            "per slot (flowstab plan suggests one)")
        try:
            return (FlowControl if name == "flow" else FlowFit)(requeue, rate, budget, **common)
        except SpecError as exc:
            raise SpecError(f"policy {spec!r}: {exc}") from None
    if name == "budgets":
        no_extra(set(), npos=len(pos))
        if not pos:
            raise SpecError(f"policy {spec!r}: budgets needs one integer per class, e.g. budgets:4,4,4")
        return ClassBudgets(requeue, tuple(_num(p, spec, integer=True) for p in pos), **common)
    if name == "greedy":
        no_extra({"watermark"})
        return Greedy(requeue, _num(kw.get("watermark", "0.01"), spec), **common)
    if name == "reserve":
        no_extra({"max"})
        cap = kw.get("max")
        return Reserve(requeue, None if cap is None else _num(cap, spec, integer=True), **common)
    if name == "alpha":
        no_extra({"alpha"}, npos=1)
        value = pos[0] if pos else kw.get("alpha")
        if value is None:
            raise SpecError(f"policy {spec!r}: alpha needs a value, e.g. alpha:0.2")
        return AlphaProtection(requeue, _num(value, spec), **common)
    if name in ("mc", "mcsf"):  # Jaillet et al.'s future-memory policies (policies/clairvoyant.py)
        no_extra({"predict"})
        pred = Prediction.parse(kw.get("predict", "exact"), spec)
        if name == "mc":
            return MC(requeue, pred, **common)
        return MCSF(requeue, **common) if pred.kind == "exact" else MCSFPredicted(requeue, pred, **common)
    if name == "adaptive":
        no_extra({"target", "margin"})
        return AdaptiveFlow(requeue, _num(kw.get("target", "0.01"), spec),
                            _num(kw.get("margin", "0.1"), spec), **common)
    if name == "lookahead":
        no_extra({"target", "horizon"})
        horizon = kw.get("horizon")
        return Lookahead(requeue, _num(kw.get("target", "0.001"), spec),
                         None if horizon is None else _num(horizon, spec, integer=True), **common)
    if name == "wait":  # WAIT (arXiv:2504.11320; policies/wait.py)
        no_extra(set(), npos=len(pos))
        ths = tuple(_num(p, spec, integer=True) for p in pos) if pos else None
        return Wait(requeue, ths, **common)
    if name == "nested-wait":
        no_extra({"margin", "n"})
        n = kw.get("n")
        return NestedWait(requeue, _num(kw.get("margin", "0.05"), spec),
                          None if n is None else _num(n, spec, integer=True), **common)
    raise SpecError(
        f"policy {spec!r}: unknown policy {name!r}; use flow, flowfit, adaptive, lookahead, budgets, "
        "greedy, reserve, alpha, mcsf, mc, wait or nested-wait"
    )

