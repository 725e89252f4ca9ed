"""`RoutingResult`: every step's typed result in one run directory, with the `--json` summary.

Each completed step is stored flat (tensors in safetensors, the rest as JSON; see
`interp.routing.records`) and rebuilt on access (`result.step("knockout")` -> `Knockout`).
`fingerprint` records what the numbers depend on (model, pairs, chat, options) so a resumed
run on the same --out reuses only steps computed under the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..runs.results import Result
from .records import pack, unpack


def _step_types() -> dict[str, type]:
    from .ablation import Ablation
    from .baseline import Baseline
    from .collapse import CipherCollapse
    from .contrast import CipherContrast
    from .dla_screen import DLAScreen
    from .knockout import Knockout
    from .modulation import DoseResponse
    from .rescue import Rescue
    from .screen import HeadScreen

    return {"baseline": Baseline, "screen": DLAScreen, "ablate": Ablation, "interchange": HeadScreen,
            "knockout": Knockout, "modulate": DoseResponse, "collapse": CipherCollapse, "rescue": Rescue,
            "contrast": CipherContrast}


@dataclass
class RoutingResult(Result):
    """Policy-gate routing ("How Alignment Routes", arXiv 2604.04385)."""

    analysis: ClassVar[str] = "routing"
    main_table = "heads"  # result.table(): the screened heads (a summary entry)
    pairs: list[dict]  # {harmful, benign, category} of the pairs used
    chat: bool
    fingerprint: dict
    done: list[str] = field(default_factory=list)  # stored records, in the order computed
    data: dict = field(default_factory=dict)  # JSON part of each record
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    n_layers: int = 0
    n_heads: int = 0

    def put(self, name: str, record) -> None:
        tensors, data = pack(name, record)
        self.tensors = {k: v for k, v in self.tensors.items() if not k.startswith(name + ".")} | tensors
        self.data[name] = data
        self.done = [d for d in self.done if d != name] + [name]

    def has(self, name: str) -> bool:
        return name in self.done

    def step(self, name: str):
        """The typed record of a completed step (KeyError naming the completed ones)."""
        if name not in self.done:
            raise KeyError(f"step '{name}' was not run; this run has {', '.join(self.done) or 'none'}")
        return unpack(_step_types()[name], name, self.tensors, self.data[name])

    @property
    def gate(self) -> tuple[int, int] | None:
        return tuple(self.step("interchange").gate()) if self.has("interchange") else None

    def summary(self) -> dict:
        from .summary import routing_summary

        return routing_summary(self)

    def text_summary(self) -> dict:
        from .summary import routing_text_summary

        return routing_text_summary(self)

    def figures(self) -> dict:
        from .figures import routing_figures

        return routing_figures(self)
