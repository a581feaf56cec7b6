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


def test_the_engine_runs_a_packaged_embedder_with_onnx(tiny_engine):
    assert isinstance(tiny_engine.embedder, OnnxEmbedder)
    assert tiny_engine.embedder.onnx_path.exists()


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
