"""SAEs (and transcoders) attached to engine sites: their features become sites like any other.

    sae = model.attach_sae("runs/x/sae/layer_3")        # a sae_lens.SAE, a folder or "release/sae_id"
    _, cache = model.run_with_cache(prompts, ["blocks.3.hook_resid_post.hook_sae_acts_post"])
    model.generate(prompts, edits=[Zero("blocks.3.hook_resid_post.hook_sae_acts_post", dims=[17])])
    model.detach_sae()                                  # every SAE; detach_sae(site) one

An SAE at site S (its sae-lens `hook_name`, which is a TransformerLens name and so one of
ours) adds six sites named as sae-lens names them (`sae_lens.HookedSAETransformer`):

    S.hook_sae_input      [b, p, d_in]   what the SAE encodes
    S.hook_sae_acts_pre   [b, p, d_sae]  pre-activations
    S.hook_sae_acts_post  [b, p, d_sae]  feature activations (= sae.encode of S)
    S.hook_sae_recons     [b, p, d_out]  reconstruction (= sae.decode of the activations)
    S.hook_sae_error      [b, p, d_out]  S - clean reconstruction (error term on)
    S.hook_sae_output     [b, p, d_out]  what the model reads in place of S

The SAE reads S after S's own hooks (an `Add` on S is seen by the features) and what the
model reads next is `hook_sae_output`. With the error term on (the default, as in sae-lens'
`use_error_term=True`) the output is recons + error, where the error is S minus the
reconstruction of S computed without any SAE hook (no gradient flows through it), so
editing a feature moves S by exactly the decoder's change. A pass in which no SAE site is
hooked does not run the SAE, and a pass whose SAE hooks only capture leaves S untouched:
outputs are bit-equal to the model without the SAE. With the error term off the
reconstruction replaces S in every engine pass.

A transcoder (sae-lens metadata `hook_name_out`) reads S and writes `hook_name_out`: its
input and activation sites fire at S, its recons / error / output sites at the output site,
where the error is the output site's value minus the clean reconstruction.

The sites live only inside engine passes (`Model.hooks`, so `run_with_cache`, `generate`,
the store, gradients): a raw `model.hf(...)` call does not see the SAE. The mechanism is the
SAE's own `HookPoint`s: sae-lens' `encode` / `decode` fire them, so every architecture sae-lens
has (standard, TopK, BatchTopK, JumpReLU, gated, transcoders) gets the sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..arch.spec import get_module
from .sites import SiteInfo

if TYPE_CHECKING:
    from .model import Model

PARTS = ("hook_sae_input", "hook_sae_acts_pre", "hook_sae_acts_post", "hook_sae_recons", "hook_sae_error",
         "hook_sae_output")
READ_PARTS = PARTS[:3]  # fire where the SAE reads; the others where it writes


def load_sae(source, device=None):
    """A `sae_lens.SAE` from an SAE object, a folder saved by sae-lens (`save_model` /
    `save_inference_model`: cfg.json + sae_weights.safetensors) or "release/sae_id"
    (`SAE.from_pretrained`, needs the hub). Raises ValueError when `source` is none of these."""
    from sae_lens import SAE

    if isinstance(source, SAE):
        return source
    if isinstance(source, nn.Module):
        raise ValueError(f"attach_sae takes a sae_lens.SAE, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        if not (path / "cfg.json").is_file() or not (path / "sae_weights.safetensors").is_file():
            raise ValueError(f"{path} is not an SAE saved by sae-lens (needs cfg.json and sae_weights.safetensors)")
        return SAE.load_from_disk(str(path), device=str(device or "cpu"))
    release, _, sae_id = str(source).partition("/")
    if not sae_id:
        raise ValueError(f"'{source}' is neither an SAE folder nor 'release/sae_id' for SAE.from_pretrained")
    try:
        return SAE.from_pretrained(release, sae_id, device=str(device or "cpu"))
    except Exception as err:  # the hub or the release name: say which source failed, in one line
        raise ValueError(f"could not load SAE '{sae_id}' of release '{release}' ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}); pass a folder saved by sae-lens") from None


def site_width(model: "Model", site: SiteInfo) -> int:
    """Last-axis width of a site's module tensor (what an SAE at the site reads and writes)."""
    if site.heads is not None:
        return site.heads * site.d_head
    module = get_module(model.hf, site.module_path)
    if isinstance(module, nn.Linear):
        return module.in_features if site.io == "input" else module.out_features
    return model.d_model


