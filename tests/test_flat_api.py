"""The flat API (interp/flat.py, docs/api.md): one keyword call per analysis from `interp.`,
`steering.` and `saes.`, the CLI's options and defaults, and results that show themselves.

The 13 calls run once, in a fresh process (tests/flat_calls.py), on tiny models; each saves
its run and writes its Jupyter HTML, which the display tests read back next to the HTML of
the same run loaded with `interp.load_run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import interp

ROOT = Path(__file__).resolve().parents[1]
CALLS = ("dla", "lens", "sinks", "massive", "emergence", "voids", "voids_eval", "routing", "experts", "austeer",
         "refusal_direction", "skills", "rise")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flat")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "flat_calls.py"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


SHOWN = CALLS + ("skills.fit", "rise.analyze")
"""Every result type the calls return, stages included (skills' basis, RISE's analysis)."""


def test_every_analysis_is_one_keyword_call_in_a_fresh_process(runs):
    report = json.loads((runs / "report.json").read_text())
    assert list(report.pop("shown")) == list(CALLS[:-2]) + ["skills", "skills.fit", "rise", "rise.analyze"]
    assert list(report) == list(CALLS)
    assert report["skills"]["stages"] == ["fit", "steer"] and report["rise"]["type"] == "RiseSteer"
    for name, row in report.items():
        assert Path(row["run_dir"]).is_dir(), name


def _check_html(html: str, where: str) -> None:
    assert "steerlens-summary" in html and "<td" in html, f"{where}: no summary table"
    assert "plotly-graph-div" in html or "<img" in html, f"{where}: no figure"
    assert "steerlens app --runs" in html, f"{where}: no explorer hint"
    assert "tensor(" not in html, f"{where}: a tensor's values are printed"


@pytest.mark.parametrize("name", SHOWN)
def test_every_result_displays_after_the_run_and_after_load_run(runs, name):
    import pandas as pd
    import plotly.graph_objects as go

    report = json.loads((runs / "report.json").read_text())["shown"][name]
    _check_html((runs / f"{name}.html").read_text(), f"{name} after the run")
    assert "tensor(" not in (runs / f"{name}.txt").read_text()
    loaded = interp.load_run(report["run_dir"])  # imports the result's module itself
    assert type(loaded).__name__ == report["type"]
    bundle = loaded._repr_mimebundle_()
    _check_html(bundle["text/html"], f"{name} after load_run")
    assert report["run_dir"] in bundle["text/html"]  # saved: the explorer hint names its folder
    assert loaded.analysis in bundle["text/plain"] and "tensor(" not in bundle["text/plain"]
    figures = loaded.figures()
    assert figures and all(isinstance(f, go.Figure) for f in figures.values())
    assert isinstance(loaded.table(), pd.DataFrame) and len(loaded.table().columns)


def test_an_unknown_keyword_names_the_closest_valid_one():
    with pytest.raises(TypeError, match=r"^dla\(\) got an unexpected keyword argument 'neuron'; did you mean "
                                        r"'neurons'\?$"):
        interp.dla(None, ["x"], neuron=True)
    with pytest.raises(TypeError, match="did you mean 'collect_n'"):
        __import__("saes").rise(None, collect_m=4)
    with pytest.raises(TypeError, match="positional"):
        interp.sinks(None, ["x"], 0.3)  # options are keywords only


def test_signatures_list_every_config_field_with_its_default():
    from interp.runs.config import field_default

    steering, saes = pytest.importorskip("steering"), pytest.importorskip("saes")
    for function in _functions(steering, saes).values():
        params = inspect.signature(function).parameters
        assert list(params)[:2] == ["model", "data"] and params["data"].default is None
        if function is not interp.emergence:  # reads raw text at checkpoints: no chat template
            assert "chat" in params and params["chat"].kind is inspect.Parameter.KEYWORD_ONLY
        for option in function.options:
            cls = function.stages[option.stage]
            f = next(f for f in dataclasses.fields(cls) if f.name == option.field)
            assert params[option.keyword].default == field_default(f)
            assert params[option.keyword].kind is inspect.Parameter.KEYWORD_ONLY


# ---- the CLI and the API agree ----------------------------------------------------------------

NOT_OPTIONS = {"help", "model", "device", "dtype", "batch_size", "attn", "bos", "json", "out", "device_map",
               "max_memory", "resume", "store"}
"""Options that load the model, place the run or resume it; they do not change the result
(bos and attn are options of `interp.load`)."""
DATA = {"prompts", "prompt", "pairs", "data", "problems", "target", "other", "checkpoints", "run", "no_chat",
        "layer@rise train", "task@austeer eval", "chat@emergence", "seed@emergence", "chat@rise confidence"}
"""What the API takes as `model` / `data` (or a stage's run folder), and options a command
ignores (emergence uses neither --chat nor --seed): per command where marked."""


RENAMED = {("rise collect", "layer"): ("layers", [])}
"""(command, CLI dest): (config field, the value the CLI's default stands for)."""


def _functions(steering, saes) -> dict[str, object]:
    """{command: the flat function} (a callable package's function, not the package)."""
    return {command: getattr(f, "__wrapped__", f) for command, f in {"dla": interp.dla, "lens": interp.logit_lens, "sinks": interp.sinks, "massive": interp.massive_activations,
            "emergence": interp.emergence, "voids": interp.voids, "voids eval": interp.voids_eval,
            "routing": interp.routing, "experts scan": interp.experts, "austeer eval": steering.austeer,
            "refusal-steer": steering.refusal_direction, "skills fit": steering.skills, "skills steer": steering.skills,
            "rise collect": saes.rise, "rise train": saes.rise, "rise analyze": saes.rise, "rise steer": saes.rise,
            "rise confidence": saes.rise_confidence}.items()}


def _subparser(parser: argparse.ArgumentParser, path: str) -> argparse.ArgumentParser:
    for word in path.split():
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction) and word in a.choices)
        parser = action.choices[word]
    return parser


