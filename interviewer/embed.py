"""Embedder seam: texts in, L2-normalised vectors out.

`OnnxEmbedder` is the real backend: a sentence-transformers model (transformer, mean pooling,
normalisation) exported once to ONNX, its matrix products quantized to 8 bits, and run with ONNX
Runtime. It loads in under a second where importing sentence-transformers and torch takes 8-10 s,
and encodes about twice as fast as the 32-bit graph on a CPU.
`SentenceTransformerEmbedder` runs the model through sentence-transformers itself: for models
of another shape, and the reference the ONNX export is checked against. `HashingEmbedder` is
a deterministic bag-of-words implementation of the same seam for fast unit tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelUnavailable

ONNX_VERSION = "3"  # names the exported file: bump when the export changes. 2: int8; 3: int8 where it fits
INT8_MIN_COSINE = 0.95  # int8 weights are kept only if every check sentence's vector stays this close
# Sentences the int8 graph is checked on against the 32-bit one: all-MiniLM-L6-v2 keeps them at 0.98 or more;
# all-mpnet-base-v2 falls to 0.85-0.93 and keeps its 32-bit weights.
CHECK_SENTENCES = (
    "Self-attention lets every token weigh every other token of the sequence.",
    "The gradient vanishes.",
    "A bulb lights only when it is in a closed path with the battery, and a gap anywhere opens the circuit.",
    "Scaling laws say that loss falls as a power law in parameters, data and compute, so larger models trained "
    "on more tokens keep improving, though each doubling buys less than the one before.",
    "x",
)


class Embedder(Protocol):
    id: str
    sha256: str
    runtime: str  # what runs the model, for a grade's provenance
    cosine_floor: float  # its cosine for unrelated texts, taken off every cosine (models.rescale)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text."""


class _CachedEmbedder:
    """Shared by the real backends: a bounded cache of vectors, and batches of similar length."""

    batch_size = 64  # texts per forward pass

    def __init__(self, path, sha256: str, *, threads: int | None = None, cache_size: int = 20000,
                 name: str | None = None, prompt: str = "", cosine_floor: float = 0.0):
        self.path, self.sha256 = Path(path), sha256
        self.id = name or self.path.name or str(path)
        self.prompt, self.cosine_floor = prompt, cosine_floor
        self._threads = threads
        self._model = None
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.runtime = ""  # known once loaded

    def load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    self._model = self._load()
                except ModelUnavailable:
                    raise
                except Exception as exc:  # a broken install or model directory
                    raise ModelUnavailable(f"cannot load embedder from {self.path}: {exc}") from exc
        return self._model

    def _load(self):
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: list[str]) -> np.ndarray:
        self.load()
        with self._lock:  # the cache and the model are shared by the API's worker threads
            todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
            for group in _by_length(todo, self.batch_size):
                for text, vec in zip(group, self._encode(group)):
                    self._cache[text] = vec.astype(np.float32)
            out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    @property
    def dim(self) -> int:
        return int(self.embed(["x"]).shape[1])


class SentenceTransformerEmbedder(_CachedEmbedder):
    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        import sentence_transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.runtime = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
        if self._threads:
            torch.set_num_threads(self._threads)
        return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, prompt=self.prompt or None, batch_size=self.batch_size,
                                  normalize_embeddings=True, convert_to_numpy=True)


