"""SAEs attached as engine sites (`interp.engine.sae_sites`): identities against sae-lens' own
encode / decode, exact feature-ablation deltas, KV-cache generation, every architecture."""

from __future__ import annotations

import pytest
import torch
from sae_fixtures import random_sae
from tiny import FAMILIES, tiny_model

from interp.engine.edits import Add, Patch, Scale, Set, Zero
from interp.engine.gradients import run_with_grads
from interp.engine.store import capture_to_store

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["hello world, again", "hi", "abc"]
S = "blocks.1.hook_resid_post"


def sub(part: str, site: str = S) -> str:
    return f"{site}.hook_sae_{part}"


@pytest.fixture
def llama():
    model = tiny_model("llama")
    yield model
    model.detach_sae()


@pytest.mark.parametrize("family", FAMILIES)
def test_attaching_with_error_term_leaves_logits_bit_equal(family):
    model = tiny_model(family)
    site = f"blocks.{model.n_layers - 2}.hook_resid_post"
    base, clean = model.run_with_cache(PROMPTS, [site], logits="all")
    base_plain = model.forward(PROMPTS)
    with model.attach_sae(random_sae(model.d_model, site)) as attached:
        names = attached.sites()
        logits, cache = model.run_with_cache(PROMPTS, [site, *names], logits="all")
        plain = model.forward(PROMPTS)
    assert torch.equal(logits, base) and torch.equal(plain, base_plain)
    assert torch.equal(cache[sub("output", site)], clean[site])
    torch.testing.assert_close(cache[sub("acts_post", site)], attached.sae.encode(clean[site]), rtol=0, atol=0)
    assert site + ".hook_sae_acts_post" not in model.sites()


def test_zeroing_a_feature_moves_the_site_by_its_decoder_row(llama):
    sae = llama.attach_sae(random_sae(64, S)).sae
    _, clean = llama.run_with_cache(PROMPTS, [S, sub("acts_post")])
    acts = clean[sub("acts_post")]
    real = clean.attention_mask.bool()
    feature = int(acts[real].gt(0).sum(0).argmax())
    assert acts[real][:, feature].gt(0).any()
    _, edited = llama.run_with_cache(PROMPTS, [sub("output")], edits=[Zero(sub("acts_post"), dims=[feature])])
    delta = edited[sub("output")] - clean[S]
    expected = -acts[..., feature, None] * sae.W_dec[feature]
    torch.testing.assert_close(delta[real], expected[real], rtol=0, atol=2e-6)
    # the next site reads the edited value
    _, after = llama.run_with_cache(PROMPTS, ["blocks.2.hook_resid_pre"], edits=[Zero(sub("acts_post"), dims=[feature])])
    torch.testing.assert_close(after["blocks.2.hook_resid_pre"][real], edited[sub("output")][real], rtol=0, atol=0)


def test_sites_compose_with_edits_on_the_base_site(llama):
    sae = llama.attach_sae(random_sae(64, S)).sae
    v = torch.randn(64)
    _, cache = llama.run_with_cache(PROMPTS, [S, sub("input"), sub("acts_post")], edits=[Add(S, vector=v, alpha=2.0)])
    assert torch.equal(cache[sub("input")], cache[S])  # the SAE reads S after S's own edits
    torch.testing.assert_close(cache[sub("acts_post")], sae.encode(cache[S]), rtol=0, atol=0)


def test_every_positions_form_and_edit_kind(llama):
    sae = llama.attach_sae(random_sae(64, S)).sae
    _, clean = llama.run_with_cache(PROMPTS, [S, sub("acts_post"), sub("recons")])
    acts, real = clean[sub("acts_post")], clean.attention_mask.bool()
    batch = llama.tokenize(PROMPTS)
    mask = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
    mask[:, -2] = True
    for positions in ("all", "last", [0], [-1, 1], mask):
        # which positions the form selects, read off the same form on the base site
        _, marked = llama.run_with_cache(PROMPTS, [S], edits=[Set(S, positions=positions, value=0.0)])
        sel = (marked[S] == 0).all(-1) & real
        dims = [3, 5]
        zero_delta = -(acts[..., dims, None] * sae.W_dec[dims]).sum(-2)
        scale_delta = acts @ sae.W_dec  # factor 2: the reconstruction's feature part once more
        set_delta = -clean[sub("recons")]  # recons set to 0: the output is the error alone
        for edit, delta in ((Zero(sub("acts_post"), positions=positions, dims=dims), zero_delta),
                            (Scale(sub("acts_post"), positions=positions, factor=2.0), scale_delta),
                            (Set(sub("recons"), positions=positions, value=0.0), set_delta)):
            _, cache = llama.run_with_cache(PROMPTS, [sub("output")], edits=[edit])
            expected = torch.where(sel[..., None], clean[S] + delta, clean[S])
            torch.testing.assert_close(cache[sub("output")][real], expected[real], rtol=0, atol=3e-6,
                                       msg=f"{type(edit).__name__} at {positions}")


