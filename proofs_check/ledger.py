"""The claims ledger: every registered result with its checks and a verdict.

A :class:`Check` belongs to one result ID (:data:`theory.registry.REGISTRY`) and is one of three
kinds:

* ``symbolic`` — sympy proves the identity or inequality with exact Rationals;
* ``property`` — hypothesis searches random workloads and parameters for a counterexample
  (strategies built, not filtered; ``target()`` pushes toward the stability boundary);
* ``empirical`` — the simulator, an exact Markov chain, the exact tail or a fluid model against the
  theory, as a statistical test whose false-alarm rate the evidence states.

A check function takes the mode's parameters (a dict) and returns its evidence text; it raises
:class:`ClaimViolated` when the claim fails and :class:`Inconclusive` when it cannot decide (a
statistical test without power, a missing optional dependency). Verdicts combine per claim: any
check violated ⇒ ``violated``; every check verified ⇒ ``verified``; otherwise ``inconclusive``.

Check functions take the formula they test as a keyword argument (dependency injection), so a
deliberately broken copy of a result can be run through the same check
(:meth:`Check.inject`), which is how the tests show that the ledger can fail.

Examples
--------
>>> res = run_ledger(["def:memory-time"], mode="quick")
>>> res[0].verdict, res[0].kinds
('verified', ('symbolic', 'property'))
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from numerics.errors import FlowstabError
from numerics.files import write_text_atomic

__all__ = [
    "CHECKS",
    "KINDS",
    "MODES",
    "VERDICTS",
    "Check",
    "CheckOutcome",
    "ClaimResult",
    "ClaimViolated",
    "Inconclusive",
    "LedgerError",
    "check",
    "combine",
    "load_checks",
    "missing_checks",
    "run_checks",
    "run_ledger",
    "write_report",
]

KINDS = ("symbolic", "property", "empirical")
MODES = ("quick", "thorough")
VERDICTS = ("verified", "violated", "inconclusive")


class ClaimViolated(Exception):
    """A check found the claim false (the message is the counterexample or the failed test)."""


class Inconclusive(Exception):
    """A check could not decide (no statistical power, a skipped optional dependency)."""


class LedgerError(FlowstabError):
    """Bad use of the ledger: unknown claim ID or mode."""


@dataclass(frozen=True)
class Check:
    """One check of one result.

    Attributes
    ----------
    id : str
        The registered result it checks.
    kind : {"symbolic", "property", "empirical"}
    name : str
        Short description (shown in the report).
    func : callable
        ``func(params, **injected) -> str`` (evidence); raises :class:`ClaimViolated` or
        :class:`Inconclusive`.
    quick, thorough : dict
        Parameters per mode (number of hypothesis examples, simulated slots, replications, ...).
    """

    id: str
    kind: str
    name: str
    func: Callable[..., str]
    quick: dict = field(default_factory=dict)
    thorough: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LedgerError(f"check kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def params(self, mode: str) -> dict:
        """The parameters of ``mode`` (thorough falls back to quick for keys it does not set)."""
        return dict(self.quick) if mode == "quick" else {**self.quick, **self.thorough}

    def inject(self, **formulas) -> Check:
        """A copy whose function receives ``formulas`` (e.g. a broken copy of a result)."""
        return replace(self, func=functools.partial(self.func, **formulas))

    def run(self, mode: str = "quick") -> CheckOutcome:
        """Run the check; never raises for a claim's failure (that is a verdict)."""
        start = time.perf_counter()
        try:
            evidence = self.func(self.params(mode))
            verdict = "verified"
        except ClaimViolated as exc:
            verdict, evidence = "violated", f"VIOLATED: {_one_line(exc)}"
        except Inconclusive as exc:
            verdict, evidence = "inconclusive", f"inconclusive: {_one_line(exc)}"
        except ImportError as exc:
            verdict, evidence = "inconclusive", f"skipped, dependency missing: {_one_line(exc)}"
        except Exception as exc:  # a bug in the check is not evidence about the claim
            verdict = "inconclusive"
            evidence = f"check raised {type(exc).__name__}: {_one_line(exc)}"
        return CheckOutcome(self.name, self.kind, verdict, evidence, time.perf_counter() - start)


