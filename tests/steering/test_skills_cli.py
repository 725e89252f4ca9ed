"""`steerlens skills ...` on a tiny saved model: fit --json, show, vector -> generate, select,
steer, and the bad inputs that must stop with one line before any work (exit code 2)."""

from __future__ import annotations

import json

import pytest

from interp.cli import main
from steering import SteeringVector
from steering.apply import VectorUse, steering_edits
from steering.skills import SkillBasisResult


pytestmark = pytest.mark.usefixtures("one_thread")


def _records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        response = ("apple river song " * (1 + i % 3)) if i % 2 else f"{i} plus {i} equals {2 * i}"
        out.append({"id": f"r{i}", "prompt": f"question {i}", "response": response,
                    "category": "prose" if i % 2 else "math"})
    return out


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run(tiny_llama_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("skills")
    data = _write(root / "corpus.jsonl", _records(16))
    out = root / "runs" / "skills"
    assert main(["skills", "fit", "--model", str(tiny_llama_folder), "--data", str(data), "--k", "3",
                 "--layers", "all", "--out", str(out), "--json"]) == 0
    return out


def test_fit_json_prints_explained_variance_and_directions(tiny_llama_folder, tmp_path, capsys):
    data = _write(tmp_path / "corpus.jsonl", _records(12))
    out = tmp_path / "runs" / "skills"
    assert main(["skills", "fit", "--model", str(tiny_llama_folder), "--data", str(data), "--k", "2",
                 "--out", str(out), "--json"]) == 0
    summary = _json(capsys)
    assert len(summary["explained_variance"]) == 2 and summary["layers"] == [1]
    for d in summary["directions"]:
        assert len(d["top_ids"]) == len(d["bottom_ids"]) == 10
        assert set(d["top_ids"]) <= {r["id"] for r in _records(12)}
        assert isinstance(d["keywords_pos"], list) and isinstance(d["keywords_neg"], list)
    assert (tmp_path / "runs" / ".skills.store" / "index.json").is_file()
    _fails(capsys, ["skills", "fit", "--model", str(tmp_path / "not-loaded"), "--data", str(data), "--k", "2",
                    "--out", str(out)], "already holds pooled activations; pass --resume")
    assert main(["skills", "fit", "--model", str(tiny_llama_folder), "--data", str(data), "--k", "3",
                 "--out", str(out), "--resume", "--json"]) == 0  # the pooled store is reused
    assert len(_json(capsys)["explained_variance"]) == 3


def test_show_prints_examples_and_keywords(run, capsys):
    assert main(["skills", "show", str(run), "--direction", "0", "--n", "2"]) == 0
    printed = capsys.readouterr().out
    assert "direction 0:" in printed and "+ keywords:" in printed and "direction 1:" not in printed
    assert main(["skills", "show", str(run), "--json"]) == 0
    assert _json(capsys)["k"] == 3


def test_direction_saved_as_a_vector_steers_through_generate_like_python(run, tiny_llama_folder, tmp_path, capsys):
    import interp

    file = tmp_path / "skill1.safetensors"
    assert main(["skills", "vector", str(run), "--direction", "1", "--out", str(file)]) == 0
    capsys.readouterr()
    base = ["generate", "--model", str(tiny_llama_folder), "--prompt", "question 3", "--max-new-tokens", "8", "--json"]
    assert main([*base, "--vector", f"{file}:40"]) == 0
    cli_text = _json(capsys)["steered"]
    assert main(base) == 0
    plain_text = _json(capsys)["steered"]

    model = interp.load(str(tiny_llama_folder))
    vector = SkillBasisResult.load(run).vector(1)
    assert vector.layers == SteeringVector.load(file).layers
    edits = steering_edits(model, [VectorUse(vector, alpha=40.0, positions="all")])
    python_text = model.generate(["question 3"], edits=edits, max_new_tokens=8, seed=0).texts[0]
    assert cli_text == python_text
    assert cli_text != plain_text  # the direction does steer at this strength


def test_select_exports_the_top_fraction_as_jsonl(run, tiny_llama_folder, tmp_path, capsys):
    pool = _write(tmp_path / "pool.jsonl", _records(16))
    out = tmp_path / "picked.jsonl"
    assert main(["skills", "select", str(run), "--direction", "0", "--pole", "-", "--fraction", "0.25",
                 "--pool", str(pool), "--model", str(tiny_llama_folder), "--out", str(out), "--json"]) == 0
    report = _json(capsys)
    picked = [json.loads(line) for line in out.read_text().splitlines()]
    assert report["n_selected"] == len(picked) == 4 and report["n_pool"] == 16
    assert all(r in _records(16) for r in picked)  # records exported unchanged
    assert {"chars_selected", "tokens_selected", "keywords_selected", "category_selected"} <= set(report)
    basis = SkillBasisResult.load(run)  # the pool is the corpus: the same four as ranking the run's scores
    lowest = basis.scores[:, 0].argsort()[:4].tolist()
    assert [r["id"] for r in picked] == [f"r{i}" for i in lowest]


def test_steer_sweeps_alpha_with_the_damage_check(run, tiny_llama_folder, tmp_path, capsys):
    out = tmp_path / "steer"
    assert main(["skills", "steer", str(run), "--model", str(tiny_llama_folder), "--alphas=-2,2", "--top", "1",
                 "--n-val", "4", "--n-test", "4", "--samples", "2", "--pass-k", "1", "--ppl-texts", "2",
                 "--ppl-max-tokens", "24", "--out", str(out), "--json"]) == 0
    summary = _json(capsys)
    assert [row["alpha"] for row in summary["sweep"]] == [0.0, -2.0, 2.0]
    assert len(summary["proxy_ranking"]) == 3
    assert summary["sweep"][0]["delta_accuracy"] == 0
    assert summary["sweep"][0]["ppl"] == pytest.approx(summary["baseline"]["ppl"], abs=1e-3)
    assert summary["sweep"][1]["ppl"] != pytest.approx(summary["baseline"]["ppl"], abs=1e-3)
    from interp.runs.results import load_run

    assert set(load_run(out).figures()) == {"steering_effect", "steering_pass_at_k", "proxy"}


# ---- bad input: one line, exit 2, nothing written ------------------------------------------------
def _fails(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("steerlens: error: ") and message in err and "\n" not in err


def test_corpus_smaller_than_k_fails_before_loading(tmp_path, capsys):
    data = _write(tmp_path / "small.jsonl", _records(5))
    _fails(capsys, ["skills", "fit", "--model", str(tmp_path / "no-model"), "--data", str(data), "--k", "10",
                    "--out", str(tmp_path / "run")], "--k 10 is more than the 4 directions a corpus of 5 texts spans")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.jsonl"]


def test_non_utf8_corpus_fails_with_its_line(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    _fails(capsys, ["skills", "fit", "--data", str(data), "--out", str(tmp_path / "run")],
           f"{data}:2: not valid UTF-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_texts_longer_than_the_context_are_truncated_and_counted(tiny_llama_folder, tmp_path, capsys):
    records = [{"id": str(i), "text": f"short text {i}"} for i in range(5)] + [{"id": "long", "text": "y" * 400}]
    data = _write(tmp_path / "long.jsonl", records)
    assert main(["skills", "fit", "--model", str(tiny_llama_folder), "--data", str(data), "--k", "2",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    assert _json(capsys)["truncated_texts"] == 1
    corpus = SkillBasisResult.load(tmp_path / "run").corpus.set_index("id")
    assert corpus.loc["long", "truncated_tokens"] == 401 - 256 and corpus.loc["long", "n_tokens"] == 255


def test_bad_records_and_arguments_fail_with_one_line(run, tmp_path, capsys):
    data = _write(tmp_path / "odd.jsonl", [{"question": "no text"}])
    _fails(capsys, ["skills", "fit", "--data", str(data)], "needs 'text', or 'prompt' and 'response'")
    _fails(capsys, ["skills", "select", str(run), "--direction", "9", "--out", str(tmp_path / "x.jsonl")],
           "direction 9 out of range")
    _fails(capsys, ["skills", "select", str(run), "--direction", "0", "--fraction", "0", "--out",
                    str(tmp_path / "x.jsonl")], "fraction must be in (0, 1]")
    _fails(capsys, ["skills", "select", str(run), "--direction", "0", "--out", str(tmp_path / "x.txt")],
           "--out must be a .jsonl file")
    _fails(capsys, ["skills", "show", str(tmp_path)], "no manifest.json")
    assert not (tmp_path / "x.jsonl").exists()
