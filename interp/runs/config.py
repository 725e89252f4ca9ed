"""Config dataclasses whose field docs become command-line help.

Each analysis declares its configuration as a dataclass; a field's help text lives in
`field(metadata={"help": ...})` (use `option(default, "help")`). `add_config_args` turns
the fields into `--kebab-case` options and `config_from_args` builds the dataclass back
from parsed arguments, so the CLI, notebooks and the app share one definition.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices=None, default_factory=None):
    """A dataclass field with CLI help (and optional choices)."""
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _parse_list(kind):
    def parse(text: str):
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got '{text}'") from None
    return parse


def _base_type(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return tp


def field_default(f: dataclasses.Field):
    """A config field's default value (a fresh one from its factory; None when it has neither)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def add_config_args(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """Add one `--option` per dataclass field (bools become --flag / --no-flag)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = field_default(f)
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text, **kwargs)
            continue
        origin = typing.get_origin(tp)
        if origin in (list, tuple):
            inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
            kwargs["type"] = _parse_list(inner)
            shown = ",".join(map(str, default)) if default else "none"
        else:
            kwargs["type"] = tp if tp in (int, float, str) else str
            shown = repr(default) if isinstance(default, str) and (not default.strip() or
                                                                 any(c in default for c in "\n\t\r")) else default
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        # None means "not given": the help says what happens then (or the option is simply off),
        # never "(default: None)"
        parser.add_argument(flag, help=help_text if default is None else f"{help_text} (default: {shown})", **kwargs)


def config_from_args(cls, args: argparse.Namespace, **overrides):
    """Build the config dataclass from parsed arguments (missing ones keep defaults)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.init and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    values.update(overrides)
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config
