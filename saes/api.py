"""`saes.rise`: the flat API (see interp/flat.py) of RISE, every stage in one call
(`steerlens rise collect`, `train`, `analyze`, `steer`)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from interp.flat import analysis
from interp.runs.config import is_given

from .analyze import AnalyzeConfig, analyze, sae_folder
from .collect import COLLECT, CollectConfig, collect, resid_site, STORE
from .confidence import ConfidenceConfig
from .confidence_result import RiseConfidence
from .result import RiseAnalysis, RiseSteer
from .steer import SteerConfig, steer
from .train import TrainConfig, train_layer


@analysis(stages={"collect": CollectConfig, "train": TrainConfig, "analyze": AnalyzeConfig, "steer": SteerConfig})
def rise(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
         progress: bool = False, preset: str = "default", configs: dict) -> RiseSteer | RiseAnalysis:
    """RISE (arXiv 2512.23988), every stage in one call: collect reasoning traces of the
    problems in `data` (a JSONL file of 'question' and optional 'response', 'answer'; default:
    `collect_n` generated problems) and the residual at each step end, train an SAE per layer
    (sae-lens' trainer), analyse them (diagnostics, latent-behaviour association, geometry,
    behaviour vectors), then steer with the `behaviour` vector (dose-response over `alphas`, on
    `steer_n` generated problems).

    `preset="paper"` trains with the paper's SAE settings (`TrainConfig.preset`; the train
    keywords given override it), as `rise train --preset paper`.

    `out` is the run folder every stage writes (default: runs/rise-<timestamp>); the analysis
    and steering runs are saved in it as `analysis` and `steer-<behaviour>-<mode>`, as the CLI
    does. Options two stages share are spelled `<stage>_<option>` (`collect_n`, `steer_n`,
    `train_batch_size`, ...). Returns the steering result, or the analysis (with a warning)
    when no latent is specific to `behaviour` so there is no vector to steer with;
    `result.stages` holds every stage's result. The stage functions stay public:
    `saes.collect.collect`, `saes.train.train_layer`, `saes.analyze.analyze`, `saes.steer.steer`."""
    from interp.flat import staged
    from interp.runs.results import default_run_dir

    run = Path(out) if out is not None else default_run_dir("rise")
    problems = str(data) if data is not None else None
    if problems is not None and not Path(problems).is_file():
        raise ValueError(f"{problems}: problems file not found (JSONL with 'question' and optional 'response', "
                         "'answer')")
    if preset != "default":  # the preset's training fields, under the train keywords given
        train = configs["train"]
        given = {f.name: getattr(train, f.name) for f in dataclasses.fields(train) if is_given(train, f.name)}
        configs["train"] = TrainConfig.preset(preset, **given)
    configs["collect"].validate(model)
    configs["train"].validate()
    configs["steer"].validate()
    collect(model, configs["collect"], run, problems_file=problems, chat=chat, batch_size=batch_size, seed=seed,
            progress=progress)
    layers = json.loads((run / COLLECT).read_text())["config"]["layers"]
    for layer in layers:
        train_layer(run / STORE, resid_site(layer), sae_folder(run, layer), configs["train"], seed=seed,
                    resume=(sae_folder(run, layer) / "checkpoints").is_dir(), progress=progress)
    results = {"analyze": analyze(model, run, configs["analyze"], seed=seed, progress=progress)}
    results["analyze"].save(run / "analysis", overwrite=True)
    behaviour = configs["steer"].behaviour
    if not any((run / "vectors").glob(f"{behaviour}_layer*.safetensors")):
        warnings.warn(f"no '{behaviour}' vector in {run / 'vectors'} (no latent is specific to it): the steering "
                      "stage is skipped; pick another behaviour= or train longer", stacklevel=2)
        return staged(results, None)
    steer_config = configs["steer"]
    results["steer"] = steer(model, run, steer_config, seed=seed, progress=progress)  # on `steer_n` new problems
    results["steer"].save(run / f"steer-{behaviour}-{steer_config.mode}", overwrite=True)
    return staged(results, None)


@analysis(ConfidenceConfig)
def rise_confidence(model, data=None, *, chat: bool | None = None, seed: int = 0, out=None,
                    progress: bool = False, config) -> RiseConfidence:
    """RISE confidence vectors (arXiv 2512.23988, section 5) on a trained RISE run `data` (the
    folder `saes.rise(..., out=...)` or `steerlens rise collect` + `rise train` wrote): the
    latent offset that minimises answer entropy, the confidence latents and vectors (saved
    under `<run>/vectors/`), and the dose-response of steering with the vector on held-out
    problems (`steerlens rise confidence`). `chat`: None (the run's setting, as the CLI) or
    the run's own value; another is refused, since the traces were collected with it. `out`:
    where the result is saved (the CLI's default is `<run>/confidence`). See `saes.confidence`."""
    from interp.flat import finish

    from .confidence_run import confidence

    if data is None:
        raise ValueError("rise_confidence needs the RISE run folder as its second argument (collected and trained)")
    recorded = json.loads((Path(data) / COLLECT).read_text())["chat"] if (Path(data) / COLLECT).is_file() else None
    if chat is not None and recorded is not None and chat != recorded:
        raise ValueError(f"chat={chat} but the run {data} was collected with chat={recorded}; leave chat=None")
    return finish(confidence(model, data, config, seed=seed, progress=progress), out)
