"""nnsight interop: reach a steerlens site from an nnsight trace over the same weights.

    lm = model.nnsight()                       # nnsight TransformersModel, no weight copy
    with lm.trace(inputs):
        envoy, io = nnsight_envoy(lm, model, "blocks.3.attn.hook_z")
        z = (envoy.input if io == "input" else envoy.output).save()
    z = model.site(name).to_user(z)            # same view as our capture ([b, p, H, d_head])

Sites whose value is computed inside a module (attention patterns in steerlens_eager,
norm scales, router decisions) have no single nnsight envoy; they raise ValueError.
"""

from __future__ import annotations


def nnsight_envoy(lm, model, site: str):
    """(envoy, 'input' | 'output') of the module that `site` hooks."""
    info = model.site(site)
    if info.io not in ("input", "output"):
        raise ValueError(f"site '{site}' is computed inside its module ({info.io}); nnsight cannot address it")
    envoy = lm
    for part in info.module_path.split("."):
        envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
    return envoy, info.io
