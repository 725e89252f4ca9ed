"""Explorer pages for skill bases (`steering.skills`, arXiv 2604.17614).

Basis runs (`skills fit`): explained variance; a direction picker showing the keywords of
each pole and its top and bottom examples (cosine with the uncentred pooled activation);
the corpus projected on two chosen directions, coloured by a chosen metadata column, the
text on hover. Steering runs (`skills steer`): the effect and damage per direction against
alpha, the sweep table and the proxy ranking.
"""

from __future__ import annotations

import streamlit as st

from steering.skills.figures import (default_color, explained_variance_figure, projection_figure,
                                     steering_effect_figure)

from .generic import chart, table_view
from .registry import Shown, page
from .runs import SavedRun


@page("skills", result="steering.skills.result")
def skills_page(run: SavedRun, r) -> Shown:
    key = run.name
    s = r.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("texts", s["n_texts"])
    c2.metric("directions", s["k"])
    c3.metric("variance explained", f"{s['explained_variance_total']:.1%}")
    c4.metric("layers pooled", len(s["layers"]))
    chart(explained_variance_figure(r), key=f"{key}:variance")

    st.subheader("Directions")
    direction = st.selectbox("Direction", range(r.k), key=f"{key}:direction",
                             format_func=lambda k: f"{k} ({float(r.variance_ratio[k]):.1%})"
                             + (f": {r.directions[k]['name']}" if r.directions[k].get("name") else ""))
    record = r.directions[direction]
    left, right = st.columns(2)
    for column, pole, words in ((left, "+", record["keywords_pos"]), (right, "-", record["keywords_neg"])):
        column.markdown(f"**{pole} pole** keywords: {', '.join(words) or '-'}")
    n = st.slider("Examples per pole", 1, len(record["top_index"]), min(5, len(record["top_index"])),
                  key=f"{key}:n") if len(record["top_index"]) > 1 else 1
    for pole in ("+", "-"):
        st.markdown(f"{pole} pole: most {'aligned' if pole == '+' else 'opposed'} texts")
        table_view(r.examples(direction, pole, n), key=f"{key}:examples{pole}", name=f"{key}-d{direction}{pole}")

    if r.k >= 2:
        st.subheader("Corpus on two directions")
        a, b, c = st.columns(3)
        x = a.selectbox("x", range(r.k), index=0, key=f"{key}:x")
        y = b.selectbox("y", range(r.k), index=1, key=f"{key}:y")
        options = [None] + [col for col in r.corpus.columns if col not in ("text",)]
        default = default_color(r.corpus)
        color = c.selectbox("colour by", options, index=options.index(default) if default in options else 0,
                            key=f"{key}:color", format_func=lambda v: "none" if v is None else v)
        chart(projection_figure(r, x, y, color), key=f"{key}:projection")
    st.subheader("Corpus")
    table_view(r.corpus, key=f"{key}:corpus", name=f"{key}-corpus")
    return Shown(figures={"explained_variance", "projection"}, tables={"corpus"})


@page("skills-steer", result="steering.skills.steer")
def skills_steer_page(run: SavedRun, r) -> Shown:
    key = run.name
    s = r.summary()
    base = s["baseline"]
    c1, c2, c3 = st.columns(3)
    c1.metric(f"{r.task} accuracy (no steering)", f"{base['accuracy']:.2f}")
    if base.get("pass_at_k") is not None:
        c2.metric(f"pass@{r.pass_k} (no steering)", f"{base['pass_at_k']:.2f}")
    c3.metric("held-out perplexity", f"{base['ppl']:.2f}")
    metric = st.radio("Task metric", ["accuracy", "pass_at_k"] if r.table["pass_at_k"].notna().any() else
                      ["accuracy"], horizontal=True, key=f"{key}:metric")
    chart(steering_effect_figure(r.table, metric), key=f"{key}:effect")
    table_view(r.table, key=f"{key}:table", name=f"{key}-sweep")
    if r.proxy is not None:
        st.subheader("Proxy ranking (answer NLL drop at the best pole)")
        table_view(r.proxy, key=f"{key}:proxy", name=f"{key}-proxy")
    return Shown(figures={"steering_effect", "steering_pass_at_k"}, tables={"table", "proxy"})
