"""The graded result: one shape for the CLI, the API and batch output."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["covered", "partial", "missed"]


class Citation(BaseModel):
    location: str = Field(examples=["Q1 › Deep Dive › Q, K, V"])
    quote: str = Field(description="Verbatim words of the question document")


class JudgeSignal(BaseModel):
    p_yes: float = Field(description="Judge's P(yes) that the answer states the point")
    p_yes_null: float = Field(description="The same for a null answer ('I don't know.'): the bottom of the scale")
    p_yes_reference: float = Field(description="The same for the reference answer: the top of the scale")


class KeyPointResult(BaseModel):
    id: str
    text: str
    weight: float
    status: Status
    credit: float = Field(description="Calibrated probability that the point is covered (0-1)")
    evidence: str | None = Field(description="The candidate's sentence that best matches the point")
    similarity: float = Field(description="Embedding cosine between the point and the evidence, after the "
                              "calibration's share of the question's direction is taken off both")
    judge: JudgeSignal | None = Field(None, description="Null where the judge was off, or not needed: the "
                                      "answer states the point nearly word for word")
    citation: Citation


class MisconceptionResult(BaseModel):
    id: str
    text: str
    detected: bool
    penalty: float
    evidence: str | None = None
    similarity: float | None = Field(None, description="Embedding cosine between the misconception and the "
                                     "candidate's closest sentence")
    judge: JudgeSignal | None = Field(None, description="P(yes) that the answer states the misconception; null "
                                      "where the judge was not asked (no sentence comes close to it)")


class Gate(BaseModel):
    code: Literal["empty", "too_short", "too_long", "off_topic", "keyword_list", "restated", "garbled",
                  "retracted"]
    message: str


class ModelRef(BaseModel):
    id: str
    sha256: str
    runtime: str | None = Field(None, description="What ran the model: the library's version and, for "
                                "llama.cpp, the CPU features its kernels use. The judge's probabilities move "
                                "by up to 0.05 between builds and CPUs, so reproducing a grade exactly needs "
                                "the same runtime")


class Provenance(BaseModel):
    engine_version: str
    document: str
    document_sha256: str
    rubric_version: str
    rubric_curated: bool
    embedder: ModelRef
    judge: ModelRef | None
    judge_status: str = Field(description="'ok', 'disabled', 'skipped: <why>' (a gate, or the "
                              "embedding decided every key point) or 'unavailable: <reason>'")
    calibration: str = Field(description="Calibration file name and sha256 prefix")
    signals: list[str] = Field(description="Signals that contributed to the score")


class GradeResult(BaseModel):
    question_id: str
    question: str
    score: float = Field(ge=0, le=10, description="0-10, one decimal")
    max_score: float = 10.0
    key_points: list[KeyPointResult]
    misconceptions: list[MisconceptionResult]
    needs_review: bool = Field(description="A person should look: confidence below the calibration's "
                                           "review_confidence, the judge unavailable, instructions removed, "
                                           "or an answer made of short fragments")
    confidence: float = Field(ge=0, le=1, description="How decisive the key points' credits are, less the "
                                                      "largest disagreement between the two signals")
    gate: Gate | None
    flags: list[str] = Field(default_factory=list, description="'instructions_removed', "
                             "'retractions_removed', 'repeats_removed', 'fragments' (the answer is a run of "
                             "short fragments: terms named cannot be told from claims made, so it needs review)")
    removed_text: list[str] = Field(default_factory=list, description="Text addressed to the grader, ignored")
    strengths: list[str]
    gaps: list[str]
    feedback: str
    reference_answer: str
    provenance: Provenance
