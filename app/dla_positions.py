"""DLA at every position of one prompt, as tokens coloured by the logit difference they lead to.

A DLA run stores the positions it was asked for (usually the last). This view reruns the run's
own attribution (`interp.dla.attribution.run_dla`, same target and contrast from the run's
config) on the page's prompt at every position, with the run's model loaded once per process
(the playground's cache, under the same access rule as `app.patterns`). Each token is coloured
by the model's logit difference for the *next* token predicted there (red-white-blue, symmetric
about 0); the hover gives what attention and MLPs write (with the embeddings and biases they add
up to it). At the last position the value is the one the run saved for that prompt.
"""

from __future__ import annotations

import streamlit as st

from .tokenstrip import token_strip

RUN_FIELDS = ("target", "target_id", "contrast", "contrast_id")


def attribute_positions(model, config: dict, prompt: str) -> dict:
    """{tokens, value [n], attn [n], mlp [n]} of DLA at every position of `prompt` ([n] per token)."""
    from interp.dla.attribution import DLAConfig, run_dla

    n = int(model.tokenize([prompt]).attention_mask.sum())
    cfg = DLAConfig(**{k: config.get(k) for k in RUN_FIELDS}, positions=",".join(str(i) for i in range(n)))
    result = run_dla(model, [prompt], cfg)
    ids = model.tokenize([prompt]).input_ids[0, -n:].tolist()
    return {"tokens": [model.tokenizer.decode([i]) for i in ids], "direction": result.direction,
            "value": result.attributed[0].tolist(), "attn": result.head_attr[0].sum((-1, -2)).tolist(),
            "mlp": result.mlp_attr[0].sum(-1).tolist()}


def positions_view(run, prompts: list[str], prompt, key: str) -> None:
    """The coloured tokens of the page's prompt (an index; nothing for "mean"), after a button press."""
    if not isinstance(prompt, int) or not 0 <= prompt < len(prompts):
        st.caption("Pick one prompt above to attribute each of its positions.")
        return
    spec = run.model.get("spec")
    store = st.session_state.setdefault("dla_positions", {})
    wanted = (run.name, prompt)
    if wanted not in store:
        left, right = st.columns([3, 1])
        left.caption(f"The run stores the positions {run.config.get('positions', 'last')!r} only. Attributing every "
                     f"position of prompt {prompt} loads the run's model ({spec or 'unknown'}) once and reruns DLA.")
        if not right.button("Attribute every position", key=f"{key}:go", disabled=not spec):
            return
        from .playground import run_on_model

        got = run_on_model(spec, lambda model: attribute_positions(model, run.config, prompts[prompt]),
                           spinner="Attributing every position...",
                           failure=f"Cannot attribute the positions with {spec!r}")
        if got is None:
            return
        store[wanted] = got
    got = store[wanted]
    st.markdown(f"**DLA on {got['direction']} at every position of prompt {prompt}** (each token: the logit "
                "difference of the next-token prediction made there)")
    token_strip(got["tokens"], got["value"], "logit difference", fmt=".3g", diverging=True,
                notes=[f"attention {a:.3g}, MLP {m:.3g}" for a, m in zip(got["attn"], got["mlp"])])
