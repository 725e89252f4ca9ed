"""`steerlens sae ...` and the `--sae` / `--feature` / `--ablate-feature` options of `steerlens generate`.

    steerlens generate --model M --prompt "..." --sae runs/rise/sae/layer_12 --feature 1234:+8 --compare
    steerlens generate --model M --prompt "..." --sae FOLDER --feature 1234=5 --ablate-feature 77,78
    steerlens sae features --model M --sae FOLDER --prompts prompts.txt --out runs/sae-l12
    steerlens sae logits --model M --sae FOLDER --feature 1234 --json
    steerlens sae export-vector --model M --sae FOLDER --feature 1234 --out f1234.safetensors [--gguf f.gguf]

--sae takes a folder saved by sae-lens (cfg.json + sae_weights.safetensors; `steerlens rise
train` writes them under <run>/sae/layer_<l>/) or "release/sae_id" (sae-lens' pretrained
SAEs, when the hub is reachable). Feature specs: F:+A adds A x the decoder row, F=V clamps
the activation to V, F*K scales it (`interp.features.steer`); they act where --positions says.
"""

from __future__ import annotations

import argparse
import sys

from ..cli.common import batch_size, check_out, finish, load_model, read_prompt_file
from ..runs.config import add_config_args, config_from_args

# read without importing this module (see interp.cli): the commands it adds (None: extends)
COMMANDS = {
    'sae': 'SAE features: dashboards, logit effects, decoder rows as steering vectors',
    'generate': None,
}


# ---- generate options ------------------------------------------------------------------
def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SAE features")
    group.add_argument("--sae", default=None, metavar="FOLDER",
                       help="attach this SAE (a folder saved by sae-lens, or release/sae_id) at its hook_name")
    group.add_argument("--feature", action="append", default=[], metavar="F:+A|F=V|F*K",
                       help="steer feature F (repeatable): F:+A adds A x its decoder row, F=V clamps its "
                            "activation to V, F*K scales it")
    group.add_argument("--ablate-feature", action="append", default=[], metavar="F[,F...]",
                       help="set these features' activations to zero (repeatable)")


def _prepare(args):
    from .steer import parse_ablations, parse_feature_spec

    specs = [parse_feature_spec(s) for s in getattr(args, "feature", [])] + parse_ablations(
        getattr(args, "ablate_feature", []))
    if specs and not getattr(args, "sae", None):
        raise ValueError("--feature / --ablate-feature need --sae FOLDER (the SAE whose features they name)")
    if not getattr(args, "sae", None):
        return None
    from ..engine.sae_sites import load_sae

    sae = load_sae(args.sae)
    bad = [s.feature for s in specs if s.feature >= sae.cfg.d_sae]
    if bad:
        raise ValueError(f"feature {bad[0]} out of range: the SAE has features 0..{sae.cfg.d_sae - 1}")
    return sae, specs


def _edits(model, prepared, args) -> list:
    if prepared is None:
        return []
    from .steer import feature_edits

    sae, specs = prepared
    attachment = model.attach_sae(sae)
    return feature_edits(attachment.site, sae.cfg.d_sae, specs, positions=getattr(args, "positions", "all"))


def _register_generate_option() -> None:
    try:
        from steering.cli_steering import GenerateOption, register_generate_option
    except ImportError:  # a lean install without the steering package has no generate command
        return
    register_generate_option(GenerateOption("sae", _generate_arguments, _prepare, _edits))


_register_generate_option()


