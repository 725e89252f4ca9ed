"""The planted gate (tests/routing/screen/routing_plant.py): necessary, with no direct logit effect.

The screen must name it the gate with p < 0.01, while a DLA-only ranking of heads (per-head
DLA on 'R' - 'o' at the last prompt token, harmful minus benign, as in the paper's step 1)
puts the amplifiers first and the gate near zero."""

from __future__ import annotations

import pytest

from interp.dla.attribution import dla
from interp.routing.screen import ScreenConfig, screen_heads
from routing_plant import AMPLIFIERS, GATE, gate_model, gate_pairs

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planted():
    return gate_model(), *gate_pairs()


@pytest.mark.parametrize("method", ["exact", "atp+exact"])
def test_the_screen_names_the_planted_gate_with_a_small_p(planted, method):
    model, harmful, benign, conts = planted
    screen = screen_heads(model, harmful, benign, conts, ScreenConfig(method=method, verify=2, verify_random=2),
                          progress=False)
    assert screen.gate() == GATE
    k = screen.head_index(*GATE)
    assert screen.p_necessity[k] < 0.01 and screen.necessity_pct[k] > 50
    assert float(screen.baseline_delta.mean()) > 0
    measured = [screen.head_index(*amp) for amp in AMPLIFIERS if screen.exact[screen.head_index(*amp)]]
    assert measured  # AtP's top 2 are the gate and an amplifier
    for a in measured:  # each amplifier alone carries far less
        assert screen.necessity_pct[a] < 0.5 * screen.necessity_pct[k]


def test_a_dla_only_ranking_would_not_find_the_gate(planted):
    model, harmful, benign, _ = planted
    delta = (dla(model, harmful, "R", "o", chat=True).head_attr.mean((0, 1))
             - dla(model, benign, "R", "o", chat=True).head_attr.mean((0, 1))).abs()  # [L, H]
    order = [divmod(int(i), model.n_heads) for i in delta.flatten().argsort(descending=True)]
    assert set(order[:3]) == set(AMPLIFIERS)
    assert order.index(GATE) >= 3
    assert delta[GATE] < 1e-3 * delta.max()
