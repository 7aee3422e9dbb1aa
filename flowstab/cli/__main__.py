"""``python -m flowstab.cli``: the same as the ``flowstab`` console script."""

import sys

from flowstab.cli import main

__all__: list[str] = []

sys.exit(main())
