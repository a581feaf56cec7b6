"""Fusion weights and thresholds, read from a calibration file under models/.

Per key point, with s = embedding cosine of the best-matching answer segment,
and j = logit P(yes) minus logit P(yes | null answer) for that point:

    credit = sigmoid(w_sim * s + w_judge * j + bias)

`embedding_only` is used when the judge is off or fails, `judge_only` only to flag points
where the two signals disagree. `interviewer calibrate` fits these on labelled answers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import MODELS_DIR
from .errors import InputError

LOGIT_CLIP = 6.0


@dataclass(frozen=True)
class Fusion:
    w_sim: float = 0.0
    w_judge: float = 0.0
    bias: float = 0.0

    def credit(self, sim: float, judge: float = 0.0) -> float:
        return sigmoid(self.w_sim * sim + self.w_judge * judge + self.bias)


@dataclass(frozen=True)
class Calibration:
    full: Fusion = Fusion(8.0, 0.8, -4.5)
    embedding_only: Fusion = Fusion(10.0, 0.0, -5.0)
    judge_only: Fusion = Fusion(0.0, 1.0, -0.5)
    covered: float = 0.6  # credit at or above: covered
    partial: float = 0.3  # credit at or above: partial
    off_topic_similarity: float = 0.2  # best answer/topic cosine below this: off topic
    restated_similarity: float = 0.5  # answer this close to the question, adding <= 3 new words, and ...
    restated_margin: float = 0.0  # ... this much closer to it than to any key point: restated
    misconception_similarity: float = 0.45
    misconception_judge: float = 1.5
    review_disagreement: float = 0.5
    source: str = "built-in defaults"
    fitted_on: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return f"{self.source}@{hashlib.sha256(blob).hexdigest()[:12]}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d

    @classmethod
    def from_dict(cls, data: dict, source: str) -> "Calibration":
        kwargs = dict(data)
        for name in ("full", "embedding_only", "judge_only"):
            if name in kwargs:
                unknown = set(kwargs[name]) - set(Fusion.__dataclass_fields__)
                if unknown:
                    raise InputError(f"calibration {source}: {name} has weights this version does not use "
                                     f"({', '.join(sorted(unknown))}); fit it again with `interviewer calibrate`")
                kwargs[name] = Fusion(**kwargs[name])
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in kwargs.items() if k in known}, source=source)


def default_path(profile: str) -> Path:
    return MODELS_DIR / f"calibration-{profile}.json"


def load(path: Path | None, profile: str) -> Calibration:
    path = path or default_path(profile)
    if not path.exists():
        return Calibration()
    return Calibration.from_dict(json.loads(path.read_text()), source=path.name)


def save(calibration: Calibration, path: Path) -> None:
    path.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def logit_delta(p: float, p_null: float) -> float:
    """How much more the judge believes the answer than a null answer, in clipped log-odds."""

    def logit(q: float) -> float:
        q = min(max(q, 1e-6), 1 - 1e-6)
        return math.log(q / (1 - q))

    return max(-LOGIT_CLIP, min(LOGIT_CLIP, logit(p) - logit(p_null)))
