"""The repeatable ``--option KEY=VALUE`` argument (an architecture's build options) shared by `scgan export` and
`scgan train-baseline`. The leading underscore keeps this module out of the subcommand discovery."""

from __future__ import annotations

import argparse
import ast


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)``; the value is a Python literal (``5``, ``0.38``, ``(8, 16)``) or else the
    plain string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected KEY=VALUE, e.g. ngf=16")
    key, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def add_option_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add ``--option KEY=VALUE`` (repeatable; ``args.option`` is a list of ``(key, value)``)."""
    parser.add_argument("--option", type=parse_option, action="append", default=[], metavar="KEY=VALUE", help=help_text)


def check_build_options(arch, options: dict) -> None:
    """Raise an InputError naming any ``--option`` key that ``arch.build`` does not take (``arch``: a
    ``baselines.registry.Architecture``), before any work; without this check the user got a TypeError traceback."""
    import inspect

    from scgan.errors import InputError

    known = [name for name, p in inspect.signature(arch.build).parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"--option {', '.join(unknown)}: not a build option of {arch.name}; "
                         f"it takes {', '.join(known) if known else 'none'}")
