"""Human words for what runs store: analysis titles, header metrics, "how to read this" notes.

`metric(key, value)` turns a summary field (``sum_check``, ``sink_rate``) into a label with
its unit, a formatted value and a help text; unknown fields get a readable label made from
the field name (never the raw name alone) and their name in the help. `NOTES` holds two or
three sentences per analysis on how to read its page, with the paper linked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TITLES = {
    "dla": "Direct logit attribution", "lens": "Logit lens", "sinks": "Attention sinks",
    "massive": "Massive activations", "voids": "LAC void layers", "voids_eval": "Accuracy with void layers skipped",
    "voids-eval": "Accuracy with void layers skipped", "austeer-eval": "AUSteer evaluation",
    "refusal-steer": "Refusal direction: add and ablate", "skills": "Skill basis", "skills-steer": "Skill steering",
    "steering-vector": "Steering vector",
}


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    help: str


# key -> (label, format, help); format: "pct" (value already in %), "frac" (0-1 shown as %), "sci", "int", "g"
_KNOWN = {
    "prompts": ("Prompts", "int", "number of prompts in the run"),
    "n_prompts": ("Prompts", "int", "number of prompts in the run"),
    "rows": ("Lens rows", "int", "prompt positions read by the lens"),
    "model_value": ("Logit difference (model)", "g", "the model's logit(target) - logit(contrast), mean over "
                    "prompts (logits)"),
    "attributed": ("Sum of components", "g", "sum of every component's direct contribution (logits)"),
    "sum_check": ("Sum check (max error)", "sci", "largest |model value - sum of components| over prompts; "
                  "near 0 means the attribution is complete (logits)"),
    "head_sum_check": ("Head sum check (max error)", "sci", "largest |attention output - sum of its heads| "
                       "(logits)"),
    "attn_total": ("Attention total", "g", "contribution of every attention head (logits)"),
    "mlp_total": ("MLP total", "g", "contribution of every MLP (logits)"),
    "embed_total": ("Embedding", "g", "contribution of the token embedding (logits)"),
    "bias_term": ("Bias term", "g", "contribution of the attention output biases (logits)"),
    "attn_share": ("Attention share", "frac", "attention total / (|attention| + |MLP|)"),
    "hf_value": ("Logit difference (transformers)", "g", "the same logit difference from a plain Hugging Face "
                 "forward pass: a peer check of the hooked model (logits)"),
    "final_layer_check": ("Last-layer check", "sci", "max |lens at the last layer - the model's own logits|; "
                          "0 means the lens reads the real output"),
    "target_id": ("Target token id", "int", "vocabulary id of the target token"),
    "first_massive_layer": ("First massive layer", "int", "first layer whose output has an entry above both "
                            "thresholds (Sun et al. 2024)"),
    "max_ratio": ("Largest max/median", "x", "largest |activation| / median |activation| of any layer output"),
    "max_ratio_layer": ("At layer", "int", "layer of the largest max/median ratio"),
    "sink_rate": ("Sink rate", "pct", "share of heads whose attention to the first token exceeds eps "
                  "(Gu et al. 2025)"),
    "sink_rate_of_mean": ("Sink rate of the mean", "pct", "sink rate of the attention averaged over sequences"),
    "sink_rate_random": ("Sink rate, random tokens", "pct", "sink rate on sequences of random token ids"),
    "eps": ("eps", "g", "threshold on a head's attention share to the first token"),
    "tokens": ("Tokens per sequence", "int", "sequence length read"),
    "n_sequences": ("Sequences", "int", "number of text sequences"),
    "n_secondary_sinks": ("Secondary sinks", "int", "heads whose largest sink is not the first token"),
    "alpha": ("LAC alpha", "g", "share of the largest norm change a layer must reach to count as active"),
    "n_layers": ("Layers", "int", "decoder layers of the model"),
    "prompt_tokens": ("Prompt tokens", "int", "tokens read in prompt processing"),
    "response_tokens": ("Response tokens", "int", "tokens generated"),
    "n_questions": ("Questions", "int", "multiple-choice questions scored"),
    "bos_added": ("BOS added", "bool", "whether a beginning-of-sequence token was prepended"),
}


def _format(value, kind: str) -> str:
    if isinstance(value, bool) or kind == "bool":
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "frac":
        return f"{100 * value:.1f}%"
    if kind == "sci":
        return f"{value:.1e}"
    if kind == "x":
        return f"{value:,.0f}x"
    if kind == "int" or isinstance(value, int):
        return f"{int(value):,}"
    return f"{value:.4g}"


def metric(key: str, value) -> Metric:
    """Label, formatted value and help for one summary field."""
    label, kind, text = _KNOWN.get(key, (None, "g", None))
    if label is None:
        words = key.replace("_", " ").strip()
        label = words[:1].upper() + words[1:]
        text = f"summary field `{key}`"
    return Metric(label, _format(value, kind), text)


def title(analysis: str | None) -> str:
    return TITLES.get(analysis or "", analysis or "run")


NOTES = {
    "dla": ("Each cell is what one head writes directly into the logit difference at the last position: its "
            "output projected on the unembedding direction of target minus contrast, after the final norm's "
            "scale. Blue pushes towards the target. The components add up to the model's own value (sum check). "
            "[Elhage et al. 2021](https://transformer-circuits.pub/2021/framework/index.html)"),
    "lens": ("Each row decodes the residual stream after one layer with the model's final norm and unembedding: "
             "the cell is the top token and its probability. Where the answer first becomes the top token is where "
             "the model has 'decided'. [nostalgebraist 2020](https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru)"),
    "sinks": ("The sink importance of key k is the attention a head gives to k, averaged over the queries that "
              "can see it; a head counts as a sink when it exceeds eps (usually at the first token). The colour is "
              "that share of attention on a fixed 0-1 scale. "
              "[Gu et al. 2025](https://arxiv.org/abs/2410.10781), [Xiao et al. 2024](https://arxiv.org/abs/2309.17453)"),
    "massive": ("A massive activation is a residual entry far above the median (ratio above the threshold). They "
                "appear at a few fixed dimensions from an early layer on, mostly at the first token, and act like "
                "biases; ranks count from 1. "
                "[Sun et al. 2024](https://arxiv.org/abs/2402.17762)"),
    "voids": ("LAC marks a layer active for a token when the change of the residual norm it makes reaches alpha "
              "times the spread of the changes of the earlier layers for that token. The other layers are voids, "
              "which the paper skips; layer 0 is at the top of every map. "
              "[Void in Language Models](https://arxiv.org/abs/2505.14467)"),
    "austeer-eval": ("AUSteer scores single coordinates (atomic units) by how well they separate right from "
                     "wrong answers and steers only the top k of them; compare with no steering and a whole-layer "
                     "vector. Every accuracy is out of n test questions. "
                     "[AUSteer](https://arxiv.org/abs/2602.04428)"),
    "refusal-steer": ("The refusal direction is the difference of mean activations on harmful and benign "
                      "prompts; adding it makes benign prompts refused, ablating it lets harmful ones through. "
                      "Rates are out of n prompts. [Arditi et al. 2024](https://arxiv.org/abs/2406.11717)"),
}
NOTES.update({
    "voids_eval": ("Multiple-choice accuracy (out of n questions, zero-shot, greedy) without skipping and with "
                   "the LAC void layers skipped, against alpha, next to the % of layers used: a higher alpha "
                   "marks more layers void. With paper skipping the final norm reads the last active layer (no compute saved); "
                   "with real skipping void layers are not run. "
                   "[Void in Language Models](https://arxiv.org/abs/2505.14467)"),
    "skills": ("A skill direction is one principal component of the texts' mean activations (all middle layers "
               "concatenated); it is named by the texts most and least aligned with it and by contrasting "
               "keywords. The projection places every corpus text on two directions. "
               "[Characterizing Model-Native Skills](https://arxiv.org/abs/2604.17614)"),
    "skills-steer": ("Each direction is added, times alpha, to every layer's MLP output at every position; the "
                     "task accuracy (out of n items) is read against held-out perplexity, the damage. The proxy "
                     "ranks directions by the drop of the right answers' NLL. "
                     "[Characterizing Model-Native Skills](https://arxiv.org/abs/2604.17614)"),
    "steering-vector": ("A steering vector holds one direction per layer, applied at its site (layer output, MLP "
                        "output or attention o_proj input) as x + alpha v, or x (1 + alpha v) for AUSteer masks. "
                        "Large per-layer norms and high cosines between layers mean one shared direction; the "
                        "coordinates show which dimensions carry it. "
                        "[Turner et al. 2023](https://arxiv.org/abs/2308.10248), "
                        "[Rimsky et al. 2024](https://arxiv.org/abs/2312.06681)"),
    "experts": ("Each cell scores how much more often the router picks one expert on the target prompts than "
                "on the others (fTRI difference or risk difference). The candidates are then switched off one by "
                "one: only a change of the behaviour counts as causal. "
                "[MoTE](https://arxiv.org/abs/2502.11096), [SteerMoE](https://arxiv.org/abs/2509.09660)"),
    "routing": ("Interchange necessity is how much the harmful prompt's NLL of its refusing continuation "
                "changes when one head's output is taken from the matched benign prompt (nats); sufficiency is "
                "the reverse swap on the benign prompt. The head with the highest "
                "necessity is the gate; stars mark p<0.05 and p<0.01 over pairs. "
                "[How Alignment Routes](https://arxiv.org/abs/2604.04385)"),
    "rise": ("A sparse autoencoder trained on the residual at the end of each reasoning step splits it into "
             "latents; a latent is tied to a behaviour (reflection, backtracking) when it is the top latent of "
             "steps with that label. Check FVU, L0 and dead latents before trusting the map. "
             "[RISE](https://arxiv.org/abs/2512.23988)"),
    "rise-steer": ("A behaviour vector (normalised mean of its latents' decoder columns) is removed (alpha > 0) "
                   "or amplified (alpha < 0) at the last token of each step, h - alpha w (w . h); the dose-response "
                   "counts the behaviour's steps per alpha. [RISE](https://arxiv.org/abs/2512.23988)"),
    "rise-confidence": ("An offset of the SAE's latents at every step end is optimised so that the model's next-token "
                        "entropy at the answer tokens falls; its largest entries are the confidence latents, whose "
                        "decoder mean is the confidence vector. The dose-response steers held-out problems with that "
                        "vector: the first panel reads their unsteered texts with the edit on (the answer tokens' entropy "
                        "minus alpha 0's, the same text at every alpha); the others generate with it and read entropy, "
                        "length, behaviour steps and accuracy, with 95% intervals. "
                        "[RISE](https://arxiv.org/abs/2512.23988)"),
    "sae-features": ("Each feature of an SAE attached to the model's site is shown by the contexts where it fires "
                     "most (tokens shaded by activation), how often and how strongly it fires, and the tokens its "
                     "decoder row promotes and suppresses through the final norm and unembedding. Steering adds the "
                     "decoder row at the site. [Towards Monosemanticity](https://transformer-circuits.pub/2023/"
                     "monosemantic-features), [SAELens](https://github.com/jbloomAus/SAELens)"),
})
NOTES["voids-eval"] = NOTES["voids_eval"]
