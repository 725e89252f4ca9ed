"""The engine page's table of sites (docs/_snippets/sites-table.md) is what the engine builds."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_gen"))
import sites_table  # noqa: E402


def test_sites_table_is_current():
    checked_in = (ROOT / "docs" / "_snippets" / "sites-table.md").read_text(encoding="utf-8")
    assert checked_in == sites_table.render(), (
        "docs/_snippets/sites-table.md is stale: run "
        "`PYTHONPATH=. python docs/_gen/sites_table.py > docs/_snippets/sites-table.md`")


def test_table_rows_follow_the_engine_for_families_that_differ():
    rows = {line.split("|")[1].strip(" `"): line for line in sites_table.render().splitlines()[2:]}
    assert "| all but olmo2 |" in rows["blocks.{l}.ln1.hook_normalized"]          # OLMo-2: post-norms only
    assert "gpt2" in rows["hook_pos_embed"] and "llama" not in rows["hook_pos_embed"]
    assert "all but deepseek_v3" in rows["blocks.{l}.attn.hook_q"]                 # latent attention
    assert "deepseek_v3 (some layers)" in rows["blocks.{l}.moe.hook_router_logits"]  # first layers dense
    assert "`[b, p, n_kv_heads, d_head]`" in rows["blocks.{l}.attn.hook_k"]
    assert "capture only" in rows["ln_final.hook_scale"]