def test_patch_features_from_a_donor_run(llama):
    llama.attach_sae(random_sae(64, S))
    donors = ["zzzz qqqq", "yy", "xyz"]
    _, donor = llama.run_with_cache(donors, [sub("acts_post"), "blocks.2.hook_resid_post"])
    batch = llama.tokenize(donors)
    patch = Patch(sub("acts_post"), donor=donor[sub("acts_post")], donor_mask=batch.attention_mask, align="right",
                  positions="last")
    _, cache = llama.run_with_cache(PROMPTS, [sub("acts_post")], positions="last", edits=[patch])
    torch.testing.assert_close(cache[sub("acts_post")], donor[sub("acts_post")][:, -1], rtol=0, atol=0)


@pytest.mark.parametrize("prompts", [["hello there"], ["abcd", "wxyz"], ["hello world, again", "hi"]],
                         ids=["one", "equal", "padded"])
def test_feature_edits_in_generate_with_kv_cache_equal_uncached(llama, prompts):
    llama.attach_sae(random_sae(64, S))
    edits = [Scale(sub("acts_post"), positions="last+generated", factor=4.0, dims=list(range(0, 96, 3))),
             Zero(sub("acts_post"), positions="prompt", dims=[1, 2])]
    cached = llama.generate(prompts, edits=edits, max_new_tokens=6, stop_at_eos=False, return_logits=True,
                            capture=[sub("acts_post")])
    uncached = llama.generate(prompts, edits=edits, max_new_tokens=6, stop_at_eos=False, return_logits=True,
                              use_cache=False)
    plain = llama.generate(prompts, max_new_tokens=6, stop_at_eos=False, return_logits=True)
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(cached.logits, uncached.logits, rtol=0, atol=1e-4)
    assert not torch.allclose(cached.logits, plain.logits, atol=1e-3)  # the edit did something
    _, last = llama.run_with_cache(prompts, [sub("acts_post")], positions="last", edits=edits)
    torch.testing.assert_close(cached.cache[sub("acts_post")], last[sub("acts_post")], rtol=0, atol=1e-6)


def test_detach_one_all_and_context_manager(llama):
    other = "blocks.0.hook_mlp_out"
    llama.attach_sae(random_sae(64, S))
    llama.attach_sae(random_sae(64, other, seed=1))
    _, cache = llama.run_with_cache(PROMPTS, [sub("acts_post"), sub("acts_post", other)])
    assert cache[sub("acts_post", other)].shape[-1] == 96
    llama.detach_sae(other)
    with pytest.raises(ValueError, match="unknown site"):
        llama.site(sub("acts_post", other))
    llama.site(sub("acts_post"))
    llama.detach_sae()
    with pytest.raises(ValueError, match="unknown site"):
        llama.site(sub("acts_post"))
    with llama.attach_sae(random_sae(64, S)):
        llama.site(sub("recons"))
    with pytest.raises(ValueError, match="no SAE is attached"):
        llama.detach_sae(S)


def test_bad_attachments_are_refused_in_one_line(llama):
    with pytest.raises(ValueError, match="reads 32-dimensional activations but 'blocks.1.hook_resid_post' is 64"):
        llama.attach_sae(random_sae(32, S))
    with pytest.raises(ValueError, match="unknown site"):
        llama.attach_sae(random_sae(64, "blocks.1.hook_nothing"))
    with pytest.raises(ValueError, match="layer 9 out of range"):
        llama.attach_sae(random_sae(64, "blocks.9.hook_resid_post"))
    with pytest.raises(ValueError, match="names no hook_name"):
        llama.attach_sae(random_sae(64, None))
    with pytest.raises(ValueError, match="cannot attach at"):
        llama.attach_sae(random_sae(64, "blocks.1.attn.hook_pattern"))
    with pytest.raises(ValueError, match="is not an SAE saved by sae-lens"):
        llama.attach_sae(".")
    llama.attach_sae(random_sae(64, S))
    with pytest.raises(ValueError, match="already attached"):
        llama.attach_sae(random_sae(64, S))
    assert [s for s in llama.sites() if "hook_sae" in s] == [sub(p) for p in
                                                            ("input", "acts_pre", "acts_post", "recons", "error", "output")]


