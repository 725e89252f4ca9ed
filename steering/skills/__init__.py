"""Model-native skill bases ("Characterizing Model-Native Skills", Kang et al., arXiv 2604.17614).

A corpus (texts, or prompt + response pairs) is read by the model; each text becomes one
sequence-level activation (the mean over its tokens of each layer's output, BOS and padding
left out, concatenated over layers, first and last layer excluded); a PCA of those (mean
centred, no whitening, K = 10) gives an orthonormal basis of "skills". Each direction is
named by its most and least aligned texts and by contrasting keywords; used as a
multi-layer steering vector (added to every layer's MLP output at every position); ranked
by a cheap proxy intervention; and used to select training data from a pool.

    import interp
    from steering.skills import SkillFitConfig, fit_skills, read_corpus, select, run_skill_steer
    model = interp.load("smollm2-135m-instruct")
    basis = fit_skills(model, read_corpus("corpus.jsonl"), SkillFitConfig(k=10))
    basis.directions[0]["keywords_pos"], basis.examples(0, "+")
    basis.vector(0).save("skill0.safetensors")   # steerlens generate --vector skill0.safetensors:2
    chosen = select(basis, direction=0, pole="+", fraction=0.5, model=model, pool=read_corpus("pool.jsonl"))

Deliberate differences from the paper (see each module):
- offline naming: contrasting TF-IDF keywords stand in for the paper's LLM-written names; a
  `Namer` callable plugs an LLM judge in;
- the per-layer activation is the decoder layer output (`blocks.{l}.hook_resid_post`); the
  steering vector adds each layer's slice at that layer's MLP output, which is the last
  write to that same residual stream;
- saved vectors are scaled by default by the corpus' standard deviation along the
  direction (alpha 1 = one standard deviation); `scale="unit"` keeps the paper's unit
  component, whose per-layer slices are small (norm about 1/sqrt(n_layers));
- the proxy intervention is the change of the right answers' teacher-forced NLL on a few
  validation items of a task (our reading of "lightweight proxy interventions").

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/skills.md.
"""

from .basis import Basis, fit_basis
from .corpus import SkillCorpus, corpus_from_records, default_prompts, make_corpus, read_corpus, write_jsonl
from .naming import Namer, apply_namer, describe_directions, keyword_namer
from .pooling import pool_to_store, pooled_batch, real_token_mask, resolve_layers
from .result import SkillBasisResult, SkillFitConfig, fit_skills
from .select import Selection, select
from .steer import (SkillSteerConfig, SkillSteerResult, answer_nll, pass_at_k, proxy_ranking, run_skill_steer,
                    sampled_pass_at_k)

__all__ = [
    "Basis", "Namer", "Selection", "SkillBasisResult", "SkillCorpus", "SkillFitConfig", "SkillSteerConfig",
    "SkillSteerResult", "answer_nll", "apply_namer", "corpus_from_records", "default_prompts", "describe_directions",
    "fit_basis", "fit_skills", "keyword_namer", "make_corpus", "pass_at_k", "pool_to_store", "pooled_batch",
    "proxy_ranking", "read_corpus", "real_token_mask", "resolve_layers", "run_skill_steer", "sampled_pass_at_k",
    "select", "write_jsonl",
]
