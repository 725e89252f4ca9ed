"""The tracing engine's core: install callbacks on named sites for the span of a `with` block.

Callbacks follow TransformerLens: `fn(tensor, hook=point) -> tensor | None`; returning a
tensor replaces the site's value, returning None leaves it as is. `point` is a `HookPoint`
with the site's name and layer and a view of where this forward pass is: which positions
are padding, which belong to the prompt and which were generated. That is what lets one
edit behave the same in a single forward pass and at every step of `generate` with the KV
cache on.

Positions are counted over real tokens: 0 is the first non-pad token of each row, and
negative indices count back from the end of the prompt. Position specs accepted
everywhere: "all" (every real token), "prompt", "generated", "last" (last prompt token),
"last+generated" (the last prompt token and every generated one), a sequence of ints, or a
bool tensor [rows, W (+ T)] over padded positions.

A bool mask is laid out like the caller's whole batch: one row per prompt (or one row for
all), columns the whole batch left-padded to its widest prompt W, as `model.tokenize(prompts)`
and `run_with_cache(positions="all")` lay them out, optionally followed by T columns for
generated tokens (missing columns count as False). When the engine runs the prompts in
chunks (length-sorted, halved on out-of-memory) each chunk is re-padded to its own widest
prompt w; the engine picks the chunk's rows of the mask and shifts its columns by W - w,
so the mask selects the same tokens whatever the chunking (`ForwardState.width`).

Which generated tokens does `"generated"` steer? A generated token's position is edited when
that token is fed back in, so `"generated"` changes tokens 2, 3, ... of the continuation and
never the first one: the first new token is predicted at the last prompt position. Use
`"last+generated"` (or `"all"`, which also edits the whole prompt) to steer from the first
new token on.

Where a pass sits in the sequence is the engine's own bookkeeping, not read from private
arguments of transformers: during `generate` the engine counts the tokens it has seen
(`GenerationPlan`), and a plain forward pass reads the documented `attention_mask`
(2-D, covering cached and new tokens) or, without one, the length of any
`transformers.Cache` passed in, whatever its argument is called.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..arch.moe import router_logits
from ..arch.spec import get_module
from .sites import ExpertSelection, SiteInfo, norm_divisor
from .token_history import previous_ids

if TYPE_CHECKING:
    from .model import Model

Positions = str | Sequence[int] | torch.Tensor
HookFn = Callable[..., "torch.Tensor | None"]
POSITION_WORDS = ("all", "prompt", "generated", "last", "last+generated")


class SequenceTrackingError(RuntimeError):
    """A forward pass during `generate` did not fit the sequence the engine expected."""


@dataclass
class GenerationPlan:
    """The engine's own count of where each `generate` forward pass sits.

    `prompt_len` is the padded prompt width P and `pad_left` [b] the left pads per row
    (fixed for the whole generation: new tokens are appended on the right). The first
    pass must be the prefill of all P tokens (of the P - `cached` after a prefix already in
    the KV cache, `interp.engine.shared_prefix`); every later pass either feeds the one new
    token (KV cache on: it sits at offset `seen`) or recomputes the whole sequence (cache
    off: offset 0). Anything else raises `SequenceTrackingError` instead of guessing.
    """

    prompt_len: int
    pad_left: torch.Tensor
    seen: int = 0  # tokens of the sequence fed so far
    cached: int = 0  # prompt columns already in the KV cache before the first pass (a shared prefix)

    def locate(self, batch: int, seq_len: int, mask_len: int | None) -> int:
        """Offset (tokens already cached) of a pass of `seq_len` tokens; advances the count."""
        if batch != self.pad_left.shape[0]:
            self._fail(f"a pass over {batch} rows for a generation of {self.pad_left.shape[0]}")
        if self.seen == 0:
            if seq_len != self.prompt_len - self.cached:
                self._fail(f"a first pass of {seq_len} tokens for a prompt of {self.prompt_len} "
                           f"({self.cached} of them cached)")
            offset = self.cached
        elif seq_len == self.seen + 1:
            offset = 0  # no KV cache: the whole sequence again
        elif seq_len == 1:
            offset = self.seen  # KV cache: one new token after `seen` cached ones
        else:
            self._fail(f"a pass of {seq_len} tokens after {self.seen}")
        if mask_len is not None and mask_len != offset + seq_len:
            self._fail(f"an attention mask of {mask_len} columns for {offset + seq_len} tokens")
        self.seen = offset + seq_len
        return offset

    @staticmethod
    def _fail(what: str) -> None:
        import transformers

        raise SequenceTrackingError(
            f"steerlens lost track of the sequence during generate: {what} "
            f"(transformers {transformers.__version__}); edits would land on the wrong "
            "positions, so generation was stopped. Please report this with the model family.")


@dataclass
class ForwardState:
    """Where the current forward pass sits in the sequence (updated before each pass)."""

    prompt_len: int | None = None  # padded prompt length; fixed by generate, else per pass
    batch: int = 0
    seq_len: int = 0
    offset: int = 0  # tokens already in the KV cache
    pad_left: torch.Tensor | None = None  # [b] number of left pads per row
    passes: int = 0
    rows: list[int] | None = None  # caller's row index of each batch row (batches are length-sorted)
    generation: GenerationPlan | None = None  # set by generate: the engine counts positions
    input_ids: torch.Tensor | None = None  # [b, seq_len] token ids of this pass (None for inputs_embeds)
    previous_ids: torch.Tensor | None = None  # [b, <= 16] ids of the KV-cached passes before (token_history)
    width: int | None = None  # padded prompt width W of the caller's whole batch (bool masks' layout); None: this pass's

    def row_index(self, device) -> torch.Tensor:  # [b]
        if self.rows is None:
            return torch.arange(self.batch, device=device)
        return torch.tensor(self.rows, device=device)

    def prompt_end(self) -> int:
        return self.prompt_len if self.prompt_len is not None else self.offset + self.seq_len

    def padded_positions(self, device) -> torch.Tensor:  # [p]
        return torch.arange(self.offset, self.offset + self.seq_len, device=device)

    def left_pads(self, device) -> torch.Tensor:  # [b]
        if self.pad_left is None:
            return torch.zeros(self.batch, device=device, dtype=torch.long)
        return self.pad_left.to(device)

    def prompt_lengths(self, device) -> torch.Tensor:  # [b] real prompt tokens of each row
        return self.prompt_end() - self.left_pads(device)

    def real_positions(self, device) -> torch.Tensor:  # [b, p]
        return self.padded_positions(device)[None, :] - self.left_pads(device)[:, None]

    def position_mask(self, positions: Positions, device) -> torch.Tensor:
        """Bool [b, p] of the positions in this pass that `positions` selects."""
        padded = self.padded_positions(device)[None, :].expand(self.batch, -1)
        real = self.real_positions(device)
        valid = real >= 0
        end = self.prompt_end()
        if isinstance(positions, torch.Tensor):
            return self._rows_of_mask(positions, device) & valid
        if isinstance(positions, str):
            if positions == "all":
                return valid
            if positions == "prompt":
                return valid & (padded < end)
            if positions == "generated":
                return valid & (padded >= end)
            if positions == "last":
                return valid & (padded == end - 1)
            if positions == "last+generated":
                return valid & (padded >= end - 1)
            raise ValueError(f"unknown positions '{positions}': use one of {POSITION_WORDS}, ints or a mask")
        n_prompt = self.prompt_lengths(device)[:, None]  # [b, 1]
        mask = torch.zeros_like(valid)
        for index in positions:
            target = index + n_prompt if index < 0 else torch.full_like(n_prompt, index)
            mask |= real == target
        return mask & valid

    def _rows_of_mask(self, positions: torch.Tensor, device) -> torch.Tensor:
        """A bool mask over the caller's whole batch ([rows or 1, W (+ T)]) cut to this pass:
        this pass's rows, and the columns of its own padded layout (shifted by W - w)."""
        full = positions.to(device=device, dtype=torch.bool)
        if full.ndim != 2:
            raise ValueError(f"a positions mask is bool [rows, padded width], got shape {tuple(full.shape)}")
        if full.shape[0] != 1:
            full = full[self.row_index(device)]
        shift = max(self.width - self.prompt_end(), 0) if self.width is not None else 0
        start = self.offset + shift
        stop = start + self.seq_len
        if full.shape[1] < stop:
            full = torch.nn.functional.pad(full, (0, stop - full.shape[1]))
        return full[:, start:stop].expand(self.batch, -1)


