"""The measurements of `gpu_check.py`, one function per part; each fills its `out` dict as it goes.

A part receives a `Context` (device, --tiny, a cache of built models) and a dict it fills
step by step, so what was measured before a part ran out of its time budget is kept.
Every number is measured against a baseline from the same run. Models are random-weight,
built from the config JSON files in `gpu_configs/` straight in their dtype on the device
(`--tiny`: the same configs shrunk by `TINY`, float32 on the CPU).
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

CONFIGS = Path(__file__).parent / "gpu_configs"
WORDS = ("the of and to in is was for on are with as by at from this that which have not can will "
         "model token layer head steer vector route expert cache batch store shard gradient").split()
TINY = {  # --tiny: every shape shrunk to run on a CPU in seconds
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256, "moe_intermediate_size": 32, "num_experts": 8,
    "num_experts_per_tok": 2,
}


@dataclass
class Context:
    device: torch.device
    tiny: bool
    models: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def free(self) -> None:
        self.models.clear()
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def preload() -> float:
    """Import everything the parts use (seconds taken), so no part's budget pays for imports."""
    start = time.perf_counter()
    import importlib

    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    for file in CONFIGS.glob("*.json"):
        model_type = json.loads(file.read_text())["model_type"]
        AutoModelForCausalLM._model_mapping[type(AutoConfig.for_model(model_type))]  # imports the modeling module
        assert model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    for module in ("interp.engine.model", "interp.engine.store", "interp.engine.edits", "interp.routing.screen",
                   "interp.routing.screen.naive", "interp.routing.pairs", "interp.experts.behaviour",
                   "interp.engine.experts", "tiny"):
        importlib.import_module(module)
    return time.perf_counter() - start


def build(ctx: Context, name: str, dtype: torch.dtype):
    """A steerlens `Model` with random weights shaped by `gpu_configs/<name>.json`, made on the
    device (kept in `ctx.models` for the parts after this one)."""
    key = f"{name}-{str(dtype).replace('torch.', '')}"
    if key not in ctx.models:
        ctx.models[key] = _build(ctx, name, dtype)
    return ctx.models[key]


def _build(ctx: Context, name: str, dtype: torch.dtype):
    from transformers import AutoConfig, AutoModelForCausalLM

    from interp.engine.model import Model
    from tiny import tiny_tokenizer

    raw = json.loads((CONFIGS / f"{name}.json").read_text())
    raw.pop("_comment", None)
    raw.pop("architectures", None)
    model_type = raw.pop("model_type")
    if ctx.tiny:
        raw.update({k: v for k, v in TINY.items() if k in raw or k == "head_dim"})
    config = AutoConfig.for_model(model_type, **raw)
    torch.manual_seed(0)
    with torch.device(ctx.device):
        hf = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").eval()
    with torch.no_grad():
        for param in hf.parameters():
            if param.dim() == 3 or not torch.isfinite(param).all():  # fused experts may be left uninitialised
                param.normal_(0.0, 0.02)
    return Model(hf, tiny_tokenizer(), info={"spec": f"random {name}", "family": model_type})