# ---- steerlens sae ---------------------------------------------------------------------
def register(sub, common: argparse.ArgumentParser) -> None:
    from .explore import FeaturesConfig

    sae = sub.add_parser("sae", help=COMMANDS["sae"], description="Features of an SAE attached to the model "
                         "(interp.engine.sae_sites): dashboards, logit effects, steering vectors.")
    ssub = sae.add_subparsers(dest="sae_command", metavar="SUBCOMMAND", required=True)
    feats = ssub.add_parser("features", parents=[common], help="top-activating contexts, histograms and logit "
                            "tokens of every feature: the run the explorer's SAE page reads",
                            description="Run the prompts through the model with the SAE attached and keep, per "
                                        "feature, its top-activating contexts with per-token activations, its "
                                        "activation histogram, firing density and top / bottom logit tokens.")
    feats.add_argument("--sae", required=True, metavar="FOLDER", help="SAE folder saved by sae-lens, or release/sae_id")
    feats.add_argument("--prompts", required=True, help="prompt file: one per line, or JSONL with 'text'")
    add_config_args(feats, FeaturesConfig)
    feats.set_defaults(func=cmd_features)
    for name, helptext in (("logits", "a feature's top and bottom logit tokens (decoder row through final norm "
                            "and unembedding)"),
                           ("export-vector", "a feature's decoder row as a steering vector (.safetensors; "
                            "--gguf also writes a llama.cpp control vector)")):
        cmd = ssub.add_parser(name, parents=[common], help=helptext, description=helptext)
        cmd.add_argument("--sae", required=True, metavar="FOLDER", help="SAE folder saved by sae-lens, or release/sae_id")
        cmd.add_argument("--feature", type=int, required=True, help="feature index")
        if name == "logits":
            cmd.add_argument("--k", type=int, default=10, help="tokens on each side (default: 10)")
            cmd.set_defaults(func=cmd_logits)
        else:
            cmd.add_argument("--gguf", default=None, help="also write a llama.cpp control vector here")
            cmd.add_argument("--normalize", action="store_true", help="unit-norm the row (alpha then is a norm)")
            cmd.set_defaults(func=cmd_export)


def _attach(args):
    from ..engine.sae_sites import load_sae

    sae = load_sae(args.sae)  # before the model: a bad folder fails fast
    feature = getattr(args, "feature", None)
    if isinstance(feature, int) and not 0 <= feature < sae.cfg.d_sae:
        raise ValueError(f"--feature {feature} out of range: the SAE has features 0..{sae.cfg.d_sae - 1}")
    model = load_model(args)
    return model, model.attach_sae(sae)


def cmd_features(args) -> int:
    from .explore import FeaturesConfig, explore_features

    config = config_from_args(FeaturesConfig, args)
    prompts = read_prompt_file(args.prompts)
    check_out(args.out, "sae-features")
    model, attachment = _attach(args)
    config.feature_ids(attachment.sae.cfg.d_sae)
    result = explore_features(model, prompts, attachment, config, chat=args.chat, batch_size=batch_size(args))
    return finish(result, args, "sae-features")


def cmd_logits(args) -> int:
    import json

    from .attribution import logit_effect

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    model, attachment = _attach(args)
    effect = logit_effect(model, attachment, args.feature, args.k)
    record = {"feature": effect.feature, "site": attachment.site,
              "top": [{"id": t, "token": s, "logit": v} for t, s, v in effect.top],
              "bottom": [{"id": t, "token": s, "logit": v} for t, s, v in effect.bottom]}
    if args.json:
        print(json.dumps(record))
        return 0
    print(f"feature {effect.feature} at {attachment.site}: logits per unit activation")
    for side in ("top", "bottom"):
        print(f"  {side:>6}: " + "  ".join(f"{e['token']!r} {e['logit']:+.3f}" for e in record[side]))
    return 0


def cmd_export(args) -> int:
    from .steer import decoder_vector

    if not args.out or not str(args.out).endswith(".safetensors"):
        raise ValueError("--out must name the .safetensors file to write, e.g. --out f1234.safetensors")
    model, attachment = _attach(args)
    vector = decoder_vector(model, attachment, args.feature, normalize=args.normalize)
    path = vector.save(args.out)
    print(f"wrote {path} (steerlens generate --vector {path}@{vector.layers[0]}:ALPHA)", file=sys.stderr)
    if args.gguf:
        from steering.gguf_io import export_gguf

        print(f"wrote {export_gguf(vector, args.gguf)} (llama.cpp: --control-vector)", file=sys.stderr)
    return 0
