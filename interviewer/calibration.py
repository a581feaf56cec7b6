"""Fusion weights and thresholds, read from a calibration file under models/.

Per key point, with s = embedding cosine of the best-matching answer segment, and j = how far
the judge's belief that the answer states the point moved from where it is for a null answer
towards where it is for the reference answer (`judge_evidence`: 0 and 1 respectively):

    credit = sigmoid(w_sim * s + w_judge * j + bias)

and the score is 10 x (weighted mean credit) ** `score_exponent`. Teachers give most of the
marks for the core of an answer, so half the credit is worth more than half the marks; the
exponent (at most 1) maps the credits onto their scale without reordering any two answers.

s is measured after a share `question_projection` of each vector's component along the
question's own vector is taken off: an answer does not earn a point for being about what the
question is about. That share is set by hand, not fitted: it changes what is measured.

`embedding_only` is used when the judge is off or fails, and for a point the answer states
nearly word for word (s >= `judge_skip_similarity`): there the judge is not asked, which on
the dev data is both faster and closer to the teachers. `judge_only` only measures how far the
two signals disagree on a point, which lowers the grade's confidence. Both are fitted to give
the credits `full` gives.
`interviewer calibrate` fits all of them on labelled answers.
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
# 2: the judge signal is measured against the reference answer (`judge_evidence`), not in raw log-odds
VERSION = 2
EVIDENCE_CLIP = 2.0  # judge evidence beyond twice the reference answer's, either way, adds nothing
REFERENCE_FLOOR = 0.5  # log-odds: a reference answer the judge barely believes does not inflate the scale


@dataclass(frozen=True)
class Fusion:
    w_sim: float = 0.0
    w_judge: float = 0.0
    bias: float = 0.0

    def credit(self, sim: float, judge: float = 0.0) -> float:
        return sigmoid(self.w_sim * sim + self.w_judge * judge + self.bias)


@dataclass(frozen=True)
class Calibration:
    full: Fusion = Fusion(4.0, 3.0, -3.94)  # defaults: roughly the standard profile's fit
    embedding_only: Fusion = Fusion(4.75, 0.0, -2.8)
    judge_only: Fusion = Fusion(0.0, 3.5, -1.85)
    covered: float = 0.6  # credit at or above: covered
    partial: float = 0.3  # credit at or above: partial
    off_topic_similarity: float = 0.2  # best answer/topic cosine below this: off topic
    restated_similarity: float = 0.7  # answer this close to the question, adding <= 3 new words, and ...
    restated_margin: float = 0.0  # ... this much closer to it than to any key point: restated
    misconception_similarity: float = 0.45  # cosine from which a misconception is asked about
    misconception_judge: float = 1.5  # detected: the judge's log-odds this far above the null answer's ...
    misconception_margin: float = 0.5  # ... and this far above the (correct) reference answer's
    review_confidence: float = 0.1  # a grade less confident than this needs review (grading.confidence)
    garbled_surprisal: float | None = None  # the answer's surprisal (nats/token) from which it is garbled
    judge_skip_similarity: float | None = None  # cosine from which the embedding alone decides a point
    question_projection: float = 0.0  # share of the question's direction taken off before key-point cosines
    score_exponent: float = 1.0  # score = 10 x (weighted mean credit) ** score_exponent
    source: str = "built-in defaults"
    fitted_on: dict = field(default_factory=dict)
    version: int = VERSION

    def asks_judge(self, sim: float, negation_differs: bool = False) -> bool:
        """Whether a key point whose best-matching answer segment has cosine `sim` needs the judge.
        `negation_differs`: that segment has another number of negations than every phrasing of the
        point ("…is not…" against "…is…"). The embedding barely sees a negation, so the judge is
        asked whatever the cosine, and where the cosine alone would decide, the judge does instead
        (unless the calibration gives the judge no weight, as where it carries no signal)."""
        return negation_differs or self.judge_skip_similarity is None or sim < self.judge_skip_similarity

    def credit(self, sim: float, judge: float | None, negation_differs: bool = False) -> float:
        """A key point's credit from its cosine and its judge evidence (None: not judged)."""
        if judge is None or not self.asks_judge(sim, negation_differs):
            return self.embedding_only.credit(sim)
        if self.full.w_judge and not self.asks_judge(sim):  # worded as the point but for a negation:
            return self.judge_only.credit(0.0, judge)  # the cosine cannot tell a claim from its denial
        return self.full.credit(sim, judge)

    def score(self, coverage: float) -> float:
        """0..1 score from the weighted mean credit of the key points."""
        return max(0.0, coverage) ** self.score_exponent

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
        if kwargs.get("version", 1) != VERSION:
            raise InputError(f"calibration {source} is for version {kwargs.get('version', 1)} of the grading "
                             f"signals, this is version {VERSION}; fit it again with `interviewer calibrate`")
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


def logit(q: float) -> float:
    q = min(max(q, 1e-6), 1 - 1e-6)
    return math.log(q / (1 - q))


def logit_delta(p: float, p_null: float) -> float:
    """How much more the judge believes the answer than a null answer, in clipped log-odds."""
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, logit(p) - logit(p_null)))


def judge_evidence(p: float, p_null: float, p_reference: float) -> float:
    """The judge's belief in a key point on the scale that two known answers set: 0 where it is
    for the null answer, 1 where it is for the reference answer. The judge is surer of some points
    than of others even when the answer is the reference itself; raw log-odds would weigh those
    points more, and a point it never believes strongly would count for little."""
    reach = max(REFERENCE_FLOOR, logit(p_reference) - logit(p_null))
    return max(-EVIDENCE_CLIP, min(EVIDENCE_CLIP, (logit(p) - logit(p_null)) / reach))