def prompts(n: int, tokens: int, seed: int = 0, spread: float = 0.5) -> list[str]:
    """n texts of about `tokens` characters (the character tokenizer: one token each), lengths
    spread over [tokens * (1 - spread), tokens] so batches pad."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = max(4, int(tokens * (1 - spread * rng.random()))) if spread else tokens
        words = []
        while len(" ".join(words)) < target:
            words.append(rng.choice(WORDS))
        out.append(" ".join(words)[:target - 1] + ".")
    return out


def diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    """max |a - b| and that over max |b| (relative), in float64."""
    a, b = a.double().cpu(), b.double().cpu()
    worst = float((a - b).abs().max()) if a.numel() else 0.0
    return {"max_abs": worst, "max_rel": worst / max(float(b.abs().max()), 1e-30)}


def timed(ctx: Context, fn, repeats: int = 1) -> tuple[object, float]:
    """(last result, median wall seconds of `repeats` calls after one warm-up call)."""
    value = fn()
    runs = []
    for _ in range(repeats):
        ctx.sync()
        start = time.perf_counter()
        value = fn()
        ctx.sync()
        runs.append(time.perf_counter() - start)
    return value, statistics.median(runs)


# ---- exactness on the device -----------------------------------------------------------------
def exactness(ctx: Context, out: dict) -> None:
    """Hooks vs HF hidden states, one prompt vs the padded batch, cached vs uncached steered
    generation; float32 first, then the same weights in bfloat16."""
    from interp.engine.edits import Add

    model = _build(ctx, "qwen2.5-0.5b", torch.float32)  # converted to bfloat16 below, so not kept as float32
    texts = prompts(6, 48 if ctx.tiny else 192, seed=1)
    for dtype in (torch.float32, torch.bfloat16):
        if dtype != model.dtype:
            model.hf.to(dtype)
        row = out.setdefault(str(dtype).replace("torch.", ""), {})
        sites = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
        _, cache = model.run_with_cache(texts, sites, logits=None, batch_size=len(texts))
        batch = model.tokenize(texts)
        with torch.inference_mode():
            hidden = model.hf(input_ids=batch.input_ids.to(ctx.device),
                              attention_mask=batch.attention_mask.to(ctx.device),
                              position_ids=batch.position_ids().to(ctx.device), output_hidden_states=True).hidden_states
        real = batch.attention_mask.bool()
        # hidden_states[l + 1] is layer l's output; the last one is after the final norm, so it is left out
        pairs = [(cache[s].cpu()[real], hidden[i + 1].cpu()[real]) for i, s in enumerate(sites[:-1])]
        row["hooks_vs_hf_hidden_states"] = diff(torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs]))
        logits, _ = model.run_with_cache(texts, [], batch_size=len(texts))
        alone = torch.cat([model.run_with_cache([t], [])[0] for t in texts])
        row["alone_vs_padded_batch_last_logits"] = diff(logits, alone)
        v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(0))
        edit = Add(f"blocks.{model.n_layers // 2}.hook_resid_post", vector=v, alpha=2.0, positions="last+generated")
        steps = 8 if ctx.tiny else 32
        kwargs = dict(edits=[edit], max_new_tokens=steps, return_logits=True, stop_at_eos=False)
        cached = model.generate(texts[:4], **kwargs)
        uncached = model.generate(texts[:4], use_cache=False, **kwargs)
        same = (cached.new_tokens == uncached.new_tokens).int().cumprod(1)  # [b, T] 1 until the first mismatch
        agree = int(same.sum(1).min())  # steps every row agrees on: later logits see other tokens
        row["steered_cached_vs_uncached_logits"] = {**diff(cached.logits[:, :agree], uncached.logits[:, :agree]),
                                                    "steps_compared": agree, "steps": steps}
    ctx.models["qwen2.5-0.5b-bfloat16"] = model  # the routing part reuses it


# ---- capture throughput ----------------------------------------------------------------------
def capture(ctx: Context, out: dict) -> None:
    """Every hook_resid_post kept on the device and streamed to the CPU (and to a store on disk),
    at batch 1/8/32/128: tokens/s and the ratio to a plain HF forward of the same batch."""
    model = build(ctx, "llama-3-8b", torch.bfloat16 if ctx.cuda else torch.float32)
    sites = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    length = 32 if ctx.tiny else 128
    repeats = 1 if ctx.tiny else 3
    for size in (1, 2, 4, 8) if ctx.tiny else (1, 8, 32, 128):
        out[f"batch_{size}"] = _capture_at(ctx, model, sites, size, length, repeats)


def _capture_at(ctx: Context, model, sites: list[str], size: int, length: int, repeats: int) -> dict:
    """One batch size's capture timings against a plain HF forward of the same batch."""
    from interp.engine.store import capture_to_store

    texts = prompts(size, length, seed=size, spread=0.0)
    batch = model.tokenize(texts)
    n_tokens = int(batch.attention_mask.sum())
    ids, mask = batch.input_ids.to(ctx.device), batch.attention_mask.to(ctx.device)

    def plain():
        with torch.inference_mode():
            return model.hf(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=1).logits

    _, plain_s = timed(ctx, plain, repeats)
    _, device_s = timed(ctx, lambda: model.run_with_cache(texts, sites, logits=None, batch_size=size), repeats)
    _, host_s = timed(ctx, lambda: model.run_with_cache(texts, sites, logits=None, batch_size=size, to_cpu=True),
                      repeats)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        capture_to_store(model, texts, sites, Path(folder) / "store", batch_size=size, dtype=model.dtype,
                         progress=False)
        store_s = time.perf_counter() - start
    return {
        "tokens": n_tokens, "plain_tokens_per_s": n_tokens / plain_s,
        "on_device_tokens_per_s": n_tokens / device_s, "on_device_vs_plain": device_s / plain_s,
        "to_cpu_tokens_per_s": n_tokens / host_s, "to_cpu_vs_plain": host_s / plain_s,
        "store_tokens_per_s": n_tokens / store_s, "store_vs_plain": store_s / plain_s,
        "captured_gib": n_tokens * len(sites) * model.d_model * model.dtype.itemsize / 2**30,
    }


