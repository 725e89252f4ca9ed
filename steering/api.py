"""The flat API (see interp/flat.py) of steering's analyses: `steering.austeer` (`steerlens
austeer eval`), `steering.refusal_direction` (`steerlens refusal-steer`) and
`steering.skills` (`steerlens skills fit` then `skills steer`, in one call)."""

from __future__ import annotations

from pathlib import Path

from interp.flat import analysis, finish, staged

from .austeer_eval import AUSteerEvalConfig, AUSteerEvalResult, run_austeer_eval
from .refusal_steer import RefusalSteerConfig, RefusalSteerResult, run_refusal_steer
from .skills.result import SkillFitConfig, fit_skills
from .skills.steer import SkillSteerConfig, SkillSteerResult, run_skill_steer
from .tasks import Task, get_task, task_from_file


def as_task(data, default: str = "arithmetic") -> Task:
    """`data` as a task: a `Task`, a built-in task name (arithmetic, yesno, compare) or a
    JSONL file of prompt, answer, wrong; None gives `default`."""
    if isinstance(data, Task):
        return data
    if data is None:
        return get_task(default)
    if isinstance(data, Path) or str(data).endswith(".jsonl"):
        return task_from_file(str(data))
    return get_task(str(data))


@analysis(AUSteerEvalConfig)
def austeer(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
            progress: bool = False, config: AUSteerEvalConfig) -> AUSteerEvalResult:
    """AUSteer (atomic-unit steering): fit the top-k coordinates on contrastive triples of the
    task in `data` (a `Task`, a task name or a JSONL file; default: arithmetic), then test
    accuracy with no steering, block-level steering and AUSteer at each k; alpha (and the
    block layer) are chosen on the validation split. The fitted masks alone:
    `steering.fit_austeer`."""
    config.validate()
    task = as_task(data)
    task.split(config.n_train, config.n_val, config.n_test, seed=seed)  # size errors before any forward pass
    result = run_austeer_eval(model, task, config, chat=chat, batch_size=batch_size, progress=progress, seed=seed)
    return finish(result, out)


@analysis(RefusalSteerConfig)
def refusal_direction(model, data=None, *, chat: bool = True, seed: int = 0, batch_size="auto", out=None,
                      config: RefusalSteerConfig) -> RefusalSteerResult:
    """The refusal direction (Arditi et al. 2024): mean(harmful) - mean(benign) residual at
    `layer` on the train half of the shipped harmful/benign pairs, then keyword refusal rates
    on the test half when it is added to benign prompts (each alpha) and ablated from harmful
    ones. Prompts always go through the chat template; `data` must be None (the shipped
    pairs are the data)."""
    if data is not None:
        raise ValueError("refusal_direction reads the shipped harmful/benign pairs: pass no data")
    if not chat:
        raise ValueError("refusal_direction always wraps prompts in the chat template: drop chat=False")
    config.validate()
    return finish(run_refusal_steer(model, config, batch_size=batch_size, seed=seed), out)


def as_corpus(data):
    """`data` as a skill corpus: a `SkillCorpus`, a JSONL file, or a list of texts or records
    ({'text'} or {'prompt', 'response'})."""
    from .skills.corpus import SkillCorpus, corpus_from_records, read_corpus

    if isinstance(data, SkillCorpus):
        return data
    if data is None:
        raise ValueError("no corpus: pass texts, records or a JSONL file as data (steering.skills.make_corpus "
                         "writes one from the model's own answers)")
    if isinstance(data, (str, Path)):
        return read_corpus(data)
    return corpus_from_records([{"text": r} if isinstance(r, str) else dict(r) for r in data])


@analysis(stages={"fit": SkillFitConfig, "steer": SkillSteerConfig})
def skills(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
           task="arithmetic", store=None, progress: bool = False, configs: dict) -> SkillSteerResult:
    """Model-native skills (Kang et al., arXiv 2604.17614), every stage in one call: pool the
    corpus in `data` (see `as_corpus`) and fit the K-direction basis (`skills fit`), then rank
    the directions by the proxy intervention and sweep alpha on `task` (`skills steer`).
    Returns the steering result; `result.stages` holds both (`["fit"]`: the basis, with its
    examples, keywords and `vector(k)`). With `out`, the stages are saved as the runs
    `out/fit` and `out/steer`. `store`: where pooled activations go (default: temporary).
    The stage functions: `steering.skills.fit_skills`, `steering.skills.run_skill_steer`."""
    from .skills.basis import check_size

    fit_config, steer_config = configs["fit"], configs["steer"]
    fit_config.validate()
    steer_config.validate()
    corpus = as_corpus(data)
    check_size(len(corpus), fit_config.k)
    the_task = as_task(task)
    the_task.split(0, steer_config.n_val, steer_config.n_test, seed=seed)  # size errors before any forward pass
    basis = fit_skills(model, corpus, fit_config, store=store, batch_size=batch_size, progress=progress, seed=seed)
    for d in steer_config.directions:
        basis._check(d)
    result = run_skill_steer(model, basis, the_task, steer_config, chat=chat, progress=progress, seed=seed)
    return staged({"fit": basis, "steer": result}, out)
