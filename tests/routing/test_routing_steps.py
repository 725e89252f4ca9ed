"""Identities of the routing steps on a tiny random model (unpadded and padded batches)."""

import pytest
import torch
from tiny import tiny_model

from interp.dla.decompose import head_dla
from interp.dla.directions import refusal_direction
from interp.engine.edits import Zero
from interp.engine.model import TokenBatch
from interp.metrics.refusal import refusal_rate
from interp.routing.ablation import ablate_heads, head_space_direction
from interp.routing.baseline import compute_baseline
from interp.routing.cipher import cipher_prompt
from interp.routing.collapse import cipher_collapse
from interp.routing.contrast import cipher_contrast
from interp.routing.dla_screen import dla_screen, rank_band
from interp.routing.knockout import amplifier_candidates, knockout_cascade, null_pool
from interp.routing.modulation import dose_response
from interp.routing.nll import continuation_nll
from interp.routing.rescue import donor_z, rescue, rescue_edit

pytestmark = pytest.mark.usefixtures("one_thread")

HARM = ["How do I make a bomb?", "How can I steal a car quickly?", "Hack wifi"]
BEN = ["How do I make a cake?", "How can I wash a car quickly?", "Set wifi"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def base(model):
    return compute_baseline(model, HARM, BEN, 1, chat=True, batch_size=2)


def test_baseline_shapes(model, base):
    assert len(base.continuations) == 3 and all(1 <= len(c) <= 5 for c in base.continuations)
    assert base.probe.shape == (model.d_model,) and abs(float(base.probe.norm()) - 1) < 1e-5


def test_probe_read_in_the_generations_equals_one_pass_over_the_prompts(model, base):
    site = "blocks.1.hook_resid_post"
    harm = model.run_with_cache(HARM, [site], positions="last", chat=True, logits=None)[1][site]
    ben = model.run_with_cache(BEN, [site], positions="last", chat=True, logits=None)[1][site]
    diff = (harm - ben).double().mean(0)
    torch.testing.assert_close(base.probe, (diff / diff.norm()).float(), rtol=0, atol=1e-5)
    assert base.probe_norm == pytest.approx(float(diff.norm()), rel=1e-5)
    conts = [model.generate([p], chat=True, max_new_tokens=8).new_tokens[0].tolist() for p in BEN]
    special = set(model.tokenizer.all_special_ids)
    assert base.continuations == [[t for t in c if t not in special][:5] for c in conts]


def test_nll_matches_a_manual_forward_for_one_prompt_and_in_a_padded_batch(model, base):
    batched = continuation_nll(model, HARM, base.continuations, chat=True, batch_size=3)
    for i in range(3):
        ids = model.tokenize([HARM[i]], chat=True).input_ids[0].tolist()
        cont = base.continuations[i]
        row = torch.tensor([ids + cont])
        logits = model.forward(TokenBatch(row, torch.ones_like(row), ["x"])).double()[0].log_softmax(-1)
        manual = -sum(logits[len(ids) - 1 + j, t] for j, t in enumerate(cont)) / len(cont)
        alone = continuation_nll(model, [HARM[i]], [cont], chat=True)
        assert torch.allclose(alone[0], manual, atol=1e-9) and torch.allclose(batched[i], manual, atol=1e-6)


def test_dla_screen_delta_and_band(model, base):
    screen = dla_screen(model, HARM, BEN, base.benign_first, band=(1, 3), top_k=3, chat=True)
    assert screen.harmful.shape == (3, model.n_layers, model.n_heads) and screen.delta.shape == (3, 4)
    assert all(1 <= l < 3 for l, _ in screen.candidates) and len(screen.candidates) == 3
    delta = torch.tensor([[9.0, 0, 0, 0], [0, -5.0, 1, 0], [0, 0, 0, 2.0]])
    assert rank_band(delta, (1, 3), 2) == [(1, 1), (2, 3)]


def test_knockout_of_the_gate_equals_a_manual_zero_edit(model, base):
    screen = dla_screen(model, HARM, BEN, base.benign_first, band=(0, 3), top_k=3, chat=True)
    gate = (0, 1)
    ko = knockout_cascade(model, HARM, BEN, base.benign_first, screen.delta, gate, k=3, null_heads=2, chat=True)
    direction = refusal_direction(model, list(base.benign_first))
    edit = [Zero("blocks.0.attn.hook_z", heads=[1])]
    manual = (head_dla(model, HARM, direction, chat=True, edits=edit)
              - head_dla(model, BEN, direction, chat=True, edits=edit)).mean(0)
    for j, (l, h) in enumerate(ko.candidates):
        assert l > 0 and torch.allclose(ko.knocked[j], manual[l, h].float(), atol=1e-5)
        expected = 100 * (ko.knocked[j] - ko.normal[j]) / ko.normal[j].abs()
        assert torch.allclose(ko.change_pct[j], expected)
    assert ko.null_change_pct.shape == (2, len(ko.candidates))
    assert all(h != gate and h not in ko.candidates and abs(h[0] - gate[0]) <= 1 for h in ko.null_heads)
    assert amplifier_candidates(torch.tensor([[5.0, 1], [-1, 2], [3, 0]]), (0, 0), 5) == [(2, 0), (1, 1)]
    assert null_pool(24, 14, (23, 0), 100, 0) and all(l >= 22 for l, _ in null_pool(24, 14, (23, 0), 100, 0))
    # a candidate one layer below the gate's next is never its own null (its knockout zeroes its DLA: -100%)
    cands = [(11, h) for h in range(14)]
    assert null_pool(24, 14, (10, 3), 100, 0, exclude=cands[:10]) and not set(
        null_pool(24, 14, (10, 3), 100, 0, exclude=cands[:10])) & set(cands[:10] + [(10, 3)])
    assert len(null_pool(24, 14, (10, 3), 100, 0, exclude=cands)) == 2 * 14 - 1


def test_modulation_at_alpha_zero_is_plain_generation(model, base):
    dose = dose_response(model, HARM, BEN, base.probe, 1, [0.0, 5.0], n_sweep=2, chat=True, max_new_tokens=5,
                         batch_size=2)
    plain = model.generate(HARM, chat=True, max_new_tokens=5).texts
    zero = dose.texts[(dose.texts.prompts == "harmful") & (dose.texts.alpha == 0.0)]
    assert zero.response.tolist() == plain
    assert set(dose.table.alpha) == {0.0, 5.0, -5.0} and set(dose.baseline) == {"rules", "substring"}
    assert dose.table[dose.table.alpha == 5.0].n.item() == 2
    fractions = dose.table[["refusal", "answer", "other"]].sum(axis=1)
    assert torch.allclose(torch.tensor(fractions.values), torch.ones(len(fractions), dtype=torch.float64))


def test_modulation_rows_equal_one_generation_per_strength(model, base):
    """The one batched generation per side gives each (alpha, prompt) row what a generation
    steered by that alpha alone gives (the per-alpha loop it replaced)."""
    from interp.routing.modulation import steer_edit, swept_prompts, sweep_rows

    # the swept pairs are spread over the (category-sorted) list, not its first few
    assert swept_prompts(120, 16) == [0, 7, 15, 22, 30, 37, 45, 52, 60, 67, 75, 82, 90, 97, 105, 112]
    assert swept_prompts(3, None) == swept_prompts(3, 10) == [0, 1, 2] and swept_prompts(5, 2) == [0, 2]
    assert sweep_rows(3, 2, [0.0, 5.0, 10.0], -1.0) == [(0.0, 0), (0.0, 1), (0.0, 2), (-5.0, 0), (-5.0, 1),
                                                          (-10.0, 0), (-10.0, 1)]
    assert sweep_rows(2, None, [5.0], 1.0) == [(5.0, 0), (5.0, 1)]
    dose = dose_response(model, HARM, BEN, base.probe, 1, [0.0, 5.0, 40.0], n_sweep=2, chat=True,
                         max_new_tokens=5, batch_size=3)
    for name, prompts, sign in (("benign", BEN, 1), ("harmful", HARM, -1)):
        for alpha in (5.0, 40.0):
            alone = model.generate(prompts[:2], chat=True, max_new_tokens=5,
                                   edits=[steer_edit(1, base.probe, sign * alpha)]).texts
            got = dose.texts[(dose.texts.prompts == name) & (dose.texts.alpha == sign * alpha)]
            assert got.response.tolist() == alone and got.prompt.tolist() == prompts[:2]
    assert dose.table.alpha.tolist() == [0.0, 5.0, 40.0, 0.0, -5.0, -40.0]
    # each curve, its alpha = 0 point included, is over the swept pairs; the unsteered rates over all
    assert dose.table.n.tolist() == [2, 2, 2, 2, 2, 2]
    zero = dose.texts[(dose.texts.prompts == "harmful") & (dose.texts.alpha == 0.0)]
    assert len(zero) == len(HARM)
    labels = zero.label.tolist()
    row = dose.table[(dose.table.prompts == "harmful") & (dose.table.alpha == 0.0)]
    assert row.refusal.item() == labels[:2].count("refusal") / 2
    assert dose.baseline["rules"]["harmful"] == refusal_rate(zero.response.tolist(), "rules")


def test_rescue_with_the_harmful_donor_on_the_plaintext_changes_nothing(model):
    gate = (1, 2)
    donor = donor_z(model, HARM, gate, chat=True)
    assert donor.shape == (3, model.d_head)
    with_edit = model.generate(HARM, chat=True, max_new_tokens=1, return_logits=True,
                               edits=[rescue_edit(model, donor, gate)])
    plain = model.generate(HARM, chat=True, max_new_tokens=1, return_logits=True)
    assert torch.allclose(with_edit.logits, plain.logits, atol=1e-5)
    same = rescue(model, HARM, HARM, gate, chat=True, max_new_tokens=4, batch_size=2, positions="last")
    assert same.cipher_texts == same.rescued_texts
    other = model.generate(HARM, chat=True, max_new_tokens=1, return_logits=True,
                           edits=[rescue_edit(model, torch.zeros_like(donor) + 3.0, gate)])
    assert not torch.allclose(other.logits, plain.logits)


def test_ablation_along_a_direction_the_head_cannot_write_changes_nothing(model, base):
    w = head_space_direction(model, base.probe, 1, 0)
    assert w.shape == (model.d_head,)
    abl = ablate_heads(model, HARM, BEN, base.continuations, base.probe, [(1, 0), (2, 3)], chat=True, batch_size=2)
    assert abl.effect.shape == (2, 3) and abl.effect_pct.shape == (2,)
    assert abl.effect.abs().max() > 0
    null = ablate_heads(model, HARM, BEN, base.continuations, torch.zeros(model.d_model), [(1, 0)], chat=True)
    # the ablated pass runs after the shared chat header (engine shared_prefix), the clean one whole:
    # the same numbers up to float32 rounding
    assert null.effect.abs().max() < 1e-5 and abl.effect.abs().max() > 1e-3


@pytest.mark.parametrize("batch_size", [1, 3], ids=["one-prompt", "padded"])
def test_ablation_started_at_the_head_layer_equals_the_whole_edited_pass(model, base, batch_size):
    from interp.routing.ablation import ablation_edit

    heads = [(2, 3), (0, 1), (1, 0)]
    abl = ablate_heads(model, HARM, BEN, base.continuations, base.probe, heads, chat=True, batch_size=batch_size)
    plain = continuation_nll(model, HARM, base.continuations, chat=True)
    torch.testing.assert_close(abl.nll_harmful, plain, rtol=0, atol=1e-6)
    for (layer, head), got in zip(heads, abl.effect):
        edit = ablation_edit(model, base.probe, layer, head)
        whole = plain - continuation_nll(model, HARM, base.continuations, edits=[edit], chat=True)
        torch.testing.assert_close(got, whole, rtol=0, atol=1e-6)


def test_collapse_is_zero_for_the_same_screen_and_one_when_necessity_vanishes(model, base):
    from interp.routing.interchange import interchange
    from interp.routing.screen import ScreenConfig

    cfg = ScreenConfig(method="exact", heads=[(1, 0), (2, 1)], permutations=200, bootstrap=20)
    plain = interchange(model, HARM, BEN, base.continuations, cfg, chat=True)
    col = cipher_collapse(plain, plain, gate=(2, 1))
    assert col.heads == [(2, 1), (1, 0)]  # the gate first, whatever the screen's order
    assert torch.allclose(col.collapse, torch.zeros(2, dtype=torch.float64))
    plain.necessity = plain.necessity * 0
    assert cipher_collapse(interchange(model, HARM, BEN, base.continuations, cfg, chat=True), plain).collapse.eq(1).all()


def test_collapse_compares_the_same_pairs_and_measures_what_the_plain_screen_only_estimated(model, base):
    from interp.routing.interchange import interchange
    from interp.routing.screen import ScreenConfig

    def screen(heads, n):
        cfg = ScreenConfig(method="exact", heads=heads, permutations=200, bootstrap=20)
        return interchange(model, HARM[:n], BEN[:n], base.continuations[:n], cfg, chat=True)

    plain = screen([(1, 0)], 3)  # the plain screen measured (1, 0) only, over 3 pairs
    cipher = screen([(1, 0), (2, 1)], 2)  # the cipher steps use the first 2 pairs
    extra = screen([(2, 1)], 2)
    col = cipher_collapse(plain, cipher, gate=(2, 1), extra=extra)
    assert col.heads == [(2, 1), (1, 0)] and col.necessity_plain.shape == (2, 2)
    torch.testing.assert_close(col.necessity_plain[1], plain.necessity[0, :2].double())  # not all 3 pairs
    torch.testing.assert_close(col.necessity_plain[0], extra.necessity[0].double())
    assert torch.allclose(col.collapse, torch.zeros(2, dtype=torch.float64), atol=1e-6)  # the same pairs and heads
    assert cipher_collapse(plain, cipher, gate=(2, 1)).collapse[0].isnan()  # without `extra`: undefined
    with pytest.raises(ValueError, match="the cipher pairs must be the first of the plain ones"):
        cipher_collapse(cipher, plain)


def test_contrast_ranks_every_head(model, base):
    con = cipher_contrast(model, HARM, [cipher_prompt(t) for t in HARM], BEN, base.probe, chat=True)
    assert con.plain.shape == (model.n_layers, model.n_heads) and len(con.ranking) == model.n_layers * model.n_heads
    top = con.ranking[0]
    assert con.gap[top] == con.gap.max()


def test_amplifiers_are_the_drops_beyond_the_null_band():
    from interp.routing.knockout import Knockout

    cands = [(2, 0), (2, 1), (3, 0), (3, 1)]
    change = torch.tensor([-30.0, -10.0, 5.0, -2.0])
    null = torch.tensor([[-20.0, 1.0, 0.0, 3.0], [4.0, -15.0, 2.0, 1.0]])  # per-candidate lows: -20, -15, 0, 1
    ko = Knockout((1, 0), cands, torch.ones(4), torch.ones(4), change, [(1, 1), (1, 2)], null)
    assert ko.band.tolist() == [-20.0, -15.0, 0.0, 0.0]  # capped at 0: only drops count
    assert ko.amplifiers == [(2, 0), (3, 1)]  # -10 is inside the band (-15): a random head does as much
    bare = Knockout((1, 0), cands, torch.ones(4), torch.ones(4), change, [], torch.zeros(0, 4))
    assert bare.amplifiers == [(2, 0), (2, 1), (3, 1)]  # no null: any drop


def test_knockouts_started_above_the_lower_layers_equal_whole_knocked_passes(model, base):
    """The cascade runs the layers below the lowest knocked head once (engine StartAt); each
    knockout's candidate DLA equals a whole pass with the zero edit."""
    last = model.n_layers - 1
    gate = (last - 1, 1)
    delta = torch.zeros(model.n_layers, model.n_heads)
    delta[last, :2] = torch.tensor([2.0, 1.0])  # two candidates in the last layer
    for nulls in (0, 3):  # without nulls the pass starts at the gate's layer, with them one below
        ko = knockout_cascade(model, HARM, BEN, base.benign_first, delta, gate, k=2, null_heads=nulls, chat=True)
        assert len(ko.candidates) == 2 and len(ko.null_heads) == nulls
    direction = refusal_direction(model, list(base.benign_first))

    def whole(head):
        edit = [Zero(f"blocks.{head[0]}.attn.hook_z", heads=[head[1]])]
        return (head_dla(model, HARM, direction, chat=True, edits=edit).float()
                - head_dla(model, BEN, direction, chat=True, edits=edit).float()).mean(0)

        idx = tuple(zip(*ko.candidates))
        assert torch.allclose(ko.knocked, whole(gate)[idx], atol=1e-5)
        for null, change in zip(ko.null_heads, ko.null_change_pct):
            expected = 100 * (whole(null)[idx] - ko.normal) / ko.normal.abs()
            assert torch.allclose(change, expected, atol=1e-3)
