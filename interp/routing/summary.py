"""The `--json` document of a routing run: gate, heads, ablation, amplifiers, knockout, cipher,
dose_response, timings (null where the step producing it was not run), and `warnings`:
one line each when the data show the behaviour is absent, so that a named gate is not
taken for a refusal gate, or when the exact gate was outside the fast estimate's top
--verify (`behaviour_warnings`). The heads' `atp_*_pct` keys hold the fast estimate: AtP, or
integrated gradients with --method ig / ig+exact (`gate.estimator` names it). `gate.p_family`
is the gate's Westfall-Young family-wise p over the heads measured exactly.

Two unsteered refusal rates of the harmful prompts appear, from generations of different
lengths: `harmful_refusal` classifies the baseline's greedy openings (the first
`baseline.OPENING_TOKENS` = 16 tokens), `dose_response.baseline_refusal` the modulation
step's alpha = 0 generations (`--gen-tokens`, default 32). A refusal that starts late in
an answer counts only in the second."""

from __future__ import annotations

import math


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _pct_of_baseline(values, screen) -> list:
    if values is None:
        return [None] * len(screen.heads)
    scale = float(screen.baseline_delta.mean())
    return [_num(100 * float(v) / scale) if scale else None for v in values.mean(-1)]


def heads_rows(screen) -> list[dict]:
    atp_n, atp_s = _pct_of_baseline(screen.atp_necessity, screen), _pct_of_baseline(screen.atp_sufficiency, screen)
    return [{"layer": int(l), "head": int(h), "necessity_pct": _num(screen.necessity_pct[i]),
             "sufficiency_pct": _num(screen.sufficiency_pct[i]), "p_necessity": _num(screen.p_necessity[i]),
             "p_sufficiency": _num(screen.p_sufficiency[i]), "atp_necessity_pct": atp_n[i],
             "atp_sufficiency_pct": atp_s[i], "exact": bool(screen.exact[i])}
            for i, (l, h) in enumerate(screen.heads)]


def routing_summary(result) -> dict:
    out = {"gate": None, "heads": None, "amplifiers": None, "knockout": None, "cipher": None,
           "dose_response": None, "timings": dict(result.meta.timings)}
    if result.has("interchange"):
        screen = result.step("interchange")
        gate = tuple(screen.gate())
        i = [tuple(h) for h in screen.heads].index(gate)
        out["gate"] = {"layer": gate[0], "head": gate[1], "necessity_pct": _num(screen.necessity_pct[i]),
                       "sufficiency_pct": _num(screen.sufficiency_pct[i]), "p_value": _num(screen.p_necessity[i]),
                       "p_family": screen.gate_p_family(), "p_sufficiency": _num(screen.p_sufficiency[i]),
                       "estimator": screen.estimator}
        out["heads"] = heads_rows(screen)
        out["gate"]["atp_necessity_pct"] = out["heads"][i]["atp_necessity_pct"]  # the only number with --method atp
        out["gate"]["exact"] = out["heads"][i]["exact"]
        out["timings"].update({f"screen.{k}": v for k, v in screen.timings.items()})
    out["ablation"] = None
    if result.has("ablate"):
        abl = result.step("ablate")
        out["ablation"] = [{"layer": int(l), "head": int(h), "effect_pct": _num(abl.effect_pct[j])}
                           for j, (l, h) in enumerate(abl.heads)]
    if result.has("knockout"):
        ko = result.step("knockout")
        amps = set(ko.amplifiers)
        out["amplifiers"] = [{"layer": l, "head": h, "dla_delta": float(ko.normal[j]), "dla_delta_ko": float(ko.knocked[j]),
                              "change_pct": float(ko.change_pct[j]), "null_band_low_pct": float(ko.band[j]),
                              "amplifier": (l, h) in amps}
                             for j, (l, h) in enumerate(ko.candidates)]
        null = ko.null_change_pct
        out["knockout"] = {  # change % of every candidate's DLA delta with the gate knocked out
            "change_pct": {f"L{l}H{h}": float(ko.change_pct[j]) for j, (l, h) in enumerate(ko.candidates)},
            "amplifiers": [f"L{l}H{h}" for l, h in ko.amplifiers], "null": None}
        if null.numel():
            out["knockout"]["null"] = {"heads": [f"L{l}H{h}" for l, h in ko.null_heads],
                                       "mean_pct": float(null.mean()), "sd_pct": float(null.std()) if null.numel() > 1 else 0.0,
                                       "min_pct": float(null.min()), "max_pct": float(null.max())}
    cipher = {}
    if result.has("collapse"):
        col = result.step("collapse")
        cipher["collapse_pct"] = _num(100 * col.collapse[0])
        cipher["heads"] = {f"L{l}H{h}": _num(100 * c) for (l, h), c in zip(col.heads, col.collapse.tolist())}
    if result.has("rescue"):
        res = result.step("rescue")
        cipher["rescue_pct"] = 100 * res.rescued_refusal
        cipher["cipher_refusal_pct"] = 100 * res.cipher_refusal
        cipher["classifier"] = res.mode
    if result.has("contrast"):
        cipher["contrast_top"] = [f"L{l}H{h}" for l, h in result.step("contrast").ranking[:10]]
    out["cipher"] = cipher or None
    if result.has("modulate"):
        dose = result.step("modulate")
        out["dose_response"] = {"curves": dose.table.to_dict("records"), "baseline_refusal": dose.baseline}
    out["harmful_refusal"] = getattr(result.step("baseline"), "harmful_refusal", None) if result.has("baseline") else None
    out["warnings"] = behaviour_warnings(result)
    return out