def _cli_default(command: str, action: argparse.Action, function) -> object:
    """The value the command uses when the option is not given."""
    if command == "routing":  # routing's options default to None so a resumed run can tell them apart
        if action.dest == "chat":
            return True  # --no-chat turns it off
        if action.default is None and action.dest in ("seed", "bos"):
            return 0 if action.dest == "seed" else "default"
        option = next((o for o in function.options if o.field == action.dest), None)
        if option is not None and action.default is None:
            return option.default
    if command == "refusal-steer" and action.dest == "chat":
        return True  # the refusal direction always uses the chat template
    return action.default


def test_every_result_changing_cli_option_is_a_keyword_with_the_same_default():
    from interp.cli import build_parser

    steering, saes = pytest.importorskip("steering"), pytest.importorskip("saes")
    parser = build_parser()
    checked = 0
    for command, function in _functions(steering, saes).items():
        stage = command.split()[-1] if command.startswith(("rise ", "skills ")) else None
        keywords = {p.name: p.default for p in inspect.signature(function).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY}
        by_field = {o.field: o.keyword for o in function.options if stage is None or o.stage == stage}
        for action in _subparser(parser, command)._actions:
            dest = action.dest
            if dest in NOT_OPTIONS or dest in DATA or f"{dest}@{command}" in DATA or dest.endswith("_command") \
                    or isinstance(action, argparse._SubParsersAction):
                continue
            field, want = RENAMED.get((command, dest), (dest, _cli_default(command, action, function)))
            keyword = by_field.get(field, field)
            assert keyword in keywords, f"steerlens {command} --{dest.replace('_', '-')}: no keyword {keyword!r}"
            assert keywords[keyword] == want, (f"steerlens {command} --{dest.replace('_', '-')}: CLI default {want!r}, "
                                               f"{function.__name__}({keyword}=...) default {keywords[keyword]!r}")
            checked += 1
    assert checked > 100
