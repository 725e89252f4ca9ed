"""The `--json` document of a routing run: gate, heads, amplifiers, knockout, cipher,
dose_response, timings (null where the step producing it was not run)."""

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
                       "p_sufficiency": _num(screen.p_sufficiency[i])}
        out["heads"] = heads_rows(screen)
        out["timings"].update({f"screen.{k}": v for k, v in screen.timings.items()})
    if result.has("knockout"):
        ko = result.step("knockout")
        amps = set(ko.amplifiers)
        out["amplifiers"] = [{"layer": l, "head": h, "dla_delta": float(ko.normal[j]), "dla_delta_ko": float(ko.knocked[j]),
                              "change_pct": float(ko.change_pct[j]), "amplifier": (l, h) in amps}
                             for j, (l, h) in enumerate(ko.candidates)]
        null = ko.null_change_pct
        out["knockout"] = {f"L{l}H{h}": float(ko.change_pct[j]) for j, (l, h) in enumerate(ko.candidates)}
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
    return out
