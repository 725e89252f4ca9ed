"""Train an SAE on step activations with sae-lens' own `SAETrainer` (no loop of ours).

RISE's SAE (arXiv 2512.23988; steerlens methods notes section 6): ReLU with an L1 penalty,
dictionary 2048 for d_model 1536 (here scaled to the model's width: round(2048 / 1536 * d)),
L1 coefficient 2e-3, batch 1024, Adam lr 1e-4 with 10% linear warm-up then cosine decay.
Those values are the `paper` preset (`TrainConfig.preset("paper")`, `rise train --preset
paper`). Under sae-lens' loss (squared error summed over dimensions, activations scaled to
mean norm sqrt(d_model)) the paper's L1 coefficient is far too weak: the SAE comes out dense,
close to an identity map (L0 617 of 768 latents on smollm2-135m-instruct). The defaults are
therefore a TopK SAE (Gao et al. 2024, arXiv 2406.04093) with k = 32 active latents, chosen by
the sweep recorded in docs/rise.md; everything else is the paper's.
Unit-norm decoder columns: sae-lens' standard SAE weights the L1 term by each decoder
column's norm, which makes the loss invariant to rescaling a column, and the decoder norms
are folded into the encoder before saving, so the saved SAE has unit-norm columns and
computes the same reconstruction (`--architecture`: topk, batchtopk or standard).

Layout under `<run>/sae/` (one folder per trained layer, `layer_<l>/`):

    checkpoints/step_<n>/   sae-lens training weights + cfg.json, trainer.safetensors
                            (optimizer moments, firing counters), trainer.json (counters,
                            schedules, activation scale): no pickle anywhere
    sae_weights.safetensors, cfg.json   the final SAE in sae-lens' inference format
                            (`sae_lens.SAE.load_from_disk(folder)` loads it)
    training.json           config, loss curve, throughput (wait fraction, activations/s)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.training.prefetch import PrefetchingIterator
from sae_lens.training.sae_trainer import SAETrainer

from interp.engine.files import save_safetensors
from interp.engine.provenance import check_provenance, of_header
from interp.engine.store import ActivationStore
from interp.runs.config import fit_option, mark_given, option

from .data import StoreBatches, Timed

ARCHITECTURES = ("standard", "topk", "batchtopk")
PAPER_D_SAE, PAPER_D_MODEL = 2048, 1536


@dataclass
class TrainConfig:
    architecture: str = option("topk", "topk (the default: exactly --k latents per step), batchtopk (--k on "
                               "average over a batch) or standard = ReLU + L1 (RISE's, --preset paper)",
                               choices=ARCHITECTURES)
    d_sae: int = option(0, "dictionary size (0: RISE's 2048 per 1536 model dimensions, scaled to d_model)")
    l1_coefficient: float = option(2e-3, "L1 sparsity coefficient (standard; the paper's 2e-3 gives a dense SAE "
                                         "under sae-lens' loss, see docs/rise.md)")
    k: int = option(32, "active latents per step (topk; batch average for batchtopk; at most the dictionary)")
    batch_size: int = option(1024, "activations per training batch")
    lr: float = option(1e-4, "Adam learning rate")
    warmup: float = option(0.1, "fraction of steps of linear learning-rate warm-up (cosine decay after)")
    steps: int = option(2000, "training steps")
    checkpoints: int = option(4, "checkpoints written during training (resume points)")
    normalize: bool = option(True, "scale activations to mean norm sqrt(d_model) while training "
                             "(folded into the saved weights)")
    device: str = option("cpu", "device the SAE trains on")

    def validate(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"--architecture must be one of {', '.join(ARCHITECTURES)}, got '{self.architecture}'")
        if self.steps < 1 or self.batch_size < 1 or self.d_sae < 0 or self.k < 1 or self.checkpoints < 0:
            raise ValueError("--steps, --batch-size, --k must be >= 1; --d-sae and --checkpoints >= 0")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"--warmup is a fraction in [0, 1), got {self.warmup}")

    def width(self, d_model: int) -> int:
        return self.d_sae or max(1, round(PAPER_D_SAE / PAPER_D_MODEL * d_model))

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """The config of a named preset (`PRESETS`), with `overrides` on top (marked as given)."""
        if name not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got '{name}'")
        return mark_given(cls(**{**PRESETS[name], **overrides}), overrides)


# Named settings; a preset sets the fields it lists, the rest keep their defaults.
PRESETS: dict[str, dict] = {
    "default": {},  # TopK, k = 32: sparse on the default collection (docs/rise.md)
    "paper": dict(architecture="standard", l1_coefficient=2e-3, batch_size=1024, lr=1e-4, warmup=0.1),  # RISE's
}


def _sae(config: TrainConfig, d_in: int, hook_name: str):
    common = dict(d_in=d_in, d_sae=config.width(d_in), dtype="float32", device=config.device,
                  normalize_activations="expected_average_only_in" if config.normalize else "none")
    if config.architecture == "standard":
        cfg = StandardTrainingSAEConfig(l1_coefficient=config.l1_coefficient, **common)
        sae = StandardTrainingSAE(cfg)
    elif config.architecture == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(k=config.k, **common))
    else:
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(k=float(config.k), **common))
    sae.cfg.metadata.hook_name = hook_name
    return sae


def _trainer_config(config: TrainConfig) -> SAETrainerConfig:
    return SAETrainerConfig(
        total_training_samples=config.steps * config.batch_size, train_batch_size_samples=config.batch_size,
        lr=config.lr, lr_end=0.0, lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=int(config.warmup * config.steps), device=config.device,
        dead_feature_window=max(1, min(1000, config.steps // 4)), feature_sampling_window=config.steps + 1,
        n_checkpoints=config.checkpoints, checkpoint_path=None, save_final_checkpoint=False,
        n_batches_for_norm_estimate=8)


def train_layer(store_path: str | Path, site: str, out: str | Path, config: TrainConfig, *, seed: int = 0,
                resume: bool = False, stop_after: int | None = None, progress: bool = True) -> Path:
    """Train one SAE on `site` of the store; returns its folder (sae-lens inference format).

    `resume` continues from the newest checkpoint in `out/checkpoints` (same config and seed
    give the same SAE as an uninterrupted run). `stop_after` ends after that many steps
    without saving the final SAE (used to test interruption). Raises ValueError when `out`
    holds a run and `resume` is False."""
    config.validate()
    store = ActivationStore(Path(store_path))
    out = Path(out)
    checkpoints = out / "checkpoints"
    latest = latest_checkpoint(checkpoints)
    if (latest is not None or (out / "cfg.json").exists()) and not resume:
        raise ValueError(f"{out} already holds SAE training; pass --resume to continue it or choose another --run")
    data = {**of_header(store.index), "site": site}  # what made the activations this SAE reads
    if latest is not None:
        _check_same_training(json.loads((latest / "trainer.json").read_text()), config, seed, out, data)
    d_in = int(next(iter(store.shards()))[site].shape[1])
    if config.architecture != "standard":  # a default k above the dictionary is clamped, a given one refused
        fit_option(config, "k", config.width(d_in), f"latents of the dictionary (--d-sae {config.width(d_in)})")
    torch.manual_seed(seed)
    sae = _sae(config, d_in, site)
    trainer = SAETrainer(_trainer_config(config), sae, iter(()))
    curve: list[dict] = []
    if latest is not None:
        _restore(trainer, latest)
        curve = json.loads((latest / "trainer.json").read_text())["curve"]
    elif config.normalize:  # sae-lens' estimate, from its own feed so the training feed starts at batch 0
        with _quiet(not progress):
            trainer.activation_scaler.estimate_scaling_factor(d_in, StoreBatches(store, site, config.batch_size,
                                                                                 seed + 1), 8)
    trainer.checkpoint_thresholds = [t for t in trainer.checkpoint_thresholds if t >= trainer.n_training_samples]
    source = StoreBatches(store, site, config.batch_size, seed, start=trainer.n_training_steps)
    prefetch = PrefetchingIterator(source, prefetch=4)
    feed = Timed(_stop(prefetch, stop_after))
    trainer.data_provider = feed
    _record_curve(trainer, curve, every=max(1, config.steps // 200))
    recorded = {**asdict(config), "seed": seed, "data": data}
    trainer.save_checkpoint_fn = lambda checkpoint_path: _save_checkpoint(trainer, checkpoints, curve, recorded)
    trainer.cfg.total_training_samples = config.steps * config.batch_size
    try:
        with _quiet(not progress):
            trainer.fit()
    except _Stopped:
        return out
    finally:
        prefetch.close()
    final = trainer.sae
    if config.architecture == "standard":
        final.fold_W_dec_norm()
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    final.save_inference_model(tmp)
    for name in ("sae_weights.safetensors", "cfg.json"):
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp, ignore_errors=True)
    record = {"config": asdict(config), "seed": seed, "site": site, "d_in": d_in, "d_sae": config.width(d_in),
              "curve": curve, "throughput": feed.report(), "resumed_from": latest.name if latest else None}
    (out / "training.json").write_text(json.dumps(record, indent=1))
    return out


@contextlib.contextmanager
def _quiet(quiet: bool):
    """Silence sae-lens' own progress bar (it has no switch) for the span of `fit`."""
    if not quiet:
        yield
        return
    from sae_lens.training import activation_scaler, sae_trainer
    from tqdm.auto import tqdm

    modules = (sae_trainer, activation_scaler)
    shown = [m.tqdm for m in modules]
    for m in modules:
        m.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        for m, bar in zip(modules, shown):
            m.tqdm = bar


