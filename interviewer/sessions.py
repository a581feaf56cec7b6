"""Mock interviews: the session service shared by the API and the CLI's practice command.

    interviews = Interviews(Engine(settings), Store.for_settings(settings))
    session, token = interviews.create(n_questions=3, order="weakest", candidate="ada")
    while (question := interviews.next_question(session.id)) is not None:
        attempt = interviews.answer(session.id, input(question.title + "\\n> "))
        print(attempt.result.feedback)
    print(interviews.report(session.id))

Every method that takes a session takes the session (or its id) and re-reads it from the
store, so callers never act on a stale copy. `answer` grades, then stores the attempt with its
full result and moves the session on in one transaction; nothing is returned before it is
stored. `authorize(session_id, token)` is how a caller holding only a token gets the session.
Framework-free: no HTTP here.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .errors import InputError, InterviewerError
from .schema import Citation, GradeResult
from .service import Engine
from .store import AttemptRecord, Conflict, SessionRecord, Store

Order = Literal["document", "random", "weakest"]
ORDERS: tuple[str, ...] = ("document", "random", "weakest")


class SessionNotFound(InterviewerError):
    """No session with this id, or the token is not this session's (the two look the same)."""


class SessionStateError(InterviewerError):
    """The session cannot do that now: it is finished, or it is at another question."""


# -- what the service returns ------------------------------------------------------------------
class KeyPointView(BaseModel):
    id: str
    text: str
    weight: float
    citation: Citation


class Reference(BaseModel):
    """What a question expects; shown only when asked for, or once the question is answered."""

    answer: str = Field(description="The document's short answer")
    deep_dive: str = Field(description="The document's Reasoning & Deep Dive section")
    key_points: list[KeyPointView]


class QuestionView(BaseModel):
    id: str = Field(examples=["Q1"])
    title: str = Field(examples=['Explain the "Self-Attention" mechanism in Transformers.'])
    document: str = Field(examples=["transformers_llms"])
    position: int | None = Field(None, description="1-based place in the session, when asked in one")
    total: int | None = Field(None, description="Questions in the session, when asked in one")
    reference: Reference | None = Field(None, description="Only with include_reference")


class MissedPoint(BaseModel):
    question_id: str
    key_point_id: str
    text: str
    status: Literal["missed", "partial"]
    citation: Citation


class ReportItem(BaseModel):
    position: int = Field(description="1-based")
    question_id: str
    title: str
    status: Literal["answered", "skipped", "not_asked"]
    score: float | None = Field(None, description="0-10; None unless answered")
    needs_review: bool | None = None
    attempt_id: str | None = None


class Report(BaseModel):
    session_id: str
    candidate: str | None
    document: str
    state: Literal["open", "finished"]
    answered: int
    skipped: int
    total: int
    average_score: float | None = Field(description="Mean over the questions asked (a skip counts 0), 0-10")
    items: list[ReportItem]
    missed: list[MissedPoint] = Field(description="Key points missed or only partly covered, across the session")
    study: list[Citation] = Field(description="Passages of the document to study, each once, in document order")


class MasteryPoint(BaseModel):
    at: str
    credit: float = Field(description="0 (missed) to 1 (covered)")
    status: Literal["covered", "partial", "missed"]


class KeyPointMastery(BaseModel):
    document: str
    question_id: str
    key_point_id: str
    text: str
    attempts: int
    latest: float = Field(description="Credit at the latest attempt, 0-1")
    mean: float = Field(description="Mean credit over all attempts, 0-1")
    timeline: list[MasteryPoint] = Field(description="Oldest first")


