"""proofs_check — the claims ledger: every registered result with its checks and a verdict.

See :mod:`proofs_check.ledger` (``run_ledger``, ``write_report``), :mod:`proofs_check.checks`
(the checks, registered by result ID, one module per :mod:`theory` module) and
:mod:`proofs_check.support` (the tools they share). ``flowstab check`` runs the ledger from the
command line.
Importing this package is cheap; the checks (sympy, hypothesis, the simulator) load on first use.
"""

from proofs_check import ledger as _ledger
from proofs_check.ledger import (  # noqa: F401 (re-exported: __all__ takes these names from the ledger's)
    CHECKS,
    Check,
    CheckOutcome,
    ClaimResult,
    ClaimViolated,
    Inconclusive,
    LedgerError,
    load_checks,
    missing_checks,
    run_checks,
    run_ledger,
    write_report,
)

#: The names imported from the ledger above, in the order of the ledger's own ``__all__``.
__all__ = [name for name in _ledger.__all__ if name in globals()]
