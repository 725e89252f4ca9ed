"""Load a Hugging Face causal LM from a zoo alias, a GGUF file, a folder or a hub id.

GGUF files (the offline zoo, or a user's own) are dequantized by transformers into
an ordinary float model, which takes 20-45 s on CPU. The first load therefore
writes the dequantized model and tokenizer as a plain safetensors folder under
``<cache>/dequantized/<sha256>/``; later loads read that folder in about a second.

transformers 5 quirk: ``from_pretrained(..., gguf_file=...)`` attaches a
``GgufHfQuantizer`` and a ``quantization_config`` to the model, and
``save_pretrained`` then refuses ("quantized with gguf and is not serializable").
Passing ``GgufConfig(dequantize=True)`` makes transformers drop both after loading,
so the saved folder is a plain float checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "float64": torch.float64, "fp64": torch.float64,
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadInfo:
    """Where a loaded model came from and how it was loaded (goes into run manifests)."""

    spec: str
    kind: str
    """"zoo", "gguf", "folder" or "hub"."""
    path: str | None
    """GGUF file (zoo, gguf) or folder; None for a hub id."""
    sha256: str | None
    """sha256 of the GGUF file; None for folders and hub ids."""
    device: str
    dtype: str
    attn_implementation: str
    load_seconds: float
    from_cache: bool
    """True when a GGUF was read from its dequantized cache instead of dequantized again."""
    device_map: dict[str, str] | None = None
    """Where each module went when loaded with a device_map (accelerate); None otherwise."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the best available: cuda, then mps, then cpu.

    Raises ModelLoadError (one line) for a device that does not exist here: an unknown
    name, cuda/mps without support in this torch build, or a cuda index past the count.
    """
    if device is not None:
        return check_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or ModelLoadError when this machine has no such device."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"unknown device '{device}': use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device '{device}': no CUDA GPU is available here "
                                 f"(torch {torch.__version__}); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ModelLoadError(f"device '{device}': this machine has {count} CUDA GPU(s), "
                                 f"cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device '{device}': MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise ModelLoadError(f"device '{device}' is not supported: use cpu, cuda, cuda:N or mps")
    return dev


def check_device_map(device_map: str | dict) -> str | dict:
    """A device_map for transformers: a strategy name, or {module: device} whose devices
    exist here ("disk" included); ModelLoadError (one line) otherwise."""
    if isinstance(device_map, str):
        if device_map not in ("auto", "balanced", "balanced_low_0", "sequential"):
            raise ModelLoadError(f"device map '{device_map}': use auto, balanced, balanced_low_0 or sequential")
        return device_map
    for device in set(device_map.values()):
        if device != "disk":
            check_device(f"cuda:{device}" if isinstance(device, int) else device)
    return device_map


def parse_max_memory(text: str | None) -> dict | None:
    """"0=20GiB,1=20GiB,cpu=64GiB" -> {0: "20GiB", 1: "20GiB", "cpu": "64GiB"} (None for None)."""
    if not text:
        return None
    limits: dict = {}
    for part in text.split(","):
        device, sep, amount = part.partition("=")
        if not sep or not amount.strip():
            raise ModelLoadError(f"--max-memory '{text}': write DEVICE=AMOUNT pairs, e.g. 0=20GiB,cpu=64GiB")
        device = device.strip()
        limits[int(device) if device.isdigit() else device] = amount.strip()
    return limits


def pick_dtype(device: str | torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """``dtype`` if given (a torch dtype or a name like "bf16"), else bf16 on GPUs, fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.lower().removeprefix("torch.")
        if name not in _DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}: use one of {', '.join(_DTYPES)}")
        return _DTYPES[name]
    if dtype is not None:
        raise ModelLoadError(f"dtype must be a torch.dtype or a name, got {type(dtype).__name__}")
    return torch.bfloat16 if torch.device(device).type in ("cuda", "mps") else torch.float32


def _resolve(spec: str) -> tuple[str, Path | None, str | None]:
    """``(kind, path, sha256)`` for ``spec``; assembles zoo GGUFs; raises ModelLoadError."""
    from . import assembly, zoo

    if spec in zoo.ZOO:
        entry = zoo.ZOO[spec]
        return "zoo", assembly.assemble(entry), entry.sha256
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf", path.resolve(), zoo.file_sha256(path)
    if path.is_dir() and (path / "config.json").is_file():
        return "folder", path.resolve(), None
    if not path.exists() and path.suffix.lower() != ".gguf" and _HUB_ID.match(spec):
        return "hub", None, None
    raise ModelLoadError(
        f"unknown model '{spec}': not a zoo alias ({', '.join(zoo.ZOO)}), "
        "a .gguf file or a folder with config.json"
    )