@dataclass
class HookPoint:
    """What a callback learns about the site it runs at (passed as `hook=`)."""

    name: str
    site: SiteInfo
    state: ForwardState

    @property
    def layer(self) -> int | None:
        return self.site.layer

    def mask(self, positions: Positions, like: torch.Tensor) -> torch.Tensor:
        """`positions` as a bool mask broadcastable to `like` (the site's tensor)."""
        mask = self.state.position_mask(positions, like.device)  # [b, p]
        shape = [1] * like.ndim
        shape[0], shape[self.site.pos_axis] = mask.shape
        return mask.view(shape)


@dataclass
class HookSet:
    """Context manager: callbacks on sites, installed on enter, removed on exit.

    `prompt_len` (padded) tells the engine where the prompt ends during generation; left
    None, every position of a pass counts as prompt. `rows` maps batch rows back to the
    caller's prompt order when batches were length-sorted (edits such as `Patch` need it), and
    `width` is the caller's whole batch's padded prompt width (bool position masks' layout).
    `generation` (set by `generate`) makes the engine count positions itself across the
    prefill and decode passes; its `prompt_len` then is the prompt length.
    """

    model: "Model"
    hooks: Sequence[tuple[str, HookFn]]
    prompt_len: int | None = None
    rows: list[int] | None = None
    generation: GenerationPlan | None = None
    width: int | None = None
    state: ForwardState = field(init=False)
    _handles: list = field(init=False, default_factory=list)
    _attn: list = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        prompt_len = self.generation.prompt_len if self.generation is not None else self.prompt_len
        self.state = ForwardState(prompt_len=prompt_len, rows=self.rows, generation=self.generation, width=self.width)
        for name, fn in self.hooks:  # validate everything before touching the model
            self.model.site(name)
            if not callable(fn):
                raise TypeError(f"hook for '{name}' is not callable: {fn!r}")

    def __enter__(self) -> "HookSet":
        hf = self.model.hf
        base = get_module(hf, self.model.spec.base)
        self._handles.append(base.register_forward_pre_hook(self._track, with_kwargs=True))
        grouped: dict[str, list[HookFn]] = defaultdict(list)
        for name, fn in self.hooks:
            grouped[name].append(fn)
        try:
            for name, fns in grouped.items():
                self._install(self.model.site(name), fns)
            if self.model._sae_attachments():  # after the sites' own hooks: an SAE reads their result
                from .sae_sites import install_saes
                self._handles.extend(install_saes(self.model))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module, kind, runner in self._attn:
            module._steerlens_attn_hooks[kind].remove(runner)
        self._attn.clear()

    # ---- forward bookkeeping --------------------------------------------------------
    def _track(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        ref = ids if ids is not None else embeds
        if ref is None:
            raise ValueError("forward pass without input_ids or inputs_embeds; the engine cannot place it")
        mask = kwargs.get("attention_mask")
        mask = mask if isinstance(mask, torch.Tensor) and mask.ndim == 2 else None
        state = self.state
        state.batch, state.seq_len = int(ref.shape[0]), int(ref.shape[1])
        if state.generation is not None:
            plan = state.generation
            state.offset = plan.locate(state.batch, state.seq_len, None if mask is None else int(mask.shape[1]))
            state.pad_left = plan.pad_left
        elif mask is not None:
            state.offset = int(mask.shape[1]) - state.seq_len
            state.pad_left = pad_left_of(mask)
        else:
            state.offset = cached_length(args, kwargs)
            state.pad_left = None
        state.previous_ids = previous_ids(state) if state.offset > 0 else None
        state.input_ids = ids if isinstance(ids, torch.Tensor) else None
        state.passes += 1

    # ---- installation per kind of site ----------------------------------------------
    def _install(self, site: SiteInfo, fns: list[HookFn]) -> None:
        hf = self.model.hf
        module = get_module(hf, site.module_path)
        point = HookPoint(site.name, site, self.state)

        def run(x: torch.Tensor) -> torch.Tensor | None:
            changed = False
            for fn in fns:
                result = fn(x, hook=point)
                if result is not None:
                    if not site.editable:
                        raise ValueError(f"site '{site.name}' is capture-only; it cannot be edited")
                    x, changed = result, True
            return x if changed else None

        if site.io == "sae":  # a site of an attached SAE: the callback runs at its hook point
            from .sae_sites import attachment_of
            attachment, part = attachment_of(self.model, site.name)
            self._handles.append(attachment.hook_part(part, run))
        elif site.io == "output":
            def out_hook(mod, args, out):
                full = out[0] if isinstance(out, tuple) else out
                new = run(site.to_user(full))
                if new is None:
                    return None
                new = site.from_user(new, full)
                return (new, *out[1:]) if isinstance(out, tuple) else new
            self._handles.append(module.register_forward_hook(out_hook))
        elif site.io == "input":
            def in_hook(mod, args, kwargs):
                full = args[0] if args else kwargs["hidden_states"]
                new = run(site.to_user(full))
                if new is None:
                    return None
                new = site.from_user(new, full)
                if args:
                    return (new, *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": new}
            self._handles.append(module.register_forward_pre_hook(in_hook, with_kwargs=True))
        elif site.io == "norm_scale":
            eps = _module_eps(module, self.model)
            kind = self.model.spec.norm_kind
            def scale_hook(mod, args, out):
                run(norm_divisor(args[0], kind, eps))
            self._handles.append(module.register_forward_hook(scale_hook))
        elif site.io in ("router", "selected"):
            state = self.state
            def router_hook(mod, args, out):
                if not isinstance(out, tuple) or len(out) < 3:
                    raise ValueError(f"{type(mod).__name__} returns no top-k (ids, weights) in this transformers "
                                     f"release, so '{site.name}' cannot be captured; upgrade transformers")
                logits, weights, ids = out[0], out[1], out[2]
                shape = (state.batch, state.seq_len, -1)
                if site.io == "router":  # recomputed: the first output is probabilities in some 5.x releases
                    run(router_logits(mod, args[0]).to(logits.dtype).view(shape))
                else:
                    run(ExpertSelection(ids.view(shape), weights.view(shape)))
            self._handles.append(module.register_forward_hook(router_hook))
        elif site.io == "expert_bias":  # expert toggles: the router's top-k is recomputed
            from .expert_bias import install_expert_bias
            self._handles.append(install_expert_bias(module, run, self.state))
        else:  # attention scores / pattern, inside steerlens_eager attention
            from .attention import enable_pattern_hooks
            enable_pattern_hooks(hf)
            kind = "scores" if site.io == "attn_scores" else "pattern"
            def attn_runner(x):
                new = run(x)
                return x if new is None else new
            registry = module.__dict__.setdefault("_steerlens_attn_hooks", {"scores": [], "pattern": []})
            registry[kind].append(attn_runner)
            self._attn.append((module, kind, attn_runner))


def pad_left_of(mask: torch.Tensor) -> torch.Tensor:
    """[b] left pads per row of a left-padded [b, p] attention mask."""
    return (mask.long().cumsum(-1) == 0).sum(-1)


def cached_length(args: tuple, kwargs: dict) -> int:
    """Tokens held by a `transformers.Cache` among the pass's arguments (0 if none).

    Found by type, not by argument name: the name has changed between releases."""
    from transformers import Cache

    for value in (*args, *kwargs.values()):
        if isinstance(value, Cache):
            return int(value.get_seq_length())
    return 0


def _module_eps(module: nn.Module, model: "Model") -> float:
    for name in ("variance_epsilon", "eps", "epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return model.spec.norm_eps(model.hf.config)
