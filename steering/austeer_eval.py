"""AUSteer evaluation: test accuracy with no steering, block-level steering and AUSteer.

The comparison of arXiv 2602.04428 on our download-free tasks (`steering.tasks`):
1. no steering;
2. block-level difference of means: mean(right) - mean(wrong) of the decoder-layer output
   at the last token of prompt + answer (the same train triples), added with alpha at
   every position of one layer; the layer and alpha are chosen on the validation split;
3. AUSteer at each k: the global top-k coordinates of `site` by |beta|, multiplicative
   steering with alpha chosen on the validation split.
Test accuracy is reported for the chosen settings, with the number of steered coordinates
(d_model for block-level steering, k for AUSteer). Accuracy = greedy generation of a few
tokens, the first number (or word) compared with the right answer, as in the paper's code.
Unit selection follows `AUSteerOptions` (tie-break, capture precision, positive text; the
config's fields of the same names); docs/fidelity/austeer.md lists where it differs from
the authors' code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from interp.runs.config import option
from interp.engine.edits import Add
from interp.runs.results import Result, RunMeta

from .apply import VectorUse, steering_edits
from .austeer import AUSteerOptions, momentum_scores, select, triple_activations
from .tasks import Task, TaskItem, triples
from .vectors import SITES


@dataclass
class AUSteerEvalConfig(AUSteerOptions):
    site: str = option("ffn", "AUSteer site: attention (o_proj input), ffn (MLP output), layer (decoder output)",
                       choices=tuple(SITES))
    ks: list[int] = option(default_factory=lambda: [2, 8, 32, 100], help="numbers of steered coordinates")
    alphas: list[float] = option(default_factory=lambda: [2.0, 8.0, 32.0, 100.0],
                                 help="AUSteer strengths tried on the validation split")
    block_alphas: list[float] = option(default_factory=lambda: [1.0, 2.0, 4.0, 8.0],
                                       help="block-level (difference of means) strengths tried on validation")
    block_layer_stride: int = option(2, "try every n-th layer for block-level steering")
    n_train: int = option(150, "contrastive triples to fit on")
    n_val: int = option(40, "items to choose alpha (and the block layer) on")
    n_test: int = option(120, "items to report accuracy on")
    eval_batch_size: int = option(32, "prompts per generate call")

    def validate(self) -> None:
        AUSteerOptions.validate(self)
        if self.site not in SITES:
            raise ValueError(f"site must be one of {tuple(SITES)}, got '{self.site}'")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive integers, got {self.ks}")
        if not self.alphas or not self.block_alphas:
            raise ValueError("alphas and block_alphas need at least one value each")
        if self.block_layer_stride < 1:
            raise ValueError(f"block_layer_stride must be >= 1, got {self.block_layer_stride}")
        if self.n_train < 2 or self.n_val < 1 or self.n_test < 1:
            raise ValueError("need n_train >= 2, n_val >= 1 and n_test >= 1")
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {self.eval_batch_size}")


@dataclass
class AUSteerEvalResult(Result):
    analysis: ClassVar[str] = "austeer-eval"
    task: str
    site: str
    table: pd.DataFrame  # method, k, n_coordinates, layer, alpha, val_accuracy, test_accuracy
    sweep: pd.DataFrame  # every (method, k, layer, alpha) tried on validation
    beta: torch.Tensor  # [n_layers, width]
    selected: list  # [layer, dim, beta] of the top max(ks) coordinates

    def summary(self) -> dict:
        rows = self.table.to_dict("records")
        return {"task": self.task, "site": self.site,
                "table": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}

    def figures(self) -> dict:
        import plotly.express as px

        frame = self.table.assign(label=[f"{m} (k={k})" if m == "austeer" else m
                                         for m, k in zip(self.table.method, self.table.k)])
        fig = px.bar(frame, x="label", y="test_accuracy", text="n_coordinates",
                     title=f"{self.task}: test accuracy (bar text = steered coordinates)")
        return {"accuracy": fig, "units": units_figure(self.selected, self.site)}


def units_figure(selected: list, site: str):
    """Where the selected atomic units sit: layer x coordinate, coloured by beta.

    `selected` is [[layer, coordinate, beta], ...] best first (the rank is the hover text)."""
    import plotly.graph_objects as go

    layers, dims, betas = ([row[i] for row in selected] for i in range(3))
    fig = go.Figure(go.Scatter(
        x=layers, y=dims, mode="markers", text=list(range(1, len(selected) + 1)),
        marker={"size": 10, "color": betas, "colorscale": "RdBu", "cmin": -1, "cmax": 1, "colorbar": {"title": "beta"}},
        hovertemplate="rank %{text}: layer %{x}, coordinate %{y}, beta %{marker.color:.3f}<extra></extra>"))
    fig.update_layout(title=f"Where the top {len(selected)} atomic units sit ({site})",
                      xaxis={"title": "layer", "dtick": 1}, yaxis_title="coordinate", height=360, margin={"t": 40})
    return fig


def task_accuracy(model, task: Task, items: list[TaskItem], edits=(), chat: bool = False,
                  batch_size: int = 32) -> tuple[float, list[str]]:
    """Greedy-generate each item's answer with `edits` on; (accuracy, generations)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt))
    outputs: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        gen = model.generate([items[i].prompt for i in rows], edits=edits, chat=chat,
                             max_new_tokens=task.max_new_tokens, stop_at_eos=True)
        outputs.update(zip(rows, gen.texts))
    texts = [outputs[i] for i in range(len(items))]
    correct = sum(task.is_correct(text, item) for text, item in zip(texts, items))
    return correct / len(items), texts


