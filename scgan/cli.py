"""The `scgan` console script: one front door for every subcommand.

Subcommands are plain modules found at run time in three command packages, in this order:
``scgan.commands``, ``baselines.commands``, ``bench.commands``. Each module defines

    NAME: str                       # the subcommand, e.g. "eval"
    HELP: str                       # one line for `scgan --help`
    def add_arguments(parser): ...  # argparse arguments of the subcommand
    def run(args) -> int: ...       # the work; returns the exit status

Command modules must import quickly (heavy imports go inside ``run``), so that ``scgan --help`` stays fast.
Discovering ``baselines`` and ``bench`` here, inside a function, keeps the lower packages from importing the
upper ones at module level (docs/architecture.md).

Errors meant for the user (bad paths, bad arguments, bad images) are raised as ``ValueError``, ``FileNotFoundError``
or ``scgan.errors.ScganError`` subclasses and printed as one line; so is every other ``OSError`` (permission denied,
a parent that is a file, disk full: the line names the path) and a file name that cannot be encoded. Set
``SCGAN_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from types import ModuleType

COMMAND_PACKAGES = ("scgan.commands", "baselines.commands", "bench.commands")


def discover_commands() -> dict[str, ModuleType]:
    """Map subcommand name -> command module, in the order of COMMAND_PACKAGES then file name."""
    commands: dict[str, ModuleType] = {}
    for package_name in COMMAND_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            name = getattr(module, "NAME", None)
            if name is None:
                continue
            if name in commands:
                first = commands[name].__name__
                raise RuntimeError(f"subcommand {name!r} defined twice: {first} and {module.__name__}")
            commands[name] = module
    return commands


def build_parser(commands: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    commands = discover_commands() if commands is None else commands
    parser = argparse.ArgumentParser(
        prog="scgan",
        description="scgan-bench: train SCGAN, run its fused kernels, and compare colorizers with calibrated metrics.",
    )
    from scgan import __version__

    parser.add_argument("--version", action="version", version=f"scgan-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands.items():
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    from scgan.errors import ScganError

    try:
        return int(args._run(args) or 0)
    except (ScganError, ValueError, OSError) as exc:  # UnicodeError is a ValueError
        if os.environ.get("SCGAN_DEBUG"):
            raise
        print(f"scgan {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scgan {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The message of a user-facing error on one line; an OSError names its path(s)."""
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | NotADirectoryError):
        from scgan.paths import describe_os_error

        text = describe_os_error(exc)
    else:
        text = str(exc)
    if isinstance(exc, UnicodeError):
        text = f"a file name or text that is not valid UTF-8 ({text})"
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
