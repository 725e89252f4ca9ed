"""Vector files before they are read: the error type, the metadata key, and the refusal of
anything that could only be read by unpickling (shared by `steering.vectors` and
`steering.gguf_io`)."""

from __future__ import annotations

from pathlib import Path

METADATA_KEY = "steerlens.vector"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib")


class VectorFileError(ValueError):
    """A vector file is missing, unsafe, malformed, or does not fit the model (one line)."""


PICKLE_ADVICE = ("steerlens never unpickles (loading a pickle can run arbitrary code). Convert it yourself "
                  "where you trust it: SteeringVector.from_tensor(torch.load(f), layers=[...], "
                  "model=model).save('v.safetensors')")


def looks_pickled(path: Path) -> bool:
    """Pickle protocol 2+ starts with 0x80; torch.save's zip format with 'PK'."""
    with open(path, "rb") as f:
        head = f.read(2)
    return head[:1] == b"\x80" or head == b"PK"


def refuse_unsafe(path: Path) -> None:
    """Refuse files that could only be read by unpickling (or that do not exist)."""
    if not path.exists():
        raise VectorFileError(f"{path}: vector file not found")
    if path.is_dir():
        raise VectorFileError(f"{path}: is a directory, not a vector file")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES or (suffix not in (".safetensors", ".gguf") and looks_pickled(path)):
        raise VectorFileError(f"{path}: looks like a pickle / torch.save file; {PICKLE_ADVICE}")
    if suffix not in (".safetensors", ".gguf"):
        raise VectorFileError(f"{path}: unknown vector file type '{path.suffix}'; use .safetensors or .gguf")
