"""Refusal steering: add a difference-of-means refusal direction, or ablate it.

Arditi et al. 2024 ("Refusal in language models is mediated by a single direction") and
"How Alignment Routes" (arXiv 2604.04385, step 6): the direction is
mean(harmful) - mean(benign) of the decoder-layer output at the last prompt token (after
the chat template) at one middle layer, built on the train split of
interp/data/refusal_pairs.jsonl. On the held-out test split:
- adding alpha * direction at that layer (all positions, generated tokens included) to
  benign prompts should make the model refuse them;
- ablating the direction (projected out of every write to the residual stream, every
  layer) on harmful prompts should make it answer some of them.
Responses are greedy and classified by the keyword classifier (`interp.metrics.refusal`), the
offline stand-in for the LLM judges of the papers.

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/refusal-direction.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import pandas as pd
import torch

from interp.runs.config import option
from interp.metrics.refusal import classify_responses, refusal_pairs
from interp.runs.results import Result, RunMeta

from .apply import VectorUse, ablation_edits, steering_edits
from .contrast import ContrastConfig, make_vector


@dataclass
class RefusalSteerConfig:
    layer: int | None = option(None, "layer of the direction (default: the middle layer)")
    alphas: list[float] = option(default_factory=lambda: [1.0, 2.0, 4.0],
                                 help="strengths added to benign prompts (times the mean difference)")
    max_new_tokens: int = option(24, "tokens generated per prompt")
    gen_batch_size: int = option(16, "prompts per generate call")
    n_test: int | None = option(None, "use only the first N held-out pairs (default: every held-out pair of the pairs file)")

    def validate(self) -> None:
        if self.layer is not None and self.layer < 0:
            raise ValueError(f"layer must be >= 0, got {self.layer}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"n_test must be >= 1, got {self.n_test}")
        if self.max_new_tokens < 1 or self.gen_batch_size < 1:
            raise ValueError("max_new_tokens and gen_batch_size must be >= 1")


@dataclass
class RefusalSteerResult(Result):
    analysis: ClassVar[str] = "refusal-steer"
    layer: int
    direction_norm: float
    table: pd.DataFrame  # condition, prompts, alpha, n, refusal_rate, answer_rate, other_rate
    responses: pd.DataFrame  # prompts (benign/harmful), condition, alpha, prompt, response, label
    direction: torch.Tensor | None = None  # [d_model] mean(harmful) - mean(benign) at `layer`

    def summary(self) -> dict:
        rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                for r in self.table.to_dict("records")]
        return {"layer": self.layer, "direction_norm": round(self.direction_norm, 4), "table": rows}

    def figures(self) -> dict:
        import plotly.express as px

        frame = self.table.assign(setting=[f"{c} a={a:g}" for c, a in zip(self.table.condition, self.table.alpha)])
        return {"refusal_rate": px.bar(frame, x="setting", y="refusal_rate", color="prompts",
                                       title=f"refusal rate (keyword classifier), direction at layer {self.layer}")}


def _generate(model, prompts, edits, config: RefusalSteerConfig) -> list[str]:
    texts: list[str] = []
    for start in range(0, len(prompts), config.gen_batch_size):
        chunk = prompts[start:start + config.gen_batch_size]
        texts += model.generate(chunk, edits=edits, chat=True, max_new_tokens=config.max_new_tokens).texts
    return texts


def run_refusal_steer(model, config: RefusalSteerConfig, batch_size=None, seed: int = 0) -> RefusalSteerResult:
    config.validate()
    layer = model.n_layers // 2 if config.layer is None else config.layer
    if layer >= model.n_layers:
        raise ValueError(f"layer {layer} out of range: the model has layers 0..{model.n_layers - 1}")
    meta = RunMeta(model=dict(model.info), config={**asdict(config), "layer": layer}, seed=seed)
    train, test = refusal_pairs("train"), refusal_pairs("test")[:config.n_test]
    with meta.timed("direction"):
        vector = make_vector(model, [p["harmful"] for p in train], [p["benign"] for p in train],
                             ContrastConfig(layers=[layer]), chat=True, batch_size=batch_size)
    harmful, benign = [p["harmful"] for p in test], [p["benign"] for p in test]
    settings = [("benign", "baseline", 0.0, benign, [])]
    settings += [("benign", "add", alpha, benign, steering_edits(model, [VectorUse(vector, alpha=alpha)]))
                 for alpha in config.alphas]
    settings += [("harmful", "baseline", 0.0, harmful, []),
                 ("harmful", "ablate", 0.0, harmful, ablation_edits(model, vector))]
    rows, responses = [], []
    with meta.timed("generate"):
        for prompt_set, condition, alpha, prompts, edits in settings:
            texts = _generate(model, prompts, edits, config)
            labels = classify_responses(texts)
            rows.append(dict(condition=condition, prompts=prompt_set, alpha=alpha, n=len(texts),
                             refusal_rate=labels.count("refusal") / len(labels),
                             answer_rate=labels.count("answer") / len(labels),
                             other_rate=labels.count("other") / len(labels)))
            responses += [dict(prompts=prompt_set, condition=condition, alpha=alpha, prompt=p, response=t, label=lab)
                          for p, t, lab in zip(prompts, texts, labels)]
    direction = vector.vectors[layer].float().cpu()
    return RefusalSteerResult(layer=layer, direction_norm=float(direction.norm()), table=pd.DataFrame(rows),
                              responses=pd.DataFrame(responses), direction=direction, meta=meta)