def test_without_error_term_the_model_reads_the_reconstruction(llama):
    llama.attach_sae(random_sae(64, S), use_error_term=False)
    base = llama.forward(PROMPTS)
    _, cache = llama.run_with_cache(PROMPTS, [sub("recons"), "blocks.2.hook_resid_pre"])
    real = cache.attention_mask.bool()
    torch.testing.assert_close(cache["blocks.2.hook_resid_pre"][real], cache[sub("recons")][real], rtol=0, atol=0)
    llama.detach_sae()
    assert not torch.allclose(base, llama.forward(PROMPTS))


def test_hook_z_sae_and_transcoder(llama):
    z = "blocks.0.attn.hook_z"
    sae_z = random_sae(64, z, reshape_activations="hook_z")
    llama.attach_sae(sae_z)
    tc = random_sae(64, "blocks.1.ln2.hook_normalized", kind="transcoder", d_out=64)
    tc.cfg.metadata.hook_name_out = "blocks.1.hook_mlp_out"
    llama.attach_sae(tc)
    tc_site = "blocks.1.ln2.hook_normalized"
    base = llama.forward(PROMPTS)
    names = [z, sub("acts_post", z), sub("output", z), tc_site, "blocks.1.hook_mlp_out", sub("acts_post", tc_site),
             sub("recons", tc_site), sub("output", tc_site)]
    logits, cache = llama.run_with_cache(PROMPTS, names, logits="all")
    assert torch.equal(logits, base)
    assert cache[sub("output", z)].shape == cache[z].shape  # [b, p, heads, d_head], as sae-lens' hook_z SAEs
    torch.testing.assert_close(cache[sub("acts_post", z)], sae_z.encode(cache[z]), rtol=0, atol=0)
    torch.testing.assert_close(cache[sub("acts_post", tc_site)], tc.encode(cache[tc_site]), rtol=0, atol=0)
    assert torch.equal(cache[sub("output", tc_site)], cache["blocks.1.hook_mlp_out"])
    # ablating a transcoder feature moves the MLP output by its decoder row
    real = cache.attention_mask.bool()
    acts = cache[sub("acts_post", tc_site)]
    f = int(acts[real].gt(0).sum(0).argmax())
    _, edited = llama.run_with_cache(PROMPTS, [sub("output", tc_site)], edits=[Zero(sub("acts_post", tc_site), dims=[f])])
    delta = edited[sub("output", tc_site)] - cache["blocks.1.hook_mlp_out"]
    torch.testing.assert_close(delta[real], (-acts[..., f, None] * tc.W_dec[f])[real], rtol=0, atol=2e-6)
    assert llama.sites().index(sub("recons", tc_site)) > llama.sites().index("blocks.1.hook_mlp_out")


def test_store_and_gradients_read_sae_sites(llama, tmp_path):
    sae = llama.attach_sae(random_sae(64, S)).sae
    store = capture_to_store(llama, PROMPTS, [S, sub("acts_post")], tmp_path / "store", progress=False)
    acts, _, _ = store.load(sub("acts_post"))
    resid, _, _ = store.load(S)
    torch.testing.assert_close(acts, sae.encode(resid), rtol=0, atol=1e-6)
    batch = llama.tokenize(PROMPTS)
    target = 5

    def metric(logits):
        return logits[:, -1, target]
    _, _, grads = run_with_grads(llama, batch, [sub("acts_post")], metric)
    _, _, resid_grads = run_with_grads(llama, batch, [S], metric)
    # chain rule through the decoder: d logit / d acts_f = (d logit / d S) . W_dec[f]
    torch.testing.assert_close(grads[sub("acts_post")], resid_grads[S] @ sae.W_dec.T, rtol=1e-4, atol=1e-6)
    assert grads[sub("acts_post")][:, -1].abs().sum() > 0