@dataclass(frozen=True)
class CheckOutcome:
    """The outcome of one check."""

    name: str
    kind: str
    verdict: str
    evidence: str
    seconds: float

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "verdict": self.verdict,
                "evidence": self.evidence, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict with its evidence (one row of the ledger)."""

    id: str
    title: str
    statement: str
    source: str
    verdict: str
    kinds: tuple[str, ...]
    evidence: str
    seconds: float
    checks: tuple[CheckOutcome, ...]
    hypotheses: tuple[str, ...] = ()
    is_bound: bool = True

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "statement": self.statement,
            "hypotheses": list(self.hypotheses),
            "source": self.source,
            "verdict": self.verdict,
            "kinds": list(self.kinds),
            "evidence": self.evidence,
            "seconds": round(self.seconds, 3),
            "checks": [c.to_dict() for c in self.checks],
        }


#: Checks by result ID (filled by the modules of :mod:`proofs_check.checks` through :func:`check`).
CHECKS: dict[str, list[Check]] = {}


def check(result_id: str, kind: str, name: str, quick: dict | None = None,
          thorough: dict | None = None) -> Callable:
    """Decorator: register ``func`` as a ``kind`` check of ``result_id``."""

    def deco(func: Callable[..., str]) -> Callable[..., str]:
        CHECKS.setdefault(result_id, []).append(
            Check(result_id, kind, name, func, dict(quick or {}), dict(thorough or {}))
        )
        return func

    return deco


def load_checks() -> dict[str, list[Check]]:
    """Import :mod:`proofs_check.checks` (its modules register every check); return ``CHECKS``."""
    import proofs_check.checks  # noqa: F401 - registers the checks

    return CHECKS


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 600 else text[:597] + "..."


def combine(verdicts: Iterable[str]) -> str:
    """Any violated ⇒ violated; all verified ⇒ verified; else inconclusive (also when empty)."""
    verdicts = list(verdicts)
    if "violated" in verdicts:
        return "violated"
    if verdicts and all(v == "verified" for v in verdicts):
        return "verified"
    return "inconclusive"


def run_checks(result_id: str, checks: Sequence[Check], mode: str = "quick") -> ClaimResult:
    """Run the given checks of one result and combine them into its :class:`ClaimResult`."""
    from theory.registry import get

    if mode not in MODES:
        raise LedgerError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    res = get(result_id)
    outcomes = tuple(c.run(mode) for c in checks)
    kinds = tuple(k for k in KINDS if any(o.kind == k for o in outcomes))
    evidence = " | ".join(f"[{o.kind}] {o.evidence}" for o in outcomes) or "no checks"
    return ClaimResult(
        id=res.id, title=res.title, statement=res.statement, source=res.source,
        verdict=combine(o.verdict for o in outcomes), kinds=kinds, evidence=evidence,
        seconds=sum(o.seconds for o in outcomes), checks=outcomes,
        hypotheses=tuple(res.hypotheses), is_bound=res.is_bound,
    )


def run_ledger(ids: Sequence[str] | None = None, mode: str = "quick",
               progress: Callable[[ClaimResult], None] | None = None) -> list[ClaimResult]:
    """Run the checks of every registered result (or of ``ids``), in registry order.

    Parameters
    ----------
    ids : sequence of str, optional
        Result IDs to check (default: all registered).
    mode : {"quick", "thorough"}
        ``quick`` fits in CI; ``thorough`` runs more examples, slots and replications.
    progress : callable, optional
        Called with each :class:`ClaimResult` as soon as it is done.
    """
    from theory.registry import REGISTRY

    if mode not in MODES:
        raise LedgerError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    load_checks()
    if ids is None:
        ids = list(REGISTRY)
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise LedgerError(
            f"unknown claim {', '.join(map(repr, unknown))}; known: {', '.join(sorted(REGISTRY))}"
        )
    out = []
    for rid in ids:
        result = run_checks(rid, CHECKS.get(rid, []), mode)
        out.append(result)
        if progress is not None:
            progress(result)
    return out


def missing_checks() -> list[str]:
    """Registered result IDs without any check (the meta-test wants this empty)."""
    from theory.registry import REGISTRY

    load_checks()
    return sorted(rid for rid in REGISTRY if not CHECKS.get(rid))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(results: Sequence[ClaimResult], path: str | Path, mode: str | None = None) -> Path:
    """Write the ledger as Markdown: a summary table, then each claim's statement and evidence."""
    path = Path(path)
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    total = sum(r.seconds for r in results)
    lines = [
        "# Claims ledger",
        "",
        "Generated by `flowstab check`" + (f" (`--{mode}`)" if mode else "") + ". "
        f"{len(results)} claims: {counts['verified']} verified, {counts['violated']} violated, "
        f"{counts['inconclusive']} inconclusive; {total:.1f} s of checks.",
        "",
        "Verdict rules: any check violated ⇒ violated; all verified ⇒ verified; otherwise "
        "inconclusive. Kinds: symbolic (sympy, exact Rationals), property (hypothesis search for "
        "a counterexample), empirical (simulator / exact chain / exact tail against the theory, "
        "with the stated false-alarm rate).",
        "",
        "| claim | title | kinds | verdict | seconds |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for r in results:
        lines.append(f"| `{r.id}` | {_md(r.title)} | {', '.join(r.kinds)} | **{r.verdict}** | "
                     f"{r.seconds:.2f} |")
    lines.append("")
    for r in results:
        lines += [
            f"## `{r.id}` — {r.title}",
            "",
            f"**Verdict: {r.verdict}.** {r.statement}",
            "",
            f"*Source:* {r.source}." + (" *Not a bound* (an approximation)." if not r.is_bound
                                        else ""),
            "",
        ]
        if r.hypotheses:
            lines += ["*Hypotheses:* " + "; ".join(r.hypotheses) + ".", ""]
        lines += ["| kind | check | verdict | seconds | evidence |",
                  "| --- | --- | --- | ---: | --- |"]
        for c in r.checks:
            lines.append(f"| {c.kind} | {_md(c.name)} | {c.verdict} | {c.seconds:.2f} | "
                         f"{_md(c.evidence)} |")
        lines.append("")
    return write_text_atomic(path, "\n".join(lines), "report")

