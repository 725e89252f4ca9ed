"""`analyze(model, run, config)`: diagnostics, behaviours, geometry and behaviour vectors of
the SAEs trained on a collect run (RISE, arXiv 2512.23988, sections 3-4).

Per trained layer: SAE diagnostics with CE loss recovered (`saes.diagnostics`), the
latent-behaviour association and behaviour-specific latents (`saes.association`), the
decoder-column map and silhouette (`saes.geometry`), columns of long vs short responses, the
top-activating steps of every latent (for the explorer), and one behaviour vector per
behaviour with specific latents, saved under `<run>/vectors/` as steerlens steering vectors.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from interp.runs.config import option
from interp.runs.results import RunMeta
from steering.vectors import SteeringVector

from .association import association_counts, behaviour_latents, behaviour_vector, column_groups, long_short_latents
from .collect import COLLECT, load_steps, load_traces, resid_site
from .diagnostics import ce_recovered, encode, reconstruction_stats
from .geometry import behaviour_silhouette, decoder_map
from .result import RiseAnalysis
from .traces import step_end_tokens, token_at_char
from .train import load_sae


@dataclass
class AnalyzeConfig:
    min_count: int = option(2, "steps a latent must win to be specific to a behaviour")
    min_specificity: float = option(0.5, "share of a latent's won steps that must carry the behaviour")
    top_latents: int = option(10, "latents listed per behaviour")
    ce_traces: int = option(16, "traces used for CE loss recovered (0: skip)")
    top_steps: int = option(8, "top-activating steps kept per latent for the explorer")


def sae_folder(run: Path, layer: int) -> Path:
    return run / "sae" / f"layer_{layer}"


def trained_layers(run: Path) -> list[int]:
    """Layers of the run with a finished SAE; ValueError when there is none."""
    facts = json.loads((run / COLLECT).read_text()) if (run / COLLECT).is_file() else None
    if facts is None:
        raise ValueError(f"{run} is not a RISE run (no {COLLECT}); run `steerlens rise collect --out {run}` first")
    layers = [layer for layer in facts["config"]["layers"] if (sae_folder(run, layer) / "cfg.json").is_file()]
    if not layers:
        raise ValueError(f"{run} has no trained SAE; run `steerlens rise train --run {run}` first")
    return layers


def check_sae_fits(sae, model, layer: int) -> None:
    """ValueError unless the SAE reads a residual of this model's width at an existing layer."""
    if sae.cfg.d_in != model.d_model:
        raise ValueError(f"the saved SAE reads {sae.cfg.d_in}-dimensional activations but the model's residual "
                         f"has d_model={model.d_model}; load the model the run was collected with")
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"the SAE is for layer {layer} but the model has layers 0..{model.n_layers - 1}")


def analyze(model, run: str | Path, config: AnalyzeConfig | None = None, *, seed: int = 0,
            progress: bool = True) -> RiseAnalysis:
    """Analyse every trained layer of `run` (see module doc). Raises ValueError for a run
    without SAEs or an SAE that does not fit `model`, before any forward pass."""
    config = config or AnalyzeConfig()
    run = Path(run)
    layers = trained_layers(run)
    saes = {layer: load_sae(sae_folder(run, layer)) for layer in layers}
    for layer, sae in saes.items():
        check_sae_fits(sae, model, layer)
    facts = json.loads((run / COLLECT).read_text())
    meta = RunMeta(model=dict(facts["model"]), config=config.__dict__ | {"run": str(run)}, seed=seed)
    traces = load_traces(run)
    stats, behaviours, silhouettes, maps, groups, tables, long_short, tops, vectors = {}, {}, {}, {}, {}, [], {}, {}, {}
    curves, throughput = {}, {}
    method = ""
    for layer in layers:
        key, sae = str(layer), saes[layer]
        acts, steps = load_steps(run, resid_site(layer))
        labels = [s["label"] for s in steps]
        with meta.timed("encode"):
            latents = encode(sae, acts)
            stats[key] = reconstruction_stats(sae, acts)
        if config.ce_traces:
            with meta.timed("ce_recovered"):
                stats[key].update(_ce(model, sae, layer, traces[: config.ce_traces], facts["chat"]))
        counts = association_counts(latents, labels)
        behaviours[key] = behaviour_latents(counts, config.min_count, config.min_specificity, config.top_latents)
        decoder = sae.W_dec.detach()
        groups[key] = column_groups(counts, decoder.shape[0])
        silhouettes[key] = behaviour_silhouette(decoder, groups[key])
        with meta.timed("map"):
            maps[f"layer_{layer}"], method = decoder_map(decoder, seed)
        tables.append(counts.reset_index().melt(id_vars="latent", var_name="behaviour", value_name="count")
                      .assign(layer=layer).query("count > 0"))
        long_short[key] = long_short_latents(latents, [s["n_steps"] for s in steps], config.top_latents)
        k = min(config.top_steps, len(steps))
        values, index = latents.T.topk(k, dim=1)
        tops[f"layer_{layer}.index"], tops[f"layer_{layer}.value"] = index, values
        for behaviour, rows in behaviours[key].items():
            if rows:
                vec = behaviour_vector(decoder, [r["latent"] for r in rows])
                path = Path("vectors") / f"{behaviour}_layer{layer}.safetensors"
                SteeringVector.from_tensor(vec, [layer], model, method=f"rise-{behaviour}", normalize=True,
                                           config={"latents": [r["latent"] for r in rows], "run": str(run)}
                                           ).save(run / path)
                vectors[f"{behaviour}@{layer}"] = str(path)
        record = json.loads((sae_folder(run, layer) / "training.json").read_text())
        curves[key], throughput[key] = record["curve"], record["throughput"]
    table = pd.concat(tables, ignore_index=True)[["layer", "latent", "behaviour", "count"]]
    label_counts = dict(Counter(s.label for t in traces for s in t.steps))
    _, steps = load_steps(run, resid_site(layers[0]))
    frame = pd.DataFrame([{"trace": r["trace"], "step": r["step"], "label": r["label"], "text": r["text"],
                           "start": traces[r["trace"]].steps[r["step"]].start - len(traces[r["trace"]].prompt),
                           "end": traces[r["trace"]].steps[r["step"]].end - len(traces[r["trace"]].prompt),
                           "n_steps": r["n_steps"]} for r in steps])
    return RiseAnalysis(layers, stats, behaviours, silhouettes, method, maps, groups, table, long_short, tops, vectors,
                        curves, throughput, label_counts, frame, [t.response for t in traces], str(run), meta=meta)


def _ce(model, sae, layer: int, traces, chat: bool) -> dict:
    encoded, prompt_tokens = [], []
    for t in traces:
        encoded.append(step_end_tokens(model.tokenizer, t.text, t.steps, add_special_tokens=not chat))
        prompt_tokens.append(token_at_char(model.tokenizer, t.text, len(t.prompt), add_special_tokens=not chat))
    return ce_recovered(model, sae, resid_site(layer), encoded, prompt_tokens)


def step_table(run: str | Path) -> pd.DataFrame:
    """The run's steps (trace, step, text, label, position, n_steps, correct) in store order."""
    _, steps = load_steps(run)
    return pd.DataFrame(steps)


def latent_activations(run: str | Path, layer: int) -> torch.Tensor:
    """Latent activations [n_steps, d_sae] of the layer's SAE on the run's steps."""
    run = Path(run)
    acts, _ = load_steps(run, resid_site(layer))
    return encode(load_sae(sae_folder(run, layer)), acts)