# -- the service -------------------------------------------------------------------------------
class Interviews:
    """Create and run interview sessions; grade and keep every answer; report on them."""

    def __init__(self, engine: Engine, store: Store):
        self.engine, self.store = engine, store

    # -- sessions ----------------------------------------------------------------------------
    def create(self, document: Path | str | None = None, *, n_questions: int | None = None,
               order: Order = "document", candidate: str | None = None,
               questions: Iterable[str] | None = None, seed: int | None = None) -> tuple[SessionRecord, str]:
        """Start a session; returns it and its token (kept only as a hash: show it once).

        `questions` picks the questions (in that order) instead of `order`; `n_questions`
        keeps the first N of the chosen order (default: all). `weakest` puts the questions the
        candidate never answered first, then those with the lowest latest score.
        """
        doc = self.engine.document(document)
        if order not in ORDERS:
            raise InputError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        if questions is not None:
            ids = [doc.question(q).id for q in questions]
            if not ids or len(set(ids)) != len(ids):
                raise InputError("questions must name at least one question, each once")
        else:
            ids = self._ordered(list(doc.questions), order, candidate, doc.path.name, seed)
        if n_questions is not None:
            if not 1 <= n_questions <= len(ids):
                among = "the questions listed" if questions is not None else doc.path.name
                raise InputError(f"n_questions must be between 1 and {len(ids)} for {among}, not {n_questions}")
            ids = ids[:n_questions]
        token = secrets.token_urlsafe(32)
        session = SessionRecord(id=secrets.token_hex(8), token_sha256=_hash(token), candidate=candidate,
                                document_path=str(doc.path), document_sha256=doc.sha256, question_ids=ids,
                                question_order="custom" if questions is not None else order)
        self.store.add_session(session)
        return session, token

    def _ordered(self, ids: list[str], order: str, candidate: str | None, document: str,
                 seed: int | None) -> list[str]:
        if order == "random":
            random.Random(seed).shuffle(ids)
        elif order == "weakest":
            latest = self.latest_scores(candidate, document) if candidate else {}
            ids.sort(key=lambda q: (q in latest, latest.get(q, 0.0)))  # stable: document order on ties
        return ids

    def latest_scores(self, candidate: str, document: str) -> dict[str, float]:
        """The candidate's latest score per question of a document (a skip scores 0)."""
        latest = {}
        for a in self.store.attempts(candidate=candidate):
            if a.document == document:
                latest[a.question_id] = a.score or 0.0
        return latest

    def get(self, session: SessionRecord | str) -> SessionRecord:
        session_id = session.id if isinstance(session, SessionRecord) else session
        found = self.store.session(session_id)
        if found is None:
            raise SessionNotFound(f"no session {session_id!r} with this token")
        return found

    def authorize(self, session_id: str, token: str | None) -> SessionRecord:
        """The session, if `token` is its own; otherwise SessionNotFound, as for an unknown id."""
        found = self.store.session(session_id)
        if found is None or not token or not hmac.compare_digest(found.token_sha256, _hash(token)):
            raise SessionNotFound(f"no session {session_id!r} with this token")
        return found

    def next_question(self, session: SessionRecord | str, *, include_reference: bool = False) -> QuestionView | None:
        """The question waiting for an answer, or None when the session is finished."""
        s = self.get(session)
        if s.current_question_id is None:
            return None
        view = self.question(s.document_path, s.current_question_id, include_reference=include_reference)
        self.engine.prepare_in_background(view.id, s.document_path)  # while the candidate types
        return view.model_copy(update={"position": s.position + 1, "total": s.total})

    def answer(self, session: SessionRecord | str, answer: str, *, question_id: str | None = None,
               use_judge: bool = True) -> AttemptRecord:
        """Grade the answer to the current question, store it with its result, move on.

        `question_id`, when given, must be the current question (a guard against answering
        twice, e.g. a retried request). Raises SessionStateError when the session is finished
        or has moved on; in that case nothing is stored.
        """
        s = self._current(session, question_id)
        qid, text = s.current_question_id, storable(answer)
        result = self.engine.grade(qid, text, doc=s.document_path, use_judge=use_judge)
        attempt = self._attempt(s, qid, text, "answered", result)
        self._advance(s, attempt)
        return attempt

    def skip(self, session: SessionRecord | str, *, question_id: str | None = None) -> AttemptRecord:
        s = self._current(session, question_id)
        attempt = self._attempt(s, s.current_question_id, "", "skipped", None)
        self._advance(s, attempt)
        return attempt

    def finish(self, session: SessionRecord | str) -> SessionRecord:
        """End the session now (idempotent); questions not reached stay unasked."""
        s = self.get(session)
        self.store.finish(s.id)
        return self.get(s.id)

    @staticmethod
    def check(s: SessionRecord, question_id: str | None = None) -> None:
        """Raise SessionStateError unless `s` is waiting for an answer (to `question_id`, if given)."""
        if s.current_question_id is None:
            raise SessionStateError(f"session {s.id} is finished; start a new session")
        if question_id is not None and question_id.strip().upper() != s.current_question_id:
            raise SessionStateError(f"session {s.id} is at {s.current_question_id} "
                                    f"(question {s.position + 1} of {s.total}), not {question_id}")

    def _current(self, session, question_id: str | None) -> SessionRecord:
        s = self.get(session)
        self.check(s, question_id)
        return s

    def _advance(self, s: SessionRecord, attempt: AttemptRecord) -> None:
        try:
            self.store.advance(s, attempt)
        except Conflict:
            raise SessionStateError(f"session {s.id} moved on while this answer was graded "
                                    f"(another submission for {attempt.question_id} came first)") from None

    def _attempt(self, s: SessionRecord, qid: str, text: str, status: str,
                 result: GradeResult | None) -> AttemptRecord:
        return AttemptRecord(
            id=uuid.uuid4().hex, session_id=s.id, position=s.position, candidate=s.candidate,
            document=Path(s.document_path).name, document_sha256=s.document_sha256, question_id=qid, answer=text,
            status=status, score=result.score if result else None, result=result,
        )

    # -- one-off grading ---------------------------------------------------------------------
    def grade(self, question_id: str, answer: str, *, document: Path | str | None = None,
              candidate: str | None = None, use_judge: bool = True) -> AttemptRecord:
        """Grade one answer outside any session; it is stored (and counts in the candidate's history)."""
        text = storable(answer)
        result = self.engine.grade(question_id, text, doc=document, use_judge=use_judge)
        attempt = AttemptRecord(
            id=uuid.uuid4().hex, session_id=None, position=None, candidate=candidate,
            document=result.provenance.document, document_sha256=result.provenance.document_sha256,
            question_id=result.question_id, answer=text, status="answered", score=result.score, result=result,
        )
        self.store.add_attempt(attempt)
        return attempt

    # -- questions ---------------------------------------------------------------------------
    def question(self, document: Path | str | None, question_id: str, *,
                 include_reference: bool = False) -> QuestionView:
        """A question for practice: its reference and rubric only if `include_reference`."""
        doc = self.engine.document(document)
        q = doc.question(question_id)
        reference = None
        if include_reference:
            qr = self.engine.rubric(document).for_question(q.id)
            reference = Reference(
                answer=q.short_answer, deep_dive=q.deep_dive,
                key_points=[KeyPointView(id=kp.id, text=kp.text, weight=kp.weight,
                                         citation=Citation(location=kp.source, quote=kp.quote))
                            for kp in qr.key_points],
            )
        return QuestionView(id=q.id, title=q.title, document=doc.name, reference=reference)

    # -- reports -----------------------------------------------------------------------------
    def attempts(self, session: SessionRecord | str) -> list[AttemptRecord]:
        return self.store.attempts(session_id=self.get(session).id)

    def report(self, session: SessionRecord | str) -> Report:
        s = self.get(session)
        by_position = {a.position: a for a in self.store.attempts(session_id=s.id)}
        doc = self.engine.document(s.document_path)
        items, missed = [], []
        for position, qid in enumerate(s.question_ids):
            a = by_position.get(position)
            title = doc.questions[qid].title if qid in doc.questions else qid
            status = a.status if a else "not_asked"
            items.append(ReportItem(position=position + 1, question_id=qid, title=title, status=status,
                                    score=a.score if a else None,
                                    needs_review=a.result.needs_review if a and a.result else None,
                                    attempt_id=a.id if a else None))
            if a is not None:
                missed += self._missed(s.document_path, qid, a)
        asked = [i for i in items if i.status != "not_asked"]
        average = round(sum(i.score or 0.0 for i in asked) / len(asked), 1) if asked else None
        study = list({m.citation.location: m.citation for m in missed}.values())
        order = {p.location: n for n, p in enumerate(p for q in doc.questions.values() for p in q.passages)}
        study.sort(key=lambda c: order.get(c.location, len(order)))
        return Report(session_id=s.id, candidate=s.candidate, document=Path(s.document_path).stem, state=s.state,
                      answered=sum(i.status == "answered" for i in items),
                      skipped=sum(i.status == "skipped" for i in items), total=s.total, average_score=average,
                      items=items, missed=missed, study=study)

    def _missed(self, document: str, qid: str, attempt: AttemptRecord) -> list[MissedPoint]:
        if attempt.result is not None:
            return [MissedPoint(question_id=qid, key_point_id=kp.id, text=kp.text, status=kp.status,
                                citation=kp.citation)
                    for kp in attempt.result.key_points if kp.status != "covered"]
        try:  # skipped: every key point of the question is missed
            qr = self.engine.rubric(document).for_question(qid)
        except InterviewerError:  # the document changed since; nothing to cite
            return []
        return [MissedPoint(question_id=qid, key_point_id=kp.id, text=kp.text, status="missed",
                            citation=Citation(location=kp.source, quote=kp.quote)) for kp in qr.key_points]

    # -- history -----------------------------------------------------------------------------
    def history(self, candidate: str, *, limit: int = 50, offset: int = 0) -> list[AttemptRecord]:
        """The candidate's attempts, newest first."""
        return self.store.attempts(candidate=candidate, limit=limit, offset=offset, newest_first=True)

    def history_size(self, candidate: str) -> int:
        return self.store.count_attempts(candidate=candidate)

    def mastery(self, candidate: str) -> list[KeyPointMastery]:
        """Per key point the candidate was graded on: credit over time, oldest attempt first."""
        points: dict[tuple[str, str, str], KeyPointMastery] = {}
        for a in self.store.attempts(candidate=candidate):
            if a.result is None:
                continue
            for kp in a.result.key_points:
                key = (a.document, a.question_id, kp.id)
                m = points.get(key) or KeyPointMastery(document=Path(a.document).stem, question_id=a.question_id,
                                                       key_point_id=kp.id, text=kp.text, attempts=0, latest=0,
                                                       mean=0, timeline=[])
                m.timeline.append(MasteryPoint(at=a.created_at, credit=kp.credit, status=kp.status))
                points[key] = m
        for m in points.values():
            m.attempts = len(m.timeline)
            m.latest = m.timeline[-1].credit
            m.mean = round(sum(p.credit for p in m.timeline) / m.attempts, 3)
        return sorted(points.values(), key=lambda m: (m.latest, m.document, m.question_id, m.key_point_id))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def storable(text: str) -> str:
    """Text any database can store: no NUL, no unpaired surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
