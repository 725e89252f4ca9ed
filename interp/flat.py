"""The flat public API: one keyword function per analysis, its options read from its config.

Every analysis is reachable as `interp.<name>` / `steering.<name>` / `saes.<name>` with the
signature `(model, data=None, *, chat=..., <run keywords>, **options) -> Result`, where
`options` are exactly the fields of the analysis' config dataclass(es), with their defaults
(which are the CLI's: `interp.runs.config.add_config_args` reads the same fields). The
decorator `analysis` below builds that signature from `dataclasses.fields` when the
function is defined, so a field added to a config is a keyword at once; `inspect.signature`
and tab completion show every option with its default.

    @analysis(DLAConfig)
    def dla(model, prompts=None, *, chat=False, seed=0, batch_size=None, out=None, progress=False, config):
        ...

The wrapped function receives the built config as `config=` (one dataclass) or `configs=`
(a dict {stage: dataclass} for a multi-stage method). A field whose name is one of the
function's own keywords is filled from that keyword (`seed`); a field name two stages share,
or one that clashes with a run keyword of another meaning, is spelled `<stage>_<field>`
(RISE: `collect_n`, `steer_n`, `train_batch_size`). An unknown keyword raises a one-line
TypeError naming the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from .runs.config import field_default, mark_given

SHARED = ("seed",)
"""Run keywords that also fill a config field of the same name (ExpertsConfig.seed)."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword of a flat function that comes from a config field."""

    keyword: str
    stage: str
    field: str
    default: Any
    annotation: Any


def config_options(configs: dict[str, type], own: set[str]) -> list[Option]:
    """Keywords for the fields of `configs` ({stage: dataclass}); see the module doc for names."""
    counts: dict[str, int] = {}
    for cls in configs.values():
        for f in dataclasses.fields(cls):
            if f.init:
                counts[f.name] = counts.get(f.name, 0) + 1
    options = []
    for stage, cls in configs.items():
        for f in dataclasses.fields(cls):
            if not f.init or (f.name in own and f.name in SHARED):
                continue
            clash = counts[f.name] > 1 or f.name in own
            keyword = f"{stage}_{f.name}" if clash else f.name
            options.append(Option(keyword, stage, f.name, field_default(f), f.type))
    return options


def unknown_keyword(function: str, name: str, valid: list[str]) -> TypeError:
    """The one-line error for a keyword `function` does not take, naming the closest valid one."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keywords: {', '.join(sorted(valid))}"
    return TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def analysis(*configs: type, stages: dict[str, type] | None = None) -> Callable[[Callable], Callable]:
    """Decorate an implementation taking `config=` (one config class) or `configs=` (`stages`)."""
    if bool(configs) == bool(stages):
        raise ValueError("pass one config class, or stages={name: config class}")
    staged = dict(stages) if stages else {"config": configs[0]}

    def decorate(impl: Callable) -> Callable:
        own_sig = inspect.signature(impl)
        hidden = "configs" if stages else "config"
        own = [p for p in own_sig.parameters.values() if p.name != hidden]
        own_names = {p.name for p in own}
        options = config_options(staged, own_names)
        by_keyword = {o.keyword: o for o in options}
        valid = [p.name for p in own if p.kind is not p.POSITIONAL_ONLY] + list(by_keyword)

        @functools.wraps(impl)
        def call(*args, **kwargs):
            values: dict[str, dict[str, Any]] = {stage: {} for stage in staged}
            for name in list(kwargs):
                if name in by_keyword:
                    option = by_keyword[name]
                    values[option.stage][option.field] = kwargs.pop(name)
                elif name not in own_names:
                    raise unknown_keyword(impl.__name__, name, valid)
            bound = own_sig.bind_partial(*args, **kwargs)
            for shared in SHARED:  # e.g. seed= fills ExpertsConfig.seed too
                if shared in own_names:
                    value = bound.arguments.get(shared, own_sig.parameters[shared].default)
                    for stage, cls in staged.items():
                        if any(f.name == shared for f in dataclasses.fields(cls)):
                            values[stage][shared] = value
            # the keywords given are marked, so a model-dependent option that does not fit is
            # refused when typed and clamped with a note when defaulted (interp.runs.config.fit_option)
            built = {stage: mark_given(cls(**values[stage]), values[stage]) for stage, cls in staged.items()}
            extra = {"configs": built} if stages else {"config": built["config"]}
            return impl(*args, **kwargs, **extra)

        params = own + [inspect.Parameter(o.keyword, inspect.Parameter.KEYWORD_ONLY, default=o.default,
                                          annotation=o.annotation) for o in options]
        call.__signature__ = own_sig.replace(parameters=params)
        call.options = options  # [Option]: which keyword feeds which config field
        call.stages = staged
        del call.__wrapped__  # inspect.signature reads __signature__, not the implementation's
        return call

    return decorate


def run_keywords(function: Callable) -> dict[str, Any]:
    """{keyword: default} of every keyword of a flat function (run keywords and options)."""
    return {p.name: p.default for p in inspect.signature(function).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def finish(result, out) -> Any:
    """Save `result` to `out` when given (replacing a run of the same analysis there)."""
    if out is not None:
        result.save(out, overwrite=True)
    return result


def as_prompts(data, default: Callable[[], list[str]] | list[str] | None = None, what: str = "prompts") -> list[str]:
    """`data` as a list of prompts: a list of texts, one text, or a prompt file (a `Path`, or a
    string naming an existing .txt/.jsonl file: one prompt per line, or JSONL with 'text').
    None gives `default` (ValueError when there is none)."""
    from pathlib import Path

    if data is None:
        if default is None:
            raise ValueError(f"no {what}: pass a list of texts or a prompt file as the second argument")
        return list(default() if callable(default) else default)
    if isinstance(data, Path) or (isinstance(data, str) and data.endswith((".txt", ".jsonl")) and Path(data).is_file()):
        from .runs.prompts import read_prompts

        return read_prompts(str(data))
    prompts = [data] if isinstance(data, str) else list(data)
    if not prompts:
        raise ValueError(f"no {what}: the list is empty")
    return prompts


def staged(results: dict, out) -> Any:
    """A multi-stage call's return: the last stage's result, with `.stages` = {stage: result}
    of every stage; with `out`, each stage is saved as the run `out/<stage>`."""
    from pathlib import Path

    if out is not None:
        for name, result in results.items():
            result.save(Path(out) / name, overwrite=True)
    last = list(results.values())[-1]
    last.stages = dict(results)
    return last
