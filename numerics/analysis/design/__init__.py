r"""Budget design with cvxpy: per-class activation rates r_k, and Algorithm 1 integer budgets.

**The model.** Class k is flow-controlled on its own: each slot it activates :math:`B_{k,t}`
requests, i.i.d. from a budget law with mean :math:`r_k` (:mod:`numerics.analysis.flow`), independently of
the other classes. Saturated, the memory in use is :math:`U = \sum_k U_k` with independent
:math:`U_k`, and, with :math:`m_k = E[W_k]`, :math:`\mu_{k,a} = E X_{k,a}`,
:math:`\nu_{k,a} = E X_{k,a}^2` (per-age terms of class k),

.. math::

    E U = \sum_k r_k m_k, \qquad
    \operatorname{Var} U = \sum_k \Big(r_k \sum_a (\nu_{k,a} - \mu_{k,a}^2)
        + \sigma_B^2(r_k) \sum_a \mu_{k,a}^2\Big).

For Poisson budgets (:math:`\sigma_B^2 = r`) the variance is :math:`\sum_k r_k V_k` with
:math:`V_k = \sum_a \nu_{k,a}`, *linear* in r; and one global Poisson budget of rate
:math:`\sum_k r_k` with FIFO class mix :math:`r_k/\sum_j r_j` is the same system (Poisson
thinning). For randomized budgets :math:`\sigma_B^2(r) = f(1-f) \le \min(r, 1/4)` (f the
fractional part), so

.. math:: \operatorname{Var} U \le s(r) = \sum_k \min\big(r_k V_k,\; r_k D_k + E_k/4\big),
          \quad D_k = \sum_a (\nu_{k,a}-\mu_{k,a}^2),\ E_k = \sum_a \mu_{k,a}^2,

a concave, piecewise-linear bound (the first piece is the Poisson variance: deterministic ≤
randomized ≤ Poisson in convex order). Below saturation (λ_k < r_k) the memory is pathwise
smaller, so P(U_sat > M) ≤ ε certifies the stable system too (docs/theory.md §8.2).

The design comes in three parts: the result and the shared validation
(:mod:`~numerics.analysis.design.result`), the conic rate design under a certified overflow
constraint (:mod:`~numerics.analysis.design.rates`: :func:`design_rates`, and
:func:`design_exact_overflow` for the exact tail at a design) and the integer budgets of
Algorithm 1 by MILP (:mod:`~numerics.analysis.design.budgets`: :func:`design_budgets`). cvxpy is
imported only when a design is solved.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import RequestClass, Workload
>>> wl = Workload((RequestClass.independent(parse_law("8"), parse_law("uniform:1,16"), 4.0, "chat"),
...                RequestClass.independent(parse_law("32"), parse_law("uniform:1,32"), 1.0, "code")))
>>> d = design_rates(wl, 4000, 1e-4)
>>> d.status, [round(x, 2) for x in d.rates], d.binding
('optimal', [19.16, 1.0], ('overflow', 'floor[code]'))
>>> worst_case_memory_times(wl).tolist()
[264.0, 1552.0]
>>> design_budgets(wl, 5000).rates  # max 8.5 b_1 + 16.5 b_2: 264 b_1 + 1552 b_2 ≤ 5000, b > λ
(7.0, 2.0)
"""

from numerics.analysis.design.budgets import design_budgets, worst_case_memory_times
from numerics.analysis.design.rates import (
    BINDING_RTOL,
    CCP_MAX_ITER,
    CCP_RTOL,
    FEASIBILITY_GUARD,
    OverflowConstraint,
    design_exact_overflow,
    design_rates,
)
from numerics.analysis.design.result import (
    DESIGN_BUDGETS,
    DESIGN_METHODS,
    DESIGN_OBJECTIVES,
    DesignBudget,
    DesignInfeasibleError,
    DesignMethod,
    DesignObjective,
    DesignResult,
)

__all__ = [
    "BINDING_RTOL",
    "CCP_MAX_ITER",
    "CCP_RTOL",
    "DESIGN_BUDGETS",
    "DESIGN_METHODS",
    "DESIGN_OBJECTIVES",
    "FEASIBILITY_GUARD",
    "DesignBudget",
    "DesignInfeasibleError",
    "DesignMethod",
    "DesignObjective",
    "DesignResult",
    "OverflowConstraint",
    "design_budgets",
    "design_exact_overflow",
    "design_rates",
    "worst_case_memory_times",
]
