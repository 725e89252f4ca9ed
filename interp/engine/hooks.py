"""The tracing engine's core: install callbacks on named sites for the span of a `with` block.

Callbacks follow TransformerLens: `fn(tensor, hook=point) -> tensor | None`; returning a
tensor replaces the site's value, returning None leaves it as is. `point` is a `HookPoint`
with the site's name and layer and a view of where this forward pass is: which positions
are padding, which belong to the prompt and which were generated. That is what lets one
edit behave the same in a single forward pass and at every step of `generate` with the KV
cache on.

Positions are counted over real tokens: 0 is the first non-pad token of each row, and
negative indices count back from the end of the prompt. Position specs accepted
everywhere: "all" (every real token), "prompt", "generated", "last" (last prompt token), a
sequence of ints, or a bool tensor [batch, padded_len] over padded positions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..arch.spec import get_module
from .sites import ExpertSelection, SiteInfo, norm_divisor

if TYPE_CHECKING:
    from .model import Model

Positions = str | Sequence[int] | torch.Tensor
HookFn = Callable[..., "torch.Tensor | None"]
POSITION_WORDS = ("all", "prompt", "generated", "last")


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

    def row_index(self, device) -> torch.Tensor:  # [b]
        if self.rows is None:
            return torch.arange(self.batch, device=device)
        return torch.tensor(self.rows, device=device)

    def prompt_end(self) -> int:
        return self.prompt_len if self.prompt_len is not None else self.offset + self.seq_len

    def padded_positions(self, device) -> torch.Tensor:  # [p]
        return torch.arange(self.offset, self.offset + self.seq_len, device=device)

    def real_positions(self, device) -> torch.Tensor:  # [b, p]
        pad = self.pad_left.to(device) if self.pad_left is not None else torch.zeros(self.batch, device=device, dtype=torch.long)
        return self.padded_positions(device)[None, :] - pad[:, None]

    def position_mask(self, positions: Positions, device) -> torch.Tensor:
        """Bool [b, p] of the positions in this pass that `positions` selects."""
        padded = self.padded_positions(device)[None, :].expand(self.batch, -1)
        real = self.real_positions(device)
        valid = real >= 0
        end = self.prompt_end()
        if isinstance(positions, torch.Tensor):
            full = positions.to(device=device, dtype=torch.bool)
            if full.shape[-1] < self.offset + self.seq_len:
                full = torch.nn.functional.pad(full, (0, self.offset + self.seq_len - full.shape[-1]))
            return full[:, self.offset : self.offset + self.seq_len].expand(self.batch, -1) & valid
        if isinstance(positions, str):
            if positions == "all":
                return valid
            if positions == "prompt":
                return valid & (padded < end)
            if positions == "generated":
                return valid & (padded >= end)
            if positions == "last":
                return valid & (padded == end - 1)
            raise ValueError(f"unknown positions '{positions}': use one of {POSITION_WORDS}, ints or a mask")
        n_prompt = (end - (self.pad_left if self.pad_left is not None else 0))
        n_prompt = torch.as_tensor(n_prompt, device=device).reshape(-1, 1)
        mask = torch.zeros_like(valid)
        for index in positions:
            target = index + n_prompt if index < 0 else torch.full_like(n_prompt, index)
            mask |= real == target
        return mask & valid


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
    caller's prompt order when batches were length-sorted (edits such as `Patch` need it).
    """

    model: "Model"
    hooks: Sequence[tuple[str, HookFn]]
    prompt_len: int | None = None
    rows: list[int] | None = None
    state: ForwardState = field(init=False)
    _handles: list = field(init=False, default_factory=list)
    _attn: list = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.state = ForwardState(prompt_len=self.prompt_len, rows=self.rows)
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
        mask = kwargs.get("attention_mask")
        past = kwargs.get("past_key_values")
        state = self.state
        state.batch, state.seq_len = int(ref.shape[0]), int(ref.shape[1])
        if isinstance(mask, torch.Tensor) and mask.ndim == 2:
            state.offset = int(mask.shape[1]) - state.seq_len
            state.pad_left = (mask.long().cumsum(-1) == 0).sum(-1)  # leading zeros = left pads
        else:
            state.offset = int(past.get_seq_length()) if past is not None else 0
            state.pad_left = None
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

        if site.io == "output":
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
                logits, weights, ids = out[0], out[1], out[2]
                shape = (state.batch, state.seq_len, -1)
                if site.io == "router":
                    run(logits.view(shape))
                else:
                    run(ExpertSelection(ids.view(shape), weights.view(shape)))
            self._handles.append(module.register_forward_hook(router_hook))
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


def _module_eps(module: nn.Module, model: "Model") -> float:
    for name in ("variance_epsilon", "eps", "epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return model.spec.norm_eps(model.hf.config)
