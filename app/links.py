"""Links between pages: a massive dimension -> that coordinate of a steering vector, a vector -> the
playground with it chosen.

A link is a button whose callback sets the target's pickers in the session state (as the run
list's "Open" buttons do, before the next run draws any widget) and the target's query
parameters, so the page it opens has a URL that can be shared (`url` gives it). Targets are
named by run / file name only, as everywhere in the explorer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import streamlit as st


def vector_coordinate_target(vector_name: str, dim: int, layer: int | None = None) -> dict[str, Any]:
    """Query parameters that open the vector page of `vector_name` with coordinate `dim` highlighted
    (and its layer picker on layer `layer`, as `linked_selectbox` keeps it in the URL)."""
    params = {"run": vector_name, f"{vector_name}:dim": str(int(dim))}
    if layer is not None:
        params[f"{vector_name}:layer"] = str(int(layer))
    return params


def playground_target(vector_name: str) -> dict[str, Any]:
    """Query parameters that open the playground with the vector file `vector_name` chosen."""
    return {"view": "playground", "vector": vector_name}


def url(params: dict[str, Any]) -> str:
    """The relative URL of a link target (``?run=...&...``), for sharing."""
    return "?" + urlencode(params)


def _go(params: dict[str, Any], state: dict[str, Any], drop: tuple[str, ...]) -> None:
    for key in drop:
        st.session_state.pop(key, None)
    st.session_state.update(state)
    st.query_params.clear()
    st.query_params.update(params)


def open_vector_coordinate(vector_name: str, dim: int, layers: list[int], layer: int | None, key: str,
                           label: str) -> None:
    """A button that opens the vector page of `vector_name` (directions at `layers`) at coordinate
    `dim`, on `layer` when the vector has it."""
    has_layer = layer in layers
    params = vector_coordinate_target(vector_name, dim, layer if has_layer else None)
    state = {"view": "runs", "run": vector_name, f"{vector_name}:dim": int(dim)}
    if has_layer:
        state[f"{vector_name}:layer"] = layer
    st.button(label, key=key, on_click=_go, args=(params, state, ()), help=f"opens {url(params)}")


def open_in_playground(vector_name: str, model_spec: str | None, key: str) -> None:
    """A button that opens the playground with this vector chosen (and, if no model is loaded yet,
    the vector's model filled in: one click on "Load model" then lists the vector)."""
    params = playground_target(vector_name)
    state: dict[str, Any] = {"view": "playground", "pg:source": "runs"}
    if model_spec and "pg:loaded" not in st.session_state:
        state["pg:spec"] = model_spec
    st.button("Steer with this vector in the playground", key=key, on_click=_go,
              args=(params, state, ("pg:vector:runs",)), help=f"opens {url(params)}")
