r"""Exact overflow tails of the saturated flow-control memory, by tilted FFT.

U = Σ_a Σ_{m ≤ B_{t−a}} X_{a,m} (see :mod:`numerics.analysis.flow`) is a sum of independent cohort terms,
so its transform is a product over ages:
:math:`E[z^U] = \prod_a P_B(\varphi_a(z))`, :math:`\varphi_a(z) = 1 - G(a) + E[z^{S+a+1}; O > a]`.
To reach tails far below double precision (1e-300 and beyond) the law is **exponentially tilted**
at θ (the Chernoff minimiser for M): :math:`q(u) = p(u)e^{\theta u}/E e^{\theta U}` is centred near
M, its transform on a circle of radius :math:`e^\theta` is inverted by an FFT over a window of L
points around M, and

.. math:: \log P(U > M) = \log E e^{\theta U} - \theta (M + 1)
          + \log \sum_{u > M} e^{-\theta (u - M - 1)} q(u),

a well-conditioned sum. L doubles until two successive answers agree to ``rtol`` (the aliasing of
q's tails decays as L grows), so the result carries its own convergence check. Cost
O(L · n_ages) per evaluation, with L ≈ 20σ: this is ``method="fft"``.

The default, ``method="lobe"``, evaluates the same inversion at far fewer frequencies. For θ > 0,

.. math:: P(U > M) = \frac{1}{2\pi}\int_{-\pi}^{\pi}
          \frac{E[e^{(\theta+i\omega)U}]\,e^{-(\theta+i\omega)(M+1)}}{1-e^{-\theta-i\omega}}\,d\omega,

and the trapezoid rule with N points is exact up to the aliasing of the tilted law at distance N
(so N ≥ 32σ, doubled until two answers agree to ``rtol``). The tilted transform has modulus
≈ e^{−σ²ω²/2}: only its main lobe (≈ 100 frequencies, whatever M) is evaluated, followed outward
until it has died out. A lattice (U on dℤ) is divided out exactly, and a coarse scan of the rest of
the circle checks for near-lattice side peaks (on finding one, ``auto`` falls back to ``fft``).
At M = 10⁶ tokens with decode support 10⁴ this takes 1–2 s (``benchmarks/bench_tail.py``).

Beyond the lobe the walk stops once the rest of the circle can change the answer by at most
0.1·rtol (the integrand's modulus there is bounded by the largest transform ratio times an explicit
integral; the side-peak scan checks the ratio), and the atom of U at 0 (a budget that can be 0) is
subtracted exactly. At light load the tilted law keeps atoms far below M (few active requests):
if the walk still runs long, one class with independent lengths and a Poisson or Bernoulli budget
goes to ``method="series"`` (the full-window FFT with the product over ages computed by a
log-series of FFTs), else the tilt is moved 2/σ out, else the walk goes on round the circle.

Where E U ≥ M (r at or above λ_max) the *lower* tail P(U ≤ M) is inverted instead, tilted at its
own Chernoff minimiser θ < 0; where U > M surely (every cohort holds ⌊r⌋ requests of at least
s_min + 1 tokens…) the result is ``sure`` (P = 1), and where the Chernoff bound δ ≥ P(U ≤ M) is
below 1e-17 it is ``chernoff``: P(U > M) = 1 − δ/2 with ``abs_error`` = δ/2. (The untilted FFT
once used a window sized by M instead of by the law of U, and the law wrapped round it: P(U > M)
= 0.0068 at 7 λ_max.) :attr:`ExactTail.description` states the method and its error.

Speed (issue 15: every preset and trace in ≤ 5 s). With fewer than 20 requests expected under the
tilt (one class, independent lengths, Bernoulli budget) ``auto`` tries ``series`` first: that law is
a few long requests, lumpy, and its transform dies out slowly; the series' window [0, L) is sized
by the tilted σ, and one grid suffices where the tilted mass beyond it is proved negligible (a
Chernoff bound on the tilted law). A side peak found beyond the lobe that falls as the tilt moves
out (a floor of few-request atoms) moves the tilt by up to 4/σ_t before the fallback. Where the
full-window FFT would still be needed and cost more than about 5 s, a tail whose Chernoff bound δ
is below ``negligible`` (1e-15) is ``chernoff-upper``: P = δ/2 ± δ/2, stated in ``abs_error``.
Every inversion runs under a time budget (``max_seconds``, 60 s per tail, 120 s per rate search):
a walk that cannot finish in it goes to the bracket below, and raises
:class:`~numerics.errors.SettingError` only where that cannot finish either. The transforms of
large prompt supports on equally spaced frequencies are running products (one complex multiply
per term, not one exponential), and joint (trace) laws sum their pairs by one sparse matrix
product. The rate search interpolates in log r from the Chernoff rate,
a certified lower end, in 4 to 6 tails.

Where the lobe or the full window would run past that budget and the tail is not negligible (the
empirical prompts of a trace make the tilted law lumpy: the mooncake trace at M = 131 072 would
need ~10⁶ lobe frequencies or ~4e9 FFT operations), ``auto`` answers by a **lattice bracket**
(:mod:`~numerics.analysis.exact.bracket`, ``method="bracket"``) instead of raising: every request
size S + a + 1 rounded up to a multiple of b gives U⁺ ≥ U, rounded down U⁻ ≤ U (pathwise), so
P(U⁻ > M) ≤ P(U > M) ≤ P(U⁺ > M), and both rounded laws live on bℤ, inverted by the tilted FFT on
a window b times shorter. b is the smallest power of 2 whose inversion costs at most about 1 s;
``prob`` is the upper end (conservative), ``lower`` the lower end, ``abs_error`` the width (plus
the ends' tolerances) and the description reads ``bracket:b=…``. On the mooncake trace
b = 128–256, relative width 2–4 %, 2.4–3.9 s per tail (about 2 s of it the lobe's attempt).
The rate search needs only whether P ≤ ε: under the bracket it uses the upper end alone, so its
r* is certified (at or below the exact one), and it says so in
:attr:`ExactFlowRate.description`.

The entry points and the rate search are in :mod:`~numerics.analysis.exact.tails`, the two
inversions in :mod:`~numerics.analysis.exact.fft` and :mod:`~numerics.analysis.exact.lobe`, the
bracket in :mod:`~numerics.analysis.exact.bracket`, and their result, :class:`ExactTail`, in
:mod:`~numerics.analysis.exact.result`.

Examples
--------
The geometric row of docs/theory.md §8.2 (s = 20, p = 0.05, M = 16 000, deterministic r = 16): the exact
tail is 4.83e-6, under the Chernoff bound 5.96e-5 and above the Gaussian 1.44e-6.

>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
>>> float(f"{exact_overflow(wl, 16000, 16, 'deterministic'):.3g}")
4.83e-06
"""

from numerics.analysis.exact.result import ExactTail, TailMethod
from numerics.analysis.exact.tails import (
    ExactFlowRate,
    TailChoice,
    exact_flow_rate,
    exact_overflow,
    exact_tail,
    exact_tail_per_class,
)

__all__ = [
    "ExactFlowRate",
    "ExactTail",
    "TailChoice",
    "TailMethod",
    "exact_flow_rate",
    "exact_overflow",
    "exact_tail",
    "exact_tail_per_class",
]
