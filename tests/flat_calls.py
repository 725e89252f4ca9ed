"""One keyword-only call per analysis through the flat API, on tiny models (run by
tests/test_flat_api.py in a fresh process: `python tests/flat_calls.py OUT`).

Each result is saved to OUT/<analysis> (`out=`) and its Jupyter HTML written next to it
(OUT/<analysis>.html), so the test can check the display after the run and after `load_run`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import interp
import saes
import steering

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny import tiny_model

ROUTING = dict(n=8, top_k=3, verify=4, permutations=200, bootstrap=20, steps=["screen", "interchange"])


def problems_file(folder: Path) -> Path:
    rows = [{"question": f"What is {i}+1?", "answer": i + 1,
             "response": f"{i} plus 1.\n\nWait, let me check: {i + 1}.\n\nThe answer is {i + 1}"} for i in range(6)]
    path = folder / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def corpus() -> list[dict]:
    return [{"text": " ".join(["apple river song"] * (1 + i % 4)) if i % 2 else f"{i} plus {i + 3} is {2 * i + 3}"}
            for i in range(16)]


def calls(model, out: Path) -> dict:
    """{name: thunk} of the 13 calls; each saves its run to out/<name>."""
    from interp.experts.planted import BEHAVIOUR_TOKEN, planted_model
    from steering.tasks import Task, TaskItem

    prompts = ["The cat sat on", "A dog ran to"]
    sums = Task("tiny-sums", [TaskItem(f"Question: {a}+{b}=?\nAnswer:", str(a + b), str(a + b + 1))
                              for a in range(3) for b in range(3)], "number", max_new_tokens=2)
    gpt2 = [(step, tiny_model("gpt2", seed=i)) for i, step in enumerate([0, 10, 20, 40, 80])]
    return {
        "dla": lambda: interp.dla(model, prompts, target="e", contrast="t", out=out / "dla"),
        "lens": lambda: interp.logit_lens(model, prompts, target="e", out=out / "lens"),
        "sinks": lambda: interp.sinks(model, prompts, tokens=8, random_tokens=False, out=out / "sinks"),
        "massive": lambda: interp.massive_activations(model, prompts, tokens=8, out=out / "massive"),
        "emergence": lambda: interp.emergence(gpt2, prompts, tokens=8, out=out / "emergence"),
        "voids": lambda: interp.voids(model, prompts, max_new_tokens=3, out=out / "voids"),
        "voids_eval": lambda: interp.voids_eval(model, alphas=[0.8], limit=3, out=out / "voids_eval"),
        "routing": lambda: interp.routing(model, **ROUTING, out=out / "routing"),
        "experts": lambda: interp.experts(planted_model(), (["hello there"] * 3, ["good day"] * 3), candidates=4,
                                          top_n=1, random_seeds=1, permutations=50, behaviour_token=BEHAVIOUR_TOKEN,
                                          out=out / "experts"),
        "austeer": lambda: steering.austeer(model, sums, ks=[2], alphas=[1.0], block_alphas=[1.0], n_train=4,
                                            n_val=2, n_test=3, out=out / "austeer"),
        "refusal_direction": lambda: steering.refusal_direction(model, layer=1, alphas=[1.0], max_new_tokens=2,
                                                                n_test=2, out=out / "refusal_direction"),
        "skills": lambda: steering.skills(model, corpus(), k=2, layers="all", task=sums, top=1, alphas=[1.0],
                                          n_val=2, n_test=2, samples=0, ppl_texts=1, ppl_max_tokens=16,
                                          out=out / "skills"),
        "rise": lambda: saes.rise(model, problems_file(out), chat=True, layers=[1], d_sae=16, train_batch_size=8,
                                  steps=20, lr=3e-3, checkpoints=0, min_count=1, min_specificity=0.0, ce_traces=0,
                                  alphas=[0.0, 1.0], steer_n=2, steer_max_new_tokens=4, out=out / "rise"),
    }


def main(out: Path, only: list[str] | None = None) -> None:
    import time

    out.mkdir(parents=True, exist_ok=True)
    model = tiny_model("llama")
    report = {}
    for name, call in calls(model, out).items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        result = call()
        stages = getattr(result, "stages", {}) or {}
        report[name] = {"type": type(result).__name__, "seconds": round(time.perf_counter() - start, 2),
                        "run_dir": str(result._run_dir), "stages": sorted(stages)}
        shown = {name: result} | {f"{name}.{stage}": r for stage, r in stages.items() if r is not result}
        for key, each in shown.items():  # every stage's result shows itself too
            (out / f"{key}.html").write_text(each._repr_html_(), encoding="utf-8")
            (out / f"{key}.txt").write_text(each._repr_mimebundle_()["text/plain"], encoding="utf-8")
            report.setdefault("shown", {})[key] = {"type": type(each).__name__, "run_dir": str(each._run_dir)}
    (out / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or None)
