"""Further ``flowstab`` subcommands, one module each.

A module here defines ``register(sub)``: it adds its parser to the ``argparse`` sub-parsers
``sub`` and sets ``func`` (a callable ``func(args) -> int``) with ``set_defaults``. The CLI
(:func:`flowstab.cli.build_parser`) discovers the modules in name order. Modules import only the
standard library at top level, so ``flowstab --help`` stays fast; the work imports lazily inside
``func``. Errors derived from :class:`numerics.errors.FlowstabError` become the one-line
``flowstab: error: ...`` with exit status 2.
"""

__all__: list[str] = []
