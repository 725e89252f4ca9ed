"""Where a model's weights run: one device, or several under accelerate's `device_map`.

A model loaded with `device_map` (`interp.load(..., device_map="auto", max_memory=...)`)
has its layers on several GPUs, the CPU, or offloaded to disk (parameters on `meta`, moved
in by accelerate's hooks for each pass). The engine needs two facts about it:

- the *input device*, where token ids go: the execution device of the input embeddings
  (not `next(parameters()).device`, which is `meta` for offloaded weights);
- nothing else: every edit moves its vector to the device of the tensor it edits
  (`interp.engine.edits`), capture hooks copy to the CPU or keep the value on its layer's
  device, and `gather_device` names the one device captures are gathered on when kept on
  the accelerator (the input device).
"""

from __future__ import annotations

import torch


def execution_device(module: torch.nn.Module) -> torch.device | None:
    """The device a module computes on: accelerate's hook's execution device if it has one,
    else its first real (non-meta) parameter's; None when neither says."""
    hook = getattr(module, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is not None:
        return torch.device(device if not isinstance(device, int) else f"cuda:{device}")
    for param in module.parameters():
        if param.device.type != "meta":
            return param.device
    return None


def input_device(hf: torch.nn.Module) -> torch.device:
    """Where the token ids of a forward pass must go (see the module docstring)."""
    if getattr(hf, "hf_device_map", None):
        found = execution_device(hf.get_input_embeddings()) or execution_device(hf)
        if found is not None:
            return found
    for param in hf.parameters():
        if param.device.type != "meta":
            return param.device
    return torch.device("cpu")


def gather_device(hf: torch.nn.Module) -> torch.device:
    """The device captures kept on the accelerator are gathered on (the input device)."""
    return input_device(hf)