class OnnxEmbedder(_CachedEmbedder):
    """The model exported to `onnx_path` (on first use, if it is not there) and run with ONNX
    Runtime; the tokenizer is the model's own `tokenizer.json`."""

    # One text per pass. The int8 graph quantizes its activations per pass, over every text and pad
    # token in it, so a text's vector depends on the batch it came in: over Mohler's answers, batches
    # of 8 moved vectors to cosine 0.96-1.0 (mean 0.992) of the same texts run alone, enough to tip a
    # gate, and a grade would depend on what the process had embedded before. Alone, a text always
    # gets the same vector, as close to the 32-bit model's (mean cosine 0.994, min 0.976) as in
    # batches; it costs speed: ~540 texts/s here against ~870 at 8 per pass.
    batch_size = 1

    def __init__(self, path, sha256: str, onnx_path: Path, **kwargs):
        super().__init__(path, sha256, **kwargs)
        self.onnx_path = Path(onnx_path)

    def _load(self):
        import onnxruntime
        from tokenizers import Tokenizer

        if not self.onnx_path.exists():
            export_onnx(self.path, self.onnx_path)
        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length(self.path))
        tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        weights = session.get_modelmeta().custom_metadata_map.get("weights", "int8")
        self.runtime = f"onnxruntime {onnxruntime.__version__}, {weights} export v{ONNX_VERSION}, one text per pass"
        return tokenizer, session

    def _encode(self, texts: list[str]) -> np.ndarray:
        tokenizer, session = self._model
        encoded = tokenizer.encode_batch([self.prompt + t for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        return _run(session, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})


def exportable(model_dir: Path) -> bool:
    """Whether the directory holds a model `OnnxEmbedder` reproduces: a transformer with its
    tokenizer.json, mean pooling, then normalisation."""
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if "pooling_mode" in pooling:  # as newer sentence-transformers versions write it
        mean = pooling["pooling_mode"] == "mean"
    else:
        others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
        mean = pooling.get("pooling_mode_mean_tokens") is True and not others
    return modules == ["Transformer", "Pooling", "Normalize"] and mean and (model_dir / "tokenizer.json").exists()


def max_seq_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 512


def export_onnx(model_dir: Path, out: Path) -> None:
    """Write the model as one ONNX graph: token ids in, mean-pooled, L2-normalised vectors out.
    The weights of its matrix products are quantized to int8 per output channel (activations per
    batch, at run time): twice the speed, and for MiniLM vectors at cosine 0.98-1.0 to the 32-bit
    model's (mean 0.994 over Mohler's answers), which leaves bench/quality's figures within 0.01.
    Where int8 moves a model's vectors further (CHECK_SENTENCES, INT8_MIN_COSINE), the graph keeps
    32-bit weights; the graph's metadata says which. Needs torch, sentence-transformers and onnx
    (all installed by scripts/setup.sh); ~15 s for MiniLM, once."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = SentenceTransformerEmbedder(model_dir, "").load()
    bert = model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = model.tokenizer(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    # one segment: all zeros. A model without token type ids (MPNet) ignores them, and the graph drops the input
    sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, full = (out.with_name(f".{out.name}.{os.getpid()}.{kind}.tmp") for kind in ("int8", "fp32"))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing, not errors
            torch.onnx.export(Pooled().eval(), tuple(sample[k] for k in inputs), str(full), input_names=list(inputs),
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in inputs}, "embedding": {0: "batch"}})
        _quiet(quantize_dynamic, full, tmp, weight_type=QuantType.QInt8, per_channel=True)
        check = model.tokenizer(list(CHECK_SENTENCES), padding=True, return_tensors="np")
        check = {k: check[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        check["token_type_ids"] = np.zeros_like(check["input_ids"])
        weights = "int8"
        if (_run_graph(tmp, check) * _run_graph(full, check)).sum(axis=1).min() < INT8_MIN_COSINE:
            os.replace(full, tmp)
            weights = "float32"
        _set_metadata(tmp, weights=weights)
        os.replace(tmp, out)  # atomic: a concurrent first use never sees half a file
    finally:
        tmp.unlink(missing_ok=True)
        full.unlink(missing_ok=True)


def _run_graph(path: Path, feeds: dict) -> np.ndarray:
    import onnxruntime

    return _run(onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]), feeds)


def _run(session, feeds: dict) -> np.ndarray:
    """The graph's output for the feeds it has inputs for: a model without token type ids (MPNet)
    leaves that input out of the exported graph."""
    return session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]


def _set_metadata(path: Path, **values: str) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, values)
    onnx.save(graph, str(path))


def _quiet(fn, *args, **kwargs):
    """Call `fn` with the quantizer's advice ("consider pre-processing") muted. It logs through the
    root logger, which would also set up logging for the whole process if it had no handler yet."""
    import logging

    root, mute = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(mute)
    root.setLevel(logging.ERROR)
    try:
        return fn(*args, **kwargs)
    finally:
        root.removeHandler(mute)
        root.setLevel(level)


def _by_length(texts: list[str], batch: int = 64) -> list[list[str]]:
    """Texts in groups of similar length. A batch is padded to its longest text, and one answer's
    pieces range from a few words to the whole answer: padding them all to the longest costs up
    to 3x the work. A new group starts where a text is 2x (+64 characters) longer than the
    group's first."""
    groups: list[list[str]] = []
    for text in sorted(texts, key=len):
        if groups and len(text) <= 2 * len(groups[-1][0]) + 64 and len(groups[-1]) < batch:
            groups[-1].append(text)
        else:
            groups.append([text])
    return groups


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic, model-free embedder: hashed word and word-pair counts. For unit tests."""

    id = "hashing-embedder"
    sha256 = "0" * 64
    runtime = "hashed word counts (a test double)"
    cosine_floor = 0.0

    def __init__(self, dim: int = 512):
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        words = [w[:6] for w in _WORD.findall(text.lower())]
        vec = np.zeros(self.dim, np.float32)
        for feature in words + [a + "_" + b for a, b in zip(words, words[1:])]:
            vec[int(hashlib.md5(feature.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
