"""`Model`: an HF causal LM, its tokenizer and its architecture adapter, traced by name.

    model = interp.load("smollm2-135m-instruct")
    logits, cache = model.run_with_cache(["The capital of France is"],
                                         sites=["blocks.3.hook_resid_post"])
    out = model.generate(["Hi"], edits=[Add("blocks.5.hook_resid_post", v, alpha=4)])

Tokenisation: left padding (so the last column is every row's last token), the tokenizer's
own special tokens unless a BOS policy says otherwise, and position ids computed from the
attention mask so a prompt gives the same numbers alone and inside a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from ..arch import ArchSpec, spec_for_config
from .attention import IMPL_NAME  # importing it registers the steerlens_eager attention with transformers
from .batching import resolve_batch_size, run_batched
from .cache import ActivationCache, left_pad
from .edits import Edit
from .hooks import GenerationPlan, HookFn, HookSet, Positions
from .sites import ExpertSelection, SiteInfo, build_sites, has_key_axis
from .placement import gather_device, input_device
from .partial import forward_from_layer
from .prefix import prefix_kv
from .resume import StartAt, check_start, run_from
from .row_values import check_row_values
from .shared_prefix import after_shared, check_shared_prefix, common_prefix_length, first_tokens, fits_window
from .skipping import SkipLayers, layers_after
from .transfer import to_host, wait_for_copies
from .unembed import contiguous_unembed_input

BOS_POLICIES = ("default", "always", "never")


@dataclass
class TokenBatch:
    """Left-padded token ids of a list of prompts."""

    input_ids: torch.Tensor  # [b, P]
    attention_mask: torch.Tensor  # [b, P]
    texts: list[str]
    bos_added: bool = False

    @property
    def lengths(self) -> list[int]:
        return self.attention_mask.sum(-1).tolist()

    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.long().cumsum(-1) - 1).clamp_min(0)

    def select(self, rows: Sequence[int]) -> "TokenBatch":
        """Rows, re-padded to their own longest length."""
        rows = list(rows)
        width = int(self.attention_mask[rows].sum(-1).max())
        return TokenBatch(self.input_ids[rows, -width:], self.attention_mask[rows, -width:],
                          [self.texts[r] for r in rows], self.bos_added)


@dataclass
class Model:
    hf: torch.nn.Module
    tokenizer: object
    spec: ArchSpec | None = None
    info: dict = field(default_factory=dict)
    bos: str = "default"

    def __post_init__(self) -> None:
        if self.spec is None:
            self.spec = spec_for_config(self.hf.config)
        if self.bos not in BOS_POLICIES:
            raise ValueError(f"bos policy must be one of {BOS_POLICIES}, got '{self.bos}'")
        self._sites = build_sites(self.spec, self.hf)
        self.hf.requires_grad_(False)  # analyses read weights; nothing here trains them
        contiguous_unembed_input(self.hf)  # logits_to_keep slices would take a slow CPU matmul path
        if getattr(self.tokenizer, "pad_token_id", None) is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"

    # ---- shape facts ----------------------------------------------------------------
    @property
    def config(self):
        return self.hf.config

    @property
    def n_layers(self) -> int:
        return self.spec.n_layers(self.config)

    @property
    def n_heads(self) -> int:
        return self.spec.n_heads(self.config)

    @property
    def n_kv_heads(self) -> int:
        return self.spec.n_kv_heads(self.config)

    @property
    def d_model(self) -> int:
        return self.spec.d_model(self.config)

    @property
    def d_head(self) -> int:
        return self.spec.d_head(self.config)

    @property
    def d_vocab(self) -> int:
        return int(self.hf.get_output_embeddings().weight.shape[0])

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embeddings' device (also under a device_map)."""
        return input_device(self.hf)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf.parameters()).dtype

    # ---- sites ----------------------------------------------------------------------
    def sites(self, layer: int | None = None) -> list[str]:
        """All site names (of one layer if given), in forward order."""
        return [n for n, s in self._sites.items() if layer is None or s.layer == layer]

    def site(self, name: str) -> SiteInfo:
        try:
            return self._sites[name]
        except KeyError:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "blocks" and parts[1].isdigit() and int(parts[1]) >= self.n_layers:
                raise ValueError(f"layer {parts[1]} out of range in '{name}': model has layers 0..{self.n_layers - 1}") from None
            suffixes = sorted({n.split(".", 2)[-1] if n.startswith("blocks.") else n for n in self._sites})
            raise ValueError(f"unknown site '{name}' for {self.spec.family}: use blocks.<layer>.<one of "
                             f"{', '.join(suffixes)}>") from None

    def site_module(self, name: str) -> tuple[str, str]:
        """(module path, 'input' | 'output' | how) of a site, for nnsight and raw HF users."""
        site = self.site(name)
        return site.module_path, site.io

    # ---- SAEs as sites (interp.engine.sae_sites) --------------------------------------
    def attach_sae(self, sae, site: str | None = None, *, use_error_term: bool = True):
        """Attach a `sae_lens.SAE` (or a folder saved by sae-lens, or "release/sae_id") at its
        `hook_name` (or `site`); adds the sites `<site>.hook_sae_*`. Returns the attachment,
        a context manager that detaches it. See `interp.engine.sae_sites`."""
        from .sae_sites import attach
        return attach(self, sae, site, use_error_term=use_error_term)

    def detach_sae(self, site: str | None = None) -> None:
        """Detach the SAE at `site`, or every attached SAE when `site` is None."""
        from .sae_sites import detach
        detach(self, site)

    def _sae_attachments(self) -> dict:
        return self.__dict__.setdefault("_saes", {})

    def set_attn_implementation(self, name: str) -> None:
        """Switch attention kernels on the loaded model ("eager" enables pattern sites)."""
        if name not in ("eager", "sdpa", IMPL_NAME):
            raise ValueError(f"attention implementation must be 'eager' or 'sdpa', got '{name}'")
        self.hf.set_attn_implementation(IMPL_NAME if name == "eager" else name)
        self.info["attn_implementation"] = name

    # ---- tokenisation ---------------------------------------------------------------
    def chat_prompt(self, text: str, system: str | None = None) -> str:
        """The chat template applied to one user turn, with the generation prompt."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; drop --chat / chat=True")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def tokenize(self, prompts: Sequence[str] | str, chat: bool = False, formatted: bool = False) -> TokenBatch:
        """Left-padded ids. `chat` applies the chat template (which carries its own BOS);
        `formatted` takes texts that already carry their template and special tokens (e.g.
        a chat prompt followed by an answer) and adds nothing: no BOS policy, no template."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("no prompts given")
        if any(not p for p in prompts):
            raise ValueError("empty prompt in input; every prompt needs at least one character")
        if chat and formatted:
            raise ValueError("chat=True applies the template and formatted=True says it is applied; pass one")
        texts = [self.chat_prompt(p) for p in prompts] if chat else prompts
        special = not chat and not formatted and self.bos != "never"
        rows = [self.tokenizer(t, add_special_tokens=special)["input_ids"] for t in texts]
        bos_id = self.tokenizer.bos_token_id
        if self.bos == "always" and bos_id is not None and not formatted:
            rows = [r if r[:1] == [bos_id] else [bos_id, *r] for r in rows]
        if self.bos == "never" and bos_id is not None and not formatted:
            rows = [r[1:] if r[:1] == [bos_id] and len(r) > 1 else r for r in rows]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        bos_added = bos_id is not None and all(r[:1] == [bos_id] for r in rows)
        return TokenBatch(ids, mask, list(prompts), bos_added)

    def _as_batch(self, prompts, chat: bool) -> TokenBatch:
        return prompts if isinstance(prompts, TokenBatch) else self.tokenize(prompts, chat=chat)

    # ---- running --------------------------------------------------------------------
    def hooks(self, hooks: Sequence[tuple[str, HookFn]] = (), edits: Sequence[Edit] = (),
              prompt_len: int | None = None, rows: list[int] | None = None,
              generation: GenerationPlan | None = None, width: int | None = None) -> HookSet:
        """Context manager installing edits (first) and hooks on the model. `rows` and `width`:
        this batch's rows in the caller's batch and that batch's padded width (`HookSet`)."""
        return HookSet(self, [e.as_hook() for e in edits] + list(hooks), prompt_len, rows, generation, width)

    def _forward(self, batch: TokenBatch, keep: int = 0) -> torch.Tensor:
        """Logits [b, P, vocab], or [b, keep, vocab] of the last `keep` columns when keep > 0
        (HF's `logits_to_keep`: the unembedding, a quarter of a small model's cost, runs only there)."""
        device = self.device
        kwargs = {"logits_to_keep": int(keep)} if keep else {}
        out = self.hf(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                      position_ids=batch.position_ids().to(device), use_cache=False, **kwargs)
        return out.logits

    @torch.inference_mode()
    def forward(self, prompts, edits: Sequence[Edit] = (), hooks: Sequence[tuple[str, HookFn]] = (),
                chat: bool = False) -> torch.Tensor:
        """Logits [b, P, vocab] of one left-padded batch, with edits and hooks applied."""
        batch = self._as_batch(prompts, chat)
        with self.hooks(hooks, edits):
            return self._forward(batch)

    run = forward

    @torch.inference_mode()
    def run_with_cache(
        self,
        prompts,
        sites: Sequence[str],
        positions: Positions = "all",
        edits: Sequence[Edit] = (),
        *,
        chat: bool = False,
        to_cpu: bool = False,
        dtype: torch.dtype | None = None,
        logits: str | None = "last",
        batch_size: int | str | None = None,
        progress: bool | str = False,
        start: StartAt | None = None,
        shared_prefix: bool = False,
    ) -> tuple[torch.Tensor | None, ActivationCache]:
        """Capture `sites` (after `edits`) at `positions`; returns (logits, cache).

        logits: "last" -> [b, vocab] at each prompt's last token, "all" -> [b, P, vocab],
        an int k >= 1 -> [b, k, vocab] of the last k columns (left padding: each prompt's last
        k tokens, when it has k), None -> not kept. Only the kept columns are unembedded.
        Runs in length-bucketed batches with OOM back-off; results come back in prompt order,
        left-padded to the longest prompt. With logits=None the layers above the highest
        captured site do not run. `start` (`interp.engine.resume.StartAt`) runs only
        the layers from `start.layer` on, reusing a clean cache of the same prompts below it.
        `shared_prefix=True` runs the tokens every prompt begins with (a chat header) once and
        each row only after them (`interp.engine.shared_prefix`: positions="last", edits alike
        on all rows; ValueError otherwise).
        """
        sites = list(dict.fromkeys(sites))
        for name in sites:
            self.site(name)
        if isinstance(positions, str) and positions not in ("all", "last"):
            raise ValueError(f"capture positions must be 'all', 'last' or a list of ints, got '{positions}'")
        tail = isinstance(logits, int) and not isinstance(logits, bool)
        if not (logits in ("last", "all", None) or (tail and logits >= 1)):
            raise ValueError(f"logits must be 'last', 'all', a number of last columns >= 1 or None, got {logits!r}")
        keep = 0 if logits == "all" else (logits if tail else 1)
        batch = self._as_batch(prompts, chat)
        if not isinstance(positions, str):
            shortest = min(batch.lengths)
            bad = [i for i in positions if not -shortest <= i < shortest]
            if bad:
                raise ValueError(f"positions {bad} out of range for the shortest prompt ({shortest} tokens)")
        low = check_start(self, start, batch, sites, positions, edits) if start is not None else []
        above = layers_after(self, sites) if logits is None else ()
        shared, kv = 0, None
        if shared_prefix:
            check_shared_prefix(sites, positions, logits, edits)
            if fits_window(self, batch.input_ids.shape[1]):
                shared = common_prefix_length(batch, keep)
            if shared:
                kv = prefix_kv(self, [first_tokens(batch, shared)], edits=edits)
        width = batch.input_ids.shape[1]
        check_row_values(edits, len(batch.texts), width)
        size = resolve_batch_size(batch_size, self.device)
        # a model split by device_map: captures kept on the accelerator gather on one device
        gather = gather_device(self.hf) if getattr(self.hf, "hf_device_map", None) and not to_cpu else None

        def one(rows: list[int]):
            sub = batch.select(rows)
            store: dict[str, object] = {}
            grabs = [(name, _grabber(store, name, positions, to_cpu, dtype, gather)) for name in sites]
            after = (after_shared(sub, shared, self.tokenizer.pad_token_id or 0), shared,
                     kv.cache([0] * len(rows), shared)) if shared else None
            if start is not None:
                out = run_from(self, start, sub, rows, grabs, edits, keep, low, store, positions, after, width)
            elif after is not None:
                out = forward_from_layer(self, after[0], 0, None, edits, grabs, logits_to_keep=keep, prefix=after[2],
                                         rows=rows, skip_above=above)
            else:  # without logits, layers above the highest captured site are not run
                with SkipLayers(self, whole=above) if above else nullcontext(), self.hooks(grabs, edits, rows=rows, width=width):
                    out = self._forward(sub, keep)
            kept = None
            if logits == "last":
                kept = out[:, -1]
            elif logits is not None:
                kept = left_pad(out, (1,), keep) if keep else out  # a batch narrower than k columns
            if kept is not None and to_cpu:
                kept = to_host(kept)
            if to_cpu:
                wait_for_copies(self.device)  # once per batch, after the layer loop
            return store, kept

        parts = run_batched(batch.lengths, one, size, progress=progress)
        return _merge(parts, batch, sites, positions, logits)

    def generate(self, prompts, **kwargs):
        """Generate with edits active at every step; see `interp.engine.generation.generate`.
        With `batch_size=` (an int or "auto") prompts run in chunks that halve on
        out-of-memory errors (`interp.engine.generation_batched`)."""
        if "batch_size" in kwargs:
            from .generation_batched import generate_batched

            return generate_batched(self, prompts, **kwargs)
        from .generation import generate

        return generate(self, prompts, **kwargs)

    def nnsight(self):
        """An nnsight LanguageModel over the same loaded weights (no copy)."""
        from nnsight import TransformersModel

        return TransformersModel(self.hf, task="text-generation", tokenizer=self.tokenizer)