def run_austeer_eval(model, task: Task, config: AUSteerEvalConfig, chat: bool = False, batch_size=None,
                     progress: bool = True, seed: int = 0) -> AUSteerEvalResult:
    config.validate()
    meta = RunMeta(model=dict(model.info), config={**asdict(config), "task": task.name, "chat": chat}, seed=seed)
    split = task.split(config.n_train, config.n_val, config.n_test, seed=seed)
    sites = list(dict.fromkeys([config.site, "layer"]))
    with meta.timed("fit"):
        acts = triple_activations(model, triples(split["train"]), sites, chat=chat, batch_size=batch_size,
                                  positive_text=config.positive_text)
        scores = momentum_scores(*acts[config.site], capture_dtype=config.capture_dtype)
        right, wrong = acts["layer"]  # [N, L, d_model], float32 whatever capture_dtype
        block = (right.mean(0) - wrong.mean(0))  # [L, d_model] difference of means per layer

    def accuracy(name: str, edits) -> float:
        return task_accuracy(model, task, split[name], edits, chat, config.eval_batch_size)[0]

    sweep: list[dict] = []
    rows: list[dict] = []
    bar = tqdm(desc="austeer-eval", disable=not progress,
               total=2 + len(range(0, model.n_layers, config.block_layer_stride)) * len(config.block_alphas)
               + len(config.ks) * len(config.alphas) + 1 + len(config.ks))
    with meta.timed("evaluate"):
        base_val = accuracy("val", ())
        base_test = accuracy("test", ())
        bar.update(2)
        rows.append(dict(method="none", k=0, n_coordinates=0, layer=None, alpha=0.0, val_accuracy=base_val,
                         test_accuracy=base_test))
        best = None
        for layer in range(0, model.n_layers, config.block_layer_stride):
            for alpha in config.block_alphas:
                edit = Add(f"blocks.{layer}.hook_resid_post", vector=block[layer].to(model.device, model.dtype),
                           alpha=alpha)
                val = accuracy("val", [edit])
                sweep.append(dict(method="block-mean-diff", k=model.d_model, layer=layer, alpha=alpha, val_accuracy=val))
                if best is None or val > best[0]:
                    best = (val, layer, alpha, edit)
                bar.update(1)
        rows.append(dict(method="block-mean-diff", k=model.d_model, n_coordinates=model.d_model, layer=best[1],
                         alpha=best[2], val_accuracy=best[0], test_accuracy=accuracy("test", [best[3]])))
        bar.update(1)
        for k in config.ks:
            vector = select(scores, k, site=config.site, model=model, tie_break=config.tie_break)
            best = None
            for alpha in config.alphas:
                edits = steering_edits(model, [VectorUse(vector, alpha=alpha)])
                val = accuracy("val", edits)
                sweep.append(dict(method="austeer", k=k, layer=None, alpha=alpha, val_accuracy=val))
                if best is None or val > best[0]:
                    best = (val, alpha, edits)
                bar.update(1)
            n_coords = sum(int((v != 0).sum()) for v in vector.vectors.values())
            rows.append(dict(method="austeer", k=k, n_coordinates=n_coords, layer=None, alpha=best[1],
                             val_accuracy=best[0], test_accuracy=accuracy("test", best[2])))
            bar.update(1)
    bar.close()
    top = select(scores, max(config.ks), site=config.site, model=model, tie_break=config.tie_break).config["selected"]
    table, tried = pd.DataFrame(rows), pd.DataFrame(sweep)
    table["layer"], tried["layer"] = table["layer"].astype("Int64"), tried["layer"].astype("Int64")
    return AUSteerEvalResult(task=task.name, site=config.site, table=table, sweep=tried,
                             beta=scores.beta, selected=top, meta=meta)
