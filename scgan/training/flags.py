"""Command-line flags generated from :class:`~scgan.training.config.TrainConfig`'s field metadata (torch-free).

Both ``scgan train`` and ``scgan train-baseline`` call :func:`add_config_arguments` and :func:`config_from_args`, so a
new TrainConfig field (declared with ``_opt(default, help, group, ...)``) is a new flag of both commands, with its
help text, without another edit. Every flag's argparse default is ``SUPPRESS``: a flag that was not given leaves no
attribute, so :func:`config_from_args` fills it from a base config (TrainConfig's defaults for SCGAN, a baseline's
recipe) and :func:`given_flags` knows exactly what the user set.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from scgan.errors import InputError
from scgan.training.config import TrainConfig

GROUP_ORDER = ("data", "model", "schedule", "loss weights", "ablations (paper Table II)", "execution")


def _flag(field: dataclasses.Field) -> str:
    meta = field.metadata
    if "flag" in meta:
        return meta["flag"]
    return ("--no-" if field.default is True else "--") + field.name.replace("_", "-")


def cli_fields() -> list[dataclasses.Field]:
    """The TrainConfig fields that have flags."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True) and "help" in f.metadata]


def _default_text(field: dataclasses.Field, base: TrainConfig, per_method: frozenset[str], note: str,
                  element: int | None = None) -> str:
    """The help's default clause: the base config's value (and the paper's where it differs), or ``note`` for a
    field in ``per_method`` (its default depends on the method); ``element``: of a tuple field."""
    meta = field.metadata
    if field.name in per_method:
        return f" (default: {note})"
    value = meta["flag_default"] if "flag_default" in meta else getattr(base, field.name)
    if element is not None:
        value = value[element]
    shown = "" if value is None or value == "" or isinstance(value, bool) else f" (default: {value})"
    if "paper" in meta and meta["paper"] != getattr(base, field.name):
        shown += f" [not the paper's: the paper uses {meta['paper']}]"
    return shown


def add_config_arguments(parser: argparse.ArgumentParser, base: TrainConfig, skip: frozenset[str] = frozenset(),
                         per_method: frozenset[str] = frozenset(), per_method_note: str = "") -> list[str]:
    """Add one flag per TrainConfig field (plus its shortcuts) to ``parser``, grouped as the fields are.

    ``base``: the config whose values the help shows as defaults, except for the fields in ``per_method``, whose
    help shows ``per_method_note`` (e.g. "the method's recipe"); ``skip``: flags the caller defines itself.
    Returns the argparse ``dest`` of every flag added.
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    dests: list[str] = []
    for field in sorted(cli_fields(), key=lambda f: GROUP_ORDER.index(f.metadata["group"])):
        meta = field.metadata
        title = meta["group"]
        group = groups.get(title) or groups.setdefault(title, parser.add_argument_group(title))
        help_text = meta["help"] + _default_text(field, base, per_method, per_method_note)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS}
        if "names" in meta:  # a tuple: one flag per element
            element = type(getattr(TrainConfig(), field.name)[0])
            for i, name in enumerate(meta["names"]):
                if name not in skip:
                    text = f"{meta['help']} ({name.lstrip('-')})" + _default_text(field, base, per_method,
                                                                                    per_method_note, i)
                    action = group.add_argument(name, type=element, help=text, **kwargs)
                    dests.append(action.dest)
            continue
        flag = _flag(field)
        if flag not in skip:
            if field.type == "bool":
                kwargs["action"] = "store_false" if field.default is True else "store_true"
            else:
                kwargs["type"] = meta.get("type", type(field.default))
                for key in ("choices", "metavar", "required"):
                    if key in meta:
                        kwargs[key] = meta[key]
            dests.append(group.add_argument(flag, dest=field.name, help=help_text, **kwargs).dest)
        for shortcut, value in meta.get("shortcuts", {}).items():
            if shortcut not in skip:
                action = group.add_argument(shortcut, action="store_true", default=argparse.SUPPRESS,
                                            help=f"same as {flag} {value}")
                dests.append(action.dest)
    return dests


def given_fields(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(--flag, field name)`` of the generated flags present in ``args`` (given on the command line)."""
    found = []
    for field in cli_fields():
        meta = field.metadata
        names = list(meta.get("names", [_flag(field)])) + list(meta.get("shortcuts", {}))
        found += [(name, field.name) for name in names if hasattr(args, _dest(name, field))]
    return found


def given_flags(args: argparse.Namespace) -> list[str]:
    """The generated flags present in ``args`` (given on the command line), as ``--flag`` names."""
    return [flag for flag, _ in given_fields(args)]


def _dest(flag: str, field: dataclasses.Field) -> str:
    """The argparse dest of ``flag`` (the field's own flag stores under the field's name)."""
    if "names" not in field.metadata and flag == _flag(field):
        return field.name
    return flag.lstrip("-").replace("-", "_")


def config_from_args(args: argparse.Namespace, base: TrainConfig) -> TrainConfig:
    """``base`` with every generated flag present in ``args`` applied; InputError when two flags set one field to
    different values (``--lsgan --no-gan``)."""
    values: dict[str, Any] = {}
    for field in cli_fields():
        meta = field.metadata
        setters: list[tuple[str, Any]] = []
        if "names" in meta:
            parts = [getattr(args, _dest(n, field), None) for n in meta["names"]]
            if any(p is not None for p in parts):
                current = getattr(base, field.name)
                setters.append(("/".join(meta["names"]), tuple(p if p is not None else c
                                                                 for p, c in zip(parts, current))))
        elif hasattr(args, field.name):
            setters.append((_flag(field), getattr(args, field.name)))
        for shortcut, value in meta.get("shortcuts", {}).items():
            if getattr(args, _dest(shortcut, field), False):
                setters.append((shortcut, value))
        for flag, value in setters:
            if field.name in values and values[field.name][1] != value:
                raise InputError(f"{values[field.name][0]} and {flag} contradict each other")
            values[field.name] = (flag, value)
    return dataclasses.replace(base, **{name: value for name, (_, value) in values.items()})
