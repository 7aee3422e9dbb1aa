"""proofs_check — the claims ledger (not built yet; see issue "proofs_check").

For now the registry in :mod:`theory.registry` and the twin tests in ``tests/test_twins.py`` are
the checks; the ledger with symbolic / property / empirical verdicts is future work.
"""

__all__: list[str] = []
