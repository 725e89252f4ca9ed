"""Where massive activations come from, and what removing them costs (Sun et al. 2024).

Massive dims are grouped by the layer where they first pass the criterion (a model can
grow a second set later: Gemma 3 270M has one dim from layer 0 and another from layer 3).
A group's entries are the (token, dim) pairs that pass at that first layer.

`find_origin`: at each group's entries, every layer's attention output and MLP output
(`hook_attn_out`, `hook_mlp_out`: what each sublayer adds to the residual) are read; per
layer we report their maxima |.| and their "write", the mean of the output times the sign of
the massive value (a sublayer pushing the other way does not count). The origin is the
first sublayer in forward order (attention before MLP) whose write reaches
`origin_fraction` of the group's mean |massive value|. For an MLP origin with a dense MLP,
neuron n writes `act_n * W_out[dim, n]`; where a norm follows the MLP (Gemma's
`post_feedforward_layernorm`, RMS) that is multiplied by the norm weight and divided by
the norm's divisor from the same pass, so the neurons (plus any output bias) add up to
the MLP's write exactly.

`intervention_ppl`: perplexity of a text set as is, with every group's dims set to zero at
its massive tokens on the decoder output of its first layer, and set to their mean over
the reference corpus. A text's massive tokens are found with the same criterion
(reference median of that layer) in a clean pass over the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..arch.spec import down_proj_bias, down_proj_weight, get_module
from ..engine.edits import Set
from ..metrics.perplexity import perplexity, sample_texts
from .criterion import passing


@dataclass
class MassiveGroup:
    first_layer: int
    dims: list[int]
    entries: list[torch.Tensor]  # per prompt [n, d] bool: the group's massive entries at first_layer
    dim_means: list[float]  # mean value of each dim over its massive entries (the reference corpus)
    massive_value: float  # mean |a| over the entries
    n_entries: int

    def to_dict(self) -> dict:
        return {"first_layer": self.first_layer, "dims": self.dims, "dim_means": self.dim_means,
                "massive_value": self.massive_value, "n_entries": self.n_entries}


def massive_groups(resid: list[torch.Tensor], masks: list[list[torch.Tensor]], layer_dims: list) -> list[MassiveGroup]:
    """Group the massive dims by the first layer where they pass (masks[l][i]: [n, d] bool)."""
    first_of: dict[int, int] = {}
    for layer, dims in enumerate(layer_dims):
        for dim, _ in dims:
            first_of.setdefault(dim, layer)
    groups = []
    for layer in sorted(set(first_of.values())):
        dims = [d for d, _ in layer_dims[layer] if first_of[d] == layer]
        keep = torch.zeros(resid[0].shape[-1], dtype=torch.bool)
        keep[dims] = True
        entries = [m & keep for m in masks[layer]]
        values = torch.cat([r[layer][e] for r, e in zip(resid, entries)])
        means = [float(torch.cat([r[layer][:, d][e[:, d]] for r, e in zip(resid, entries)]).mean()) for d in dims]
        groups.append(MassiveGroup(layer, dims, entries, means, float(values.abs().mean()), int(values.numel())))
    return groups


def find_origin(model, batch, resid: list[torch.Tensor], groups: list[MassiveGroup], config, batch_size: int,
                progress: bool) -> tuple[pd.DataFrame, list[dict]]:
    """Per group and layer: sublayer maxima and writes at the group's entries; each group's origin."""
    n_layers = model.n_layers
    parts = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}
    signs = [[torch.sign(r[g.first_layer]) * e for r, e in zip(resid, g.entries)] for g in groups]  # G x N x [n, d]
    maxima = torch.zeros(len(groups), 2, n_layers)
    writes = torch.zeros(len(groups), 2, n_layers)
    sites = [f"blocks.{l}.{suffix}" for l in range(n_layers) for suffix in parts.values()]
    for chunk, cache in _chunks(model, batch, sites, batch_size, progress, "massive: origin"):
        for i, row in enumerate(chunk):
            n = int(cache.attention_mask[i].sum())
            for k, suffix in enumerate(parts.values()):
                for l in range(n_layers):
                    out = cache[f"blocks.{l}.{suffix}"][i, -n:]  # [n, d]
                    for g, group in enumerate(groups):
                        picked = out[group.entries[row]].abs()
                        if picked.numel():
                            maxima[g, k, l] = max(maxima[g, k, l], picked.max())
                        writes[g, k, l] += (out * signs[g][row]).sum()
    rows, origins = [], []
    for g, group in enumerate(groups):
        writes[g] /= group.n_entries
        for l in range(n_layers):
            resid_write = float(sum((r[l] * s).sum() for r, s in zip(resid, signs[g]))) / group.n_entries
            rows.append({"group_layer": group.first_layer, "layer": l, "attn_max": float(maxima[g, 0, l]),
                         "attn_write": float(writes[g, 0, l]), "mlp_max": float(maxima[g, 1, l]),
                         "mlp_write": float(writes[g, 1, l]), "resid_write": resid_write})
        origin = {"first_layer": group.first_layer, "dims": group.dims, "massive_value": group.massive_value,
                  "n_entries": group.n_entries, "fraction": config.origin_fraction, "layer": None, "sublayer": None}
        for l in range(n_layers):
            hit = next((k for k in (0, 1) if writes[g, k, l] >= config.origin_fraction * group.massive_value), None)
            if hit is not None:
                origin.update(layer=l, sublayer=("attn", "mlp")[hit], write=float(writes[g, hit, l]),
                              share=float(writes[g, hit, l]) / group.massive_value)
                break
        origins.append(origin)
    _add_neurons(model, batch, groups, signs, origins, config, batch_size, progress)
    return pd.DataFrame(rows), origins


def _add_neurons(model, batch, groups, signs, origins, config, batch_size, progress) -> None:
    """Top neurons (and the output bias' share) of every MLP origin with a dense MLP."""
    wanted = [g for g, o in enumerate(origins)
              if o["sublayer"] == "mlp" and f"blocks.{o['layer']}.mlp.hook_post" in model.sites(o["layer"])]
    if not wanted:
        return
    spec, hf = model.spec, model.hf
    layers = sorted({origins[g]["layer"] for g in wanted})
    post_norm = spec.ln2_post is not None and spec.norm_kind == "rms"
    sites = [f"blocks.{l}.mlp.hook_post" for l in layers]
    sites += [f"blocks.{l}.ln2_post.hook_scale" for l in layers] if post_norm else []
    w_out = {l: down_proj_weight(spec, hf, l).detach().float().cpu() for l in layers}  # [d_model, d_mlp]
    gain = {l: (get_module(hf, f"{spec.layers}.{l}.{spec.ln2_post}").weight.detach().float().cpu()
                + spec.norm_weight_offset) if post_norm else None for l in layers}  # [d_model]
    totals = {g: torch.zeros(w_out[origins[g]["layer"]].shape[1]) for g in wanted}
    for chunk, cache in _chunks(model, batch, sites, batch_size, progress, "massive: neurons"):
        for i, row in enumerate(chunk):
            n = int(cache.attention_mask[i].sum())
            for g in wanted:
                l = origins[g]["layer"]
                aligned = signs[g][row]  # [n, d]
                if post_norm:
                    aligned = aligned * gain[l] / cache[f"blocks.{l}.ln2_post.hook_scale"][i, -n:]
                totals[g] += ((aligned @ w_out[l]) * cache[f"blocks.{l}.mlp.hook_post"][i, -n:]).sum(0)
    for g in wanted:
        neurons = totals[g] / groups[g].n_entries
        order = neurons.argsort(descending=True)[: config.top_neurons]
        origin = origins[g]
        origin["top_neurons"] = [{"neuron": int(n), "write": float(neurons[n])} for n in order]
        origin["neurons_write_total"] = float(neurons.sum())
        bias = down_proj_bias(spec, hf, origin["layer"])
        if bias is not None and not post_norm:  # a bias writes the same into every token: no neuron's doing
            aligned = sum(s.sum(0) for s in signs[g]) @ bias.detach().float().cpu()
            origin["bias_write"] = float(aligned) / groups[g].n_entries


def _chunks(model, batch, sites, batch_size, progress, label):
    rows = list(range(len(batch.texts)))
    chunks = [rows[s:s + batch_size] for s in range(0, len(rows), batch_size)]
    for chunk in tqdm(chunks, desc=label, disable=not progress, leave=False):
        _, cache = model.run_with_cache(batch.select(chunk), sites=sites, logits=None, batch_size=len(chunk),
                                        to_cpu=True, dtype=torch.float32)
        yield chunk, cache


def intervention_ppl(model, texts, groups: list[MassiveGroup], median_abs: torch.Tensor, config,
                     progress: bool) -> dict:
    """Perplexity: original, massive entries zeroed, massive entries set to their corpus mean."""
    source = "shipped interp/data/ppl_sample.txt" if texts is None else (config.ppl_file or "caller's texts")
    texts = sample_texts() if texts is None else list(texts)
    sites = {g.first_layer: f"blocks.{g.first_layer}.hook_resid_post" for g in groups}
    found: dict[tuple, list[torch.Tensor]] = {}  # the same chunks come back for each ablation
    counted = {"massive_tokens": 0}

    def massive_positions(sub) -> list[torch.Tensor]:  # per group [b, P] bool over the padded positions
        key = (tuple(sub.texts), tuple(sub.input_ids.flatten().tolist()))
        if key not in found:
            _, cache = model.run_with_cache(sub, sites=list(sites.values()), logits=None, to_cpu=True,
                                            batch_size=len(sub.texts), dtype=torch.float32)
            found[key] = [passing(cache[sites[g.first_layer]][..., g.dims], median_abs[g.first_layer], config).any(-1)
                          & sub.attention_mask.bool() for g in groups]
        return found[key]

    def ablation(kind: str):
        def edits_for(sub):
            masks = massive_positions(sub)
            if kind == "zero":
                counted["massive_tokens"] += int(sum(m.sum() for m in masks))
            edits = []
            for group, mask in zip(groups, masks):
                value = torch.zeros(model.d_model)
                if kind == "mean":
                    value[group.dims] = torch.tensor(group.dim_means)
                edits.append(Set(sites[group.first_layer], value=value, positions=mask, dims=group.dims))
            return edits
        return edits_for

    kwargs = {"max_tokens": config.ppl_tokens, "progress": progress}
    original = perplexity(model, texts, **kwargs)
    zeroed = perplexity(model, texts, edits_for=ablation("zero"), **kwargs)
    mean_set = perplexity(model, texts, edits_for=ablation("mean"), **kwargs)
    return {"original": original.ppl, "zero": zeroed.ppl, "mean": mean_set.ppl, "n_texts": original.n_texts,
            "n_tokens": original.n_tokens, "massive_tokens": counted["massive_tokens"],
            "edits": [{"layer": g.first_layer, "dims": g.dims} for g in groups], "texts": source}
