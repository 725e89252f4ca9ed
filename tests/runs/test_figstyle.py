"""Saved figures put layer 0 at the top, as the explorer does (`interp.runs.figstyle`)."""

import json
from dataclasses import dataclass
from typing import ClassVar

import plotly.graph_objects as go

from interp.runs.results import Result


@dataclass
class LayerMapResult(Result):
    analysis: ClassVar[str] = "figstyle-layer-map"
    n_layers: int = 3

    def figures(self) -> dict[str, go.Figure]:
        z = [[float(layer)] * 2 for layer in range(self.n_layers)]
        return {"map": go.Figure(go.Heatmap(z=z)).update_layout(yaxis_title="layer", xaxis_title="head"),
                "bars": go.Figure(go.Bar(y=[1, 2])).update_layout(yaxis_title="layer count")}


def test_saved_layer_maps_have_layer_0_at_the_top_in_json_and_html(tmp_path):
    run = LayerMapResult().save(tmp_path / "run")
    saved = json.loads((run / "figures" / "map.json").read_text())
    assert saved["layout"]["yaxis"]["autorange"] == "reversed"
    assert '"autorange":"reversed"' in (run / "figures" / "map.html").read_text()
    bars = json.loads((run / "figures" / "bars.json").read_text())  # not a heatmap: left alone
    assert "autorange" not in bars["layout"].get("yaxis", {})
