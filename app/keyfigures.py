"""One line per run for the run list: what the run found, read from its manifest's summary only
(no tensors, no typed result), so listing a folder of runs stays a read of small JSON files.

`key_figure(analysis, summary)` knows the summaries of the analyses with explorer pages; any
other analysis (or a summary of another version) gets its first numeric fields, labelled as
on the run header (`app.labels.metric`). Never raises: a summary it cannot read gives "".
"""

from __future__ import annotations

from collections.abc import Callable

from . import labels
from .tokens import visible


def _dla(s: dict) -> str:
    return (f"{s['direction']} = {s['model_value']:.3g} (attention {s['attn_total']:.3g}, "
            f"MLP {s['mlp_total']:.3g}; {s['prompts']} prompts)")


def _lens(s: dict) -> str:
    top = s["layers"][-1]["top"][0]
    return f"final layer's top token {visible(top['token'])} ({top['prob']:.0%}) on {s['prompt'][:40]!r}"


def _sinks(s: dict) -> str:
    return f"sink rate {s['sink_rate']:.0f}% of heads above eps {s['eps']:g} ({s['n_sequences']} sequences)"


def _massive(s: dict) -> str:
    if s.get("first_massive_layer") is None:
        return f"no massive activation ({s['criterion']})"
    return (f"dims {s['massive_dims']} from L{s['first_massive_layer']}: {s['max_ratio']:,.0f}x the median "
            f"(L{s['max_ratio_layer']})")


def _voids(s: dict) -> str:
    used = s["layers_used_pct"]
    return ", ".join(f"{k} {v:.0f}%" for k, v in used.items() if v is not None) + \
        f" of layers used (alpha {s['alpha']:g})"


def _voids_eval(s: dict) -> str:
    n = s["n_questions"]
    parts = [f"alpha {a}: {round(v['no_skip'] * n)}/{n} -> {round(v['skip'] * n)}/{n} correct"
             for a, v in s["accuracy"].items()]
    return f"{s['skip']} skipping, " + "; ".join(parts)


def _austeer(s: dict) -> str:
    table = s["table"]
    base = next(row for row in table if row["method"] == "none")
    best = max((row for row in table if row["method"] != "none"), key=lambda row: row["test_accuracy"])
    name = f"AUSteer k={best['k']}" if best["method"] == "austeer" else best["method"]
    return (f"{s['task']}: test accuracy {base['test_accuracy']:.0%} unsteered, {best['test_accuracy']:.0%} "
            f"with {name}")


def _skills(s: dict) -> str:
    return f"{s['k']} directions explain {s['explained_variance_total']:.0%} of {s['n_texts']} texts' variance"


def _experts(s: dict) -> str:
    top = s["experts"][0]
    return f"top expert L{top['layer']}E{top['expert']}: {s['metric']} changes by {top['effect']:.2f} when off"


def _rise(s: dict) -> str:
    sae = s["sae"]
    return f"SAE FVU {sae['fvu']:.2f}, L0 {sae['l0']:.0f}, dead {sae['dead_pct']:.0f}%"


def _vector(s: dict) -> str:
    layers = s.get("layers") or []
    return f"{s.get('method') or '?'} {s.get('kind') or ''} vector at site {s.get('site')!r}, {len(layers)} layer(s)"


KNOWN: dict[str, Callable[[dict], str]] = {
    "dla": _dla, "lens": _lens, "sinks": _sinks, "massive": _massive, "voids": _voids, "voids_eval": _voids_eval,
    "austeer-eval": _austeer, "skills": _skills, "experts": _experts, "rise": _rise, "steering-vector": _vector,
}


def generic(summary: dict, most: int = 3) -> str:
    """The first `most` numeric fields of a summary, labelled ("Sink rate 81.2%, ...")."""
    shown = []
    for key, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metric = labels.metric(key, value)
            shown.append(f"{metric.label} {metric.value}")
        if len(shown) == most:
            break
    return ", ".join(shown)


def key_figure(analysis: str | None, summary: dict) -> str:
    """The run's finding in one line (see module doc); "" when the summary says nothing readable."""
    if not isinstance(summary, dict) or not summary:
        return ""
    try:
        return KNOWN[analysis](summary) if analysis in KNOWN else generic(summary)
    except (KeyError, IndexError, TypeError, ValueError, StopIteration, AttributeError):
        try:
            return generic(summary)
        except Exception:
            return ""
