"""The ONNX embedder against sentence-transformers itself, on the real MiniLM."""

import json
import shutil

import numpy as np
import pytest

from interviewer import models
from interviewer.embed import OnnxEmbedder, SentenceTransformerEmbedder, exportable
from interviewer.service import Engine

from .conftest import ADVERSARIAL

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def minilm():
    from interviewer.config import get_settings

    spec = models.profile(get_settings(), "tiny").embedder
    return spec, models.verify(spec, get_settings().data_dir)


def test_onnx_export_agrees_with_sentence_transformers(minilm, tmp_path):
    spec, digest = minilm
    texts = [a for q in ADVERSARIAL["questions"].values() for a in (q["strong"], q["keywords"], q["restated"])]
    texts += ["x", "Ünïcode – “quotes” and émojis 🙂", ADVERSARIAL["filler"]]  # the filler is past 256 tokens
    onnx = OnnxEmbedder(spec.path, digest, tmp_path / "minilm.onnx", threads=2)
    got = onnx.embed(texts)  # exports first
    assert 10_000_000 < (tmp_path / "minilm.onnx").stat().st_size < 40_000_000  # int8 weights: ~23 MB
    want = SentenceTransformerEmbedder(spec.path, digest, threads=2).embed(texts)
    assert got.shape == want.shape == (len(texts), 384)
    assert (got * want).sum(axis=1).min() > 0.98  # int8 weights move each vector a little
    pairs = np.triu_indices(len(texts), 1)
    assert np.abs((got @ got.T)[pairs] - (want @ want.T)[pairs]).max() < 0.06  # and similarities barely
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))  # the export is written atomically


def test_a_model_without_token_type_ids_exports_too(minilm, tmp_path):
    """MPNet (all-mpnet-base-v2, a common choice for INTERVIEWER_EMBEDDER_PATH) has no token type ids:
    the export asked its tokenizer for them, and its graph has no such input to feed. Newer
    sentence-transformers versions also write the pooling configuration in another form, which
    left such a model on the slow path. A two-layer MPNet with random weights stands in."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import MPNetConfig, MPNetModel

    spec, _ = minilm
    hf = tmp_path / "hf"
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, pad_token_id=0)  # MiniLM's tokenizer: 30,522 tokens, [PAD] = 0
    MPNetModel(config).save_pretrained(hf)
    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        if (spec.path / name).exists():
            shutil.copy(spec.path / name, hf / name)
    tokenizer_config = json.loads((spec.path / "tokenizer_config.json").read_text())
    (hf / "tokenizer_config.json").write_text(json.dumps({  # like MPNet's own tokenizer: no token type ids
        **tokenizer_config, "model_input_names": ["input_ids", "attention_mask"]}))
    modules = [st_models.Transformer(str(hf)), st_models.Pooling(64, "mean"), st_models.Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "mpnet"))
    model = tmp_path / "mpnet"
    assert exportable(model)  # pooling written as newer sentence-transformers versions do: {"pooling_mode": "mean"}
    (model / "1_Pooling" / "config.json").write_text(json.dumps({  # and as all-mpnet-base-v2 ships it
        "word_embedding_dimension": 64, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    assert exportable(model)

    texts = [q["strong"] for q in ADVERSARIAL["questions"].values()] + ["x"]
    onnx = OnnxEmbedder(model, "0" * 64, tmp_path / "mpnet.onnx", threads=2)
    got = onnx.embed(texts)
    want = SentenceTransformerEmbedder(model, "0" * 64, threads=2).embed(texts)
    assert got.shape == want.shape == (len(texts), 64)
    assert (got * want).sum(axis=1).min() > 0.95


def test_int8_weights_are_kept_only_where_they_keep_the_vectors(minilm, tmp_path, monkeypatch):
    from interviewer import embed

    spec, digest = minilm
    texts = [q["strong"] for q in ADVERSARIAL["questions"].values()]
    kept = OnnxEmbedder(spec.path, digest, tmp_path / "int8.onnx", threads=2)
    assert kept.embed(texts).shape == (len(texts), 384) and "int8 export" in kept.runtime
    monkeypatch.setattr(embed, "INT8_MIN_COSINE", 1.01)  # no int8 graph can pass this
    dropped = OnnxEmbedder(spec.path, digest, tmp_path / "fp32.onnx", threads=2)
    got = dropped.embed(texts)
    assert "float32 export" in dropped.runtime
    assert (tmp_path / "fp32.onnx").stat().st_size > 3 * (tmp_path / "int8.onnx").stat().st_size
    want = SentenceTransformerEmbedder(spec.path, digest, threads=2).embed(texts)
    assert (got * want).sum(axis=1).min() > 0.9999  # the 32-bit graph is the model itself


def test_the_engine_runs_a_packaged_embedder_with_onnx(tiny_engine):
    assert isinstance(tiny_engine.embedder, OnnxEmbedder)
    assert tiny_engine.embedder.onnx_path.exists()


def test_a_text_gets_the_same_vector_whatever_it_is_embedded_with(tiny_engine):
    """The int8 graph quantizes activations per pass: batched texts would move one another's vectors."""
    embedder, q = tiny_engine.embedder, ADVERSARIAL["questions"]["Q4"]
    texts = [q["strong"], q["weak"], "Positional encodings add order.", q["paraphrase"]]
    embedder._cache.clear()
    together = embedder.embed(texts)
    embedder._cache.clear()
    alone = np.stack([embedder.embed([t])[0] for t in reversed(texts)][::-1])
    assert np.array_equal(together, alone)


def test_a_model_of_another_shape_stays_with_sentence_transformers(minilm, tmp_path):
    spec, _ = minilm
    assert exportable(spec.path)
    other = tmp_path / "model"
    shutil.copytree(spec.path, other)
    config = json.loads((other / "1_Pooling" / "config.json").read_text())
    (other / "1_Pooling" / "config.json").write_text(json.dumps({**config, "pooling_mode_mean_tokens": False,
                                                                  "pooling_mode_cls_token": True}))
    assert not exportable(other)
    from interviewer.config import Settings

    settings = Settings(data_dir=tmp_path / "data", embedder_path=other)
    assert isinstance(Engine(settings, profile="tiny").embedder, SentenceTransformerEmbedder)


def test_set_up_removes_exports_of_earlier_versions_only(minilm, tmp_path):
    spec, digest = minilm
    current = models.onnx_path(spec, digest, tmp_path)
    current.parent.mkdir(parents=True)
    old = current.with_name(f"{spec.key}-{digest[:12]}-v0.onnx")
    other = current.with_name(f"{spec.key}-{'f' * 12}-v0.onnx")  # another model's weights: not ours
    for path in (current, old, other):
        path.write_bytes(b"onnx")
    assert models.remove_old_exports(spec, digest, tmp_path) == [old]
    assert current.exists() and other.exists() and not old.exists()
