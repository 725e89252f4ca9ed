"""Steering vectors the playground can use on the loaded model: fit checks and making one.

`misfit` says why a vector cannot steer the loaded model (width of its site, layers out of
range), so an upload of another model's vector is refused when it arrives, with both widths
named. `how_to_make` is what the page says when the runs folder holds no vector for the
model; `make_section` builds one in the page from two prompt lists with
`steering.contrast.make_vector` (difference of means of the last-token activations at one
layer, Turner et al. 2023 "Activation Addition"; the same function as `steerlens vector make`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from steering.vectors import SteeringVector, VectorFileError, site_width

from .vectors import VectorChoice

POSITIVE = "I love this, it is wonderful!\nWhat a great and happy day.\nThis is fantastic news, thank you!"
NEGATIVE = "I hate this, it is awful.\nWhat a terrible and sad day.\nThis is dreadful news, go away."


def misfit(model, vector: SteeringVector) -> str | None:
    """Why `vector` cannot steer `model` (None when it fits)."""
    try:
        width = site_width(model, vector.site)
    except VectorFileError as e:
        return str(e)
    spec = (getattr(model, "info", {}) or {}).get("spec") or model.spec.family
    if vector.width != width:
        made = vector.model.get("spec") or vector.model.get("name_or_path")
        return (f"this vector has {vector.width} coordinates per layer but the loaded model ({spec}) has "
                f"{width} at the '{vector.site}' site"
                + (f"; it was made on {made}" if made else "; it was made for another model")
                + ". Load that model, or make a vector for this one (below: 'built here from two prompt lists').")
    outside = [layer for layer in vector.layers if not 0 <= layer < model.n_layers]
    if outside:
        return (f"this vector has layers {outside} but the loaded model ({spec}) has layers "
                f"0..{model.n_layers - 1}; it was made for a deeper model")
    return None


def how_to_make(model, root: Path, spec: str) -> str:
    return (f"No steering vector for this model (width {model.d_model}) in the runs under `{root}`. "
            "Build one here from two prompt lists (choose *built here from two prompt lists* above), upload a "
            "`.safetensors` vector, or make one on the command line and save it in the runs folder:\n\n"
            f"`steerlens vector make -m {spec} --positive happy.txt --negative sad.txt --layers "
            f"{model.n_layers // 2} --out {root}/happy.safetensors`\n\n"
            f"(`steerlens tour -m {spec}` also leaves one: skill direction 0 in its `skills` run.)")


def make_section(model, lock) -> VectorChoice | None:
    """Two prompt lists, a layer, a button: the difference-of-means vector, kept in the session."""
    from steering.contrast import ContrastConfig, make_vector

    st.caption("The vector points from the second list's activations to the first's (difference of means of the "
               "last token's residual stream at one layer); add it with alpha > 0 to push towards the first list.")
    left, right = st.columns(2)
    positives = left.text_area("Towards (one text per line)", POSITIVE, key="pg:make:pos", height=120)
    negatives = right.text_area("Away from (one text per line)", NEGATIVE, key="pg:make:neg", height=120)
    c1, c2 = st.columns([1, 3])
    layer = c1.number_input("Layer", 0, model.n_layers - 1, model.n_layers // 2, key="pg:make:layer")
    pos = [t for t in positives.splitlines() if t.strip()]
    neg = [t for t in negatives.splitlines() if t.strip()]
    c2.write("")
    if c2.button("Build the vector", key="pg:make:build", disabled=not (pos and neg)):
        with st.spinner("Reading the activations..."), lock:
            vector = make_vector(model, pos, neg, ContrastConfig(layers=[int(layer)]))
        st.session_state["pg:made"] = VectorChoice(f"built here · layer {int(layer)} · {len(pos)} vs {len(neg)} "
                                                   "texts", vector)
    made = st.session_state.get("pg:made")
    if made is None:
        st.info("Write the two lists and press *Build the vector*.")
        return None
    if misfit(model, made.vector):  # built on another model loaded earlier
        st.session_state.pop("pg:made")
        return None
    st.download_button("Download this vector (.safetensors)", _vector_bytes(made.vector),
                       file_name=f"vector-layer{made.vector.layers[0]}.safetensors", key="pg:make:download",
                       on_click="ignore")
    return made


def _vector_bytes(vector: SteeringVector) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return vector.save(Path(folder) / "v.safetensors").read_bytes()


def token_effects(model, vector: SteeringVector, layer: int, k: int = 10):
    """The k tokens one layer's direction raises most and lowers most through the unembedding:
    `W_U v` (logits per unit alpha, the final norm left out: a direct-path reading, as in the
    logit lens). Only for residual-width sites ("layer", "ffn"); None otherwise."""
    import pandas as pd
    import torch

    from .tokens import visible

    if layer not in vector.vectors and len(vector.layers) == 1:
        layer = vector.layers[0]  # a one-layer vector applied at another layer: the same direction
    if vector.site == "attention" or layer not in vector.vectors:
        return None
    unembed = model.hf.get_output_embeddings().weight.detach()  # [V, d_model]
    with torch.no_grad():
        logits = unembed.float() @ vector.vectors[layer].to(unembed.device).float()  # [V]
    up, down = logits.topk(k), (-logits).topk(k)
    decode = model.tokenizer.decode
    return pd.DataFrame({"rank": range(1, k + 1),
                         "promoted": [visible(decode([int(i)])) for i in up.indices],
                         "logit change (+)": up.values.tolist(),
                         "suppressed": [visible(decode([int(i)])) for i in down.indices],
                         "logit change (-)": (-down.values).tolist()})


def word_diff(plain: str, steered: str) -> str:
    """`steered` as HTML with the words not in `plain` marked (difflib over whitespace-split words)."""
    import difflib
    import html

    a, b = plain.split(), steered.split()
    out = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        words = html.escape(" ".join(b[j1:j2]))
        if words:
            out.append(words if op == "equal" else f"<mark>{words}</mark>")
    return " ".join(out)
