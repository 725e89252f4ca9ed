"""Collect step activations: generate (or read) traces, then one teacher-forced forward per
trace captures the residual after each chosen layer at every step-end token.

Run directory written by `collect` (each later stage reads it):

    traces.jsonl   one trace per line: question, prompt, response, answer, correct, steps
                   (text, span, end token position, label); written once, reused on resume
    steps.jsonl    one row per step in store order: trace, step, text, label, position
    store/         the engine's activation store (`interp.engine.store` layout): shards with
                   `blocks.{l}.hook_resid_post` [n_steps, d_model], `prompt_index` (trace id),
                   `position` (token) and `step_index`; resumes after interruption
    collect.json   the config, model facts and counts

Traces come from `--problems FILE` (JSONL with `question` and `response`: used as they are;
`question` only: generated) or `--n N` programmatic problems, generated greedily through the
engine (`Model.generate`) in batches.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from interp.engine.files import save_safetensors
from interp.engine.provenance import ids_sha256, provenance
from interp.engine.store import ActivationStore, open_or_create, prompts_hash, write_json_atomic
from interp.engine.tokens import pad_rows
from interp.runs.config import option

from .labels import Judge, label_steps
from .traces import SEPARATOR, Problem, Trace, check_steps, format_prompt, make_problems, read_traces_jsonl, \
    split_steps, step_end_tokens

TRACES, STEPS, STORE, COLLECT = "traces.jsonl", "steps.jsonl", "store", "collect.json"


def resid_site(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


@dataclass
class CollectConfig:
    layers: list[int] = option(default_factory=list, help="layers whose residual output is captured "
                               "(comma-separated; default: the middle layer)")
    n: int = option(64, "number of generated problems when no --problems file is given")
    separator: str = option(SEPARATOR, "text that separates reasoning steps")
    max_new_tokens: int = option(256, "tokens generated per trace")
    max_tokens: int = option(1024, "traces are cut to this many tokens for the teacher-forced pass")
    gen_batch: int = option(8, "traces generated per batch")

    def validate(self, model=None) -> None:
        if not self.separator:
            raise ValueError("--separator must not be empty")
        if self.n < 1 or self.max_new_tokens < 1 or self.gen_batch < 1:
            raise ValueError("--n, --max-new-tokens and --gen-batch must be >= 1")
        if model is not None:
            for layer in self.layers:
                if not 0 <= layer < model.n_layers:
                    raise ValueError(f"--layer {layer} out of range: the model has layers 0..{model.n_layers - 1}")


def build_traces(model, problems: list[Problem], responses: list[str | None], config: CollectConfig, chat: bool,
                 progress: bool = True) -> list[Trace]:
    """Traces for `problems`: given responses are kept, missing ones generated greedily."""
    prompts = [format_prompt(model, p.question, chat) for p in problems]
    todo = [i for i, r in enumerate(responses) if r is None]
    responses = list(responses)
    bar = tqdm(total=len(todo), desc="generate", disable=not progress or not todo, leave=False)
    for start in range(0, len(todo), config.gen_batch):
        rows = todo[start:start + config.gen_batch]
        batch = model.tokenize([prompts[i] for i in rows], formatted=chat)
        out = model.generate(batch, max_new_tokens=config.max_new_tokens)
        for i, text in zip(rows, out.texts):
            responses[i] = text
        bar.update(len(rows))
    bar.close()
    return [Trace(p.question, prompt, r, p.answer, split_steps(prompt, r, config.separator))
            for p, prompt, r in zip(problems, prompts, responses)]


def collect(model, config: CollectConfig, out: str | Path, *, problems_file: str | None = None, chat: bool = False,
            judge: Judge | None = None, batch_size: int | str | None = None, seed: int = 0,
            progress: bool = True) -> ActivationStore:
    """Write traces, step metadata and the step-activation store under `out` (see module doc).

    Raises ValueError before any forward pass for a layer out of range, an empty separator or
    traces in which the separator never occurs."""
    out = Path(out)
    if not config.layers:
        config.layers = [model.n_layers // 2]
    config.validate(model)
    sites = [resid_site(layer) for layer in config.layers]
    traces = _load_or_build(model, config, out, problems_file, chat, judge, seed, progress)
    texts = [t.text for t in traces]
    encoded = [step_end_tokens(model.tokenizer, t.text, t.steps, add_special_tokens=not chat) for t in traces]
    header = {"sites": sites, "positions": "step_ends", "chat": chat, "n_prompts": len(traces),
              "prompts_sha256": prompts_hash(texts), "separator": config.separator,
              # model, dtypes, BOS policy, chat template, truncation and the ids actually run: a resume that
              # differs is refused, naming the field (`interp.engine.provenance`)
              **provenance(model, chat=chat, dtype=torch.float32, truncation=config.max_tokens),
              "token_ids_sha256": ids_sha256(ids for ids, *_ in encoded)}
    index = open_or_create(out / STORE, header)
    done = {i for shard in index["shards"] for i in shard["prompts"]}
    todo = sorted((i for i in range(len(traces)) if i not in done), key=lambda i: -len(encoded[i][0]))
    size = 8 if batch_size in (None, "auto") else int(batch_size)
    bar = tqdm(total=len(traces), initial=len(done), desc="capture steps", disable=not progress, leave=False)
    for start in range(0, len(todo), size):
        rows = todo[start:start + size]
        tensors = _capture(model, [encoded[i] for i in rows], rows, sites, config.max_tokens)
        name = f"shard-{len(index['shards']):05d}.safetensors"
        save_safetensors(tensors, out / STORE / (name + ".tmp"))
        os.replace(out / STORE / (name + ".tmp"), out / STORE / name)
        index["shards"].append({"file": name, "prompts": rows})
        write_json_atomic(index, out / STORE / "index.json")
        bar.update(len(rows))
    bar.close()
    store = ActivationStore(out / STORE)
    _write_steps(store, traces, sites[0], out)
    facts = {"config": asdict(config), "model": {k: model.info.get(k) for k in ("spec", "sha256", "family")},
             "d_model": model.d_model, "n_layers": model.n_layers, "sites": sites, "chat": chat,
             "n_traces": len(traces), "n_steps": sum(len(t.steps) for t in traces)}
    write_json_atomic(facts, out / COLLECT)
    return store


def _load_or_build(model, config, out: Path, problems_file, chat, judge, seed, progress) -> list[Trace]:
    if (out / TRACES).is_file():
        return load_traces(out)
    if problems_file is not None:
        rows = read_traces_jsonl(problems_file)
        problems = [Problem(q, a) for q, _, a in rows]
        responses = [r for _, r, _ in rows]
    else:
        problems, responses = make_problems(config.n, seed), [None] * config.n
    given = [r for r in responses if r is not None]
    if given:  # bad input fails before any generation
        check_steps([Trace("", "", r, None, split_steps("", r, config.separator)) for r in given], config.separator)
    traces = build_traces(model, problems, responses, config, chat, progress)
    check_steps(traces, config.separator)
    labels = label_steps([s.text for t in traces for s in t.steps],
                         [t.question for t in traces for _ in t.steps], judge)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (TRACES + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        k = 0
        for t in traces:
            row = {"question": t.question, "prompt": t.prompt, "response": t.response, "answer": t.answer,
                   "predicted": t.predicted, "correct": t.correct,
                   "steps": [{**asdict(s), "label": labels[k + j]} for j, s in enumerate(t.steps)]}
            k += len(t.steps)
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, out / TRACES)
    return load_traces(out)


def load_traces(run: str | Path) -> list[Trace]:
    """Traces of a collect run, each step carrying `.label` as an attribute."""
    from .traces import Step

    traces = []
    for line in (Path(run) / TRACES).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        steps = [Step(**s) for s in row["steps"]]
        traces.append(Trace(row["question"], row["prompt"], row["response"], row["answer"], steps))
    return traces


@torch.inference_mode()
def _capture(model, encoded, rows: list[int], sites: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """One teacher-forced forward over a batch of traces; rows = their step-end residuals."""
    ids = [torch.tensor(e[0][:max_tokens]) for e in encoded]
    batch = pad_rows(ids, [""] * len(ids), False, model.tokenizer.pad_token_id)
    _, cache = model.run_with_cache(batch, sites, "all", to_cpu=True, dtype=torch.float32, logits=None,
                                    batch_size=len(ids))
    width = batch.input_ids.shape[1]
    out = {site: [] for site in sites}
    trace_ids, positions, step_ids = [], [], []
    for b, (row, (_, ends)) in enumerate(zip(rows, encoded)):
        pad = width - len(ids[b])
        for j, pos in enumerate(ends):
            if pos >= len(ids[b]):
                continue  # cut by max_tokens
            for site in sites:
                out[site].append(cache[site][b, pad + pos])
            trace_ids.append(row)
            positions.append(pos)
            step_ids.append(j)
    d = model.d_model
    tensors = {site: torch.stack(v) if v else torch.zeros(0, d) for site, v in out.items()}
    tensors["prompt_index"] = torch.tensor(trace_ids, dtype=torch.long)
    tensors["position"] = torch.tensor(positions, dtype=torch.long)
    tensors["step_index"] = torch.tensor(step_ids, dtype=torch.long)
    return {k: v.contiguous() for k, v in tensors.items()}


def _write_steps(store: ActivationStore, traces: list[Trace], site: str, out: Path) -> None:
    """steps.jsonl in the order `load_steps` returns rows (sorted by trace, then step)."""
    rows = []
    for shard in store.shards():
        rows += list(zip(shard["prompt_index"].tolist(), shard["step_index"].tolist(), shard["position"].tolist()))
    rows.sort()
    tmp = out / (STEPS + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for trace, step, position in rows:
            t = traces[trace]
            s = t.steps[step]
            f.write(json.dumps({"trace": trace, "step": step, "text": s.text, "label": s.label,
                                "position": position, "n_steps": len(t.steps), "correct": t.correct}) + "\n")
    os.replace(tmp, out / STEPS)


def load_steps(run: str | Path, site: str | None = None) -> tuple[torch.Tensor, list[dict]]:
    """(activations [n_steps, d_model] at `site` (default: the first), step rows) of a run,
    both sorted by (trace, step)."""
    run = Path(run)
    store = ActivationStore(run / STORE)
    site = site or store.index["sites"][0]
    values, keys = [], []
    for shard in store.shards():
        if site not in shard:
            raise ValueError(f"site '{site}' not in {run / STORE}; it has {store.index['sites']}")
        values.append(shard[site])
        keys.append(shard["prompt_index"] * 1_000_000 + shard["step_index"])
    order = torch.argsort(torch.cat(keys))
    steps = [json.loads(line) for line in (run / STEPS).read_text(encoding="utf-8").splitlines()]
    return torch.cat(values)[order], steps
