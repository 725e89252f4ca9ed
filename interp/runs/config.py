"""Config dataclasses whose field docs become command-line help.

Each analysis declares its configuration as a dataclass; a field's help text lives in
`field(metadata={"help": ...})` (use `option(default, "help")`). `add_config_args` turns
the fields into `--kebab-case` options and `config_from_args` builds the dataclass back
from parsed arguments, so the CLI, notebooks and the app share one definition.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
import weakref
from typing import Any

_GIVEN_ATTR = "_given_options"  # on an argparse namespace: dests of the options typed
_MARKS: dict[int, frozenset[str]] = {}  # id(config) -> names given (dropped when the config dies)


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


class _StoreGiven(argparse._StoreAction):
    """argparse's store, remembering that the option was typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        note_given(namespace, self.dest)


class _FlagGiven(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        note_given(namespace, self.dest)


def note_given(namespace: argparse.Namespace, dest: str) -> None:
    """Record on `namespace` that option `dest` was given (typed, or taken from a stored run)."""
    given = getattr(namespace, _GIVEN_ATTR, None)
    if given is None:
        given = set()
        setattr(namespace, _GIVEN_ATTR, given)
    given.add(dest)


def given_options(args: argparse.Namespace) -> set[str]:
    """Dests of the config options typed on the command line (see `add_config_args`)."""
    return set(getattr(args, _GIVEN_ATTR, ()) or ())


def mark_given(config, names) -> Any:
    """Record which fields of `config` the user gave (the rest are defaults); returns `config`.
    The Python API marks its keyword arguments, the CLI the options typed."""
    key = id(config)
    _MARKS[key] = frozenset(names)
    weakref.finalize(config, _MARKS.pop, key, None)
    return config


def is_given(config, name: str) -> bool:
    """Whether field `name` of `config` was given by the user: from `mark_given`, else (a
    config built in Python and not marked) whether it differs from the field's default."""
    marks = _MARKS.get(id(config))
    if marks is not None:
        return name in marks
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    return getattr(config, name) != field_default(field)


def fit_option(config, name: str, limit: int, what: str, *, doing: str | None = None, hint: str = "") -> str | None:
    """Apply the given-versus-default rule to integer option `name` of `config`, which must
    not exceed `limit` (e.g. the heads a model has).

    `what` names the limit ("heads screened (4 layers x 4)"). A value the user gave above
    `limit`: ValueError "--name V is more than the LIMIT WHAT; pass --name LIMIT or fewer"
    (+ `hint`). A default above it: set to `limit`, and one line on stderr, `doing` (default
    "using --name LIMIT") then "(default --name V > LIMIT WHAT)"; that line is returned
    (None when nothing changed)."""
    value = getattr(config, name)
    if value is None or value <= limit:
        return None
    flag = "--" + name.replace("_", "-")
    if is_given(config, name):
        raise ValueError(f"{flag} {value} is more than the {limit} {what}; pass {flag} {limit} or fewer{hint}")
    setattr(config, name, limit)
    message = f"{doing or f'using {flag} {limit}'} (default {flag} {value} > {limit} {what})"
    print(f"note: {message}", file=sys.stderr)
    return message


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
            parser.add_argument(flag, action=_FlagGiven, help=help_text, **kwargs)
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
        parser.add_argument(flag, action=_StoreGiven,
                            help=help_text if default is None else f"{help_text} (default: {shown})", **kwargs)


def config_from_args(cls, args: argparse.Namespace, **overrides):
    """Build the config dataclass from parsed arguments (missing ones keep defaults), marked
    with the options typed (`mark_given`; an override counts as given unless it equals the
    field's default)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.init and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    values.update(overrides)
    config = cls(**values)
    defaults = {f.name: field_default(f) for f in dataclasses.fields(cls)}
    mark_given(config, (given_options(args) & set(defaults))
               | {k for k, v in overrides.items() if k in defaults and v != defaults[k]})
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config