# ---- generation --------------------------------------------------------------------------------
def generation(ctx: Context, out: dict) -> None:
    """Steered vs unsteered generation; batch_size="auto" driven into an out-of-memory error
    (a real one on CUDA: a ballast tensor leaves a few GiB free; simulated on the CPU)."""
    from interp.engine.batching import AUTO_START_GPU, BatchSizer
    from interp.engine.edits import Add

    model = build(ctx, "llama-3-8b", torch.bfloat16 if ctx.cuda else torch.float32)
    texts = prompts(4 if ctx.tiny else 32, 32 if ctx.tiny else 64, seed=3)
    new = 8 if ctx.tiny else 64
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(0))
    edit = Add(f"blocks.{model.n_layers // 2}.hook_resid_post", vector=v, alpha=4.0, positions="last+generated")
    plain, plain_s = timed(ctx, lambda: model.generate(texts, max_new_tokens=new, stop_at_eos=False))
    steered, steered_s = timed(ctx, lambda: model.generate(texts, edits=[edit], max_new_tokens=new, stop_at_eos=False))
    out["steering"] = {"prompts": len(texts), "new_tokens": new, "unsteered_tokens_per_s": plain.new_tokens.numel()
                       / plain_s, "steered_tokens_per_s": steered.new_tokens.numel() / steered_s,
                       "steered_vs_unsteered": steered_s / plain_s}
    start_size = 8 if ctx.tiny else AUTO_START_GPU
    long_texts = prompts(start_size, 48 if ctx.tiny else 1024, seed=4, spread=0.0)
    tried: list[int] = []
    real_generate = model.hf.generate

    def recording(*args, **kwargs):
        tried.append(int(kwargs["input_ids"].shape[0]))
        if not ctx.cuda and tried[-1] > 2:
            raise torch.OutOfMemoryError("CPU smoke run: simulated out of memory")
        return real_generate(*args, **kwargs)

    ballast = None
    model.hf.generate = recording
    try:
        if ctx.cuda:
            gc.collect()
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info()
            headroom = 6 * 2**30  # about 20 rows of 1024 tokens of the 8B shape; 64 rows do not fit
            ballast = torch.empty(max(0, free - headroom), dtype=torch.uint8, device=ctx.device)
            torch.cuda.reset_peak_memory_stats()
        sizer = BatchSizer(start_size)
        start = time.perf_counter()
        gen = model.generate(long_texts, batch_size=sizer, max_new_tokens=4)
        seconds = time.perf_counter() - start
        out["auto_batch_oom"] = {
            "simulated": not ctx.cuda, "started_at": start_size, "settled_at": sizer.size, "tried": tried,
            "recovered": gen.sequences.shape[0] == len(long_texts) and sizer.size < start_size, "seconds": seconds,
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if ctx.cuda else None,
            "ballast_gib": ballast.numel() / 2**30 if ballast is not None else 0.0}
    finally:
        del model.hf.generate
        del ballast
        if ctx.cuda:
            torch.cuda.empty_cache()


