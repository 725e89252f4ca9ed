"""Device-to-host copies of captures without stalling the accelerator's queue.

`to_host(t)` returns a CPU tensor holding `t`. On CUDA it copies into page-locked
(pinned) memory with `non_blocking=True`: the call returns at once and the copy runs in
the stream after the kernels that produce `t`, so a capture hook inside the layer loop
never waits for the GPU. The values are valid only after `wait_for_copies(device)`, which
the engine calls once per batch, after the forward pass. On CPU `t` is returned as is;
other devices (MPS) copy synchronously.
"""

from __future__ import annotations

import weakref

import torch


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor with `t`'s values (pending on CUDA until `wait_for_copies`)."""
    if t.device.type == "cpu":
        return t
    if t.device.type == "cuda":
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        return host
    return t.to("cpu")


def wait_for_copies(device: torch.device | str) -> None:
    """Block until the copies queued by `to_host` on `device`'s current stream are done
    (once per batch, outside the layer loop; a no-op off CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


_COPIES: dict[int, tuple[weakref.ref, dict]] = {}  # id(tensor) -> (weak ref to it, {key: copy})


def on_device(value: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`value` on `device` in `dtype`, copied once and reused while `value` is unchanged.

    An edit's vector (on the CPU, or on another GPU of a split model) is needed on its
    layer's device at every forward pass and every decode step; copying it each time costs
    a host-to-device transfer inside the layer loop. The copy is cached per (device,
    dtype) and keyed on the tensor's version counter, so an in-place change of `value`
    makes a fresh copy. Copies live as long as `value` does. Tensors made under
    `torch.inference_mode` (e.g. a difference of captured activations) have no version
    counter and are copied at each call."""
    if value.device == device and value.dtype == dtype:
        return value
    try:
        key = (device, dtype, value._version)
    except RuntimeError:  # an inference-mode tensor has no version counter: copy every time
        return value.detach().to(device=device, dtype=dtype)
    ident = id(value)
    entry = _COPIES.get(ident)
    if entry is None or entry[0]() is not value:
        entry = _COPIES[ident] = (weakref.ref(value, lambda _, ident=ident: _COPIES.pop(ident, None)), {})
    per_tensor = entry[1]
    copy = per_tensor.get(key)
    if copy is None:
        per_tensor.clear()  # older versions are stale
        copy = per_tensor[key] = value.detach().to(device=device, dtype=dtype)
    return copy
