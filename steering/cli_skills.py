"""`steerlens skills ...`: model-native skill bases (arXiv 2604.17614), see `steering.skills`.

    steerlens skills corpus --model M --out corpus.jsonl           # the model's answers to the shipped prompts
    steerlens skills fit --model M --data corpus.jsonl --k 10 --out runs/skills [--resume]
    steerlens skills show runs/skills [--direction 3] [--namer mypkg.judge:name]
    steerlens skills vector runs/skills --direction 3 --out skill3.safetensors
    steerlens generate --model M --prompt "..." --vector skill3.safetensors:2
    steerlens skills steer runs/skills --task arithmetic --alphas=-1,-0.3,0.3,1 --out runs/skills-steer
    steerlens skills select runs/skills --direction 3 --pole + --fraction 0.5 --pool pool.jsonl --out picked.jsonl

`fit` streams pooled activations to a store directory (default: `.<run name>.store` next to
the run directory) and keeps it, so `--resume` reuses every finished batch (also to refit
with another k or PCA method on the same texts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from interp.cli.common import batch_size, check_out, finish, load_model, option_help, print_summary, show_progress
from interp.cli.fidelity import fidelity_epilog
from interp.runs.config import add_config_args, config_from_args


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'skills': 'model-native skill bases: fit, show, steer, select data',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .skills.result import SkillFitConfig
    from .skills.steer import SkillSteerConfig

    skills = sub.add_parser("skills", epilog=fidelity_epilog("skills"), help=COMMANDS["skills"])
    ssub = skills.add_subparsers(dest="skills_command", metavar="ACTION")
    skills.set_defaults(func=lambda args: skills.print_help() or 0)

    fit = ssub.add_parser("fit", epilog=fidelity_epilog("skills"), parents=[common], help="pool a corpus' activations and fit K skill directions",
                          description="Mean of each layer's output over every text's tokens (BOS and padding "
                                      "excluded), concatenated over layers, then PCA. --out is the run directory.")
    fit.add_argument("--data", required=True, help="JSONL corpus: 'text', or 'prompt' and 'response', per line "
                                                   "(optional 'id' and metadata fields); or plain text lines")
    add_config_args(fit, SkillFitConfig)
    fit.add_argument("--store", default=None, help="activation store directory (default: .<run name>.store "
                                                   "next to the run directory)")
    fit.add_argument("--resume", action="store_true", help="reuse the finished batches of an existing store")
    fit.set_defaults(func=cmd_fit)

    show = ssub.add_parser("show", epilog=fidelity_epilog("skills"), help="print a basis: explained variance, examples and keywords per direction")
    show.add_argument("run", help="run directory of `skills fit`")
    show.add_argument("--direction", type=int, default=None, help="only this direction")
    show.add_argument("--n", type=int, default=3, help="examples shown per pole (default: 3)")
    show.add_argument("--namer", default=None, help="package.module:function naming each direction "
                                                    "(direction, top texts, bottom texts, keywords) -> str")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show)

    vector = ssub.add_parser("vector", epilog=fidelity_epilog("skills"), help="save one direction as a steering vector for `steerlens generate`")
    vector.add_argument("run", help="run directory of `skills fit`")
    vector.add_argument("--direction", type=int, required=True, help="direction index")
    vector.add_argument("--scale", default="std", choices=("std", "unit"),
                        help="std: alpha 1 = one corpus standard deviation; unit: the paper's unit component "
                             "(default: std)")
    vector.add_argument("--out", required=True, help="vector file (.safetensors)")
    vector.set_defaults(func=cmd_vector)

    steer = ssub.add_parser("steer", epilog=fidelity_epilog("skills"), parents=[common], help="proxy-rank the directions, then sweep alpha: task "
                                                            "accuracy, pass@k and held-out perplexity",
                            description="--out is the run directory. The model defaults to the basis' model.")
    steer.add_argument("run", help="run directory of `skills fit`")
    steer.add_argument("--task", default="arithmetic", help="task of steering.tasks (default: arithmetic)")
    add_config_args(steer, SkillSteerConfig)
    steer.set_defaults(func=cmd_steer)

    select = ssub.add_parser("select", epilog=fidelity_epilog("skills"), parents=[common], help="rank a pool by a direction and export the top "
                                                              "fraction as JSONL",
                             description="--out is the JSONL file of the selected records (unchanged, best "
                                         "first). Without --pool the fitted corpus is ranked (no model needed).")
    select.add_argument("run", help="run directory of `skills fit`")
    select.add_argument("--direction", type=int, required=True, help="direction index")
    select.add_argument("--pole", default="+", choices=("+", "-"), help="which end to keep (default: +)")
    select.add_argument("--fraction", type=float, default=0.5, help="share of the pool to keep (default: 0.5)")
    select.add_argument("--pool", default=None, help="JSONL pool (same formats as the corpus)")
    select.add_argument("--store", default=None, help="activation store for the pool (default: temporary)")
    select.add_argument("--resume", action="store_true", help="reuse the finished batches of --store")
    option_help(select, "--out", "JSONL file to write the selected records to (required)")
    select.set_defaults(func=cmd_select)

    corpus = ssub.add_parser("corpus", epilog=fidelity_epilog("skills"), parents=[common], help="make an offline corpus: the model's own answers "
                                                              "to a prompt set (default: the shipped mixed set)",
                             description="--out is the JSONL corpus file.")
    corpus.add_argument("--prompts", default=None, help="JSONL with 'prompt' (and metadata) per line "
                                                        "(default: steering/data/skills_prompts.jsonl)")
    corpus.add_argument("--max-new-tokens", type=int, default=48, help="tokens per answer (default: 48)")
    option_help(corpus, "--out", "JSONL corpus file to write (required)")
    corpus.set_defaults(func=cmd_corpus)


# ---- helpers ------------------------------------------------------------------------------
def _load_basis(run: str):
    from interp.runs.results import RunLoadError

    from .skills.result import SkillBasisResult

    try:
        return SkillBasisResult.load(run)
    except RunLoadError as err:
        raise ValueError(str(err)) from None


def _model_for(args, basis):
    if not args.model:
        args.model = basis.meta.model.get("spec") or None
    return load_model(args)


def _jsonl_out(args) -> Path:
    if not args.out:
        raise ValueError("--out FILE.jsonl is required: where to write the records")
    out = Path(args.out)
    if out.suffix != ".jsonl" or out.is_dir():
        raise ValueError(f"--out must be a .jsonl file, got '{out}'")
    return out


# ---- commands -------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    from interp.cli.common import out_dir

    from .skills.corpus import read_corpus
    from .skills.result import SkillFitConfig, fit_corpus, fit_skills

    config = config_from_args(SkillFitConfig, args)
    corpus = read_corpus(args.data)
    fit_corpus(config, len(corpus))
    out = out_dir(args, "skills")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a run directory")
    store = Path(args.store) if args.store else out.parent / f".{out.name}.store"
    if (store / "index.json").is_file() and not args.resume:
        raise ValueError(f"{store} already holds pooled activations; pass --resume to reuse its finished "
                         "batches, or --store DIR for a fresh store")
    check_out(args.out, "skills")
    model = load_model(args)
    result = fit_skills(model, corpus, config, store=store, resume=args.resume, batch_size=batch_size(args),
                        progress=show_progress(args), seed=args.seed)
    args.out = str(out)
    print(f"pooled activations kept in {store} (rerun with --resume to reuse them)", file=sys.stderr)
    return finish(result, args, "skills")


def cmd_show(args) -> int:
    basis = _load_basis(args.run)
    if args.direction is not None:
        basis._check(args.direction)
    if args.namer:
        from .skills.naming import apply_namer, load_namer

        apply_namer(basis.directions, basis.corpus["text"].astype(str).tolist(), load_namer(args.namer))
    if args.json:
        print(json.dumps(basis.summary()))
        return 0
    s = basis.summary()
    print(f"{s['n_texts']} texts, layers {s['layers'][0]}..{s['layers'][-1]} ({len(s['layers'])}), "
          f"{s['pca']} PCA, {s['k']} directions explain {s['explained_variance_total']:.1%} "
          f"(orthonormality error {s['orthonormality_error']:.1e})")
    for d in basis.directions:
        k = d["direction"]
        if args.direction is not None and k != args.direction:
            continue
        name = f"  [{d['name']}]" if d.get("name") else ""
        print(f"\ndirection {k}: {float(basis.variance_ratio[k]):.1%} of the variance{name} "
              "(examples ranked by cosine with the direction, + pole highest, - pole lowest)")
        for pole, words in (("+", d["keywords_pos"]), ("-", d["keywords_neg"])):
            print(f"  {pole} keywords: {', '.join(words) or '-'}")
            for _, row in basis.examples(k, pole, args.n).iterrows():
                text = " ".join(str(row["text"]).split())
                print(f"    {pole} {row['id']} (cos {row['cosine']:+.3f}): {text[:110]}")
    return 0


def cmd_vector(args) -> int:
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got '{out}'")
    basis = _load_basis(args.run)
    vector = basis.vector(args.direction, args.scale)
    vector.save(out)
    print(f"wrote {out}: direction {args.direction} at layers {vector.layers[0]}..{vector.layers[-1]} (site ffn, "
          f"scale {args.scale}); use: steerlens generate --vector {out}:ALPHA")
    return 0


def cmd_steer(args) -> int:
    from .skills.steer import SkillSteerConfig, run_skill_steer
    from .tasks import get_task

    config = config_from_args(SkillSteerConfig, args)
    task = get_task(args.task)
    task.split(0, config.n_val, config.n_test, seed=args.seed)  # size errors before loading
    basis = _load_basis(args.run)
    for d in config.directions:
        basis._check(d)
    if args.out is None:
        from interp.runs.results import default_run_dir

        args.out = str(default_run_dir("skills-steer"))
    check_out(args.out, "skills-steer")
    model = _model_for(args, basis)
    result = run_skill_steer(model, basis, task, config, chat=args.chat, progress=show_progress(args), seed=args.seed)
    if not args.json:
        columns = ["direction", "alpha", "accuracy", "delta_accuracy", "pass_at_k", "ppl", "delta_ppl"]
        print(result.table[columns].to_string(index=False))
    return finish(result, args, "skills-steer")


def cmd_select(args) -> int:
    from .skills.corpus import read_corpus, write_jsonl
    from .skills.select import check_selection, select

    out = _jsonl_out(args)
    basis = _load_basis(args.run)
    check_selection(basis, args.direction, args.pole, args.fraction)
    pool = read_corpus(args.pool) if args.pool else None
    model = _model_for(args, basis) if pool is not None else None
    chosen = select(basis, args.direction, args.pole, args.fraction, model=model, pool=pool, store=args.store,
                    resume=args.resume, batch_size=batch_size(args), progress=show_progress(args))
    write_jsonl(chosen.records, out)
    print_summary({**chosen.report, "file": str(out)}, args)
    return 0


def cmd_corpus(args) -> int:
    from interp.runs.prompts import read_records

    from .skills.corpus import make_corpus, write_jsonl

    out = _jsonl_out(args)
    prompts = read_records(args.prompts, required=("prompt",)) if args.prompts else None
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    model = load_model(args)
    records = make_corpus(model, prompts, max_new_tokens=args.max_new_tokens, chat=True if args.chat else None,
                          batch_size=batch_size(args) if batch_size(args) != "auto" else 8,
                          progress=show_progress(args))
    write_jsonl(records, out)
    print_summary({"file": str(out), "n_records": len(records)}, args)
    return 0