class _Stopped(Exception):
    pass


def _stop(source, after: int | None):
    for i, batch in enumerate(source):
        if after is not None and i >= after:
            raise _Stopped()
        yield batch


def _record_curve(trainer: SAETrainer, curve: list[dict], every: int) -> None:
    """Keep the loss curve (sae-lens logs it only to wandb) by wrapping `trainer.step`,
    which `fit` calls once per batch; the training itself stays sae-lens'."""
    step = trainer.step

    def recorded(batch: torch.Tensor):
        output = step(batch)
        if trainer.n_training_steps % every == 0:
            with torch.no_grad():
                total = (output.sae_in - output.sae_in.mean(0)).pow(2).sum()
                fvu = float((output.sae_out - output.sae_in).pow(2).sum() / total.clamp_min(1e-12))
                l0 = float((output.feature_acts != 0).float().sum(-1).mean())
            curve.append({"step": trainer.n_training_steps, "loss": output.loss.item(), "fvu": fvu, "l0": l0,
                          **{k: v.item() for k, v in output.losses.items() if isinstance(v, torch.Tensor)}})
        return output

    trainer.step = recorded


def load_sae(folder: str | Path, device: str = "cpu") -> SAE:
    """The trained SAE (sae-lens inference class) from its folder."""
    folder = Path(folder)
    if not (folder / "cfg.json").is_file():
        raise ValueError(f"{folder}: no trained SAE (cfg.json); run `rise train` first")
    return SAE.load_from_disk(folder, device=device)