@dataclass(eq=False)
class SAEAttachment:
    """One attached SAE: where it reads and writes, and the per-pass state of its forward."""

    model: "Model"
    sae: nn.Module
    site: str  # where it reads (sae-lens hook_name); its sites are named after it
    out_site: str  # where it writes (= site except for transcoders)
    use_error_term: bool = True
    _hooked: int = field(default=0, init=False)  # engine callbacks now on the SAE's hook points
    _write_hooked: int = field(default=0, init=False)  # ... of them on recons / error / output
    _users: int = field(default=0, init=False)  # HookSets that installed the SAE's runners
    _runners: list = field(default_factory=list, init=False)
    _quiet: bool = field(default=False, init=False)
    _changed: bool = field(default=False, init=False)
    _pending: tuple | None = field(default=None, init=False)  # (x_in, acts) between read and write

    def sites(self) -> list[str]:
        return [f"{self.site}.{part}" for part in PARTS]

    def __enter__(self) -> "SAEAttachment":
        return self

    def __exit__(self, *exc) -> None:
        if self.model._sae_attachments().get(self.site) is self:
            self.model.detach_sae(self.site)

    # ---- the SAE's forward, split at the read and write sites -----------------------
    def _feed(self, full: torch.Tensor, name: str) -> torch.Tensor:
        site = self.model.site(name)
        return site.to_user(full) if getattr(self.sae, "hook_z_reshaping_mode", False) else full

    def _unfeed(self, new: torch.Tensor, full: torch.Tensor, name: str) -> torch.Tensor:
        site = self.model.site(name)
        new = new.to(full.dtype)
        return site.from_user(new, full) if getattr(self.sae, "hook_z_reshaping_mode", False) else new

    def read(self, full: torch.Tensor) -> None:
        x = self._feed(full, self.site)
        if x.device != self.sae.W_dec.device:
            self.sae.to(x.device)
        self._changed = False
        self._pending = (x, self.sae.encode(x))

    def write(self, full: torch.Tensor) -> torch.Tensor | None:
        if self._pending is None:  # the read site did not run in this pass
            return None
        x_in, acts = self._pending
        self._pending = None
        if self.use_error_term and not self._changed and self._write_hooked == 0:
            return None  # captures of the read sites only: the output is S itself, no decode needed
        x_out = self._feed(full, self.out_site)
        recons = self.sae.decode(acts)
        if self.use_error_term:
            if self._changed:
                with torch.no_grad():
                    clean = self._clean(x_in)
            else:
                clean = recons.detach()
            error = self._fire("hook_sae_error", x_out.to(recons.dtype) - clean)
            out = recons + error if self._changed else x_out
        else:
            out, self._changed = recons, True
        out = self._fire("hook_sae_output", out)
        return self._unfeed(out, full, self.out_site) if self._changed else None

    def _clean(self, x_in: torch.Tensor) -> torch.Tensor:
        self._quiet = True
        try:
            return self.sae.decode(self.sae.encode(x_in))
        finally:
            self._quiet = False

    def _fire(self, part: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.sae, part)(x)

    # ---- engine plumbing --------------------------------------------------------------
    def hook_part(self, part: str, run) -> object:
        """Run the engine callback `run` (HookSet's runner) at one of the SAE's hook points."""
        def fn(module, args, out):
            if self._quiet:
                return None
            new = run(out)
            if new is not None:
                self._changed = True
            return new
        handle = getattr(self.sae, part).register_forward_hook(fn)
        writes = part not in READ_PARTS
        self._hooked += 1
        self._write_hooked += writes
        return _Handle(lambda: (handle.remove(), self._release_hook(writes)))

    def _release_hook(self, writes: bool) -> None:
        self._hooked -= 1
        self._write_hooked -= writes

    def install(self) -> list:
        """The SAE's read/write runners on the model, once for however many HookSets are
        active; nothing when no SAE site is hooked and the error term makes the SAE an identity."""
        if self._users == 0 and self.use_error_term and self._hooked == 0:
            return []
        if self._users == 0:
            self._runners = [_module_hook(self.model, self.site, lambda full: self.read(full) or None)]
            if self.out_site == self.site:
                self._runners = [_module_hook(self.model, self.site, self._read_write)]
            else:
                self._runners.append(_module_hook(self.model, self.out_site, self.write))
        self._users += 1
        return [_Handle(self._release)]

    def _read_write(self, full: torch.Tensor) -> torch.Tensor | None:
        self.read(full)
        return self.write(full)

    def _release(self) -> None:
        self._users -= 1
        if self._users == 0:
            for handle in self._runners:
                handle.remove()
            self._runners = []
            self._pending = None


@dataclass
class _Handle:
    fn: object

    def remove(self) -> None:
        self.fn()


