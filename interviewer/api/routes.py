"""The HTTP surface: thin routes that validate, call the session service, and shape responses.

Reads are plain `def` routes (FastAPI runs them on its thread pool); gradings are handed to the
bounded grading pool, so the event loop never waits for a model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, UploadFile

from ..bank import Document
from ..sessions import QuestionView, Report
from ..store import SessionRecord
from . import examples as ex
from .deps import Services, ServicesDep, SessionDep
from .errors import BUSY_RESPONSE, ERROR_RESPONSES, ApiError, ErrorBody
from .models import (AnswerIn, AnswerOut, AttemptOut, Candidate, CreateSession, DocumentName, DocumentOut, GradeIn,
                     GradeOut, Health, HistoryOut, JobOut, JobResults, MasteryOut, NextQuestion, QuestionId,
                     QuestionSummary, Ready, SessionCreated, SessionOut, SkipIn, SkipOut)

router = APIRouter(responses=ERROR_RESPONSES)


# -- health ------------------------------------------------------------------------------------
@router.get("/healthz", tags=["health"], summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get("/readyz", tags=["health"], summary="Models loaded and a test grading passed",
            responses={503: {"model": ErrorBody, "description": "Still loading (with Retry-After), or failed"}})
def readyz(services: ServicesDep) -> Ready:
    r = services.readiness
    body = Ready(status=r.status, profile=services.engine.profile_name, detail=r.detail, load_seconds=r.load_seconds)
    if not r.ready:
        headers = {"Retry-After": "5"} if r.status == "loading" else None
        raise ApiError(503, "not_ready", f"not ready: {r.detail}", body.model_dump(), headers)
    return body


# -- documents and questions -------------------------------------------------------------------
def _document(doc: Document) -> DocumentOut:
    return DocumentOut(name=doc.name, title=doc.title, questions=len(doc.questions), sha256=doc.sha256)


@router.get("/documents", tags=["questions"], summary="Question documents")
def list_documents(services: ServicesDep) -> list[DocumentOut]:
    return [_document(d) for d in services.catalog.documents()]


@router.get("/documents/{document}", tags=["questions"], summary="One question document")
def get_document(document: DocumentName, services: ServicesDep) -> DocumentOut:
    return _document(services.catalog.document(document))


@router.get("/questions", tags=["questions"], summary="Questions, filtered by document and by text")
def list_questions(services: ServicesDep,
                   document: Annotated[DocumentName | None, Query(description="Only this document")] = None,
                   q: Annotated[str | None, Query(max_length=200, description="Text the question contains "
                                                                          "(case-insensitive)")] = None,
                   ) -> list[QuestionSummary]:
    docs = [services.catalog.document(document)] if document else services.catalog.documents()
    needle = (q or "").strip().lower()
    return [QuestionSummary(document=d.name, id=question.id, title=question.title)
            for d in docs for question in d.questions.values() if needle in question.title.lower()]


@router.get("/documents/{document}/questions/{question_id}", tags=["questions"], summary="One question, for practice",
            description="The reference answer and the rubric's key points only with `include_reference=true`.")
async def get_question(document: DocumentName, question_id: QuestionId, services: ServicesDep,
                       include_reference: bool = False) -> QuestionView:
    # async: a read from memory (the document is cached), so it runs on the event loop, never
    # queued behind threads; the practice read a frontend makes while grading is under way
    path = services.catalog.path(document)
    return services.interviews.question(path, question_id, include_reference=include_reference)


# -- sessions ----------------------------------------------------------------------------------
@router.post("/sessions", tags=["sessions"], status_code=201, summary="Start an interview session",
             description="Returns the session's token once: send it as `Authorization: Bearer <token>` on every "
                         "other session request.")
def create_session(body: CreateSession, services: ServicesDep) -> SessionCreated:
    s, token = services.interviews.create(services.catalog.path(body.document), n_questions=body.n_questions,
                                          order=body.order, candidate=body.candidate, questions=body.questions,
                                          seed=body.seed)
    return SessionCreated(session=SessionOut.of(s), token=token, question=services.interviews.next_question(s.id))


@router.get("/sessions/{session_id}", tags=["sessions"], summary="The session's state and progress")
def get_session(session: SessionDep) -> SessionOut:
    return SessionOut.of(session)


@router.get("/sessions/{session_id}/question", tags=["sessions"], summary="The question waiting for an answer",
            description="Without its reference answer or rubric unless `include_reference=true`.")
def next_question(session: SessionDep, services: ServicesDep, include_reference: bool = False) -> NextQuestion:
    question = services.interviews.next_question(session.id, include_reference=include_reference)
    return NextQuestion(session=SessionOut.of(session), question=question)


def _answer(services: Services, session: SessionRecord, body: AnswerIn) -> AnswerOut:  # on a grading thread
    attempt = services.interviews.answer(session.id, body.answer, question_id=body.question_id,
                                         use_judge=body.use_judge)
    return AnswerOut(attempt_id=attempt.id, question_id=attempt.question_id, result=attempt.result,
                     session=SessionOut.of(services.interviews.get(session.id)),
                     next_question=services.interviews.next_question(session.id))


@router.post("/sessions/{session_id}/answer", tags=["sessions"], responses=BUSY_RESPONSE,
             summary="Answer the current question: graded, stored, then returned")
async def answer(body: AnswerIn, session: SessionDep, services: ServicesDep) -> AnswerOut:
    services.interviews.check(session, body.question_id)  # 409 now, not after waiting for a grader
    return await services.pool.run(_answer, services, session, body)


@router.post("/sessions/{session_id}/skip", tags=["sessions"], summary="Skip the current question")
def skip(session: SessionDep, services: ServicesDep, body: SkipIn | None = None) -> SkipOut:
    attempt = services.interviews.skip(session.id, question_id=body.question_id if body else None)
    return SkipOut(attempt_id=attempt.id, question_id=attempt.question_id,
                   session=SessionOut.of(services.interviews.get(session.id)),
                   next_question=services.interviews.next_question(session.id))


@router.post("/sessions/{session_id}/finish", tags=["sessions"], summary="End the session (idempotent)")
def finish(session: SessionDep, services: ServicesDep) -> SessionOut:
    return SessionOut.of(services.interviews.finish(session.id))


@router.get("/sessions/{session_id}/report", tags=["sessions"],
            summary="Per question scores, key points missed, passages to study",
            responses={200: {"content": {"application/json": {"example": ex.REPORT}}}})
def report(session: SessionDep, services: ServicesDep) -> Report:
    return services.interviews.report(session.id)


@router.get("/sessions/{session_id}/attempts", tags=["sessions"],
            summary="The session's answers with their graded results")
def session_attempts(session: SessionDep, services: ServicesDep) -> list[AttemptOut]:
    return [AttemptOut.of(a) for a in services.interviews.attempts(session.id)]


# -- stateless grading -------------------------------------------------------------------------
def _grade(services: Services, body: GradeIn) -> GradeOut:  # on a grading thread
    attempt = services.interviews.grade(body.question_id, body.answer, document=services.catalog.path(body.document),
                                        candidate=body.candidate, use_judge=body.use_judge)
    return GradeOut(attempt_id=attempt.id, result=attempt.result)


@router.post("/grade", tags=["grading"], responses=BUSY_RESPONSE, summary="Grade one answer, outside any session",
             description="For tools that keep their own state. The attempt is stored (in the candidate's history "
                         "when a candidate is given) before the response is sent.")
async def grade(body: GradeIn, services: ServicesDep) -> GradeOut:
    return await services.pool.run(_grade, services, body)


# -- batch jobs --------------------------------------------------------------------------------
JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id")]


@router.post("/batch-jobs", tags=["batch"], status_code=202,
             summary="Upload recorded answers (JSONL or CSV) to grade in the background",
             description="Rows: `id`, `question` (e.g. Q3), `answer`, optional `candidate`; other columns are "
                         "carried to the output. The same format as `interviewer grade ANSWERS`.")
def create_job(services: ServicesDep,
               file: Annotated[UploadFile, File(description="answers.jsonl or answers.csv")],
               document: Annotated[DocumentName | None, Form()] = None,
               format: Annotated[Literal["jsonl", "csv"] | None, Form(description="Default: from the file name")]
               = None,
               use_judge: Annotated[bool, Form()] = True) -> JobOut:
    job = services.jobs.create(file.file.read(), file.filename or "upload", services.catalog.path(document),
                               fmt=format, use_judge=use_judge)
    return JobOut.of(job)


@router.get("/batch-jobs/{job_id}", tags=["batch"], summary="A job's progress")
def get_job(job_id: JobId, services: ServicesDep) -> JobOut:
    return JobOut.of(services.jobs.get(job_id))


@router.get("/batch-jobs/{job_id}/results", tags=["batch"], summary="A job's finished rows, in input order",
            description="`offset` and `limit` count input rows; rows not graded yet are left out.")
def job_results(job_id: JobId, services: ServicesDep,
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JobResults:
    job, rows = services.jobs.results(job_id, offset=offset, limit=limit)
    return JobResults(job=JobOut.of(job), offset=offset, rows=rows)


# -- history -----------------------------------------------------------------------------------
CandidatePath = Annotated[Candidate, Path(description="The candidate's name, as given when answering")]


@router.get("/candidates/{candidate}/attempts", tags=["history"], summary="A candidate's past attempts, newest first")
def candidate_attempts(candidate: CandidatePath, services: ServicesDep,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> HistoryOut:
    found = services.interviews.history(candidate, limit=limit, offset=offset)
    return HistoryOut(candidate=candidate, total=services.interviews.history_size(candidate), offset=offset,
                      attempts=[AttemptOut.of(a) for a in found])


@router.get("/candidates/{candidate}/mastery", tags=["history"],
            summary="Per key point: the candidate's credit over time")
def mastery(candidate: CandidatePath, services: ServicesDep) -> MasteryOut:
    return MasteryOut(candidate=candidate, key_points=services.interviews.mastery(candidate))
