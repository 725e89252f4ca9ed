"""One command that measures every GPU path of steerlens on an offline GPU machine, in under ten minutes.

    python tests/benchmarks/gpu_check.py                  # on the GPU machine; results in $OUT
    python tests/benchmarks/gpu_check.py --tiny --out d   # CPU smoke run (CI), under a minute

Needs only what such a machine has (Python 3.12, torch, transformers, accelerate,
safetensors, pandas, scikit-learn) and no network: steerlens is installed from this
checkout with `pip install --no-deps` (the wheels in `gpu_check_requirements.txt`, if the
machine lacks them, travel in tests/benchmarks/wheels/), and whatever the install does, the
checkout itself is what runs (first on sys.path). TransformerLens, nnsight and streamlit
are never imported; sae-lens only by the sae_features part, where it is installed. Models are random-weight, built in bfloat16 on the GPU from
the config files in gpu_configs/ (Qwen2.5-0.5B, Llama-3-8B and Qwen3-30B-A3B cut to 12 of
its 48 layers).

Parts (`gpu_parts.py`), each under its own time budget (a part that overruns is stopped,
what it measured so far is kept, and the next part starts): exactness (hooks vs HF hidden
states in float32 and bfloat16, one prompt vs the padded batch, KV-cached vs uncached
steered generation), capture (every hook_resid_post on the device, to the CPU and to a store
at batch 1/8/32/128 vs a plain forward), generation (steered vs unsteered; batch_size="auto"
in a real out-of-memory error), routing (the interchange screen at n = 120 vs the naive
loop), experts (the toggle screen on the MoE shape) and sae_features (`gpu_sae.py`: one
SAE's features captured through the engine's SAE sites; skipped where sae-lens is not
installed). Writes gpu_check.json and gpu_check.md (a short table) into --out (default $OUT). Exit status 0 when every part finished or was skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WHEELS = HERE / "wheels"
REQUIREMENTS = HERE / "gpu_check_requirements.txt"
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]  # the checkout, tests/tiny.py, gpu_parts.py


class PartTimeout(BaseException):
    """A part ran past its budget (BaseException: no `except Exception` in the engine swallows it)."""


def install() -> dict:
    """pip install steerlens from this checkout without dependencies (and the wheels in
    wheels/ first, when the machine lacks them); never reaches the network."""
    steps = []
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--quiet", "--disable-pip-version-check"]
    if WHEELS.is_dir() and any(WHEELS.glob("*.whl")):
        steps.append([*pip, "--find-links", str(WHEELS), "-r", str(REQUIREMENTS)])
    steps.append([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
    report = {"steps": []}
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        report["steps"].append({"cmd": " ".join(cmd[3:]), "rc": done.returncode,
                                "tail": (done.stdout + done.stderr)[-400:]})
    report["ok"] = all(step["rc"] == 0 for step in report["steps"])
    return report


def run_part(name: str, fn, budget: float, ctx) -> dict:
    """Run one part under `budget` seconds (SIGALRM); its dict as far as it got, with status."""
    out: dict = {}

    def stop(signum, frame):
        raise PartTimeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, budget)
    start = time.perf_counter()
    status = "ok"
    try:
        fn(ctx, out)
    except PartTimeout:
        status = "timeout"
    except Exception as err:  # one broken part must not cost the others their slot
        status = "error"
        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback"] = traceback.format_exc()[-2000:]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return {"status": out.pop("status", status), "seconds": round(time.perf_counter() - start, 2),
            "budget_s": budget, **out}


def table(report: dict) -> str:
    """A short markdown table of the headline numbers."""
    p = report["parts"]
    lines = ["| part | status | s | headline |", "|---|---|---|---|"]

    def get(*keys):
        value = p
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    def fmt(value, spec=".3g"):
        return "-" if value is None else format(value, spec)

    heads = {
        "exactness": lambda: "hooks vs HF rel: fp32 {} bf16 {}; alone vs padded rel: fp32 {} bf16 {}; "
                             "cached vs uncached steered rel: fp32 {} bf16 {}".format(
            *(fmt(get("exactness", d, k, "max_rel")) for k in ("hooks_vs_hf_hidden_states",
              "alone_vs_padded_batch_last_logits", "steered_cached_vs_uncached_logits")
              for d in ("float32", "bfloat16"))),
        "capture": lambda: "; ".join(
            f"b{b.split('_')[1]}: device {fmt(v.get('on_device_vs_plain'), '.2f')}x, cpu "
            f"{fmt(v.get('to_cpu_vs_plain'), '.2f')}x, store {fmt(v.get('store_vs_plain'), '.2f')}x of plain "
            f"({fmt(v.get('plain_tokens_per_s'), '.0f')} tok/s)"
            for b, v in (get("capture") or {}).items() if b.startswith("batch_")),
        "generation": lambda: "steered/unsteered {}x; auto batch {} -> {} (peak {} GiB, simulated {})".format(
            fmt(get("generation", "steering", "steered_vs_unsteered"), ".2f"),
            get("generation", "auto_batch_oom", "started_at"), get("generation", "auto_batch_oom", "settled_at"),
            fmt(get("generation", "auto_batch_oom", "peak_allocated_gib"), ".1f"),
            get("generation", "auto_batch_oom", "simulated")),
        "routing": lambda: "n={}: naive (projected) {} s; ".format(
            get("routing", "pairs"), fmt(get("routing", "naive_projected_s"), ".0f")) + ", ".join(
            f"{m} {fmt(get('routing', m, 'seconds'), '.1f')} s ({fmt(get('routing', m, 'speedup_vs_naive'), '.0f')}x)"
            for m in ("atp", "atp+exact", "exact")),
        "experts": lambda: "one off/layer {}x plain; screen batched {}x faster than looped".format(
            fmt(get("experts", "one_expert_off_per_layer_vs_plain"), ".2f"), fmt(get("experts", "batched_speedup"),
                                                                                 ".1f")),
        "sae_features": lambda: str(get("sae_features", "reason")) if get("sae_features", "reason") else "; ".join(
            f"b{b.split('_')[1]}: SAE features {fmt(v.get('sae_capture_vs_plain'), '.2f')}x, bare site "
            f"{fmt(v.get('bare_site_vs_plain'), '.2f')}x of plain; vs encode abs "
            f"{fmt(v.get('features_vs_encode', {}).get('max_abs'))}, logits with/without abs "
            f"{fmt(v.get('logits_with_vs_without_sae', {}).get('max_abs'))}"
            for b, v in (get("sae_features") or {}).items() if b.startswith("batch_")),
    }
    for name, part in p.items():
        lines.append(f"| {name} | {part['status']} | {part['seconds']} | {heads.get(name, lambda: '')()} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: shrunk shapes, float32, under a minute")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_check.json/.md (default: $OUT)")
    parser.add_argument("--parts", default=None, help="comma-separated subset of the parts (default: all)")
    parser.add_argument("--no-install", action="store_true", help="skip the pip install (the checkout runs anyway)")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every part's time budget")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("no --out and no $OUT: say where the results go")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    installed = {"skipped": True} if args.tiny or args.no_install else install()

    import torch
    import transformers

    import gpu_parts
    import gpu_sae

    parts = {  # name -> (function, time budget in seconds on the GPU); the budgets sum to 515 s
        "exactness": (gpu_parts.exactness, 60),
        "capture": (gpu_parts.capture, 120),
        "generation": (gpu_parts.generation, 90),
        "routing": (gpu_parts.routing, 150),
        "experts": (gpu_parts.experts, 50),
        "sae_features": (gpu_sae.sae_features, 45),
    }
    names = list(parts) if args.parts is None else args.parts.split(",")
    unknown = [n for n in names if n not in parts]
    if unknown:
        parser.error(f"unknown parts {unknown}: choose from {', '.join(parts)}")
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    if args.tiny:
        torch.set_num_threads(1)
    ctx = gpu_parts.Context(device, args.tiny)
    imports_s = gpu_parts.preload()
    report = {
        "tiny": args.tiny, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor()
        or "cpu", "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "install": installed, "imports_s": round(imports_s, 1), "parts": {},
    }
    if device.type != "cuda" and not args.tiny:
        report["warning"] = "no CUDA device: the full-size shapes ran on the CPU"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        fn, budget = parts[name]
        budget = budget * args.budget_scale  # --tiny: the same budgets, for slow shared CI machines
        print(f"gpu_check: {name} (budget {budget:.0f} s)", file=sys.stderr, flush=True)
        report["parts"][name] = run_part(name, fn, budget, ctx)
        report["seconds"] = round(time.perf_counter() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))  # after each part
    ctx.free()
    text = table(report)
    (out / "gpu_check.md").write_text(text)
    print(text)
    return 0 if all(p["status"] in ("ok", "skipped") for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