def _hub_offline() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def _is_unreachable(error: BaseException) -> bool:
    """Whether a hub load failed because the hub (or the file, offline) could not be reached."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (LocalEntryNotFoundError, ConnectionError, TimeoutError)):
            return True
        if "couldn't connect" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _from_pretrained(source: str, cached_tokenizer: bool = False, **kwargs: Any):
    """Model and tokenizer from a folder or hub id, with transformers 5 argument names.

    ``cached_tokenizer``: ``source`` is a dequantized cache folder, whose saved tokenizer
    loads without being rebuilt (``interp.models.tokenizer_cache``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    hub_kwargs = {k: v for k, v in kwargs.items() if k == "local_files_only"}
    if cached_tokenizer:
        from .tokenizer_cache import load_tokenizer

        tokenizer = load_tokenizer(source)
    else:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    return model, tokenizer


def _load_hub(spec: str, **kwargs: Any):
    if _hub_offline():
        kwargs["local_files_only"] = True  # a model already in the HF cache still loads
    try:
        return _from_pretrained(spec, **kwargs)
    except Exception as error:  # re-raised below with a one-line message
        if _is_unreachable(error):
            raise ModelLoadError(
                f"hub model '{spec}' is not cached and the Hugging Face hub is unreachable "
                "(offline): pass a local folder, a .gguf file or a zoo alias instead"
            ) from error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ModelLoadError(f"hub model '{spec}' could not be loaded: {first_line}") from error


def _dequantize_gguf(gguf: Path, folder: Path) -> None:
    """Dequantize ``gguf`` to float32 and save model + tokenizer to ``folder`` atomically.

    float32 holds the dequantized blocks exactly, so the folder serves any later
    dtype with the same rounding as a fresh load.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.quantization_config import GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Belt and braces: a leftover quantizer makes save_pretrained refuse, and a leftover
    # quantization_config makes the saved folder load through the GGUF quantizer again.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name[:12]}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "config.json").is_file():  # else another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_hf(
    spec: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    offload_folder: str | os.PathLike | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, LoadInfo]:
    """Load ``(model, tokenizer, LoadInfo)``; the model is on ``device`` in ``dtype``, in eval mode.

    ``spec`` is tried as: zoo alias, existing ``.gguf`` file, folder with
    ``config.json``, hub id ``owner/name``. ``attn_implementation`` ("eager",
    "sdpa", ...) goes to transformers; None keeps its default. The tokenizer pads
    on the left with eos when it has no pad token, as batched generation needs.

    ``device_map`` ("auto", "balanced", ... or {module: device}) places the model with
    accelerate over several GPUs, the CPU and disk (``offload_folder``), each device
    limited by ``max_memory`` ({0: "20GiB", "cpu": "64GiB"}); ``device`` then only picks
    the default dtype. Raises ModelLoadError for a device map naming a missing device.
    """
    started = time.perf_counter()
    spec = str(spec)
    target_device = pick_device(device)
    target_dtype = pick_dtype(target_device, dtype)
    kind, path, sha256 = _resolve(spec)
    kwargs: dict[str, Any] = {"dtype": target_dtype}
    if device_map is not None:
        kwargs.update(device_map=check_device_map(device_map))
        if max_memory:
            kwargs["max_memory"] = max_memory
        if offload_folder is not None:
            kwargs["offload_folder"] = str(offload_folder)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    from_cache = False
    if kind in ("zoo", "gguf"):
        from .zoo import cache_root

        folder = cache_root() / "dequantized" / sha256
        from_cache = (folder / "config.json").is_file()
        if not from_cache:
            _dequantize_gguf(path, folder)
        # Always read the saved folder, so first and later loads give the same model
        # (same dtype casts, same non-persistent buffers such as RoPE frequencies).
        model, tokenizer = _from_pretrained(str(folder), cached_tokenizer=True, **kwargs)
    elif kind == "folder":
        model, tokenizer = _from_pretrained(str(path), **kwargs)
    else:
        model, tokenizer = _load_hub(spec, **kwargs)
    # Only the device: a dtype cast here would also cast fp32 buffers (RoPE inv_freq)
    # that from_pretrained(dtype=...) deliberately keeps in float32.
    placed = getattr(model, "hf_device_map", None) if device_map is not None else None
    model = model.eval() if device_map is not None else model.to(target_device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    info = LoadInfo(
        spec=spec, kind=kind, path=str(path) if path is not None else None, sha256=sha256,
        device=str(target_device), dtype=str(target_dtype).removeprefix("torch."),
        attn_implementation=str(model.config._attn_implementation),
        load_seconds=round(time.perf_counter() - started, 3), from_cache=from_cache,
        device_map={k: str(v) for k, v in placed.items()} if placed else None,
    )
    return model, tokenizer, info
