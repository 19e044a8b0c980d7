"""Subcommands of the `scgan` console script (see scgan/cli.py for the module contract)."""