def latest_checkpoint(folder: Path) -> Path | None:
    done = [p for p in folder.glob("step_*") if (p / "trainer.json").is_file()] if folder.is_dir() else []
    return max(done, key=lambda p: int(p.name.split("_")[1]), default=None)


def _save_checkpoint(trainer: SAETrainer, folder: Path, curve: list[dict], recorded: dict) -> None:
    """Write a checkpoint atomically: safetensors for tensors, JSON for the rest."""
    final = folder / f"step_{trainer.n_training_steps + 1}"
    tmp = folder / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.sae.save_model(tmp)
    optim = trainer.optimizer.state_dict()
    tensors = {"act_freq_scores": trainer.act_freq_scores, "n_forward_passes_since_fired":
               trainer.n_forward_passes_since_fired}
    for pid, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{pid}.{key}"] = torch.as_tensor(value).float().reshape(-1) if key == "step" else value
    save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / "trainer.safetensors")
    state = {"n_training_samples": trainer.n_training_samples, "n_training_steps": trainer.n_training_steps + 1,
             "n_frac_active_samples": trainer.n_frac_active_samples, "param_groups": optim["param_groups"],
             "lr_scheduler": trainer.lr_scheduler.state_dict(), "scaling_factor": trainer.activation_scaler.scaling_factor,
             "coefficients": {k: s.state_dict() for k, s in trainer.coefficient_schedulers.items()}, "curve": curve,
             "config": recorded}
    (tmp / "trainer.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def _check_same_training(state: dict, config: TrainConfig, seed: int, out: Path, data: dict) -> None:
    """ValueError naming the flags to pass when a resume asks for other settings than the
    checkpoint was trained with (a resume must continue the same schedule), or naming the
    field of the activations' provenance (store, site) that differs."""
    recorded = state.get("config")
    if recorded is None:  # checkpoints written before settings were recorded
        return
    if "data" in recorded:
        check_provenance(recorded["data"], data, f"{out} (its activations)")
    wanted = {**asdict(config), "seed": seed}
    differs = [k for k in wanted if k in recorded and recorded[k] != wanted[k]]
    if differs:
        flags = " ".join(f"--{k.replace('_', '-')} {recorded[k]}" for k in differs)
        raise ValueError(f"{out} was trained with other settings; resume it with {flags} (or delete {out} "
                         "to train afresh)")


def _restore(trainer: SAETrainer, checkpoint: Path) -> None:
    state = json.loads((checkpoint / "trainer.json").read_text())
    tensors = load_file(checkpoint / "trainer.safetensors")
    trainer.sae.load_weights_from_checkpoint(checkpoint)
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            optim_state.setdefault(int(pid), {})[name] = value.reshape(()) if name == "step" else value
    trainer.optimizer.load_state_dict({"state": optim_state, "param_groups": state["param_groups"]})
    trainer.lr_scheduler.load_state_dict(state["lr_scheduler"])
    trainer.act_freq_scores = tensors["act_freq_scores"]
    trainer.n_forward_passes_since_fired = tensors["n_forward_passes_since_fired"]
    trainer.n_training_samples = state["n_training_samples"]
    trainer.n_training_steps = state["n_training_steps"]
    trainer.n_frac_active_samples = state["n_frac_active_samples"]
    trainer.activation_scaler.scaling_factor = state["scaling_factor"]
    for name, sched in state["coefficients"].items():
        trainer.coefficient_schedulers[name].load_state_dict(sched)