# ---- routing screen ------------------------------------------------------------------------------
def routing(ctx: Context, out: dict) -> None:
    """The interchange screen on the 0.5B shape at n = 120 pairs: AtP, atp+exact and exact
    batched, against the naive one-head-per-forward loop timed on a subset and scaled."""
    from interp.routing.pairs import load_pairs
    from interp.routing.screen import ScreenConfig, screen_heads
    from interp.routing.screen.naive import naive_screen
    from interp.routing.screen.pairs import tokenize_pairs

    model = build(ctx, "qwen2.5-0.5b", torch.bfloat16 if ctx.cuda else torch.float32)
    n = 4 if ctx.tiny else 120
    pairs = load_pairs(n=n)
    harmful, benign = [p.harmful for p in pairs], [p.benign for p in pairs]
    cont = model.tokenizer(" Sure, here", add_special_tokens=False)["input_ids"][:5]
    conts = [cont] * n
    heads = [(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)]
    out.update(pairs=n, heads=len(heads))
    sub = [(layer, head) for layer in (0, model.n_layers - 1) for head in range(model.n_heads)]
    tokens = tokenize_pairs(model, harmful[:2], benign[:2], conts[:2], chat=True)
    _, naive_s = timed(ctx, lambda: naive_screen(model, tokens, sub, "right"), 1)
    naive_n = naive_s * (len(heads) / len(sub)) * (n / tokens.n)
    out["naive_projected_s"] = naive_n
    out["naive_measured"] = {"pairs": tokens.n, "heads": len(sub), "seconds": naive_s}
    for method in ("atp", "atp+exact", "exact"):  # exact last: the longest, it may meet the budget
        verify = min(24, len(heads) // 2)  # the top heads re-run exactly, plus random others as a control
        config = ScreenConfig(method=method, permutations=200 if ctx.tiny else 2000, bootstrap=50 if ctx.tiny
                              else 500, verify=verify, verify_random=min(8, len(heads) - verify))
        ctx.sync()
        start = time.perf_counter()
        screen_heads(model, harmful, benign, conts, config, progress=False)
        ctx.sync()
        seconds = time.perf_counter() - start
        out[method] = {"seconds": seconds, "speedup_vs_naive": naive_n / seconds}


# ---- expert toggles -------------------------------------------------------------------------------
def experts(ctx: Context, out: dict) -> None:
    """The expert-toggle screen on the MoE shape: plain forward, a forward with one expert off
    in every layer, and a single-expert screen batched vs one pass per candidate."""
    from interp.engine.experts import expert_toggles
    from interp.experts.behaviour import Behaviour, measure

    model = build(ctx, "qwen3-30b-a3b-12l", torch.bfloat16 if ctx.cuda else torch.float32)
    layers, n_experts = model.n_layers, int(model.config.num_experts)
    texts = prompts(4 if ctx.tiny else 16, 32 if ctx.tiny else 128, seed=5)
    off = expert_toggles(model, off=[(layer, 3) for layer in range(layers)])
    _, plain_s = timed(ctx, lambda: model.forward(texts), 1 if ctx.tiny else 3)
    _, toggled_s = timed(ctx, lambda: model.forward(texts, edits=off), 1 if ctx.tiny else 3)
    behaviour = Behaviour("prob", "a")
    toggles = [([(c % layers, c % n_experts)], ()) for c in range(4 if ctx.tiny else 16)]
    batched, batched_s = timed(ctx, lambda: measure(model, texts, behaviour, toggles, rows_per_batch=256))
    looped, looped_s = timed(ctx, lambda: torch.cat([measure(model, texts, behaviour, [t]) for t in toggles]))
    out.update(prompts=len(texts), candidates=len(toggles), plain_forward_s=plain_s,
               one_expert_off_per_layer_vs_plain=toggled_s / plain_s, screen_batched_s=batched_s,
               screen_looped_s=looped_s, batched_speedup=looped_s / batched_s,
               batched_vs_looped=diff(batched, looped))
