"""Feature dashboards (Neuronpedia-style) for an attached SAE over a prompt set.

    result = explore_features(model, prompts, attachment, FeaturesConfig(top_k=20))
    result.save("runs/sae-features")          # read by the explorer's SAE page (app/pages_sae.py)

Per feature: the top-activating contexts (prompt, position, activation, and the activation
of every token in a window around it), the histogram of its non-zero activations, its firing
density and its top / bottom logit tokens (`interp.features.attribution.logit_effects`).
Two passes over the prompts through the engine (`run_with_cache` of
`<site>.hook_sae_acts_post`): the first keeps a running top-k, maximum and counts per
feature, the second fills the histograms (bins from 0 to each feature's maximum) and the
context windows. The first `skip_first` positions of each prompt are left out (counted as
not firing, shown with activation 0): the first token's residual is massive and an SAE's
features fire on it whatever the text (Sun et al. 2024, massive activations). The decoder rows are kept so the page can export a feature as a steering
vector (`interp.features.steer.decoder_vector` semantics) for the playground.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..runs.config import option
from ..runs.results import Result, RunMeta
from .attribution import logit_effects

MAX_FEATURES = 16384


@dataclass
class FeaturesConfig:
    top_k: int = option(20, "top-activating contexts kept per feature")
    window: int = option(12, "tokens shown before the activating token (and half as many after)")
    bins: int = option(30, "bins of each feature's activation histogram")
    logit_k: int = option(10, "top and bottom logit tokens per feature")
    features: str = option("all", "features to keep: 'all' or indices and ranges like 0-99,512")
    chunk: int = option(32, "prompts per engine call")
    skip_first: int = option(1, "positions at the start of each prompt left out (the first token's residual "
                             "is massive and SAEs fire on it regardless of content; 0 keeps every token)")

    def validate(self) -> None:
        if min(self.top_k, self.bins, self.logit_k, self.chunk) < 1 or min(self.window, self.skip_first) < 0:
            raise ValueError("--top-k, --bins, --logit-k and --chunk must be >= 1, --window and --skip-first >= 0")

    def feature_ids(self, d_sae: int) -> list[int]:
        """The selected feature indices; ValueError for a bad or out-of-range list."""
        if self.features == "all":
            if d_sae > MAX_FEATURES:
                raise ValueError(f"the SAE has {d_sae} features; pick at most {MAX_FEATURES} with --features")
            return list(range(d_sae))
        ids: list[int] = []
        for part in self.features.split(","):
            lo, _, hi = part.strip().partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise ValueError(f"--features takes indices and ranges like 0-99,512; got '{part}'")
            ids += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        bad = [i for i in ids if i >= d_sae]
        if bad:
            raise ValueError(f"feature {bad[0]} out of range: the SAE has features 0..{d_sae - 1}")
        return sorted(set(ids))


@dataclass
class FeaturesResult(Result):
    """Feature dashboards; F = selected features, K = top_k, W = window + window // 2 + 1.

    top_value / top_prompt / top_pos [F, K] (activation, prompt index, real position; -1 where
    fewer than K tokens fired), window_tokens / window_acts [F, K, W] (token ids, -1 padding,
    and the feature's activation on each), hist_counts [F, bins] over hist_edges [F, bins + 1],
    density / max_act / mean_act [F] (firing fraction of all tokens, max, mean over firing
    tokens), logit_top_ids / logit_bottom_ids / logit_top / logit_bottom [F, logit_k],
    decoder [F, width] (rows of W_dec)."""

    analysis: ClassVar[str] = "sae-features"
    sae_site: str
    sae_out_site: str
    d_sae: int
    architecture: str
    prompts: list[str]
    features: list[int]
    n_tokens: int
    token_text: dict[int, str]
    top_value: torch.Tensor
    top_prompt: torch.Tensor
    top_pos: torch.Tensor
    window_tokens: torch.Tensor
    window_acts: torch.Tensor
    hist_counts: torch.Tensor
    hist_edges: torch.Tensor
    density: torch.Tensor
    max_act: torch.Tensor
    mean_act: torch.Tensor
    logit_top_ids: torch.Tensor
    logit_top: torch.Tensor
    logit_bottom_ids: torch.Tensor
    logit_bottom: torch.Tensor
    decoder: torch.Tensor
    vector_site: str | None = None  # steering-vector site the decoder rows act at ("layer", ...), None: not exportable
    vector_layer: int | None = None
    model_facts: dict = dataclasses.field(default_factory=dict)

    def row(self, feature: int) -> int:
        """Index of `feature` in the result's tensors; KeyError when it was not kept."""
        try:
            return self.features.index(feature)
        except ValueError:
            raise KeyError(f"feature {feature} is not in this run") from None

    def summary(self) -> dict:
        alive = int((self.density > 0).sum())
        fired = self.density[self.density > 0]
        return {"sae_site": self.sae_site, "features": len(self.features), "alive": alive,
                "prompts": len(self.prompts), "tokens_read": self.n_tokens,
                "median_density_alive": float(fired.median()) if len(fired) else 0.0}

    def figures(self) -> dict:
        from .figures import density_figure

        return {"density": density_figure(self)}

    def steering_vector(self, feature: int, normalize: bool = False):
        """The feature's decoder row as a `steering.vectors.SteeringVector`; ValueError when
        the SAE's site takes no steering vector."""
        from steering.vectors import SteeringVector

        if self.vector_site is None:
            raise ValueError(f"an SAE at '{self.sae_out_site}' has no steering-vector site (resid_post, mlp_out, hook_z)")
        row = self.decoder[self.row(feature)].float()
        if normalize:
            row = row / row.norm().clamp_min(1e-12)
        return SteeringVector({self.vector_layer: row}, site=self.vector_site, kind="add", method="sae_feature",
                              normalization="unit" if normalize else "none", model=dict(self.model_facts),
                              config={"sae_site": self.sae_site, "feature": int(feature)})


@torch.inference_mode()
def explore_features(model, prompts: list[str], attachment, config: FeaturesConfig | None = None, *,
                     chat: bool = False, batch_size=None, progress=None) -> FeaturesResult:
    """Build the dashboards (module docstring). Raises ValueError for a bad config or no prompts."""
    from .steer import decoder_vector

    config = config or FeaturesConfig()
    config.validate()
    if not prompts:
        raise ValueError("no prompts: pass a prompt file with at least one line")
    features = config.feature_ids(attachment.sae.cfg.d_sae)
    meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config))
    name = f"{attachment.site}.hook_sae_acts_post"
    index = torch.tensor(features)
    n_feat, k = len(features), config.top_k
    top_value = torch.full((n_feat, k), -1.0)
    top_prompt = torch.full((n_feat, k), -1, dtype=torch.long)
    top_pos = torch.full((n_feat, k), -1, dtype=torch.long)
    count = torch.zeros(n_feat)
    total = torch.zeros(n_feat, dtype=torch.float64)
    peak = torch.zeros(n_feat)
    n_tokens = 0
    chunks = [list(range(i, min(i + config.chunk, len(prompts)))) for i in range(0, len(prompts), config.chunk)]

    def acts_of(rows):  # [(real token ids [n], acts [n, F])] of each prompt of the chunk
        _, cache = model.run_with_cache([prompts[r] for r in rows], [name], chat=chat, logits=None, to_cpu=True,
                                        batch_size=batch_size)
        out = []
        for i in range(len(rows)):
            real = cache.attention_mask[i].bool()
            acts = cache[name][i][real.to(cache[name].device)][:, index].float()
            out.append((cache.input_ids[i][real], acts, config.skip_first))
        return out

    with meta.timed("top-k pass"):
        for n, rows in enumerate(chunks):
            for r, (_, acts, skip) in zip(rows, acts_of(rows)):
                acts = acts.clone()
                acts[:skip] = 0.0
                n_tokens += max(acts.shape[0] - skip, 0)
                fired = acts > 0
                count += fired.sum(0)
                total += acts.clamp_min(0).sum(0).double()
                peak = torch.maximum(peak, acts.max(0).values)
                values = torch.cat([top_value, acts.T], 1)  # [F, K + n]
                prompt = torch.cat([top_prompt, torch.full((n_feat, acts.shape[0]), r)], 1)
                pos = torch.cat([top_pos, torch.arange(acts.shape[0]).expand(n_feat, -1)], 1)
                best = values.topk(k, dim=1).indices
                top_value, top_prompt, top_pos = values.gather(1, best), prompt.gather(1, best), pos.gather(1, best)
            if progress:
                progress(n + 1, 2 * len(chunks))
    empty = top_value <= 0
    top_prompt[empty], top_pos[empty], top_value[empty] = -1, -1, 0.0
    before, after = config.window, config.window // 2
    width = before + after + 1
    window_tokens = torch.full((n_feat, k, width), -1, dtype=torch.long)
    window_acts = torch.zeros(n_feat, k, width)
    hist_edges = torch.stack([torch.linspace(0, float(p) if p > 0 else 1.0, config.bins + 1) for p in peak]) \
        if n_feat else torch.zeros(0, config.bins + 1)
    hist_counts = torch.zeros(n_feat, config.bins)
    wanted: dict[int, list[tuple[int, int]]] = {}
    for f, j in zip(*torch.nonzero(top_prompt >= 0, as_tuple=True)):
        wanted.setdefault(int(top_prompt[f, j]), []).append((int(f), int(j)))
    with meta.timed("context pass"):
        for n, rows in enumerate(chunks):
            for r, (ids, acts, skip) in zip(rows, acts_of(rows)):
                acts = acts.clone()
                acts[:skip] = 0.0
                fired = acts > 0
                bins = ((acts / hist_edges[:, -1]) * config.bins).long().clamp(0, config.bins - 1)  # [n, F]
                hist_counts.scatter_add_(1, (bins * fired).T, fired.T.float())
                for f, j in wanted.get(r, []):
                    centre = int(top_pos[f, j])
                    lo, hi = max(0, centre - before), min(len(ids), centre + after + 1)
                    start = before - (centre - lo)
                    window_tokens[f, j, start:start + hi - lo] = ids[lo:hi]
                    window_acts[f, j, start:start + hi - lo] = acts[lo:hi, f]
            if progress:
                progress(len(chunks) + n + 1, 2 * len(chunks))
    with meta.timed("logits"):
        effects = logit_effects(model, attachment, features, config.logit_k) if n_feat else []
    used = set(window_tokens[window_tokens >= 0].tolist())
    for effect in effects:
        used |= {t for t, _, _ in effect.top + effect.bottom}
    token_text = {int(t): model.tokenizer.decode([int(t)]) for t in sorted(used)}
    try:
        probe = decoder_vector(model, attachment, features[0]) if n_feat else None
        vector_site, vector_layer = (probe.site, probe.layers[0]) if probe is not None else (None, None)
        facts = dict(probe.model) if probe is not None else {}
    except ValueError:
        vector_site, vector_layer, facts = None, None, {}
    decoder = attachment.sae.W_dec.detach().float().cpu()[index].reshape(n_feat, -1)

    return FeaturesResult(
        sae_site=attachment.site, sae_out_site=attachment.out_site, d_sae=int(attachment.sae.cfg.d_sae),
        architecture=str(attachment.sae.cfg.architecture()), prompts=list(prompts), features=features,
        n_tokens=n_tokens, token_text=token_text, top_value=top_value, top_prompt=top_prompt, top_pos=top_pos,
        window_tokens=window_tokens, window_acts=window_acts, hist_counts=hist_counts, hist_edges=hist_edges,
        density=count / max(n_tokens, 1), max_act=peak.clamp_min(0), mean_act=(total / count.clamp_min(1)).float(),
        logit_top_ids=_column(effects, "top", 0, torch.long, n_feat), logit_top=_column(effects, "top", 2, torch.float32, n_feat),
        logit_bottom_ids=_column(effects, "bottom", 0, torch.long, n_feat),
        logit_bottom=_column(effects, "bottom", 2, torch.float32, n_feat),
        decoder=decoder, vector_site=vector_site, vector_layer=vector_layer, model_facts=facts, meta=meta)


def _column(effects, which: str, field_index: int, dtype, n: int) -> torch.Tensor:
    """[F, logit_k] of one field of the effects' top or bottom token lists."""
    rows = [[entry[field_index] for entry in getattr(e, which)] for e in effects]
    return torch.tensor(rows, dtype=dtype) if rows else torch.zeros(n, 0, dtype=dtype)
