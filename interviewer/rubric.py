"""Rubrics: key points (with weights and the passage each comes from) and misconceptions.

A curated rubric lives beside its document as `<stem>.rubric.yaml`. Loading checks that every
cited passage still exists and still contains the quoted words, so a document edit that breaks
a rubric fails loudly. Questions without a curated rubric get one drafted from the document.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import bank
from .bank import Document, Passage, Question
from .errors import RubricError

DRAFTER_VERSION = "2"  # 2: alternatives only where the Answer is one key point
MAX_KEY_POINTS = 7
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$(\"'])")

# libyaml's safe loader where PyYAML was built with it: 10x faster (70 -> 8 ms for the seed rubric)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class KeyPoint:
    id: str
    text: str
    weight: float
    source: str  # passage location, e.g. "Q1 › Deep Dive › Q, K, V"
    quote: str  # verbatim words of that passage
    alternatives: tuple[str, ...] = ()

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.text, *self.alternatives)


@dataclass(frozen=True)
class Misconception:
    id: str
    text: str
    penalty: float = 1.0


@dataclass(frozen=True)
class QuestionRubric:
    question: Question
    key_points: tuple[KeyPoint, ...]
    misconceptions: tuple[Misconception, ...]
    curated: bool
    version: str

    @property
    def total_weight(self) -> float:
        return sum(k.weight for k in self.key_points)


class Rubric:
    """The rubrics of one document: curated where a file provides them, drafted elsewhere."""

    def __init__(self, document: Document, curated: dict[str, QuestionRubric], path: Path | None):
        self.document, self.path, self._curated = document, path, curated
        self._drafts: dict[str, QuestionRubric] = {}

    def for_question(self, qid: str) -> QuestionRubric:
        question = self.document.question(qid)
        if question.id in self._curated:
            return self._curated[question.id]
        if question.id not in self._drafts:
            self._drafts[question.id] = draft(self.document, question)
        return self._drafts[question.id]

    def __iter__(self):
        return (self.for_question(qid) for qid in self.document.questions)


def rubric_path(document_path: Path) -> Path:
    return document_path.with_name(document_path.stem + ".rubric.yaml")


def load(document: Document, path: Path | None = None) -> Rubric:
    path = path or rubric_path(document.path)
    if not path.exists():
        return Rubric(document, {}, None)
    raw = path.read_bytes()
    version = hashlib.sha256(raw + document.sha256.encode()).hexdigest()[:12]
    try:
        data = yaml.load(raw, Loader=_SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data.get("questions"), dict):
        raise RubricError(f"{path}: expected a top-level 'questions:' mapping of question ids")
    curated = {}
    for qid, spec in data["questions"].items():
        where = f"{path}: {qid}"
        try:
            question = document.question(str(qid))
        except Exception as exc:
            raise RubricError(f"{where}: {exc}") from None
        curated[question.id] = _question_rubric(question, spec or {}, where, version)
    return Rubric(document, curated, path)


def _question_rubric(question: Question, spec: dict, where: str, version: str) -> QuestionRubric:
    points = spec.get("key_points") or []
    if not 1 <= len(points) <= MAX_KEY_POINTS:
        raise RubricError(f"{where}: expected 1 to {MAX_KEY_POINTS} key_points, found {len(points)}")
    key_points, seen = [], set()
    for i, kp in enumerate(points, 1):
        kwhere = f"{where} key point {kp.get('id', i)!r}"
        for name in ("id", "text", "source"):
            if not str(kp.get(name) or "").strip():
                raise RubricError(f"{kwhere}: missing '{name}'")
        if kp["id"] in seen:
            raise RubricError(f"{kwhere}: duplicate id")
        seen.add(kp["id"])
        passage = question.passage(kp["source"])
        if passage is None:
            known = "; ".join(p.location for p in question.passages)
            raise RubricError(f"{kwhere}: source {kp['source']!r} is not a passage of the document. "
                              f"Passages of {question.id}: {known}")
        quote = kp.get("quote") or passage.text
        if quote not in passage.text:
            raise RubricError(f"{kwhere}: the quote {quote!r} is no longer in {passage.location}, which now "
                              f"reads {passage.text!r}; update the rubric")
        weight = float(kp.get("weight", 1.0))
        if weight <= 0:
            raise RubricError(f"{kwhere}: weight must be positive, got {weight}")
        alternatives = tuple(str(a) for a in kp.get("alternatives", ()))
        key_points.append(KeyPoint(str(kp["id"]), str(kp["text"]).strip(), weight, passage.location, quote,
                                   alternatives))
    misconceptions = []
    for i, m in enumerate(spec.get("misconceptions") or [], 1):
        if not str(m.get("text") or "").strip():
            raise RubricError(f"{where} misconception {i}: missing 'text'")
        misconceptions.append(Misconception(str(m.get("id", f"m{i}")), str(m["text"]).strip(),
                                            float(m.get("penalty", 1.0))))
    return QuestionRubric(question, tuple(key_points), tuple(misconceptions), True, version)


def _claims(passage: Passage) -> list[str]:
    """Sentences of a passage worth a key point each (long passages are split)."""
    text = passage.text
    label = bank._label(text)
    body = re.sub(r"^\*\*[^*]+\*\*:?\s*|^\*[^*]+\*\s*", "", text).strip()
    if not re.search(r"[A-Za-z]{3}", bank.plain(body)):
        return []  # a bare label ("**Strategies:**") or a lone formula
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()] if len(text.split()) > 30 else [text]
    return sentences if label is None or len(sentences) == 1 else [text]


def draft(document: Document, question: Question) -> QuestionRubric:
    """A rubric drafted from the Answer and Deep Dive passages, for a person to edit."""
    chosen: list[tuple[Passage, str]] = []
    seen: set[str] = set()
    sections = [p for p in question.passages if p.location.count(bank.SEP) == 2]  # top-level items
    deep = [p for p in sections if p.section == bank.DEEP_DIVE]
    answer = [p for p in question.passages if p.section == bank.ANSWER]
    answer = answer[1:] if len(answer) > 1 else answer  # skip the whole-answer passage when items exist
    for passage in answer + deep:
        if passage.location.endswith("Other acceptable answers"):
            continue
        for claim in _claims(passage):
            key = re.sub(r"\W+", " ", bank.plain(claim).lower()).strip()
            if key and key not in seen:
                seen.add(key)
                chosen.append((passage, claim))
    if not chosen:
        root = question.passages[0]
        chosen = [(root, root.text)]
    chosen = chosen[:MAX_KEY_POINTS]
    # "Other acceptable answers" are other wordings of the whole Answer: they are phrasings of a key
    # point only where the Answer is that one point. Split into several, an answer that matched an
    # alternative would seem to state every part (on Beetle's Q24 every wrong answer close to one
    # alternative got all three of its points).
    whole_answer = sum(passage.section == bank.ANSWER for passage, _ in chosen) == 1
    key_points = tuple(
        KeyPoint(
            id=f"k{i}",
            text=bank.plain(claim),
            weight=1.0,
            source=passage.location,
            quote=claim,
            alternatives=question.alternatives if whole_answer and passage.section == bank.ANSWER else (),
        )
        for i, (passage, claim) in enumerate(chosen, 1)
    )
    version = "draft-" + hashlib.sha256((document.sha256 + DRAFTER_VERSION).encode()).hexdigest()[:12]
    return QuestionRubric(question, key_points, (), False, version)


def to_yaml(rubric: Rubric) -> str:
    """The document's rubrics (curated or drafted) as an editable YAML file."""
    out = {"document": rubric.document.path.name, "questions": {}}
    for qr in rubric:
        entry = {"title": qr.question.title, "key_points": [], "misconceptions": []}
        for kp in qr.key_points:
            item = {"id": kp.id, "text": kp.text, "weight": kp.weight, "source": kp.source, "quote": kp.quote}
            if kp.alternatives:
                item["alternatives"] = list(kp.alternatives)
            entry["key_points"].append(item)
        entry["misconceptions"] = [{"id": m.id, "text": m.text, "penalty": m.penalty} for m in qr.misconceptions]
        out["questions"][qr.question.id] = entry
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=100)


def load_for(document_path: Path | str) -> Rubric:
    return load(bank.load(document_path))
