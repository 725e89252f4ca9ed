"""`confidence(model, run, config)`: the whole RISE confidence-vector step on a trained run
(search, directions, vectors, dose-response); see `saes.confidence` and
`saes.confidence_effect` for what each part computes (RISE, arXiv 2512.23988, section 5).
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from interp.runs.results import RunMeta
from steering.vectors import SteeringVector

from .analyze import check_sae_fits, sae_folder, trained_layers
from .collect import COLLECT, load_traces
from .confidence import ConfidenceConfig, answer_batch, confidence_directions, search_offset, vector_path
from .confidence_effect import dose_response, monotone
from .confidence_result import RiseConfidence
from .traces import make_problems
from .train import load_sae


def held_out_problems(n: int, seed: int, exclude: set[str]):
    """`n` generated problems none of whose questions is in `exclude` (the run's traces)."""
    pool = make_problems(n + len(exclude) + 8, seed)
    fresh = [p for p in pool if p.question not in exclude]
    return fresh[:n]


def confidence(model, run: str | Path, config: ConfidenceConfig | None = None, *, seed: int = 0,
               progress: bool = True) -> RiseConfidence:
    """Search the offset, save both directions as steering vectors under `<run>/vectors/`, and
    measure the confidence vector's dose-response on `config.n_eval` held-out problems.

    Raises ValueError before any forward pass for a run without a trained SAE at the layer,
    an SAE that does not fit `model`, or traces with fewer than two steps."""
    config = config or ConfidenceConfig()
    config.validate()
    run = Path(run)
    layers = trained_layers(run)
    layer = layers[0] if config.layer < 0 else config.layer
    if layer not in layers:
        raise ValueError(f"--layer {layer} has no trained SAE in {run}; trained layers: {layers}")
    facts = json.loads((run / COLLECT).read_text())
    sae = load_sae(sae_folder(run, layer))
    check_sae_fits(sae, model, layer)
    traces = load_traces(run)
    opt = [t for t in traces if len(t.steps) >= 2][:config.n_opt]
    data = answer_batch(model, opt, facts["chat"], config.max_tokens)
    meta = RunMeta(model=dict(facts["model"]), config=dict(config.__dict__), seed=seed)

    bar = tqdm(total=config.iterations, desc="offset search", disable=not progress, leave=False)

    def tick(step, value):
        bar.update(1)
        bar.set_postfix(entropy=f"{value:.4f}")

    with meta.timed("search"):
        search = search_offset(model, data, sae.W_dec, layer, config, progress=tick)
    bar.close()
    directions = confidence_directions(search.delta, sae.W_dec, config.top_k)
    vectors = {}
    for name, found in directions.items():
        path = vector_path(run, name, layer)
        SteeringVector.from_tensor(found["vector"], [layer], model, method=f"rise-{name}", normalize=True,
                                   config={"latents": found["latents"], "offsets": found["offsets"],
                                           "run": str(run)}).save(path)
        vectors[name] = str(path.relative_to(run))
    rows, samples = [], {}
    if config.n_eval and "confidence" in directions:
        problems = held_out_problems(config.n_eval, seed + 2, {t.question for t in traces})
        with meta.timed("dose_response"):
            rows, samples = dose_response(model, directions["confidence"]["vector"], layer, list(config.alphas),
                                          problems, facts["config"]["separator"], facts["chat"],
                                          config.max_new_tokens, config.gen_batch, progress)
    latents = {name: [{"latent": latent, "offset": offset} for latent, offset in zip(d["latents"], d["offsets"])]
               for name, d in directions.items()}
    return RiseConfidence(layer, search.entropy_before, search.entropy_after, search.curve, search.stopped_at,
                          latents, search.delta, vectors, rows, monotone(rows) if rows else "", samples,
                          len(data.step_mask), str(run), monotone(rows, "answer_entropy") if rows else "", meta=meta)