def _grabber(store: dict, name: str, positions, to_cpu: bool, dtype, gather=None):
    def grab(x, hook):
        if isinstance(x, ExpertSelection):
            value = ExpertSelection(*(_select(t, hook, positions) for t in x))
            store[name] = ExpertSelection(*(_move(t, to_cpu, None, gather) for t in value))
            return None
        store[name] = _move(_select(x, hook, positions), to_cpu, dtype, gather)
        return None
    return grab


def _select(x: torch.Tensor, hook, positions) -> torch.Tensor:
    axis = hook.site.pos_axis
    if positions == "all":
        return x.detach()
    if positions == "last":
        return x.select(axis, x.shape[axis] - 1).detach()
    state = hook.state
    pad = state.left_pads(x.device)  # [b]
    n_real = state.prompt_lengths(x.device)  # [b]
    idx = torch.tensor(list(positions), device=x.device)[None, :]
    idx = torch.where(idx < 0, idx + n_real[:, None], idx) + pad[:, None]  # [b, n] padded
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[axis] = idx.shape[1]
    expand = list(x.shape)
    expand[axis] = idx.shape[1]
    return x.gather(axis, idx.view(shape).expand(expand)).detach()


def _move(t: torch.Tensor, to_cpu: bool, dtype, gather: torch.device | None = None) -> torch.Tensor:
    if dtype is not None:
        t = t.to(dtype)
    if gather is not None and t.device != gather:
        t = t.to(gather, non_blocking=True)
    return to_host(t) if to_cpu else t  # pinned and non-blocking on CUDA: no sync in the layer loop