MIN_REFUSAL = 0.10  # below this harmful refusal rate the model hardly shows the behaviour


def behaviour_warnings(result) -> list[str]:
    """Lines saying the behaviour the screen measures is absent, or the screen's fast estimate
    was wrong about the gate, from the steps that ran.

    - interchange: the harmful prompt does not make the benign continuation less likely
      (mean clean NLL gap <= 0 nats, or a positive gap in fewer than half of the pairs);
    - baseline (or, for runs made before it recorded them, modulate at alpha = 0): the model
      refuses fewer than 10% of the harmful prompts under every classifier mode;
    - interchange: the exact gate was outside the fast estimate's top --verify
      (`HeadScreen.fast_rank_warning`)."""
    lines = []
    if result.has("interchange"):
        check = getattr(result.step("interchange"), "fast_rank_warning", None)
        missed = check() if check is not None else None
        if missed:
            lines.append(missed)
        gap = result.step("interchange").baseline_delta.double()
        positive = float((gap > 0).double().mean()) if gap.numel() else 0.0
        if gap.numel() and (float(gap.mean()) <= 0 or positive < 0.5):
            lines.append(f"the harmful prompts barely change the benign continuation (mean NLL gap "
                         f"{float(gap.mean()):.3f} nats, positive in {100 * positive:.0f}% of pairs): the behaviour "
                         "is absent here, so the top head is not a refusal gate")
    rates, where = {}, ""
    if result.has("baseline") and getattr(result.step("baseline"), "harmful_refusal", None):
        rates, where = result.step("baseline").harmful_refusal, " (greedy openings)"
    elif result.has("modulate"):
        rates = {mode: r.get("harmful") for mode, r in result.step("modulate").baseline.items()}
        rates = {m: r for m, r in rates.items() if r is not None}
    if rates and max(rates.values()) < MIN_REFUSAL:
        shown = ", ".join(f"{100 * r:.0f}% ({m})" for m, r in rates.items())
        lines.append(f"the model refuses only {shown} of the harmful prompts{where}: with no refusal to route, "
                     "the gate and amplifiers describe another behaviour")
    return lines


def _named(row: dict) -> dict:
    """A head's row with `layer`, `head` folded into one `head` cell (L3H1)."""
    return {"head": f"L{row['layer']}H{row['head']}", **{k: v for k, v in row.items() if k not in ("layer", "head")}}


def routing_text_summary(result) -> dict:
    """The summary arranged for reading (`steerlens routing` without --json): the gate's numbers,
    the heads sorted by necessity (exact where measured, else AtP), amplifiers with their
    knockout change and the null band, cipher, dose-response, timings, warnings."""
    full = routing_summary(result)
    out = {"gate": _named(full["gate"]) if full["gate"] else None}
    if full["heads"]:
        def necessity(row):
            value = row["necessity_pct"] if row["necessity_pct"] is not None else row["atp_necessity_pct"]
            return -math.inf if value is None else value
        out["top heads (by necessity)"] = [_named(r) for r in sorted(full["heads"], key=necessity, reverse=True)]
    else:
        out["top heads (by necessity)"] = None
    out["ablation (probe direction removed, DLA candidates)"] = (
        [_named(r) for r in full["ablation"]] if full["ablation"] else None)
    out["amplifiers (knockout of the gate)"] = [_named(r) for r in full["amplifiers"]] if full["amplifiers"] else None
    if full["knockout"] and full["knockout"]["null"]:
        out["knockout null band"] = full["knockout"]["null"]
    out["cipher"] = full["cipher"]
    dose = full["dose_response"]
    out["dose-response"] = {"baseline_refusal": dose["baseline_refusal"], "curves": dose["curves"]} if dose else None
    out["harmful refusal (greedy openings, 16 tokens)"] = full["harmful_refusal"]
    out["timings (s)"] = full["timings"]
    out["warnings"] = full["warnings"] or None
    return out