def _module_hook(model: "Model", name: str, fn):
    """A torch hook on site `name`'s module calling fn(module tensor) -> replacement | None."""
    site = model.site(name)
    module = get_module(model.hf, site.module_path)
    if site.io == "output":
        def out_hook(mod, args, out):
            full = out[0] if isinstance(out, tuple) else out
            new = fn(full)
            if new is None:
                return None
            return (new, *out[1:]) if isinstance(out, tuple) else new
        return module.register_forward_hook(out_hook)

    def in_hook(mod, args, kwargs):
        full = args[0] if args else kwargs["hidden_states"]
        new = fn(full)
        if new is None:
            return None
        return ((new, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": new})
    return module.register_forward_pre_hook(in_hook, with_kwargs=True)


# ---- attach / detach (Model.attach_sae and Model.detach_sae call these) ------------------
def attach(model: "Model", source, site: str | None = None, *, use_error_term: bool = True) -> SAEAttachment:
    """Attach an SAE; returns its `SAEAttachment` (a context manager that detaches it).

    The site is `site` or the SAE's `cfg.metadata.hook_name`. Raises ValueError before any
    pass when the site is unknown or not a plain activation, its width is not the SAE's
    `d_in` (or a transcoder's output site not its `d_out`), or an SAE is already attached there."""
    sae = load_sae(source, device=model.device)
    meta = getattr(sae.cfg, "metadata", None)
    name = site or (meta.hook_name if meta is not None else None)
    if not name:
        raise ValueError("the SAE's config names no hook_name; pass site= (e.g. 'blocks.3.hook_resid_post')")
    out_name = (meta.get("hook_name_out") if meta is not None else None) or name
    attached = model._sae_attachments()
    if name in attached:
        raise ValueError(f"an SAE is already attached at '{name}'; detach_sae('{name}') first")
    if any(name.startswith(f"{s}.") for s in attached):
        raise ValueError(f"'{name}' is a site of an attached SAE; SAEs attach to model sites")
    d_out = getattr(sae.cfg, "d_out", sae.cfg.d_in)
    for which, where, width in (("reads", name, sae.cfg.d_in), ("writes", out_name, d_out)):
        info = model.site(where)
        if info.io not in ("input", "output") or info.part is not None:
            raise ValueError(f"an SAE cannot attach at '{where}' ({info.io}); use a residual, attention, "
                             "MLP or norm output site")
        if site_width(model, info) != width:
            raise ValueError(f"the SAE {which} {width}-dimensional activations but '{where}' is "
                             f"{site_width(model, info)} wide; wrong SAE or wrong site")
    if getattr(sae, "hook_z_reshaping_mode", False) and model.site(name).heads is None:
        raise ValueError(f"the SAE is a hook_z SAE (heads flattened) but '{name}' is not split by head")
    sae.eval()
    sae.requires_grad_(False)
    sae.to(model.device)
    attachment = SAEAttachment(model, sae, name, out_name, use_error_term)
    attached[name] = attachment
    _add_sites(model, attachment)
    return attachment


def detach(model: "Model", site: str | None = None) -> None:
    """Detach the SAE at `site`, or every SAE; ValueError for a site with no SAE."""
    attached = model._sae_attachments()
    if site is not None and site not in attached:
        raise ValueError(f"no SAE is attached at '{site}'; attached: {sorted(attached) or 'none'}")
    for name in [site] if site is not None else list(attached):
        attachment = attached.pop(name)
        if attachment._users:
            raise RuntimeError(f"the SAE at '{name}' is in use by an active pass; detach it after the pass")
        for sub in attachment.sites():
            model._sites.pop(sub, None)


def _add_sites(model: "Model", attachment: SAEAttachment) -> None:
    """Insert the SAE's sites after the site where each fires, keeping forward order."""
    new: dict[str, SiteInfo] = {}
    for part in PARTS:
        where = model.site(attachment.site if part in READ_PARTS else attachment.out_site)
        new[f"{attachment.site}.{part}"] = SiteInfo(f"{attachment.site}.{part}", where.layer, where.module_path, "sae")
    sites: dict[str, SiteInfo] = {}
    for name, info in model._sites.items():
        sites[name] = info
        for sub, sub_info in new.items():
            if (sub_info.module_path, sub_info.layer) == (info.module_path, info.layer) and \
                    name == (attachment.site if sub.rsplit(".", 1)[1] in READ_PARTS else attachment.out_site):
                sites[sub] = sub_info
    model._sites.clear()
    model._sites.update(sites)


def attachment_of(model: "Model", name: str) -> tuple[SAEAttachment, str]:
    """(attachment, part) of an SAE site name."""
    base, _, part = name.rpartition(".")
    return model._sae_attachments()[base], part


def install_saes(model: "Model") -> list:
    """Called by HookSet on enter, after its own hooks: each attached SAE's runners."""
    handles = []
    for attachment in model._sae_attachments().values():
        handles.extend(attachment.install())
    return handles