def _merge(parts, batch: TokenBatch, sites, positions, logits_mode):
    """Reassemble per-batch captures in prompt order, left-padding position axes to the
    batch's full width when every position was kept."""
    width = batch.input_ids.shape[1]
    inverse = torch.argsort(torch.tensor([r for chunk, _ in parts for r in chunk]))

    def join(values: list[torch.Tensor], axes: tuple[int, ...]) -> torch.Tensor:
        values = [left_pad(v, axes, width) for v in values]
        return torch.cat(values, 0)[inverse.to(values[0].device)]

    data = {}
    for name in sites:
        values = [store[name] for _, (store, _) in parts]
        if has_key_axis(name):  # [b, heads, q, k]: the key axis is padded whatever the query positions
            axes = (2, 3) if positions == "all" else (2,) if positions == "last" else (3,)
        else:
            axes = (1,) if positions == "all" else ()
        if isinstance(values[0], ExpertSelection):
            data[name] = ExpertSelection(*(join([v[i] for v in values], axes) for i in range(2)))
        else:
            data[name] = join(values, axes)
    kept = None
    if logits_mode is not None:
        kept = join([lg for _, (_, lg) in parts], (1,) if logits_mode == "all" else ())
    return kept, ActivationCache(data, batch.input_ids, batch.attention_mask, positions, batch.texts)

