"""Live steering playground: unsteered and steered continuations side by side.

Load a model (zoo alias or a local model folder / .gguf), pick a steering vector (saved
in a run under the runs folder, or an uploaded .safetensors file), the layers, alpha,
positions, and generate both continuations with the same seed and decoding settings.
Steering goes through `steering.apply.steering_edits` (activation addition; AUSteer
masks scale their units), i.e. ordinary engine edits active at every decode step.

Other edits join through `register_controls`: a function ``(model) -> list[Edit]`` that
draws its own widgets (for example MoE expert toggles, once the engine can edit routing);
its edits are applied together with the vector's on the steered side.

The model is loaded once per process (`st.cache_resource`) and shared by sessions; a lock
serialises generation on it because edits are installed on the shared modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from steering.apply import POSITIONS, VectorUse, steering_edits
from steering.vectors import VectorFileError

from . import access, browse, generic
from .playground_vectors import how_to_make, make_section, misfit, token_effects, word_diff
from .runs import RunEntry
from .vectors import VectorChoice, read_vector_bytes, vectors_in_runs

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_PROMPTS = "Tell me about your weekend.\nWhat do you think of cats?"
EXTRA_CONTROLS: list[Callable] = []  # (model) -> list[Edit], drawing their own widgets


def register_controls(controls: Callable) -> Callable:
    """Add a group of playground controls whose edits join the steered generation."""
    EXTRA_CONTROLS.append(controls)
    return controls


@st.cache_resource(max_entries=2, show_spinner="Loading the model (once per process)...")
def load_model(spec: str):
    import interp

    return interp.load(spec), threading.Lock()


def run_on_model(spec: str, compute, *, spinner: str, failure: str, also_checked: tuple[str, ...] = ()):
    """`compute(model)` on the run's model `spec`, for views that rerun it on a button press:
    the access rule first (`access.model_refusal` for `spec` and each of `also_checked`),
    then the model loaded once per process (`load_model`) and `compute` run holding its lock,
    under `spinner`. Returns compute's value, or None after one `st.error` line (the refusal,
    or "`failure`: <error type>: <message>")."""
    options = access.app_options()
    refusal = next((r for r in (access.model_refusal(s, options) for s in (spec, *also_checked)) if r), None)
    if refusal:
        st.error(refusal)
        return None
    try:
        model, lock = load_model(spec)
        with st.spinner(spinner), lock:
            return compute(model)
    except Exception as e:
        st.error(f"{failure}: {type(e).__name__}: {e}")
        return None


@st.cache_resource(max_entries=4, show_spinner=False)
def _run_vectors(root: str, stamp: int, width: int) -> list[VectorChoice]:
    from .browse import runs_in

    return vectors_in_runs(runs_in(Path(root)), width)


def page(root: Path, entries: list[RunEntry]) -> None:
    st.title("Steering playground")
    st.caption("Same prompts, seed and decoding settings with and without the steering edits.")
    model = model_section()
    if model is None:
        return
    choice = vector_section(root, model)
    use = steering_controls(model, choice) if choice is not None else None
    if use is not None and use.layers:
        effects = token_effects(model, use.vector, use.layers[0])
        if effects is not None:
            with st.expander(f"Tokens this vector promotes and suppresses (layer {use.layers[0]}, through the "
                             "unembedding, per unit alpha)"):
                st.dataframe(effects, hide_index=True, key="pg:effects")
    extra = [edit for controls in EXTRA_CONTROLS for edit in controls(model)]
    generation_section(model, use, extra)


def model_section():
    left, right = st.columns([4, 1])
    spec = left.text_input("Model (zoo alias, model folder or .gguf file)", key="pg:spec",
                           value="" if "pg:spec" in st.session_state else DEFAULT_MODEL)  # a link may have set it
    right.write("")
    if right.button("Load model", key="pg:load"):
        refusal = access.model_refusal(spec.strip(), access.app_options())
        if refusal:
            st.error(refusal)
            return None
        st.session_state["pg:loaded"] = spec.strip()
    loaded = st.session_state.get("pg:loaded")
    if not loaded:
        st.info("Load a model to start (the first load of a zoo model takes up to a minute).")
        return None
    try:
        model, _ = load_model(loaded)
    except Exception as e:
        st.error(f"Cannot load {loaded!r}: {e}")
        return None
    st.caption(f"loaded **{loaded}**: {model.spec.family}, {model.n_layers} layers, d_model {model.d_model}, "
               f"{model.device}, {model.dtype}")
    return model


def vector_section(root: Path, model) -> VectorChoice | None:
    st.subheader("Steering vector")
    sources = {"runs": "a vector in the runs folder", "upload": "an uploaded .safetensors file",
               "make": "built here from two prompt lists"}
    source = st.radio("Vector from", list(sources), horizontal=True, key="pg:source", format_func=sources.get)
    if source == "make":
        made = make_section(model, load_model(st.session_state["pg:loaded"])[1])
        choices = [made] if made is not None else []
        if not choices:
            return None
    elif source == "upload":
        upload = st.file_uploader("Vector file (.safetensors only)", type=["safetensors"], key="pg:upload")
        if upload is None:
            return None
        try:
            read = read_vector_bytes(upload.name, upload.getvalue())
        except VectorFileError as e:
            st.error(str(e))
            return None
        choices = [c for c in read if misfit(model, c.vector) is None]
        if not choices:
            st.error(f"{upload.name} cannot steer this model: {misfit(model, read[0].vector)}")
            return None
    else:
        choices = _run_vectors(str(root), browse.folder_stamp(root) if root.is_dir() else 0, model.d_model)
        choices = [c for c in choices if misfit(model, c.vector) is None]
        if not choices:
            st.info(how_to_make(model, root, st.session_state["pg:loaded"]))
            return None
    wanted = st.query_params.get("vector")  # ?vector=<file>: a link from a vector page
    if source == "runs" and "pg:vector:runs" not in st.session_state and wanted in [c.name for c in choices]:
        st.session_state["pg:vector:runs"] = [c.name for c in choices].index(wanted)
    index = st.selectbox("Vector", range(len(choices)), key=f"pg:vector:{source}",
                         format_func=lambda i: choices[i].label)
    choice = choices[index]
    vector = choice.vector
    norms = vector.norms()
    fig = go.Figure(go.Bar(x=[str(layer) for layer in norms], y=list(norms.values()),
                           hovertemplate="layer %{x}: norm %{y:.4g}<extra></extra>"))
    fig.update_layout(title=f"{vector.kind} vector at site '{vector.site}' ({vector.method}): norm per layer",
                      xaxis={"title": "layer", "type": "category"}, yaxis_title="norm", height=260,
                      margin={"t": 40, "b": 30})
    generic.chart(fig, key="pg:norms")
    return choice


def steering_controls(model, choice: VectorChoice) -> VectorUse:
    vector = choice.vector
    available = vector.layers if len(vector.layers) > 1 else list(range(model.n_layers))
    default = [vector.layers[len(vector.layers) // 2]]
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    layers = c1.multiselect("Layers", available, default=[d for d in default if d in available],
                            key=f"pg:layers:{choice.label}")
    alpha = c2.slider("alpha", -30.0, 30.0, 4.0, 0.5, key="pg:alpha",
                      help="x + alpha * v (scale vectors: x * (1 + alpha * v))")
    positions = c3.selectbox("Positions", POSITIONS, key="pg:positions")
    relative = c4.toggle("alpha relative to ||x||", key="pg:relative", disabled=vector.kind != "add")
    if layers and vector.kind == "add":
        alpha_scale(model, vector, layers[0], alpha, relative)
    return VectorUse(vector, alpha=alpha, layers=layers, positions=positions, relative=relative)


def alpha_scale(model, vector, layer: int, alpha: float, relative: bool) -> None:
    """alpha in the layer's units: ||alpha v|| next to the median norm of what the vector's site
    carries on the prompts (the residual stream for "layer" vectors, the MLP output for "ffn", ...;
    `app.damage.site_norm`, kept per model, site and prompts) and the residual norm there, with a
    warning above 1x."""
    from steering.vectors import SITES

    from .damage import site_norm

    prompts = [p for p in st.session_state.get("pg:prompts", DEFAULT_PROMPTS).splitlines() if p.strip()]
    if not prompts or layer not in vector.layers:
        return
    store = st.session_state.setdefault("pg:site_norms", {})
    sites = {"residual stream": f"blocks.{layer}.hook_resid_post", "site": SITES[vector.site].format(layer=layer)}
    norms = {}
    for what, site in sites.items():
        wanted = (st.session_state.get("pg:loaded"), site, tuple(prompts))
        if wanted not in store:
            _, lock = load_model(st.session_state["pg:loaded"])
            with lock:
                store[wanted] = site_norm(model, prompts, site)
        norms[what] = store[wanted]
    size, norm = float(vector.norms()[layer]), norms["site"]
    where = f"the layer's median residual norm ({norms['residual stream']:.4g}" if vector.site == "layer" else (
        f"the median norm of what site '{vector.site}' carries ({norm:.4g}; the residual stream there: "
        f"{norms['residual stream']:.4g}")
    if relative:
        st.caption(f"alpha {alpha:g} relative to ||x||: each token gets alpha x ||x|| along the unit direction "
                   f"(layer {layer}: {where.split('(', 1)[1]}).")
        return
    ratio = abs(alpha) * size / norm if norm > 0 else float("inf")
    line = (f"||v|| at layer {layer} = {size:.4g}; ||alpha v|| = {abs(alpha) * size:.4g} = **{ratio:.2f}x** {where} "
            "over the prompts' tokens, the first excluded)")
    (st.warning if ratio > 1 else st.caption)(line + (": expect broken text; try alpha "
                                                       f"{norm / size:.2g} for 1x" if ratio > 1 and size else ""))


def generation_section(model, use: VectorUse | None, extra: list) -> None:
    st.subheader("Generate")
    prompts_text = st.text_area("Prompts (one per line)", DEFAULT_PROMPTS, key="pg:prompts")
    c1, c2, c3, c4, c5 = st.columns(5)
    chat = c1.toggle("chat template", value=model.tokenizer.chat_template is not None, key="pg:chat")
    max_new = c2.number_input("new tokens", 1, 512, 40, key="pg:max_new")
    temperature = c3.number_input("temperature", 0.0, 2.0, 0.0, 0.1, key="pg:temperature")
    seed = c4.number_input("seed", 0, 2**31 - 1, 0, key="pg:seed")
    mismatch = c5.toggle("other model's vector", key="pg:mismatch",
                         help="use a vector made on another checkpoint of the same shape")
    prompts = [p for p in prompts_text.splitlines() if p.strip()]
    steering = use is not None and bool(use.layers)
    if st.button("Generate", type="primary", key="pg:generate", disabled=not prompts or not (steering or extra)):
        try:
            edits = (steering_edits(model, [use], allow_other_model=mismatch) if steering else []) + extra
        except (ValueError, VectorFileError) as e:
            st.error(str(e))
            return
        settings = dict(chat=chat, max_new_tokens=int(max_new), temperature=float(temperature), seed=int(seed))
        _, lock = load_model(st.session_state["pg:loaded"])
        with st.spinner("Generating..."), lock:
            plain = model.generate(prompts, **settings)
            steered = model.generate(prompts, edits=edits, return_logits=True, **settings)
            from .damage import damage

            harm = damage(model, prompts, chat, plain, steered)
        st.session_state["pg:result"] = {
            "prompts": prompts, "plain": plain.texts, "steered": steered.texts, "damage": harm,
            "what": (f"layers {use.layers}, alpha {use.alpha}{' (relative)' if use.relative else ''}, "
                     f"positions {use.positions}, " if steering else "")
                    + f"{len(extra)} other edit(s), seed {int(seed)}, temperature {float(temperature)}",
            "speed": (plain.tokens_per_s, steered.tokens_per_s)}
    show_result(st.session_state.get("pg:result"))
    if steering and prompts:
        sweep_section(model, use, extra, prompts[0], dict(chat=chat, max_new_tokens=int(max_new),
                                                           temperature=float(temperature), seed=int(seed)),
                      mismatch)


SWEEP = (-1.0, 0.0, 0.5, 1.0, 2.0)  # multiples of the chosen alpha


def sweep_section(model, use: VectorUse, extra: list, prompt: str, settings: dict, mismatch: bool) -> None:
    """The first prompt at alpha x (-1, 0, 0.5, 1, 2), words that differ from alpha 0 marked."""
    from dataclasses import replace

    st.subheader("Alpha sweep")
    alphas = [round(m * use.alpha, 4) for m in SWEEP]
    if st.button(f"Generate the first prompt at alpha {', '.join(f'{a:g}' for a in alphas)}", key="pg:sweep"):
        _, lock = load_model(st.session_state["pg:loaded"])
        texts = []
        with st.spinner("Generating the sweep..."), lock:
            for alpha in alphas:
                edits = steering_edits(model, [replace(use, alpha=alpha)], allow_other_model=mismatch) + extra
                texts.append(model.generate([prompt], edits=edits, **settings).texts[0])
        st.session_state["pg:sweep_result"] = {"prompt": prompt, "alphas": alphas, "texts": texts}
    result = st.session_state.get("pg:sweep_result")
    if not result:
        return
    base = result["texts"][result["alphas"].index(0.0)] if 0.0 in result["alphas"] else result["texts"][0]
    st.caption(f"prompt: {result['prompt']} · marked: words that differ from alpha 0")
    rows = "".join(f"<tr><td style='white-space:nowrap;padding-right:1em'>alpha {a:g}</td><td>{word_diff(base, t)}</td></tr>"
                   for a, t in zip(result["alphas"], result["texts"]))
    st.html(f"<table style='width:100%'>{rows}</table>")


def show_result(result: dict | None) -> None:
    if not result:
        return
    st.caption(f"{result['what']} · {result['speed'][0]:.1f} / {result['speed'][1]:.1f} tokens/s")
    for i, prompt in enumerate(result["prompts"]):
        st.markdown(f"**Prompt {i + 1}:** {prompt}")
        left, right = st.columns(2)
        left.markdown("unsteered")
        left.code(result["plain"][i], language=None, wrap_lines=True)
        right.markdown("steered")
        right.code(result["steered"][i], language=None, wrap_lines=True)
        right.html(f"<div style='font-size:0.85em'>changed words marked: "
                   f"{word_diff(result['plain'][i], result['steered'][i])}</div>")
        harm = (result.get("damage") or [None] * (i + 1))[i]
        if harm:
            ratio = harm["ppl_steered"] / harm["ppl_plain"] if harm["ppl_plain"] > 0 else float("inf")
            line = (f"damage: the unsteered model's perplexity on this text is {harm['ppl_steered']:.3g} "
                    f"({ratio:.2g}x its {harm['ppl_plain']:.3g} on its own continuation); mean KL(steered || "
                    f"unsteered) per token {harm['kl']:.3g} nats")
            (right.warning if ratio > 3 or harm["kl"] > 0.5 else right.caption)(line)
