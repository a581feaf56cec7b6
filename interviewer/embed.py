"""Embedder seam: texts in, L2-normalised vectors out.

`SentenceTransformerEmbedder` is the real backend (loaded lazily, offline); `HashingEmbedder`
is a deterministic bag-of-words implementation of the same seam for fast unit tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from typing import Protocol

import numpy as np

from .errors import ModelUnavailable


class Embedder(Protocol):
    id: str
    sha256: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text."""


class SentenceTransformerEmbedder:
    def __init__(self, path, sha256: str, *, threads: int | None = None, cache_size: int = 20000,
                 name: str | None = None):
        self.path, self.sha256 = path, sha256
        self.id = name or os.path.basename(str(path).rstrip("/")) or str(path)
        self._threads = threads
        self._model = None
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                try:
                    import torch
                    import transformers
                    from sentence_transformers import SentenceTransformer

                    transformers.utils.logging.set_verbosity_error()
                    transformers.utils.logging.disable_progress_bar()

                    if self._threads:
                        torch.set_num_threads(self._threads)
                    self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
                except Exception as exc:  # a broken install or model directory
                    raise ModelUnavailable(f"cannot load embedder from {self.path}: {exc}") from exc
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        with self._lock:  # the cache and the model are shared by the API's worker threads
            todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
            for group in _by_length(todo):
                vectors = model.encode(group, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
                for text, vec in zip(group, vectors):
                    self._cache[text] = vec.astype(np.float32)
            out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    @property
    def dim(self) -> int:
        return int(self.load().get_sentence_embedding_dimension())


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
