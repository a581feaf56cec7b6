"""Request and response bodies of the API (the wire format, separate from stored records)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ..schema import GradeResult
from ..sessions import KeyPointMastery, QuestionView
from ..store import AttemptRecord, JobRecord, SessionRecord
from . import examples as ex


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


Candidate = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                      AfterValidator(_printable),
                      Field(description="Who answers; keys the history (no control characters)", examples=["ada"],
                            json_schema_extra={"pattern": r"^[^\u0000-\u001f]+$"})]
QuestionId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{1,32}$"),
                       Field(examples=["Q1"])]
DocumentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$"),
                         Field(description="A document's name (see GET /documents)", examples=["transformers_llms"])]
Order = Literal["document", "random", "weakest"]


def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# -- requests ----------------------------------------------------------------------------------
class CreateSession(BaseModel):
    model_config = _examples({"document": "transformers_llms", "n_questions": 3, "order": "weakest",
                              "candidate": "ada"})

    document: DocumentName | None = Field(None, description="Default: the server's default document")
    n_questions: int | None = Field(None, ge=1, le=1000, description="Default: every question")
    order: Order = Field("document", description="document, random, or weakest (from the candidate's history)")
    candidate: Candidate | None = None
    questions: list[QuestionId] | None = Field(None, min_length=1, max_length=1000,
                                               json_schema_extra={"uniqueItems": True},
                                               description="Ask exactly these, each once, in this order "
                                                           "(overrides order)")
    seed: int | None = Field(None, description="Seed for order=random, for a repeatable order")


class AnswerIn(BaseModel):
    model_config = _examples({"answer": "Each token is projected into a query, a key and a value vector; the "
                                        "softmax of scaled query-key dot products weights the values.",
                              "question_id": "Q1"})

    answer: str = Field(description="The candidate's free-text answer (an empty one is graded as empty)")
    question_id: QuestionId | None = Field(None, description="If given, must be the current question "
                                                             "(guards against a retried request answering twice)")
    use_judge: bool = Field(True, description="False: embedding signal only (fast)")


class SkipIn(BaseModel):
    model_config = _examples({"question_id": "Q2"})

    question_id: QuestionId | None = Field(None, description="If given, must be the current question")


class GradeIn(BaseModel):
    model_config = _examples({"question_id": "Q4", "answer": "Transformers see all tokens at once, so sine and "
                                                            "cosine position encodings add word order.",
                              "document": "transformers_llms", "candidate": "ada"})

    question_id: QuestionId
    answer: str
    document: DocumentName | None = None
    candidate: Candidate | None = Field(None, description="If given, the attempt joins the candidate's history")
    use_judge: bool = True


# -- responses ---------------------------------------------------------------------------------
class Health(BaseModel):
    model_config = _examples({"status": "ok"})
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    model_config = _examples({"status": "ready", "profile": "tiny", "detail": "test grading of Q1 scored 9.1",
                              "load_seconds": 1.4})
    status: Literal["ready", "loading", "failed"]
    profile: str
    detail: str
    load_seconds: float | None = None


class DocumentOut(BaseModel):
    model_config = _examples({"name": "transformers_llms", "title": "Transformers & LLMs", "questions": 10,
                              "sha256": "3f1c…"})
    name: str
    title: str
    questions: int
    sha256: str


class QuestionSummary(BaseModel):
    model_config = _examples({"document": "transformers_llms", "id": "Q2",
                              "title": 'What is "Multi-Head Attention"? Why do we need it?'})
    document: str
    id: str
    title: str


class SessionOut(BaseModel):
    model_config = _examples(ex.SESSION)
    id: str
    candidate: str | None
    document: str
    order: str
    state: Literal["open", "finished"]
    position: int = Field(description="Questions answered or skipped so far")
    total: int
    current_question_id: str | None = Field(description="The question waiting for an answer; null when finished")
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, s: SessionRecord) -> "SessionOut":
        return cls(id=s.id, candidate=s.candidate, document=Path(s.document_path).stem, order=s.question_order,
                   state=s.state, position=s.position, total=s.total, current_question_id=s.current_question_id,
                   created_at=s.created_at, updated_at=s.updated_at)


class SessionCreated(BaseModel):
    model_config = _examples({"session": ex.SESSION, "token": "oNHdSvn0cLrXZAlS6DagkL61VOPgvP5zdE66ziQxlMY",
                              "question": ex.QUESTION})
    session: SessionOut
    token: str = Field(description="Send as `Authorization: Bearer <token>`; shown only once")
    question: QuestionView | None = Field(description="The first question")


class NextQuestion(BaseModel):
    model_config = _examples({"session": ex.SESSION, "question": ex.QUESTION})
    session: SessionOut
    question: QuestionView | None = Field(description="The question waiting for an answer; null when finished")


class AnswerOut(BaseModel):
    model_config = _examples({"attempt_id": ex.ATTEMPT["id"], "question_id": "Q4", "result": ex.GRADE_RESULT,
                              "session": ex.SESSION, "next_question": ex.QUESTION})
    attempt_id: str
    question_id: str
    result: GradeResult = Field(description="The graded result, already stored")
    session: SessionOut
    next_question: QuestionView | None


class SkipOut(BaseModel):
    model_config = _examples({"attempt_id": ex.ATTEMPT["id"], "question_id": "Q4", "session": ex.SESSION,
                              "next_question": ex.QUESTION})
    attempt_id: str
    question_id: str
    session: SessionOut
    next_question: QuestionView | None


class GradeOut(BaseModel):
    model_config = _examples({"attempt_id": ex.ATTEMPT["id"], "result": ex.GRADE_RESULT})
    attempt_id: str = Field(description="The stored attempt")
    result: GradeResult


class AttemptOut(BaseModel):
    model_config = _examples(ex.ATTEMPT)
    id: str
    session_id: str | None
    candidate: str | None
    document: str
    question_id: str
    status: Literal["answered", "skipped"]
    score: float | None
    answer: str
    result: GradeResult | None
    created_at: str

    @classmethod
    def of(cls, a: AttemptRecord) -> "AttemptOut":
        return cls(id=a.id, session_id=a.session_id, candidate=a.candidate, document=Path(a.document).stem,
                   question_id=a.question_id, status=a.status, score=a.score, answer=a.answer, result=a.result,
                   created_at=a.created_at)


class HistoryOut(BaseModel):
    model_config = _examples({"candidate": "ada", "total": 1, "offset": 0, "attempts": [ex.ATTEMPT]})
    candidate: str
    total: int
    offset: int
    attempts: list[AttemptOut] = Field(description="Newest first")


class MasteryOut(BaseModel):
    model_config = _examples({"candidate": "ada", "key_points": [ex.MASTERY]})
    candidate: str
    key_points: list[KeyPointMastery] = Field(description="Weakest (lowest latest credit) first")


class JobOut(BaseModel):
    model_config = _examples(ex.JOB)
    id: str
    state: Literal["queued", "running", "done"]
    filename: str
    document: str
    use_judge: bool
    total: int
    done: int = Field(description="Rows finished (graded or error)")
    errors: int
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, j: JobRecord) -> "JobOut":
        return cls(id=j.id, state=j.state, filename=j.filename, document=Path(j.document_path).stem,
                   use_judge=j.use_judge, total=j.total, done=j.done, errors=j.errors, created_at=j.created_at,
                   updated_at=j.updated_at)


class JobResults(BaseModel):
    model_config = _examples({"job": {**ex.JOB, "state": "done", "done": 120}, "offset": 0, "rows": [
        {"id": "a1", "line": 1, "status": "graded", "score": 6.2, "error": None, "question": "Q4", "candidate": "ada",
         "team": "red", "result": ex.GRADE_RESULT},
        {"id": "a2", "line": 2, "status": "error", "score": None, "error": "line 2: empty answer", "question": "Q2",
         "candidate": None, "team": "blue", "result": None}]})
    job: JobOut
    offset: int
    rows: list[dict[str, Any]] = Field(description="Finished rows in input order, as the CLI batch command "
                                                   "writes them: id, line, status (graded|error), score, error, "
                                                   "question, candidate, extra columns, result")
